"""What each `keras-kd` subcommand does; `keras_kd.cli.parser` parses the
arguments and `keras_kd.cli.main` calls `run`.

Every check of the user's input runs before any data or model loads and
before the output folder is touched (`keras_kd.pipeline.check_config`),
and fails with a `UsageError` that the command prints as one line. Models
load in Keras's safe mode unless `--unsafe`
(`keras_kd.transfer.load_finetune_model`). Each command builds its output
folder aside and swaps it in when complete
(`keras_kd.utils.io.atomic_folder`; `demo`, `finetune` and `distill` in
`.<run name>.partial`, `keras_kd.utils.io.resumable_folder`, which
`--resume` continues after a kill); a missing `--output-dir` is created.
"""

import dataclasses
import json
import os
import re
import shutil

import numpy as np

from keras_kd import datasets as kd_datasets
from keras_kd import export as kd_export
from keras_kd import pipeline, transfer
from keras_kd.cli.parser import UsageError
from keras_kd.export.bundle import check_replaceable
from keras_kd.pipeline.config import PipelineConfig
from keras_kd.pipeline import student_search
from keras_kd.pipeline.steps import extra_texts, teacher_cache, trained_once
from keras_kd.utils.devices import make_strategy
from keras_kd.utils.io import atomic_write_json, resumable_folder


def _data_options(args):
    return {
        "validation_data": args.validation_data,
        "test_data": args.test_data,
    }


def _check_data(args):
    """Checks --data, --validation-data and --test-data without reading them."""
    try:
        kd_datasets.check_source(args.data, **_data_options(args))
    except (ValueError, OSError) as error:
        raise UsageError(
            f"keras-kd {args.command}: cannot read --data {args.data!r}: {error}"
        ) from None


def _load_data(args, **options):
    try:
        return kd_datasets.load(
            args.data,
            text_column=args.text_column,
            label_column=args.label_column,
            **_data_options(args),
            **options,
        )
    except (ValueError, OSError, KeyError) as error:
        raise UsageError(
            f"keras-kd {args.command}: cannot read --data {args.data!r}: {error}"
        ) from None


def _load_model(args, flag, path):
    try:
        return transfer.load_finetune_model(path, safe_mode=not args.unsafe)
    except (ValueError, OSError, TypeError) as error:
        raise UsageError(f"keras-kd {args.command}: {flag}: {error}") from None


def _check_classes(args, outputs, class_names):
    """Refuses data of another number of classes than the model's
    `outputs`: its labels would be scored against other classes' ids."""
    if len(class_names) != outputs:
        raise UsageError(
            f"keras-kd {args.command}: --data {args.data!r} has "
            f"{len(class_names)} classes {list(class_names)}, but --model "
            f"{args.model!r} predicts {outputs}. Pass the data the model was "
            "trained on, with all its classes."
        )


def _outputs(model):
    return int(model.token_id_model.outputs[0].shape[-1])


def _flag(args, field):
    """The option that sets the `PipelineConfig` field `field`."""
    if field == "teacher":
        return "--preset" if args.command == "finetune" else "--teacher"
    return {
        "teacher_epochs": "--epochs",
        "teacher_learning_rate": "--learning-rate",
    }.get(field, "--" + field.replace("_", "-"))


def _config(args, quick=False, check_teacher=False, export=True, **settings):
    """The `PipelineConfig` of a command, checked with
    `pipeline.check_config` (the teacher's preset too with `check_teacher`,
    and whether its students export, with `export`); a bad
    setting is a `UsageError` that names the option of the field that the
    message names first (`freeze=9`, `` `batch_size` ``)."""
    fields = {
        "data": args.data,
        "text_column": args.text_column,
        "label_column": args.label_column,
        "output_dir": args.output_dir,
        "overwrite": args.overwrite,
        "resume": getattr(args, "resume", False),
        **_data_options(args),
    }
    if args.run_name is not None:
        fields["run_name"] = args.run_name
    fields.update(settings)
    try:
        if quick:
            config = pipeline.PipelineConfig.quick(**fields)
        else:
            config = pipeline.PipelineConfig(**fields)
        pipeline.check_config(config, teacher=check_teacher, export=export)
    except (ValueError, TypeError, OSError, ImportError) as error:
        message = str(error)
        named = {"preset": "teacher", **{field: field for field in settings}}
        found = [
            (match.start(), field)
            for name, field in named.items()
            for match in [re.search(rf"(?<!\w){name}(?=[`=\[])", message)]
            if match
        ]
        where = f" {_flag(args, min(found)[1])}:" if found else ""
        raise UsageError(f"keras-kd {args.command}:{where} {message}") from None
    return config


