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
import math
import os
import shutil
import time

import keras
import numpy as np

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
        sequence_length: tokens per example (48 covers 95% of the movie
            reviews).
        batch_size: training batch size.
        teacher_epochs: fine-tuning epochs of the teacher.
        epochs: training epochs of the students.
        student_layers: transformer layers of the student (2 of MiniLM's
            6 makes single-example latency over 3x lower at the same length;
            3 stays under 2.5x).
        alpha, temperature: distillation settings of `Distiller.compile`.
        teacher_learning_rate, learning_rate: peak AdamW learning rates of
            the teacher and the students (linear warm-up over the first
            `warmup` fraction of the steps, then cosine decay to 0). The
            students' is higher: a 2-layer student copied from a 6-layer
            teacher has far to move in one epoch (measured on the demo's
            seed: 0.800 test accuracy at 1e-4, 0.822 at 3e-4, 0.830 at 6e-4).
        warmup: fraction of the training steps spent warming up.
        quantization: quantization of the student's `.tflite`.
        trim_vocabulary: keep only the tokens of the training texts (and
            the single-character pieces) in the student's vocabulary before
            export.
        latency_runs: timed single-example runs of each `.tflite`, teacher
            and student side by side (`keras_kd.export.compare_latency`).
        max_train, max_test: cap the number of examples with a seeded random
            sample (None: all).
        seeds: random seeds of the students (initialisation of new weights,
            dropout, shuffling); each seed trains the distilled student and
            its baseline once, and the report gives mean and spread. The
            teacher and the shipped student use the first.
        few_labels: if set, also run the few-labels setting: a teacher
            fine-tuned on this many labelled training texts, a student
            distilled from it on all training texts with the other labels
            hidden, against the same student trained on the labelled texts
            alone for the same number of steps.
        few_label_teacher_epochs: epochs of that teacher on its few labels.
        output_dir, run_name: the run writes to `output_dir/run_name/`.
        overwrite: replace an existing run folder.
        jit_compile: compile training and inference with XLA (faster for
            real models on CPU too; tiny test models compile longer than
            they run).
        verbose: Keras verbosity (1: progress bars).
    """

    data: object = "movie_reviews"
    text_column: str = "text"
    label_column: str = "label"
    teacher: str = "minilm_l6"
    freeze: object = "none"
    sequence_length: int = 48
    batch_size: int = 32
    teacher_epochs: int = 1
    epochs: int = 1
    student_layers: int = 2
    alpha: float = 0.5
    temperature: float = 2.0
    teacher_learning_rate: float = 1e-4
    learning_rate: float = 6e-4
    warmup: float = 0.1
    quantization: str = "dynamic_int8"
    trim_vocabulary: bool = True
    latency_runs: int = 200
    max_train: int = None
    max_test: int = None
    seeds: tuple = (0,)
    few_labels: int = None
    few_label_teacher_epochs: int = 4
    output_dir: str = "saved_models"
    run_name: str = "demo"
    overwrite: bool = False
    jit_compile: bool = True
    verbose: int = 1

    def __post_init__(self):
        seeds = tuple(self.seeds) if isinstance(self.seeds, (list, tuple)) else ()
        if not seeds or not all(
            isinstance(s, int) and not isinstance(s, bool) for s in seeds
        ):
            raise ValueError(
                "`seeds` must be a non-empty tuple of ints, e.g. (0, 1, 2). "
                f"Received: seeds={self.seeds!r}"
            )
        self.seeds = seeds
        if self.few_labels is not None and (
            isinstance(self.few_labels, bool)
            or not isinstance(self.few_labels, int)
            or self.few_labels < 1
        ):
            raise ValueError(
                "`few_labels` must be None or a positive int (labelled "
                f"training texts), e.g. 1000. Received: few_labels={self.few_labels!r}"
            )
        if not 0 <= self.warmup < 1:
            raise ValueError(
                f"`warmup` must be in [0, 1). Received: warmup={self.warmup!r}"
            )

    @classmethod
    def quick(cls, **overrides):
        """A small run (512 training texts, length 32, one epoch each,
        without XLA: at this size compiling costs more than it saves)."""
        settings = dict(
            sequence_length=32,
            jit_compile=False,
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


def _subset(split, size, seed):
    return None if split is None else split.sample(size, seed)


def _optimizer(learning_rate, steps, warmup):
    """AdamW with linear warm-up then cosine decay to 0 over `steps`."""
    warmup_steps = int(steps * warmup)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0 if warmup_steps else learning_rate,
        decay_steps=max(steps - warmup_steps, 1),
        warmup_target=learning_rate if warmup_steps else None,
        warmup_steps=warmup_steps,
    )
    return keras.optimizers.AdamW(schedule, weight_decay=0.01)


def _steps(num_examples, batch_size, epochs):
    return epochs * math.ceil(num_examples / batch_size)


def _compile_classifier(model, jit_compile, optimizer="rmsprop"):
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )


class StepCurve(keras.callbacks.Callback):
    """Records a learning curve by training step.

    Every `every` steps it stores the running training accuracy (Keras's mean
    over the epoch so far), and at each epoch's end the validation accuracy,
    both against the global step: with one or two epochs, a per-epoch curve
    would be one or two points.

    Args:
        every: steps between two training points.

    Attributes:
        curve: dict of lists `steps`, `accuracy`, `val_steps`, `val_accuracy`.

    Example:

    ```python
    curve = keras_kd.pipeline.StepCurve(every=10)
    model.fit(train_ds, validation_data=val_ds, callbacks=[curve])
    curve.curve["steps"], curve.curve["accuracy"]
    ```
    """

    def __init__(self, every=10):
        super().__init__()
        self.every = every
        self.step = 0
        self.curve = {"steps": [], "accuracy": [], "val_steps": [], "val_accuracy": []}

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.step % self.every == 0 and "accuracy" in (logs or {}):
            self.curve["steps"].append(self.step)
            self.curve["accuracy"].append(float(logs["accuracy"]))

    def on_epoch_end(self, epoch, logs=None):
        if "val_accuracy" in (logs or {}):
            self.curve["val_steps"].append(self.step)
            self.curve["val_accuracy"].append(float(logs["val_accuracy"]))


def _fit(model, dataset, config, epochs, validation_data=None, **kwargs):
    """`model.fit` with a `StepCurve`; the History carries its `curve`."""
    curve = StepCurve(every=max(1, _steps_per_epoch(dataset) // 25))
    history = model.fit(
        dataset,
        validation_data=validation_data,
        epochs=epochs,
        verbose=config.verbose,
        callbacks=[curve],
        **kwargs,
    )
    history.curve = curve.curve
    return history


def _steps_per_epoch(dataset):
    cardinality = int(dataset.cardinality())
    # Infinite or unknown (repeated) datasets: a point every 10 steps.
    return cardinality if cardinality > 0 else 250


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


def check_few_labels(config, num_train):
    """Refuses a `few_labels` that leaves no unlabelled training texts."""
    if config.few_labels is not None and config.few_labels >= num_train:
        raise ValueError(
            f"few_labels={config.few_labels} leaves no unlabelled texts: the "
            f"run trains on {num_train} texts. Pass fewer."
        )


def finetune_teacher(config, train, validation, num_classes):
    """Step 1: builds the teacher from `config.teacher` and fine-tunes it.

    Returns:
        `(teacher, history)`: a `keras_kd.transfer.FinetuneModel` and the
        Keras `History` of its token-id model.
    """
    keras.utils.set_random_seed(config.seeds[0])
    teacher = transfer.build_finetune_model(
        config.teacher,
        num_classes=num_classes,
        sequence_length=config.sequence_length,
        freeze=config.freeze,
    )
    train_ds = train.tokenize(
        teacher.preprocessor, config.batch_size, shuffle=True, seed=config.seeds[0]
    )
    validation_ds = _validation_dataset(config, teacher, validation)
    steps = _steps(len(train), config.batch_size, config.teacher_epochs)
    _compile_classifier(
        teacher.token_id_model,
        config.jit_compile,
        _optimizer(config.teacher_learning_rate, steps, config.warmup),
    )
    history = _fit(
        teacher.token_id_model, train_ds, config, config.teacher_epochs, validation_ds
    )
    return teacher, history


def _validation_dataset(config, model, validation):
    if validation is None:
        return None
    return validation.tokenize(model.preprocessor, config.batch_size)


def _distill(config, student, teacher, cache, alpha, seed, validation_ds, metrics=("accuracy",)):
    """Trains `student` from `cache` with `alpha` for `config.epochs`."""
    keras.utils.set_random_seed(seed)
    distiller = Distiller(student=student.token_id_model, teacher=teacher.token_id_model)
    distiller.compile(
        optimizer=_optimizer(
            config.learning_rate,
            _steps(len(cache), config.batch_size, config.epochs),
            config.warmup,
        ),
        metrics=list(metrics),
        alpha=alpha,
        temperature=config.temperature,
        jit_compile=config.jit_compile,
    )
    return _fit(
        distiller,
        cache.dataset(config.batch_size, shuffle=True, seed=seed),
        config,
        config.epochs,
        validation_ds,
    )


def _cache(config, teacher, train, cache_dir):
    """The teacher's logits on `train` (reused when already in `cache_dir`)."""
    return TeacherCache.build(
        teacher.token_id_model,
        train,
        cache_dir,
        preprocessor=teacher.preprocessor,
        jit_compile=config.jit_compile,
        verbose=config.verbose,
    )


