"""The main job: from raw text to a verified on-device student, with a report.

`run(PipelineConfig(...))` (or `keras-kd demo` on the command line):

1. fine-tunes the teacher (a pretrained backbone plus a classification head);
2. builds a smaller student from it (every k-th transformer layer);
3. caches the teacher's logits once and distills the student from the cache,
   and trains the same student without distillation on the same batches
   (the baseline that shows what distillation bought);
4. trims the student's vocabulary to the training texts and exports it to
   TFLite (dynamic-range int8 by default), and the teacher to TFLite float32;
5. checks each `.tflite` against its Keras model on the test texts (parity,
   accuracy, single-example latency);
6. writes `report.json`, `report.md` and `report.png` in the run folder.
"""

import os
import shutil
import time

from keras_kd import datasets as kd_datasets
from keras_kd import export as kd_export
from keras_kd.pipeline.config import PipelineConfig
from keras_kd.pipeline.report import build_report
from keras_kd.pipeline.report_card import write_report
from keras_kd.pipeline.steps import (
    accuracy_of,
    check_config,
    check_few_labels,
    distill_students,
    few_label_experiment,
    finetune_teacher,
)
from keras_kd.utils.io import atomic_folder, atomic_write
from keras_kd.utils.timing import Laps


def _say(step, text):
    print(f"[{step}/6] {text}", flush=True)


def _subset(split, size, seed):
    return None if split is None else split.sample(size, seed)


def run(config=None):
    """Runs the whole pipeline and returns the report dict.

    The run's folder is built in a temporary sibling and swapped in at the
    end (`keras_kd.utils.io.atomic_folder`): an interrupted run leaves no
    half-written folder, and an existing one stays as it was until the new
    one is complete. For a first try, `run(PipelineConfig.quick())` takes
    about 3 minutes on 2 CPU cores.

    Args:
        config: a `PipelineConfig`; defaults to the embedded demo.

    Returns:
        The report dict (`keras_kd.pipeline.report.build_report`, plus
        `seconds` and `seconds_by_step`), also written to `report.json`,
        `report.md` and `report.png` in the run folder.

    Raises:
        FileExistsError: the run folder exists and `config.overwrite` is
            False (before any work; `check_config` lists the other checks
            made then).
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

    with atomic_folder(config.run_dir, overwrite=config.overwrite) as staging:
        report = _run_steps(config, str(staging), train, validation, test, labels)
        report["seconds"] = time.perf_counter() - started
        _say(6, f"Writing the report to {config.run_dir}")
        write_report(report, staging)
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


def _run_steps(config, staging, train, validation, test, labels):
    """Steps 1 to 5 of `run`, writing into the folder `staging`; returns the
    report dict with `seconds_by_step`."""
    seed = config.seeds[0]
    laps = Laps()

    _say(1, f"Fine-tuning the teacher {config.teacher!r} on {len(train)} texts")
    teacher, teacher_history = finetune_teacher(
        config, train, validation, len(labels)
    )
    accuracy = {"teacher": accuracy_of(config, teacher, test)}
    laps.lap("teacher")
    _say(
        2,
        f"Distilling {config.student_layers}-layer students with and without "
        f"KD, seed(s) {list(config.seeds)}",
    )
    cache_dir = os.path.join(staging, "teacher_cache")
    per_seed = {"distilled": [], "baseline": []}
    for student_seed in config.seeds:
        students, histories, _ = distill_students(
            config, teacher, train, validation, cache_dir, seed=student_seed
        )
        for name, student in students.items():
            per_seed[name].append(accuracy_of(config, student, test))
        if student_seed == seed:
            shipped, shipped_histories = students["distilled"], histories
    shutil.rmtree(cache_dir)
    laps.lap("students")

    few_labels = None
    if config.few_labels is not None:
        _say(2, f"Few labels: a teacher on {config.few_labels} labelled texts")
        few_labels = few_label_experiment(
            config, train, validation, test, len(labels), cache_dir
        )
        shutil.rmtree(cache_dir)
        laps.lap("few_labels")

    _say(3, f"Exporting the student ({config.quantization}) and the teacher (float32)")
    distilled = shipped
    if config.trim_vocabulary:
        shipped = shipped.trim_vocabulary(
            train.texts + (validation.texts if validation else [])
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
            vocabulary=model.preprocessor.tokenizer.get_vocabulary(),
            verification_data=(test.texts, test.labels),
            verify_options={"latency_runs": 0},
        ).verification
        for name, model, quantization in (
            ("student", shipped, config.quantization),
            ("teacher", teacher, "none"),
        )
    }
    latency = kd_export.compare_latency(files, test.texts, runs=config.latency_runs)
    laps.lap("export")

    _say(5, "Saving the student and the teacher")
    atomic_write(os.path.join(staging, "student.keras"), shipped.save)
    atomic_write(os.path.join(staging, "teacher.keras"), teacher.save)
    report = build_report(
        config,
        labels,
        {"teacher": teacher, "distilled": distilled, "shipped": shipped},
        {"teacher": accuracy["teacher"], **per_seed, "few_labels": few_labels},
        checks,
        latency,
        {"teacher": teacher_history, **shipped_histories},
    )
    report["seconds_by_step"] = laps.seconds
    return report
