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

import dataclasses
import os
import shutil
import time

import keras

from keras_kd import datasets as kd_datasets
from keras_kd import export as kd_export
from keras_kd import report as kd_report
from keras_kd import transfer
from keras_kd.distiller import Distiller
from keras_kd.teacher_cache import TeacherCache


@dataclasses.dataclass
class PipelineConfig:
    """Settings of a pipeline run; the defaults are the embedded demo.

    Attributes:
        data: any source `keras_kd.datasets.load` accepts.
        text_column, label_column: columns of a file source.
        teacher: any preset `keras_kd.transfer.build_finetune_model` accepts.
        freeze: the teacher's freeze spec while fine-tuning.
        sequence_length: tokens per example.
        batch_size: training batch size.
        teacher_epochs: fine-tuning epochs of the teacher.
        epochs: training epochs of the students.
        student_layers: transformer layers of the student.
        alpha, temperature: distillation settings of `Distiller.compile`.
        teacher_learning_rate, learning_rate: Adam learning rates.
        quantization: quantization of the student's `.tflite`.
        trim_vocabulary: keep only the tokens of the training texts in the
            student's vocabulary before export.
        latency_runs: runs of each single-example latency measurement.
        max_train, max_test: cap the number of examples (None: all).
        seed: random seed of initialisation and shuffling.
        output_dir, run_name: the run writes to `output_dir/run_name/`.
        overwrite: replace an existing run folder.
        verbose: Keras verbosity (1: progress bars).
    """

    data: object = "movie_reviews"
    text_column: str = "text"
    label_column: str = "label"
    teacher: str = "minilm_l6"
    freeze: object = "none"
    sequence_length: int = 64
    batch_size: int = 32
    teacher_epochs: int = 2
    epochs: int = 3
    student_layers: int = 3
    alpha: float = 0.5
    temperature: float = 2.0
    teacher_learning_rate: float = 5e-5
    learning_rate: float = 1e-4
    quantization: str = "dynamic_int8"
    trim_vocabulary: bool = True
    latency_runs: int = 100
    max_train: int = None
    max_test: int = None
    seed: int = 0
    output_dir: str = "saved_models"
    run_name: str = "demo"
    overwrite: bool = False
    verbose: int = 1

    @classmethod
    def quick(cls, **overrides):
        """A small run (512 training texts, length 32, one epoch each)."""
        settings = dict(
            sequence_length=32,
            teacher_epochs=1,
            epochs=1,
            max_train=512,
            max_test=256,
            latency_runs=20,
            run_name="demo_quick",
        )
        settings.update(overrides)
        return cls(**settings)

    @property
    def run_dir(self):
        return os.path.join(self.output_dir, self.run_name)


def _say(step, text):
    print(f"[{step}/6] {text}", flush=True)


def _subset(split, size):
    if split is None or size is None or len(split) <= size:
        return split
    return kd_datasets.TextSplit(split.texts[:size], split.labels[:size])


def _compile_classifier(model, learning_rate):
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=True,
    )


def _history(history, *keys):
    return {key: [float(v) for v in history.history[key]] for key in keys if key in history.history}


def check_run_dir(config):
    """Refuses to run over an existing run folder unless `overwrite` is set."""
    if os.path.exists(config.run_dir) and not config.overwrite:
        raise FileExistsError(
            f"The output folder {config.run_dir!r} exists. Pass "
            "overwrite=True (--overwrite) to replace it, or another "
            "run_name (--run-name)."
        )
    parent = os.path.dirname(os.path.abspath(config.run_dir))
    if not os.path.isdir(parent):
        raise FileNotFoundError(
            f"The folder {parent!r} for the run does not exist; create it or "
            "choose another output_dir (--output-dir)."
        )


def finetune_teacher(config, train, validation, num_classes):
    """Step 1: builds the teacher from `config.teacher` and fine-tunes it.

    Returns:
        `(teacher, history)`: a `keras_kd.transfer.FinetuneModel` and the
        Keras `History` of its token-id model.
    """
    teacher = transfer.build_finetune_model(
        config.teacher,
        num_classes=num_classes,
        sequence_length=config.sequence_length,
        freeze=config.freeze,
    )
    train_ds = train.tokenize(
        teacher.preprocessor, config.batch_size, shuffle=True, seed=config.seed
    )
    validation_ds = _validation_dataset(config, teacher, validation)
    _compile_classifier(teacher.token_id_model, config.teacher_learning_rate)
    history = teacher.token_id_model.fit(
        train_ds,
        validation_data=validation_ds,
        epochs=config.teacher_epochs,
        verbose=config.verbose,
    )
    return teacher, history