def distill_students(
    config, teacher, train, validation, cache_dir, baseline=True, seed=None
):
    """Steps 2 and 3: builds students from `teacher` and trains them.

    The teacher's logits on `train` are cached in `cache_dir` (or reused
    from it, when built from the same teacher and texts); the distilled
    student and (with `baseline`) the same student trained without
    distillation (`alpha=0`) then see the same batches in the same order.

    Args:
        seed: the students' seed; default: `config.seeds[0]`.

    Returns:
        `(students, histories, cache)`: dicts keyed `"distilled"` (and
        `"baseline"`) of `FinetuneModel`s and Keras `History`s, and the
        `TeacherCache`.
    """
    seed = config.seeds[0] if seed is None else seed
    runs = {"distilled": config.alpha}
    if baseline:
        runs["baseline"] = 0.0
    keras.utils.set_random_seed(seed)
    students = {
        name: transfer.student_like(teacher, num_layers=config.student_layers)
        for name in runs
    }
    cache = _cache(config, teacher, train, cache_dir)
    validation_ds = _validation_dataset(config, teacher, validation)
    histories = {
        name: _distill(config, students[name], teacher, cache, alpha, seed, validation_ds)
        for name, alpha in runs.items()
    }
    return students, histories, cache


def few_label_experiment(config, train, validation, test, num_classes, cache_dir):
    """Distillation with few labels and plenty of unlabelled text.

    A teacher is fine-tuned on `config.few_labels` labelled texts of `train`
    (a seeded random sample). For each seed, one student is distilled from it
    on all of `train` with `alpha=1`, so the other labels are never read,
    and the same student is trained on the labelled texts alone, for the
    same number of optimizer steps.

    Returns:
        A dict: the teacher's test accuracy, and per seed the test
        accuracies of both students.
    """
    labelled = train.sample(config.few_labels, config.seeds[0])
    few_config = dataclasses.replace(
        config, teacher_epochs=config.few_label_teacher_epochs
    )
    teacher, _ = finetune_teacher(few_config, labelled, validation, num_classes)
    cache = _cache(config, teacher, train, cache_dir)
    steps = _steps(len(train), config.batch_size, config.epochs)
    result = {
        "labelled_texts": len(labelled),
        "unlabelled_texts": len(train) - len(labelled),
        "teacher_epochs": config.few_label_teacher_epochs,
        "student_steps": steps,
        "teacher": _accuracy(config, teacher, test),
        "distilled": [],
        "labels_only": [],
    }
    for seed in config.seeds:
        keras.utils.set_random_seed(seed)
        distilled = transfer.student_like(teacher, num_layers=config.student_layers)
        labels_only = transfer.student_like(teacher, num_layers=config.student_layers)
        _distill(config, distilled, teacher, cache, 1.0, seed, None, metrics=())
        keras.utils.set_random_seed(seed)
        _compile_classifier(
            labels_only.token_id_model,
            config.jit_compile,
            _optimizer(config.learning_rate, steps, config.warmup),
        )
        _fit(
            labels_only.token_id_model,
            labelled.tokenize(
                teacher.preprocessor, config.batch_size, shuffle=True, seed=seed
            ).repeat(),
            config,
            1,
            steps_per_epoch=steps,
        )
        result["distilled"].append(_accuracy(config, distilled, test))
        result["labels_only"].append(
            _accuracy(config, labels_only, test)
        )
    return result


