"""A student chosen to fit a file-size or latency budget: `student_shapes`
(the grid of depths and widths), `measure_students` (each shape exported and timed
side by side) and `search_student` (measure, keep what fits, distill the
largest few briefly, pick by validation accuracy)."""

import dataclasses
import os
import tempfile

import keras

from keras_kd import export as kd_export
from keras_kd import transfer
from keras_kd.pipeline.steps import distill_student, validation_dataset, vocabulary_texts
from keras_kd.utils.units import megabytes
from keras_kd.utils.validation import check_int, check_number

# Depths and widths (fractions of the teacher's) the search measures; for
# MiniLM (hidden 384, 12 heads of 32) the widths are 128, 256 and 384.
NUM_LAYERS = (1, 2, 3)
WIDTH_FRACTIONS = (1 / 3, 2 / 3, 1)


def student_shapes(teacher_backbone, num_layers=None, width_fractions=None):
    """The candidate student shapes of a keras-hub encoder teacher.

    Depths above the teacher's are left out; each width is the fraction of
    the teacher's rounded to whole attention heads of the teacher's head
    size (at least one head).

    Args:
        teacher_backbone: a keras-hub encoder backbone (the BERT family).
        num_layers: the depths to try; default `NUM_LAYERS`.
        width_fractions: the widths to try, as fractions of the teacher's;
            default `WIDTH_FRACTIONS`.

    Returns:
        A list of `(num_layers, hidden_dim)`, shallow and narrow first.

    Example:

    >>> import keras_hub
    >>> teacher = keras_hub.models.BertBackbone(
    ...     vocabulary_size=10, num_layers=2, num_heads=12, hidden_dim=384,
    ...     intermediate_dim=1536, max_sequence_length=8)
    >>> student_shapes(teacher)
    [(1, 128), (1, 256), (1, 384), (2, 128), (2, 256), (2, 384)]
    """
    config = teacher_backbone.get_config()
    head_size = config["hidden_dim"] // config["num_heads"]
    widths = sorted({
        max(1, round(fraction * config["num_heads"])) * head_size
        for fraction in width_fractions or WIDTH_FRACTIONS
    })
    return [
        (depth, width)
        for depth in sorted(set(num_layers or NUM_LAYERS))
        if depth <= config["num_layers"]
        for width in widths
    ]


def _build(teacher, shape, seed):
    keras.utils.set_random_seed(seed)
    return transfer.student_like(teacher, **transfer.student_config(teacher.backbone, *shape))


def _unlike_weights(student, seed):
    """Adds a little noise to every weight of `student`, as training
    would: the TFLite converter stores identical constants once, and a new
    layer's zero biases and unit norm scales are alike, so an untrained
    student's file comes out smaller than the trained one's (by 15 kB for
    MiniLM's 1-layer, 128-wide student: 2.313 MB against 2.328)."""
    noise = keras.random.SeedGenerator(seed)
    for weight in student.token_id_model.weights:
        weight.assign(weight + keras.random.normal(
            weight.shape, stddev=1e-3, dtype=weight.dtype, seed=noise
        ))


def measure_students(
    teacher,
    shapes,
    texts,
    sequence_length,
    *,
    quantization="dynamic_int8",
    trim_vocabulary=True,
    latency_runs=50,
    seed=0,
):
    """File size and single-example latency of each student shape, as it
    would ship.

    Each shape is built from `teacher` (untrained, its weights made unlike
    one another as training makes them: size and speed do not depend on
    their values otherwise), its vocabulary trimmed to `texts` (with
    `trim_vocabulary`, as the pipeline ships it), exported to a `.tflite` of
    `quantization` at `sequence_length` tokens, and all files are timed
    side by side (`keras_kd.export.compare_latency`).

    Args:
        teacher: a `keras_kd.transfer.FinetuneModel`.
        shapes: `(num_layers, hidden_dim)` pairs (`student_shapes`).
        texts: the texts each vocabulary is trimmed to
            (`vocabulary_texts`); the first 200 calibrate the
            quantization and the first 50 are timed.
        sequence_length: tokens per example.
        quantization: the `.tflite` quantization.
        trim_vocabulary: trim each student's vocabulary to `texts`.
        latency_runs: timed runs of each file.
        seed: seed of the students' random weights.

    Returns:
        A list of dicts, one per shape in order: `num_layers`,
        `hidden_dim`, `parameters` (of the shipped model), `size_mb`
        (10^6 bytes) and `latency_ms` (median).
    """
    check_int("latency_runs", latency_runs, example=50)
    rows, files = [], {}
    with tempfile.TemporaryDirectory(prefix="keras_kd_search_") as folder:
        for shape in shapes:
            student = _build(teacher, shape, seed)
            if trim_vocabulary:
                student = student.trim_vocabulary(texts)
            _unlike_weights(student, seed)
            name = f"{shape[0]}x{shape[1]}"
            result = kd_export.export_tflite(
                student.token_id_model,
                os.path.join(folder, f"{name}.tflite"),
                quantization=quantization,
                representative_data=texts[:200],
                sequence_length=sequence_length,
                vocabulary=student.preprocessor.tokenizer,
                # Random weights: parity says nothing about the shape.
                verify=False,
            )
            files[name] = result.path
            rows.append({
                "num_layers": shape[0],
                "hidden_dim": shape[1],
                "parameters": student.token_id_model.count_params(),
                "size_mb": megabytes(result.size_bytes),
            })
        latency = kd_export.compare_latency(files, texts[:50], runs=latency_runs)
    for row, name in zip(rows, files):
        row["latency_ms"] = latency[name]
    return rows