def _write_metrics(folder, record):
    """Writes `metrics.json` into `folder` and prints it."""
    atomic_write_json(os.path.join(folder, "metrics.json"), record)
    print(json.dumps(record, indent=2))


def _task_config(args, config_class):
    """The config of `demo --task generation` (`GenerationConfig`) or
    `--task speech` (`SpeechConfig`)."""
    given = [
        option
        for option, value, default in (
            ("--seeds", args.seeds, list(pipeline.PipelineConfig.seeds)),
            ("--few-labels", args.few_labels, None),
            ("--generated-texts", args.generated_texts, None),
            ("--unlabelled-data", args.unlabelled_data, None),
            ("--generator", args.generator, pipeline.PipelineConfig.generator),
            ("--validation-data", args.validation_data, None),
            ("--test-data", args.test_data, None),
            ("--label-column", args.label_column, pipeline.PipelineConfig.label_column),
        )
        if value != default
    ]
    if given:
        verb, pronoun = ("applies", "it") if len(given) == 1 else ("apply", "them")
        raise UsageError(
            f"keras-kd demo: {', '.join(given)} {verb} to --task classification "
            f"only; remove {pronoun} for --task {args.task} (its texts need no "
            "labels, and it holds out its own test texts)."
        )
    fields = {
        "data": args.data, "text_column": args.text_column, "output_dir": args.output_dir,
        "overwrite": args.overwrite, "resume": args.resume,
    }
    if args.prompt_column is not None and args.response_column is None:
        raise UsageError(
            "keras-kd demo: --prompt-column names the prompts of "
            "prompt-response pairs: add --response-column (e.g. completion)."
        )
    if args.response_column is not None:
        fields["response_column"] = args.response_column
        if args.prompt_column is not None:
            fields["prompt_column"] = args.prompt_column
    if args.teacher is not None:
        fields["teacher"] = args.teacher
    if args.run_name is not None:
        fields["run_name"] = args.run_name
    make = config_class.quick if args.quick else config_class
    try:
        return make(**fields)
    except ValueError as error:
        raise UsageError(f"keras-kd demo: {error}") from None


def _print_report(config):
    with open(os.path.join(config.run_dir, "report.md")) as f:
        print(f.read())
    card = os.path.join(config.run_dir, "report.png")
    print(f"report: {card if os.path.exists(card) else os.path.join(config.run_dir, 'report.md')}")


def demo(args):
    pairs = [f for f, v in (("--response-column", args.response_column),
                            ("--prompt-column", args.prompt_column)) if v is not None]
    if args.task != "generation" and pairs:
        raise UsageError(
            f"keras-kd demo: {', '.join(pairs)} applies to --task generation "
            f"only; remove it for --task {args.task}."
        )
    if args.task != "classification" and args.strategy != "default":
        raise UsageError(
            f"keras-kd demo: --strategy {args.strategy} applies to --task "
            f"classification only; remove it for --task {args.task}."
        )
    if args.task in ("generation", "speech"):
        config_class, check, run = {
            "generation": (
                pipeline.GenerationConfig, pipeline.check_generation_config, pipeline.run_generation,
            ),
            "speech": (pipeline.SpeechConfig, pipeline.check_speech_config, pipeline.run_speech),
        }[args.task]
        config = _task_config(args, config_class)
        try:
            check(config)
        except (ValueError, TypeError, OSError, ImportError) as error:
            raise UsageError(f"keras-kd demo: {error}") from None
        report = run(config)
        _print_report(config)
        return report
    config = _config(
        args,
        quick=args.quick,
        check_teacher=True,
        # --teacher "" is refused, not taken for the default.
        teacher=pipeline.PipelineConfig.teacher if args.teacher is None else args.teacher,
        seeds=tuple(args.seeds),
        few_labels=args.few_labels,
        generated_texts=args.generated_texts,
        generator=args.generator,
        unlabelled_data=args.unlabelled_data,
    )
    data = _load_data(args)
    try:
        pipeline.check_few_labels(
            config, min(len(data.train), config.max_train or len(data.train))
        )
    except ValueError as error:
        raise UsageError(f"keras-kd demo: {error}") from None
    strategy = None if args.strategy == "default" else make_strategy(args.strategy)
    report = pipeline.run(config, strategy=strategy)
    _print_report(config)
    return report