def _accuracy(config, model, split):
    return evaluate_accuracy(model, split, config.batch_size, config.jit_compile)


def evaluate_accuracy(model, split, batch_size=32, jit_compile=True):
    """Accuracy of a `FinetuneModel` on a `keras_kd.datasets.TextSplit`."""
    net = model.token_id_model
    _compile_classifier(net, jit_compile)
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
    data = kd_datasets.load(
        config.data,
        text_column=config.text_column,
        label_column=config.label_column,
    )
    seed = config.seeds[0]
    train = data.train.sample(config.max_train, seed)
    validation = _subset(data.validation, config.max_test, seed)
    test = _subset(data.test or data.validation, config.max_test, seed)
    labels = list(data.class_names)
    check_few_labels(config, len(train))

    staging = config.run_dir + ".partial"
    if os.path.exists(staging):
        shutil.rmtree(staging)
    os.makedirs(staging)
    seconds = {}
    clock = time.perf_counter()

    def lap(name):
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = now - clock
        clock = now

    _say(1, f"Fine-tuning the teacher {config.teacher!r} on {len(train)} texts")
    teacher, teacher_history = finetune_teacher(
        config, train, validation, len(labels)
    )
    accuracy = {"teacher": _accuracy(config, teacher, test)}
    lap("teacher")
    _say(
        2,
        f"Distilling {config.student_layers}-layer students with and without "
        f"KD, seed(s) {list(config.seeds)}",
    )
    cache_dir = os.path.join(staging, "teacher_cache")
    per_seed = {"distilled": [], "baseline": []}
    for seed in config.seeds:
        students, histories, _ = distill_students(
            config, teacher, train, validation, cache_dir, seed=seed
        )
        for name, student in students.items():
            per_seed[name].append(_accuracy(config, student, test))
        if seed == config.seeds[0]:
            shipped, shipped_histories = students["distilled"], histories
    shutil.rmtree(cache_dir)
    lap("students")

    few_labels = None
    if config.few_labels is not None:
        _say(2, f"Few labels: a teacher on {config.few_labels} labelled texts")
        few_labels = few_label_experiment(
            config, train, validation, test, len(labels), cache_dir
        )
        shutil.rmtree(cache_dir)
        lap("few_labels")

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
    lap("export")

    _say(5, "Saving the student and the teacher")
    shipped.save(os.path.join(staging, "student.keras"))
    teacher.save(os.path.join(staging, "teacher.keras"))
    report = _report(
        config,
        labels,
        {"teacher": teacher, "distilled": distilled, "shipped": shipped},
        {"teacher": accuracy["teacher"], **per_seed, "few_labels": few_labels},
        checks,
        latency,
        {"teacher": teacher_history, **shipped_histories},
    )
    report["seconds"] = time.perf_counter() - started
    report["seconds_by_step"] = seconds
    _say(6, f"Writing the report to {config.run_dir}")
    if os.path.exists(config.run_dir):
        shutil.rmtree(config.run_dir)
    os.replace(staging, config.run_dir)
    kd_report.write_report(report, config.run_dir)
    return report