@dataclasses.dataclass
class StudentSearch:
    """What `search_student` found.

    Attributes:
        num_layers, hidden_dim: the chosen shape.
        rows: every measured shape (`measure_students`), with `fits` and,
            for the shapes distilled briefly, `validation_accuracy`.
    """

    num_layers: int
    hidden_dim: int
    rows: list


def _describe(row):
    return (
        f"{row['num_layers']} layer(s) at hidden {row['hidden_dim']}: "
        f"{row['size_mb']:.2f} MB, {row['latency_ms']:.2f} ms"
    )


def _measured(config, teacher, shapes, texts):
    """`measure_students` of `shapes` with the run's settings
    (`config`'s sequence length, else the teacher's; quantization,
    vocabulary trimming, first seed)."""
    return measure_students(
        teacher, shapes, texts,
        config.sequence_length or teacher.preprocessor.sequence_length,
        quantization=config.quantization, trim_vocabulary=config.trim_vocabulary,
        seed=config.seeds[0],
    )


def _mark_fits(rows, max_size_mb, max_latency_ms):
    """Sets each measured row's `fits`; returns the rows that fit."""
    for row in rows:
        row["fits"] = (max_size_mb is None or row["size_mb"] <= max_size_mb) and (
            max_latency_ms is None or row["latency_ms"] <= max_latency_ms
        )
    return [row for row in rows if row["fits"]]


def _fitting(rows, max_size_mb, max_latency_ms):
    """`_mark_fits`, raising ValueError, naming the smallest and fastest
    measured, when no row fits."""
    fitting = _mark_fits(rows, max_size_mb, max_latency_ms)
    if not fitting:
        smallest = min(rows, key=lambda row: row["size_mb"])
        fastest = min(rows, key=lambda row: row["latency_ms"])
        raise ValueError(
            f"No student shape fits max_size_mb={max_size_mb}, "
            f"max_latency_ms={max_latency_ms}: the smallest measured is "
            f"{_describe(smallest)}; the fastest is {_describe(fastest)}. "
            "Raise the budget."
        )
    return fitting


def check_budget_reachable(
    config, teacher, train, validation, *, max_size_mb=None, max_latency_ms=None, shapes=None,
):
    """Refuses a budget no student shape can meet, before the teacher's
    logits are cached or any text is generated.

    The narrowest, shallowest shape is measured as `search_student`
    measures it, with the vocabulary of `train` and `validation`; if it
    misses the budget, every shape is measured, and the error comes only
    when none fits. Texts a run adds later only add tokens, so a shape
    that misses here misses in the search too.

    Args:
        config, teacher, train, validation, max_size_mb, max_latency_ms,
            shapes: as `search_student`'s.

    Returns:
        The rows measured (`measure_students`), with `fits`.

    Raises:
        ValueError: when no shape fits, naming the smallest and fastest
            measured.

    Example:

    >>> import numpy as np
    >>> from keras_kd.datasets import TextSplit
    >>> from keras_kd.pipeline import PipelineConfig
    >>> from keras_kd.utils.testing import tiny_bert_text_classifier
    >>> teacher = tiny_bert_text_classifier()
    >>> texts = TextSplit(["a fine film", "a dull plot"], np.array([1, 0]))
    >>> rows = check_budget_reachable(
    ...     PipelineConfig(), teacher, texts, texts, max_size_mb=1, shapes=[(1, 8)])
    >>> [(row["num_layers"], row["hidden_dim"], row["fits"]) for row in rows]
    [(1, 8, True)]
    >>> check_budget_reachable(  # doctest: +ELLIPSIS
    ...     PipelineConfig(), teacher, texts, texts, max_size_mb=1e-6, shapes=[(1, 8)])
    Traceback (most recent call last):
    ...
    ValueError: No student shape fits max_size_mb=1e-06, max_latency_ms=None: the smallest measured is 1 layer(s) at hidden 8: ... MB, ... ms; ... Raise the budget.
    """
    check_limits(max_size_mb, max_latency_ms)
    shapes = list(shapes or student_shapes(teacher.backbone))

    texts = vocabulary_texts(train, validation)
    # Embeddings make most of a small student's bytes: the narrowest first.
    narrowest = min(shapes, key=lambda shape: (shape[1], shape[0]))
    rows = _measured(config, teacher, [narrowest], texts)
    if _mark_fits(rows, max_size_mb, max_latency_ms):
        return rows
    rows = _measured(config, teacher, shapes, texts)
    _fitting(rows, max_size_mb, max_latency_ms)
    return rows


