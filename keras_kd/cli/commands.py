"""What each `keras-kd` subcommand does; `keras_kd.cli.parser` parses the
arguments and `keras_kd.cli.main` calls `run`.

Every check of the user's input runs before any model loads or trains, and
fails with a `UsageError` that the command prints as one line. Each command
builds its output folder aside and swaps it in when complete
(`keras_kd.utils.io.atomic_folder`).
"""

import json
import os
import shutil

import keras
import numpy as np

from keras_kd import datasets as kd_datasets
from keras_kd import export as kd_export
from keras_kd import pipeline
from keras_kd.cli.parser import UsageError
from keras_kd.utils.io import atomic_folder, atomic_write_json


def _load_data(args):
    try:
        return kd_datasets.load(
            args.data, text_column=args.text_column, label_column=args.label_column
        )
    except (ValueError, OSError, KeyError) as error:
        raise UsageError(
            f"keras-kd {args.command}: cannot read --data {args.data!r}: {error}"
        ) from None


def _load_model(args, flag, path):
    if not os.path.isfile(path):
        raise UsageError(
            f"keras-kd {args.command}: {flag} {path!r} is not a file; pass a "
            ".keras model written by `keras-kd finetune` or `keras-kd distill`."
        )
    try:
        return keras.models.load_model(path)
    except (ValueError, OSError, TypeError, KeyError) as error:
        raise UsageError(
            f"keras-kd {args.command}: cannot load {flag} {path!r}: {error}"
        ) from None


# The options whose `PipelineConfig` field has another name.
_FLAGS = {
    "teacher_epochs": "--epochs",
    "teacher_learning_rate": "--learning-rate",
}


def _config(args, quick=False, **settings):
    """The `PipelineConfig` of a command; a bad setting is a `UsageError`
    that names the option (`keras_kd.utils.validation` messages start with
    the field's name)."""
    fields = {
        "data": args.data,
        "text_column": args.text_column,
        "label_column": args.label_column,
        "output_dir": args.output_dir,
        "overwrite": args.overwrite,
    }
    if args.run_name:
        fields["run_name"] = args.run_name
    fields.update(settings)
    try:
        if quick:
            return pipeline.PipelineConfig.quick(**fields)
        return pipeline.PipelineConfig(**fields)
    except ValueError as error:
        flag = next(
            (
                _FLAGS.get(field, "--" + field.replace("_", "-"))
                for field in settings
                if str(error).startswith((f"`{field}`", f"`{field}["))
            ),
            None,
        )
        where = f" {flag}:" if flag else ""
        raise UsageError(f"keras-kd {args.command}:{where} {error}") from None


def _check_run_dir(config):
    try:
        pipeline.check_run_dir(config)
    except (FileExistsError, FileNotFoundError) as error:
        raise UsageError(f"keras-kd: {error}") from None


def _write_metrics(folder, record):
    """Writes `metrics.json` into `folder` and prints it."""
    atomic_write_json(os.path.join(folder, "metrics.json"), record)
    print(json.dumps(record, indent=2))


def _generation_config(args):
    """The `GenerationConfig` of `demo --task generation`."""
    if args.few_labels is not None or args.seeds != list(pipeline.PipelineConfig.seeds):
        raise UsageError(
            "keras-kd demo: --seeds and --few-labels apply to --task "
            "classification only; remove them for --task generation."
        )
    fields = {"data": args.data, "output_dir": args.output_dir, "overwrite": args.overwrite}
    if args.teacher:
        fields["teacher"] = args.teacher
    if args.run_name:
        fields["run_name"] = args.run_name
    make = pipeline.GenerationConfig.quick if args.quick else pipeline.GenerationConfig
    try:
        return make(**fields)
    except ValueError as error:
        raise UsageError(f"keras-kd demo: {error}") from None


def _print_report(config):
    with open(os.path.join(config.run_dir, "report.md")) as f:
        print(f.read())
    print(f"report: {os.path.join(config.run_dir, 'report.png')}")


def demo(args):
    if args.task == "generation":
        config = _generation_config(args)
        _check_run_dir(config)
        try:
            pipeline.generation_texts(config)
        except (ValueError, OSError) as error:
            raise UsageError(f"keras-kd demo: --data {args.data!r}: {error}") from None
        report = pipeline.run_generation(config)
        _print_report(config)
        return report
    config = _config(
        args,
        quick=args.quick,
        teacher=args.teacher or pipeline.PipelineConfig.teacher,
        seeds=tuple(args.seeds),
        few_labels=args.few_labels,
    )
    _check_run_dir(config)
    data = _load_data(args)
    try:
        pipeline.check_few_labels(
            config, min(len(data.train), config.max_train or len(data.train))
        )
    except ValueError as error:
        raise UsageError(f"keras-kd demo: {error}") from None
    report = pipeline.run(config)
    _print_report(config)
    return report