def _validation_dataset(config, model, validation):
    if validation is None:
        return None
    return validation.tokenize(model.preprocessor, config.batch_size)


def distill_students(config, teacher, train, validation, cache_dir, baseline=True):
    """Steps 2 and 3: builds students from `teacher` and trains them.

    The teacher's logits on `train` are cached once in `cache_dir`; the
    distilled student and (with `baseline`) the same student trained without
    distillation (`alpha=0`) then see the same batches in the same order.

    Returns:
        `(students, histories, cache)`: dicts keyed `"distilled"` (and
        `"baseline"`) of `FinetuneModel`s and Keras `History`s, and the
        `TeacherCache`.
    """
    runs = {"distilled": config.alpha}
    if baseline:
        runs["baseline"] = 0.0
    students = {
        name: transfer.student_like(teacher, num_layers=config.student_layers)
        for name in runs
    }
    teacher_net = teacher.token_id_model
    cache = TeacherCache.build(
        teacher_net,
        train,
        cache_dir,
        preprocessor=teacher.preprocessor,
        verbose=config.verbose,
    )
    validation_ds = _validation_dataset(config, teacher, validation)
    histories = {}
    for name, alpha in runs.items():
        keras.utils.set_random_seed(config.seed)
        distiller = Distiller(
            student=students[name].token_id_model, teacher=teacher_net
        )
        distiller.compile(
            optimizer=keras.optimizers.Adam(config.learning_rate),
            metrics=["accuracy"],
            alpha=alpha,
            temperature=config.temperature,
        )
        histories[name] = distiller.fit(
            cache.dataset(config.batch_size, shuffle=True, seed=config.seed),
            validation_data=validation_ds,
            epochs=config.epochs,
            verbose=config.verbose,
        )
    return students, histories, cache


def evaluate_accuracy(model, split, batch_size=32):
    """Accuracy of a `FinetuneModel` on a `keras_kd.datasets.TextSplit`."""
    net = model.token_id_model
    net.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=True,
    )
    dataset = split.tokenize(model.preprocessor, batch_size)
    return float(net.evaluate(dataset, return_dict=True, verbose=0)["accuracy"])


def run(config=None):
    """Runs the whole pipeline and returns the report dict.

    Args:
        config: a `PipelineConfig`; defaults to the embedded demo.

    Returns:
        The report dict, also written to `report.json` in the run folder.

    Example:

    ```python
    report = keras_kd.pipeline.run(keras_kd.pipeline.PipelineConfig.quick())
    report["summary"]["accuracy retention (TFLite student / teacher)"]
    ```
    """
    config = config or PipelineConfig()
    check_run_dir(config)
    started = time.perf_counter()
    keras.utils.set_random_seed(config.seed)
    data = kd_datasets.load(
        config.data,
        text_column=config.text_column,
        label_column=config.label_column,
    )
    train = _subset(data.train, config.max_train)
    validation = _subset(data.validation, config.max_test)
    test = _subset(data.test or data.validation, config.max_test)
    labels = list(data.class_names)

    staging = config.run_dir + ".partial"
    if os.path.exists(staging):
        shutil.rmtree(staging)
    os.makedirs(staging)

    _say(1, f"Fine-tuning the teacher {config.teacher!r} on {len(train)} texts")
    teacher, teacher_history = finetune_teacher(
        config, train, validation, len(labels)
    )
    _say(2, f"Distilling {config.student_layers}-layer students (with and without KD)")
    students, histories, cache = distill_students(
        config, teacher, train, validation, os.path.join(staging, "teacher_cache")
    )
    accuracy = {"teacher": evaluate_accuracy(teacher, test, config.batch_size)}
    for name, student in students.items():
        accuracy[name] = evaluate_accuracy(student, test, config.batch_size)

    _say(3, f"Exporting the student ({config.quantization}) and the teacher (float32)")
    shipped = students["distilled"]
    if config.trim_vocabulary:
        shipped = shipped.trim_vocabulary(
            train.texts + (validation.texts if validation else [])
        )
    test_pairs = (test.texts, test.labels)
    exports = {}
    for name, model, quantization in (
        ("student", shipped, config.quantization),
        ("teacher", teacher, "none"),
    ):
        exports[name] = (
            kd_export.export_tflite(
                model.token_id_model,
                os.path.join(staging, f"{name}_{quantization}.tflite"),
                quantization=quantization,
                representative_data=train.texts[:200],
                sequence_length=config.sequence_length,
                labels=labels,
                vocabulary=model.preprocessor.tokenizer.get_vocabulary(),
                verification_data=(test.texts[:64], test.labels[:64]),
            ),
            model,
        )

    _say(4, "Checking the TFLite files against Keras on the test texts")
    checks = {
        name: kd_export.verify_tflite(
            result.path,
            model.token_id_model,
            test_pairs,
            latency_runs=config.latency_runs,
        )
        for name, (result, model) in exports.items()
    }

    _say(5, "Saving the student")
    shipped.save(os.path.join(staging, "student.keras"))
    shutil.rmtree(os.path.join(staging, "teacher_cache"))
    report = _report(
        config,
        labels,
        teacher,
        students,
        shipped,
        accuracy,
        checks,
        {"teacher": teacher_history, **histories},
    )
    report["seconds"] = time.perf_counter() - started
    _say(6, f"Writing the report to {config.run_dir}")
    if os.path.exists(config.run_dir):
        shutil.rmtree(config.run_dir)
    os.replace(staging, config.run_dir)
    kd_report.write_report(report, config.run_dir)
    return report