def check_limits(max_size_mb=None, max_latency_ms=None):
    """Refuses a budget that is not a finite positive number (None: no
    limit), before any work.

    Example:

    >>> check_limits(max_size_mb=4)
    >>> check_limits(max_latency_ms=float("inf"))
    Traceback (most recent call last):
    ...
    ValueError: `max_latency_ms` must be a finite number > 0, e.g. 4. Received: max_latency_ms=inf
    """
    for name, value in (("max_size_mb", max_size_mb), ("max_latency_ms", max_latency_ms)):
        if value is not None:
            check_number(name, value, 0, None, low_open=True, example=4)


def search_student(
    config,
    teacher,
    train,
    validation,
    cache,
    *,
    max_size_mb=None,
    max_latency_ms=None,
    candidates=3,
    shapes=None,
    extra=None,
):
    """Chooses the student shape that fits a budget and learns best.

    Every shape of `shapes` is measured as it would ship
    (`measure_students`); those within `max_size_mb` and `max_latency_ms`
    are kept, the `candidates` largest of them (most parameters) are each
    distilled for one epoch from `cache` with `config`'s settings, and the
    one of best accuracy on `validation` wins (a tie goes to the larger).
    The caller then trains the winner fully.

    Args:
        config: a `keras_kd.pipeline.PipelineConfig` (batch size, learning
            rate, alpha, temperature, sequence length, quantization,
            vocabulary trimming, seed).
        teacher: the fine-tuned teacher, a `FinetuneModel`.
        train: the training `TextSplit` (sizes, calibration, timing).
        validation: the `TextSplit` that ranks the candidates.
        cache: the teacher's `TeacherCache` on `train`.
        max_size_mb: the largest `.tflite` accepted, in MB (10^6 bytes).
        max_latency_ms: the slowest single-example latency accepted.
        candidates: how many of the shapes that fit are distilled briefly.
        shapes: `(num_layers, hidden_dim)` pairs; default `student_shapes`
            of the teacher.
        extra: the `TextSplit` of further texts the chosen student will
            train on (`extra_texts`), or None: the sizes are measured with
            the vocabulary the student ships with (`vocabulary_texts`).

    Returns:
        A `StudentSearch`.

    Raises:
        ValueError: before any work when no limit is given or one is not
            positive, or when the teacher's students cannot be exported
            (`keras_kd.export.check_tflite_text_classifier`); after
            measuring when no shape fits, naming the smallest and fastest
            measured.
    """
    check_limits(max_size_mb, max_latency_ms)
    kd_export.check_tflite_text_classifier(teacher)
    if max_size_mb is None and max_latency_ms is None:
        raise ValueError(
            "search_student needs a budget: pass max_size_mb or "
            "max_latency_ms (or both)."
        )
    check_int("candidates", candidates, example=3)
    if validation is None:
        raise ValueError(
            "search_student ranks the candidates on a validation split; "
            "`validation` is None. Pass one (or data with one)."
        )
    shapes = list(shapes or student_shapes(teacher.backbone))
    seed = config.seeds[0]
    rows = _measured(config, teacher, shapes, vocabulary_texts(train, validation, extra))
    fitting = _fitting(rows, max_size_mb, max_latency_ms)
    fitting.sort(key=lambda row: row["parameters"], reverse=True)
    brief = dataclasses.replace(config, epochs=1)
    validation_ds = validation_dataset(config, teacher, validation)
    for row in fitting[:candidates]:
        student = _build(teacher, (row["num_layers"], row["hidden_dim"]), seed)
        history = distill_student(brief, student, teacher, cache, config.alpha, seed, validation_ds)
        # The training scored the kept epoch on `validation` already.
        row["validation_accuracy"] = history.history["val_accuracy"][
            history.budget["best_epoch"] - 1
        ]
    best = max(fitting[:candidates], key=lambda row: row["validation_accuracy"])
    return StudentSearch(best["num_layers"], best["hidden_dim"], rows)
