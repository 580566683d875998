"""The main job: from raw text to a verified on-device student, with a report.

`run(PipelineConfig(...))` (or `keras-kd demo` on the command line):

1. fine-tunes the teacher (a pretrained backbone plus a classification head),
   at a sequence length and for epochs that, unless given, come from the
   training data (`keras_kd.pipeline.budget`), keeping its best validation
   epoch;
2. builds a smaller student from it (every k-th transformer layer);
   with `generated_texts`, a causal LM first writes new texts from prompts
   cut from the training texts, and the teacher labels them, as it labels
   the texts of `unlabelled_data`;
3. caches the teacher's logits once and distills the student from the cache
   (with the generated and unlabelled texts), and trains the same student
   without distillation on the training texts' batches (the baseline that
   shows what distillation bought);
4. trims the student's vocabulary to the texts it trained and was validated
   on (`keras_kd.pipeline.vocabulary_texts`) and exports it to
   TFLite (dynamic-range int8 by default), and the teacher to TFLite float32;
5. checks each `.tflite` against its Keras model on the test texts (parity,
   accuracy, single-example latency);
6. writes `report.json`, `report.md` and `report.png` in the run folder.
"""

import contextlib
import os
import shutil
import time
import types

import numpy as np

from keras_kd import datasets as kd_datasets
from keras_kd import export as kd_export
from keras_kd import transfer
from keras_kd.pipeline.budget import resolve_budget
from keras_kd.pipeline.config import PipelineConfig
from keras_kd.pipeline.report import build_report
from keras_kd.pipeline.report_card import write_report
from keras_kd.pipeline.steps import (
    accuracy_of,
    check_config,
    check_few_labels,
    distill_students,
    baseline_cache_dir,
    few_label_experiment,
    finetune_teacher,
    extra_texts,
    trained_once,
    vocabulary_texts,
)
from keras_kd.utils.io import atomic_write, resumable_folder
from keras_kd.utils.timing import Laps


def _say(step, text):
    print(f"[{step}/6] {text}", flush=True)


def _subset(split, size, seed):
    return None if split is None else split.sample(size, seed)


def run(config=None, strategy=None):
    """Runs the whole pipeline and returns the report dict.

    The run's folder is built in a sibling, `.<run name>.partial`, and
    swapped in at the end (`keras_kd.utils.io.resumable_folder`): an
    interrupted run leaves no half-written run folder, and an existing one
    stays as it was until the new one is complete. A run that was killed
    or failed continues with `resume=True`: the teacher, the cached logits
    and the students it finished are reused, and a training it did not
    finish continues from its last backup (`keras_kd.utils.backup`; every
    `steps.BACKUP_EVERY_STEPS` steps). The exports and checks run again.
    For a first try, `run(PipelineConfig.quick())` takes about 3 minutes
    on 2 CPU cores.

    Under a `tf.distribute` `strategy` the trainings (the teacher, the
    teacher cache, the students, the few-labels experiment) build their
    models in its scope and train on all its replicas, `config.batch_size`
    being the global batch; the exports and their checks then run on one
    device, from the models the run saved. Under
    `MultiWorkerMirroredStrategy` every worker runs the same `run` and
    writes its own run folder: give each worker its own
    `config.output_dir` when they share a disk.

    Args:
        config: a `PipelineConfig`; defaults to the embedded demo.
        strategy: a `tf.distribute.Strategy`, or None for the default
            (one device).

    Returns:
        The report dict (`keras_kd.pipeline.report.build_report`, plus
        `seconds`, `seconds_by_step` and `replicas`, the number the
        trainings ran on), also written to `report.json`,
        `report.md` and `report.png` in the run folder.

    Raises:
        FileExistsError: the run folder exists and `config.overwrite` is
            False, or a partial run exists and neither `config.resume` nor
            `config.overwrite` is set (before any work; `check_config`
            lists the other checks made then).
        FileNotFoundError: `config.resume` is set and there is no partial
            run to resume.
        ValueError: `config.few_labels` leaves no unlabelled texts.
    """
    config = config or PipelineConfig()
    check_config(config)
    started = time.perf_counter()
    data = load_data(config)
    seed = config.seeds[0]
    train = data.train.sample(config.max_train, seed)
    validation = _subset(data.validation, config.max_test, seed)
    test = _subset(data.test or data.validation, config.max_test, seed)
    labels = list(data.class_names)
    check_few_labels(config, len(train))
    # Decided once, on the run's training texts; the run folder keeps the
    # settings as given (None: auto), which a resumed run decides alike.
    budget = resolve_budget(config, train)

    with resumable_folder(
        config.run_dir, config.settings(), resume=config.resume, overwrite=config.overwrite
    ) as progress:
        report = _run_steps(budget, progress, train, validation, test, labels, strategy)
        report["seconds"] = time.perf_counter() - started
        report["replicas"] = 1 if strategy is None else strategy.num_replicas_in_sync
        _say(6, f"Writing the report to {config.run_dir}")
        write_report(report, progress.path)
    return report