def finetune(args):
    freeze = args.freeze
    config = _config(
        args,
        check_teacher=True,
        export=False,
        teacher=args.preset,
        freeze=int(freeze) if re.fullmatch(r"-?\d+", freeze) else freeze,
        teacher_epochs=args.epochs,
        patience=args.patience,
        sequence_length=args.sequence_length,
        batch_size=args.batch_size,
        teacher_learning_rate=args.learning_rate,
    )
    data = _load_data(args)
    budget = pipeline.resolve_budget(config, data.train)
    with _run_folder(config) as progress:

        def train():
            teacher, history = pipeline.finetune_teacher(
                budget.config, data.train, data.validation, data.class_names,
                backup_dir=progress.resume_path("backup"),
            )
            return teacher, _trained(history)

        teacher, result = trained_once(
            progress, "finetune", progress.path / "model.keras", train
        )
        record = {"class_names": list(data.class_names), **result, "budget": budget.chosen}
        if data.test is not None:
            record["test_accuracy"] = pipeline.evaluate_accuracy(teacher, data.test)
        _write_metrics(progress.path, record)


def _trained(history):
    """What `metrics.json` records of a training's `History`."""
    return {"history": history.history, "trained": history.budget}


def _run_folder(config):
    """The `resumable_folder` of a command's run."""
    return resumable_folder(
        config.run_dir, config.settings(), resume=config.resume, overwrite=config.overwrite
    )


def _check_within(args, flag, value, limit, what):
    """Refuses `flag`'s `value` above the loaded model's `limit` (its
    layers, its positions) before any data loads."""
    if value is not None and limit is not None and value > limit:
        raise UsageError(
            f"keras-kd {args.command}: {flag} {value} exceeds {what} "
            f"({limit}); pass at most {limit}."
        )


def _check_student_budget(args):
    """Refuses a student budget that is not a finite positive number
    (`keras_kd.pipeline.student_search.check_limits`), or one given with the
    shape it would choose, before anything loads; returns whether a budget
    was given."""
    limits = {"--max-size-mb": args.max_size_mb, "--max-latency-ms": args.max_latency_ms}
    given = [flag for flag, value in limits.items() if value is not None]
    if not given:
        return False
    shape = [
        flag for flag, value in (("--student-layers", args.student_layers),
                                 ("--student-hidden-dim", args.student_hidden_dim))
        if value is not None
    ]
    if shape:
        raise UsageError(
            f"keras-kd distill: {' and '.join(given)} choose the student's "
            f"layers and width; remove {' and '.join(shape)}, or the budget."
        )
    for flag, value in limits.items():
        try:
            student_search.check_limits(**{flag[2:].replace("-", "_"): value})
        except ValueError as error:
            raise UsageError(f"keras-kd distill: {flag}: {error}") from None
    return True