def finetune(args):
    config = _config(
        args,
        teacher=args.preset,
        freeze=int(args.freeze) if args.freeze.isdigit() else args.freeze,
        teacher_epochs=args.epochs,
        sequence_length=args.sequence_length,
        batch_size=args.batch_size,
        teacher_learning_rate=args.learning_rate,
    )
    _check_run_dir(config)
    data = _load_data(args)
    teacher, history = pipeline.finetune_teacher(
        config, data.train, data.validation, len(data.class_names)
    )
    record = {"class_names": list(data.class_names), "history": history.history}
    if data.test is not None:
        record["test_accuracy"] = pipeline.evaluate_accuracy(teacher, data.test)
    with atomic_folder(config.run_dir, overwrite=config.overwrite) as folder:
        teacher.save(os.path.join(folder, "model.keras"))
        _write_metrics(folder, record)


def distill(args):
    config = _config(
        args,
        student_layers=args.student_layers,
        epochs=args.epochs,
        alpha=args.alpha,
        temperature=args.temperature,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
    )
    _check_run_dir(config)
    data = _load_data(args)
    teacher = _load_model(args, "--teacher", args.teacher)
    with atomic_folder(config.run_dir, overwrite=config.overwrite) as folder:
        cache_dir = os.path.join(folder, "teacher_cache")
        students, histories, _ = pipeline.distill_students(
            config, teacher, data.train, data.validation, cache_dir, baseline=False
        )
        shutil.rmtree(cache_dir)
        student = students["distilled"]
        student.save(os.path.join(folder, "model.keras"))
        record = {
            "class_names": list(data.class_names),
            "teacher": os.path.abspath(args.teacher),
            "history": histories["distilled"].history,
        }
        if data.test is not None:
            record["test_accuracy"] = pipeline.evaluate_accuracy(student, data.test)
        _write_metrics(folder, record)


def export(args):
    config = _config(args)
    _check_run_dir(config)
    unknown = set(args.quantization) - set(kd_export.QUANTIZATIONS)
    if unknown:
        raise UsageError(
            f"keras-kd export: unknown --quantization {sorted(unknown)}; "
            f"choose from {list(kd_export.QUANTIZATIONS)}"
        )
    data = _load_data(args)
    model = _load_model(args, "--model", args.model)
    sequence_length = args.sequence_length or model.preprocessor.sequence_length
    card = kd_export.export_bundle(
        model.token_id_model,
        config.run_dir,
        labels=list(data.class_names),
        vocabulary=model.preprocessor.tokenizer.get_vocabulary(),
        sequence_length=sequence_length,
        quantizations=tuple(args.quantization),
        representative_data=data.train.sample(200).texts,
        verification_data=(data.test or data.validation or data.train).sample(200),
        overwrite=args.overwrite,
    )
    print(json.dumps(card, indent=2, default=float))


def evaluate(args):
    data = _load_data(args)
    split = data.splits.get(args.split)
    if split is None:
        raise UsageError(
            f"keras-kd evaluate: --data {args.data!r} has no {args.split!r} "
            f"split; it has {sorted(data.splits)}."
        )
    if args.model.endswith(".tflite"):
        if not os.path.isfile(args.model):
            raise UsageError(f"keras-kd evaluate: --model {args.model!r} is not a file.")
        classifier = kd_export.TFLiteTextClassifier(args.model)
        predictions = np.argmax(classifier.predict(split.texts), axis=-1)
        accuracy = float(np.mean(predictions == split.labels))
    else:
        model = _load_model(args, "--model", args.model)
        accuracy = pipeline.evaluate_accuracy(model, split)
    print(
        json.dumps(
            {"model": args.model, "split": args.split, "examples": len(split),
             "accuracy": accuracy},
            indent=2,
        )
    )


def run(args):
    """Runs the subcommand named by `args.command`."""
    {
        "demo": demo,
        "finetune": finetune,
        "distill": distill,
        "export": export,
        "evaluate": evaluate,
    }[args.command](args)