def _report(config, labels, teacher, students, shipped, accuracy, checks, histories):
    mb = 1024 * 1024
    student_check, teacher_check = checks["student"], checks["teacher"]
    models = {
        "teacher (Keras)": {
            "test_accuracy": accuracy["teacher"],
            "parameters": int(teacher.token_id_model.count_params()),
        },
        "student without KD (Keras)": {
            "test_accuracy": accuracy["baseline"],
            "parameters": int(students["baseline"].token_id_model.count_params()),
        },
        "student with KD (Keras)": {
            "test_accuracy": accuracy["distilled"],
            "parameters": int(students["distilled"].token_id_model.count_params()),
        },
        "teacher (TFLite float32)": {
            "test_accuracy": teacher_check.litert_accuracy,
            "size_mb": teacher_check.size_bytes / mb,
            "latency_ms": teacher_check.litert_latency_ms,
        },
        f"student (TFLite {config.quantization})": {
            "test_accuracy": student_check.litert_accuracy,
            "parameters": int(shipped.token_id_model.count_params()),
            "size_mb": student_check.size_bytes / mb,
            "latency_ms": student_check.litert_latency_ms,
        },
    }
    summary = {
        "accuracy retention (TFLite student / teacher)": (
            student_check.litert_accuracy / accuracy["teacher"]
        ),
        "accuracy retention (Keras student with KD / teacher)": (
            accuracy["distilled"] / accuracy["teacher"]
        ),
        "KD gain over the same student without KD (points)": (
            100 * (accuracy["distilled"] - accuracy["baseline"])
        ),
        "TFLite size compression (teacher / student)": (
            teacher_check.size_bytes / student_check.size_bytes
        ),
        "TFLite latency speed-up (teacher / student)": (
            teacher_check.litert_latency_ms / student_check.litert_latency_ms
        ),
        "TFLite student vs Keras student (points)": (
            100 * (student_check.litert_accuracy - accuracy["distilled"])
        ),
    }
    curves = {
        {"teacher": "teacher", "distilled": "student with KD",
         "baseline": "student without KD"}[name]: _history(
            history, "accuracy", "val_accuracy", "loss", "val_loss"
        )
        for name, history in histories.items()
    }
    return {
        "title": f"keras-kd: {config.teacher} -> {config.student_layers}-layer student",
        "models": models,
        "summary": summary,
        "curves": curves,
        "checks": {name: check.to_dict() for name, check in checks.items()},
        "settings": {
            **{k: v for k, v in dataclasses.asdict(config).items() if k != "data"},
            "data": str(config.data),
            "labels": labels,
            "latency_threads": student_check.num_threads,
        },
        "notes": [
            "Latency: median single-example LiteRT invoke on this CPU, "
            f"{student_check.num_threads} threads, sequence length "
            f"{config.sequence_length}, tokenized input.",
            f"Single seed ({config.seed}): differences of about one point "
            "are inside the noise of a ~1,000-sentence test set.",
        ],
    }