def distill(args):
    searching = _check_student_budget(args)
    config = _config(
        args,
        # Recorded in the settings, so a resumed run has the same teacher.
        teacher=os.path.abspath(args.teacher),
        # `is None`, not `or`: --student-layers 0 is refused, not the default.
        student_layers=(
            PipelineConfig.student_layers if args.student_layers is None else args.student_layers
        ),
        student_hidden_dim=args.student_hidden_dim,
        epochs=args.epochs,
        patience=args.patience,
        alpha=args.alpha,
        temperature=args.temperature,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        generated_texts=args.generated_texts,
        generator=args.generator,
        unlabelled_data=args.unlabelled_data,
        trim_vocabulary=args.trim_vocabulary,
    )
    teacher = _load_model(args, "--teacher", args.teacher)
    if searching:
        # The search measures each shape's .tflite file.
        try:
            kd_export.check_tflite_text_classifier(teacher)
        except ValueError as error:
            raise UsageError(
                f"keras-kd distill: --max-size-mb and --max-latency-ms: {error}"
            ) from None
    _check_within(
        args, "--student-layers", args.student_layers,
        getattr(teacher.backbone, "num_layers", None), "the teacher's transformer layers",
    )
    _check_within(
        args, "--student-hidden-dim", args.student_hidden_dim,
        getattr(teacher.backbone, "hidden_dim", None), "the teacher's width",
    )
    data = _load_data(args, class_names=teacher.class_names)
    if searching and data.validation is None:
        raise UsageError(
            f"keras-kd distill: --max-size-mb and --max-latency-ms rank the "
            f"candidate students on a validation split; --data {args.data!r} "
            "has none. Pass --validation-data."
        )
    # The sequence length is the teacher's.
    teacher_width = teacher.backbone.hidden_dim
    budget = pipeline.resolve_budget(
        config, data.train, sequence_length=False, teacher_hidden_dim=teacher_width
    )
    if searching and not args.resume:
        # A budget no shape meets is refused in a minute, not after the
        # teacher's logits are cached and texts generated.
        try:
            student_search.check_budget_reachable(
                budget.config, teacher, data.train, data.validation,
                max_size_mb=args.max_size_mb, max_latency_ms=args.max_latency_ms,
            )
        except ValueError as error:
            raise UsageError(f"keras-kd distill: {error}") from None
    with _run_folder(config) as progress:
        # A resumed run reuses the logits cached by the killed one.
        cache_dir = os.path.join(progress.path, "teacher_cache")
        run_config = budget.config
        extra, extra_counts = extra_texts(
            progress, run_config, teacher, data.train,
            [t for split in data.splits.values() for t in split.texts],
        )
        if searching:
            if not progress.done("search"):
                # The search ranks shapes on the training texts alone; a
                # student that also trains on extra texts gets a cache of
                # its own, not a rebuild of this one.
                search_cache = (
                    cache_dir if extra is None else os.path.join(progress.path, "search_cache")
                )
                found = pipeline.search_student(
                    run_config, teacher, data.train, data.validation,
                    teacher_cache(run_config, teacher, data.train, search_cache),
                    max_size_mb=args.max_size_mb, max_latency_ms=args.max_latency_ms,
                    extra=extra,
                )
                if search_cache != cache_dir:
                    shutil.rmtree(search_cache)
                progress.complete("search", dataclasses.asdict(found))
            found = progress.result("search")
            # Auto epochs depend on the shape found (new layers train longer).
            budget = pipeline.resolve_budget(
                dataclasses.replace(
                    config, student_layers=found["num_layers"],
                    student_hidden_dim=found["hidden_dim"],
                ),
                data.train, sequence_length=False, teacher_hidden_dim=teacher_width,
            )
            run_config = budget.config

        def train():
            students, histories, _ = pipeline.distill_students(
                run_config, teacher, data.train, data.validation, cache_dir,
                baseline=False, backup_dir=progress.resume_path("backup"), extra=extra,
            )
            shutil.rmtree(cache_dir)
            student = students["distilled"]
            if run_config.trim_vocabulary and _exportable(student):
                # As the demo ships it, and as a search measured it:
                # `keras-kd export` of this file then fits the budget.
                student = student.trim_vocabulary(
                    pipeline.vocabulary_texts(data.train, data.validation, extra)
                )
            return student, _trained(histories["distilled"])

        student, result = trained_once(
            progress, "distill", progress.path / "model.keras", train
        )
        record = {
            "class_names": list(data.class_names),
            "teacher": os.path.abspath(args.teacher),
            "student": {
                "num_layers": run_config.student_layers,
                "hidden_dim": student.backbone.hidden_dim,
            },
            **result,
            "budget": budget.chosen,
        }
        if searching:
            record["search"] = found["rows"]
        for source in ("generated", "unlabelled"):
            if extra_counts[source] is not None:
                record[f"{source}_texts"] = extra_counts[source]
        if data.test is not None:
            record["test_accuracy"] = pipeline.evaluate_accuracy(student, data.test)
        _write_metrics(progress.path, record)


def _exportable(model):
    """Whether `model` exports to a `.tflite` text classifier (a BERT
    student, whose vocabulary trims)."""
    try:
        kd_export.check_tflite_text_classifier(model)
    except ValueError:
        return False
    return True