def load_data(config):
    """The data of `config`: `keras_kd.datasets.load` of its `data`, with
    its `validation_data` and `test_data` when given."""
    return kd_datasets.load(
        config.data,
        text_column=config.text_column,
        label_column=config.label_column,
        validation_data=config.validation_data,
        test_data=config.test_data,
    )


def _run_steps(budget, progress, train, validation, test, labels, strategy=None):
    """Steps 1 to 5 of `run` on the config of `budget` (a
    `keras_kd.pipeline.budget.Budget`), writing into the folder of
    `progress` (a `keras_kd.utils.io.RunProgress`) and skipping the steps
    it records as done, the trainings in `strategy`'s scope; returns the
    report dict with `seconds_by_step`."""
    config = budget.config
    staging = str(progress.path)
    laps = Laps()
    teacher_file = os.path.join(staging, "teacher.keras")
    distilled_file = progress.resume_path("distilled_student.keras")
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        teacher, shipped, results = _train(
            config, progress, laps, train, validation, test, labels,
            teacher_file, distilled_file,
        )
    if strategy is not None:
        # Exported and checked on one device: the trained models hold
        # distributed variables.
        teacher = transfer.load_finetune_model(teacher_file)
        shipped = transfer.load_finetune_model(distilled_file)
    return _export_and_report(
        config, budget, staging, laps, train, validation, test, labels,
        teacher, shipped, results,
    )


def _train(
    config, progress, laps, train, validation, test, labels, teacher_file, distilled_file
):
    """Steps 1 and 2 of `run`: returns the teacher, the distilled student
    of the first seed (both also saved) and the results of the trainings
    (`accuracies`, `trained`: each training's accuracy, curve and epochs;
    `generated`: `_generated_record`; `unlabelled`: `unlabelled_texts`'s
    counts, or None; `extra`: `extra_texts`'s split, or None)."""
    seed = config.seeds[0]

    if progress.done("teacher"):
        _say(1, "Reusing the fine-tuned teacher of the partial run")
    else:
        _say(1, f"Fine-tuning the teacher {config.teacher!r} on {len(train)} texts")

    def train_teacher():
        teacher, history = finetune_teacher(
            config, train, validation, labels,
            backup_dir=progress.resume_path("backup_teacher"),
        )
        return teacher, {
            "accuracy": accuracy_of(config, teacher, test),
            "curve": history.curve,
            "budget": history.budget,
        }

    teacher, result = trained_once(progress, "teacher", teacher_file, train_teacher)
    # Each training's result: its accuracy, curve and epochs.
    trained = {"teacher": result}
    laps.lap("teacher")
    _say(
        2,
        f"Distilling {config.student_layers}-layer students with and without "
        f"KD, seed(s) {list(config.seeds)}",
    )
    cache_dir = os.path.join(str(progress.path), "teacher_cache")
    if config.generated_texts is not None and not progress.done("generated"):
        _say(2, f"Generating {config.generated_texts} texts with {config.generator!r}")
    extra, extra_counts = extra_texts(
        progress, config, teacher, train,
        [t for split in (train, validation, test) if split is not None for t in split.texts],
    )
    shipped = None
    for student_seed in config.seeds:
        step = f"students_seed{student_seed}"
        if not progress.done(step):
            students, histories, _ = distill_students(
                config, teacher, train, validation, cache_dir, seed=student_seed,
                backup_dir=progress.resume_path(f"backup_{step}"), extra=extra,
            )
            if student_seed == seed:
                shipped = students["distilled"]
                atomic_write(distilled_file, shipped.save, overwrite=True)
            progress.complete(step, {
                name: {"accuracy": accuracy_of(config, student, test),
                       "curve": histories[name].curve,
                       "budget": histories[name].budget}
                for name, student in students.items()
            })
    per_seed = {
        name: [progress.result(f"students_seed{s}")[name]["accuracy"] for s in config.seeds]
        for name in ("distilled", "baseline")
    }
    for name in ("distilled", "baseline"):
        trained[name] = progress.result(f"students_seed{seed}")[name]
    if shipped is None:
        shipped = transfer.load_finetune_model(distilled_file)
    for folder in (cache_dir, baseline_cache_dir(cache_dir)):
        if os.path.exists(folder):
            shutil.rmtree(folder)
    laps.lap("students")

    few_labels = None
    if config.few_labels is not None:
        if not progress.done("few_labels"):
            _say(2, f"Few labels: a teacher on {config.few_labels} labelled texts")
            progress.complete("few_labels", few_label_experiment(
                config, train, validation, test, labels, cache_dir
            ))
            shutil.rmtree(cache_dir)
        few_labels = progress.result("few_labels")
        laps.lap("few_labels")
    return teacher, shipped, {
        "accuracies": {"teacher": result["accuracy"], **per_seed, "few_labels": few_labels},
        "trained": trained,
        "generated": _generated_record(extra, extra_counts["generated"], labels),
        "unlabelled": extra_counts["unlabelled"],
        "extra": extra,
    }