def _mean_std(values):
    """Mean and standard deviation; no spread from a single value."""
    return float(np.mean(values)), float(np.std(values)) if len(values) > 1 else None


def _report(config, labels, models, accuracy, checks, latency, histories):
    """The report dict: `models` are the `FinetuneModel`s keyed `teacher`,
    `distilled` (first seed) and `shipped` (its exported form); `accuracy`
    holds the teacher's test accuracy, the students' per seed (`distilled`,
    `baseline`) and the few-labels results (or None)."""
    teacher, distilled, shipped = (
        models["teacher"], models["distilled"], models["shipped"]
    )
    per_seed = {name: accuracy[name] for name in ("distilled", "baseline")}
    few_labels = accuracy["few_labels"]
    mb = 1024 * 1024
    student_check, teacher_check = checks["student"], checks["teacher"]
    student_params = int(distilled.token_id_model.count_params())
    (kd_mean, kd_std), (base_mean, base_std) = (
        _mean_std(per_seed["distilled"]),
        _mean_std(per_seed["baseline"]),
    )
    gains = 100 * (np.array(per_seed["distilled"]) - np.array(per_seed["baseline"]))
    models = {
        "teacher (Keras)": {
            "test_accuracy": accuracy["teacher"],
            "parameters": int(teacher.token_id_model.count_params()),
        },
        "student without KD (Keras)": {
            "test_accuracy": base_mean,
            "test_accuracy_std": base_std,
            "parameters": student_params,
        },
        "student with KD (Keras)": {
            "test_accuracy": kd_mean,
            "test_accuracy_std": kd_std,
            "parameters": student_params,
        },
        "teacher (TFLite float32)": {
            "test_accuracy": teacher_check.litert_accuracy,
            "size_mb": teacher_check.size_bytes / mb,
            "latency_ms": latency["teacher"],
        },
        f"student (TFLite {config.quantization})": {
            "test_accuracy": student_check.litert_accuracy,
            "parameters": int(shipped.token_id_model.count_params()),
            "size_mb": student_check.size_bytes / mb,
            "latency_ms": latency["student"],
        },
    }
    seeds = len(config.seeds)
    over = f"mean of {seeds} seeds" if seeds > 1 else "1 seed"
    summary = {
        "accuracy retention (TFLite student / teacher)": (
            student_check.litert_accuracy / accuracy["teacher"]
        ),
        f"accuracy retention (Keras student with KD / teacher, {over})": (
            kd_mean / accuracy["teacher"]
        ),
        f"KD gain over the same student without KD (points, {over})": (
            float(np.mean(gains))
        ),
        "TFLite size compression (teacher / student)": (
            teacher_check.size_bytes / student_check.size_bytes
        ),
        "TFLite latency speed-up (teacher / student)": (
            latency["teacher"] / latency["student"]
        ),
        "TFLite student vs its Keras model (points)": (
            100 * (student_check.litert_accuracy - student_check.keras_accuracy)
        ),
    }
    if seeds > 1:
        summary[f"KD gain std over {seeds} seeds (points)"] = float(np.std(gains))
    if few_labels is not None:
        n = few_labels["labelled_texts"]
        few_gains = 100 * (
            np.array(few_labels["distilled"]) - np.array(few_labels["labels_only"])
        )
        for name, key in (
            (f"few labels: teacher on {n} labels (Keras)", "teacher"),
            (f"few labels: student on the {n} labels alone (Keras)", "labels_only"),
            (
                f"few labels: student distilled on all {n + few_labels['unlabelled_texts']} texts (Keras)",
                "distilled",
            ),
        ):
            values = np.atleast_1d(few_labels[key])
            models[name] = {
                "test_accuracy": float(np.mean(values)),
                "test_accuracy_std": _mean_std(values)[1],
                "parameters": student_params if key != "teacher" else models["teacher (Keras)"]["parameters"],
            }
        summary[f"few labels: KD gain (points, {over})"] = float(np.mean(few_gains))
        if seeds > 1:
            summary[f"few labels: KD gain std over {seeds} seeds (points)"] = float(
                np.std(few_gains)
            )
    curves = {
        {"teacher": "teacher", "distilled": "student with KD",
         "baseline": "student without KD"}[name]: history.curve
        for name, history in histories.items()
    }
    return {
        "title": f"keras-kd: {config.teacher} -> {config.student_layers}-layer student",
        "models": models,
        "summary": summary,
        "seeds": {"seeds": list(config.seeds), **per_seed},
        "few_labels": few_labels,
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
            f"{config.sequence_length}, tokenized input; teacher and student "
            f"take turns in blocks ({config.latency_runs} runs each).",
            f"Students: mean ± std over seeds {list(config.seeds)} (the "
            "teacher and the shipped student use the first); differences "
            "of about one point are inside the noise of a ~1,000-sentence "
            "test set.",
        ],
    }