def export(args):
    unknown = set(args.quantization) - set(kd_export.QUANTIZATIONS)
    if unknown:
        raise UsageError(
            f"keras-kd export: unknown --quantization {sorted(unknown)}; "
            f"choose from {list(kd_export.QUANTIZATIONS)}"
        )
    # Checked as the pipeline's: 0 silently gave the model's length, and a
    # negative one a traceback once the model and data had loaded.
    config = _config(args, sequence_length=args.sequence_length)
    if args.overwrite:
        # Before the model and data load; export_bundle would refuse it last.
        try:
            check_replaceable(config.run_dir)
        except FileExistsError as error:
            raise UsageError(f"keras-kd export: --overwrite: {error}") from None
    model = _load_model(args, "--model", args.model)
    try:
        kd_export.check_tflite_text_classifier(model)
    except ValueError as error:
        raise UsageError(f"keras-kd export: --model {args.model!r}: {error}") from None
    _check_within(
        args, "--sequence-length", args.sequence_length,
        getattr(model.backbone, "max_sequence_length", None), "the model's positions",
    )
    data = _load_data(args, class_names=model.class_names)
    _check_classes(args, _outputs(model), data.class_names)
    sequence_length = args.sequence_length or model.preprocessor.sequence_length
    # export_bundle wants the run folder's parent to exist; the other
    # commands' atomic_folder creates it.
    os.makedirs(args.output_dir, exist_ok=True)
    card = kd_export.export_bundle(
        model.token_id_model,
        config.run_dir,
        labels=list(data.class_names),
        vocabulary=model.preprocessor.tokenizer,
        sequence_length=sequence_length,
        quantizations=tuple(args.quantization),
        representative_data=data.train.sample(200).texts,
        verification_data=(data.test or data.validation or data.train).sample(200),
        overwrite=args.overwrite,
    )
    print(json.dumps(card, indent=2, default=float))


def _whole(data):
    """Every example of `data`, its splits one after the other."""
    splits = list(data.splits.values())
    return kd_datasets.TextSplit(
        [text for split in splits for text in split.texts],
        np.concatenate([split.labels for split in splits]),
    )


def _model_format(args):
    """The extension of `evaluate`'s --model: `.keras` or `.tflite`. Any
    other is refused before anything loads: read as a `.keras` file, an
    `.onnx` one was only said not to be a Keras model."""
    suffix = os.path.splitext(args.model)[1].lower()
    if suffix not in (".keras", ".tflite"):
        what = f"{suffix!r} files are" if suffix else "a path without an extension is"
        raise UsageError(
            f"keras-kd evaluate: --model {args.model!r}: {what} not supported; "
            "evaluate reads a .keras model (from keras-kd finetune or "
            "distill) or a .tflite file (from keras-kd export)."
        )
    return suffix


def evaluate(args):
    tflite = _model_format(args) == ".tflite"
    _check_data(args)
    # A single file or pair is then read whole into its train split.
    whole = {"splits": (1.0, 0.0, 0.0)} if args.split == "all" else {}
    if tflite:
        if not os.path.isfile(args.model):
            raise UsageError(f"keras-kd evaluate: --model {args.model!r} is not a file.")
        try:
            classifier = kd_export.TFLiteTextClassifier(args.model)
        except (ValueError, OSError) as error:
            raise UsageError(
                f"keras-kd evaluate: --model {args.model!r} is not a .tflite "
                f"classifier exported by keras-kd: {error}"
            ) from None
        # The file's labels, in its output order, give the data's classes:
        # a label the file does not know is refused, not miscounted.
        data = _load_data(args, class_names=classifier.labels, training=False, **whole)
        _check_classes(args, len(classifier.labels), data.class_names)
    else:
        model = _load_model(args, "--model", args.model)
        # As for a .tflite file: the model's class names, when it has
        # them, give the data's classes.
        # Scored, not trained on: a file of one class is fine.
        data = _load_data(args, class_names=model.class_names, training=False, **whole)
        _check_classes(args, _outputs(model), data.class_names)
    split = _whole(data) if args.split == "all" else data.splits.get(args.split)
    if split is None:
        raise UsageError(
            f"keras-kd evaluate: --data {args.data!r} has no {args.split!r} "
            f"split; it has {sorted(data.splits)}. Pass --split all to score "
            "every example."
        )
    if tflite:
        predictions = np.argmax(classifier.predict(split.texts), axis=-1)
        accuracy = float(np.mean(predictions == split.labels))
    else:
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