def _generated_record(extra, counts, labels):
    """The report's `generated_texts`: `new_texts`'s counts and the first
    five kept texts (`extra` holds the generated ones first) with the
    teacher's labels; None when no texts were generated."""
    if counts is None:
        return None
    first = min(5, counts["texts"])
    return {**counts, "examples": [
        {"text": text, "teacher_label": labels[label]}
        for text, label in zip(extra.texts[:first], extra.labels[:first].tolist())
    ] if first else []}


def _export_and_report(
    config, budget, staging, laps, train, validation, test, labels, teacher, shipped,
    results,
):
    """Steps 3 to 5 of `run`: trims and exports the student, exports the
    teacher, checks both, saves the student; returns the report dict."""
    seed = config.seeds[0]
    _say(3, f"Exporting the student ({config.quantization}) and the teacher (float32)")
    distilled = shipped
    if config.trim_vocabulary:
        shipped = shipped.trim_vocabulary(
            vocabulary_texts(train, validation, results["extra"])
        )
    _say(4, "Checking the TFLite files against Keras on the test texts")
    files = {
        "student": os.path.join(staging, f"student_{config.quantization}.tflite"),
        "teacher": os.path.join(staging, "teacher_none.tflite"),
    }
    checks = {
        name: kd_export.export_tflite(
            model.token_id_model,
            files[name],
            quantization=quantization,
            representative_data=train.sample(200, seed).texts,
            sequence_length=config.sequence_length,
            labels=labels,
            vocabulary=model.preprocessor.tokenizer,
            verification_data=(test.texts, test.labels),
            verify_options={"latency_runs": 0},
            # A killed run may have written the file: replace it.
            overwrite=True,
        ).verification
        for name, model, quantization in (
            ("student", shipped, config.quantization),
            ("teacher", teacher, "none"),
        )
    }
    latency = kd_export.compare_latency(files, test.texts, runs=config.latency_runs)
    laps.lap("export")

    _say(5, "Saving the student (the teacher was saved in step 1)")
    atomic_write(os.path.join(staging, "student.keras"), shipped.save, overwrite=True)
    report = build_report(
        config,
        labels,
        {"teacher": teacher, "distilled": distilled, "shipped": shipped},
        results["accuracies"],
        checks,
        latency,
        {
            name: types.SimpleNamespace(curve=run["curve"], budget=run["budget"])
            for name, run in results["trained"].items()
        },
        budget.chosen,
    )
    # On unbalanced classes an accuracy means little without this floor.
    counts = np.bincount(test.labels, minlength=len(labels))
    report["summary"]["accuracy of always answering the most common test class"] = float(
        counts.max() / counts.sum()
    )
    if results["generated"] is not None:
        report["generated_texts"] = results["generated"]
    if results["unlabelled"] is not None:
        report["unlabelled_texts"] = results["unlabelled"]
    report["seconds_by_step"] = laps.seconds
    return report
