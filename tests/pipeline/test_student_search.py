"""`keras_kd.pipeline.search_student`: student shapes measured as they would
ship, the budget's filter, the brief distillation that ranks the largest
that fit, and the refusals (on the session's tiny BERT: 2 layers, hidden
16, 2 heads of 8)."""

import os

import keras
import numpy as np
import pytest

from keras_kd import TeacherCache, pipeline, transfer
from keras_kd.datasets import TextSplit
from keras_kd.pipeline import student_search
from keras_kd.utils.units import megabytes

SHAPES = [(1, 8), (1, 16)]


@pytest.fixture(scope="module")
def setting(tiny_preset, movie_reviews, tmp_path_factory):
    keras.utils.set_random_seed(0)
    teacher = transfer.build_finetune_model(tiny_preset, num_classes=2, sequence_length=16)
    train = movie_reviews.train.sample(64, seed=0)
    validation = movie_reviews.validation.sample(32, seed=0)
    config = pipeline.PipelineConfig(
        teacher=tiny_preset, batch_size=16, jit_compile=False, verbose=0, seeds=(0,),
    )
    cache = TeacherCache.build(
        teacher.token_id_model, train, str(tmp_path_factory.mktemp("cache")),
        preprocessor=teacher.preprocessor, jit_compile=False, verbose=0,
    )
    return config, teacher, train, validation, cache


def test_shapes_and_settings_of_the_tiny_teacher(setting):
    _, teacher, *_ = setting
    # Widths of 1/3 and 2/3 of 2 heads round to 1 head of 8, all to 2.
    assert student_search.student_shapes(teacher.backbone) == [(1, 8), (1, 16), (2, 8), (2, 16)]
    assert transfer.student_config(teacher.backbone, 1, 8) == {
        "num_layers": 1, "hidden_dim": 8, "num_heads": 1, "intermediate_dim": 16,
    }


@pytest.mark.large  # several trainings: 30-50 s on 2 cores
def test_search_measures_filters_and_ranks(setting, monkeypatch):
    config, teacher, train, validation, cache = setting
    exported = []
    export_tflite = student_search.kd_export.export_tflite

    def recorded(model, path, *args, **kwargs):
        result = export_tflite(model, path, *args, **kwargs)
        exported.append((os.path.basename(str(path)), result.size_bytes, model.count_params()))
        return result

    monkeypatch.setattr(student_search.kd_export, "export_tflite", recorded)
    # Texts the student will also train on, with words the others lack.
    extra = TextSplit(["zeppelin marmalade", "quartz"], np.zeros(2, "int32"))
    found = pipeline.search_student(
        config, teacher, train, validation, cache,
        max_size_mb=1000, candidates=1, shapes=SHAPES, extra=extra,
    )
    monkeypatch.undo()
    rows = found.rows
    # Each row is its exported file: the shape, its parameters and size.
    assert [(r["num_layers"], r["hidden_dim"]) for r in rows] == SHAPES
    assert [name for name, _, _ in exported] == ["1x8.tflite", "1x16.tflite"]
    for row, (_, size_bytes, parameters) in zip(rows, exported):
        assert row["size_mb"] == megabytes(size_bytes)
        assert row["parameters"] == parameters
        assert row["latency_ms"] > 0 and row["fits"]
    # The vocabulary is trimmed as the student ships (the training, extra
    # and validation texts): far below MiniLM's 30,522 tokens of 8 floats
    # each, above the training texts' alone.
    def trimmed(texts):
        student = student_search._build(teacher, SHAPES[0], 0).trim_vocabulary(texts)
        return student.token_id_model.count_params()

    assert rows[0]["parameters"] == trimmed(pipeline.vocabulary_texts(train, validation, extra))
    assert trimmed(train.texts) < rows[0]["parameters"] < 30522 * 8
    assert rows[0]["size_mb"] < rows[1]["size_mb"]
    # Only the largest that fits is distilled (candidates=1), and wins.
    assert (found.num_layers, found.hidden_dim) == (1, 16)
    assert "validation_accuracy" not in rows[0]
    assert 0 <= rows[1]["validation_accuracy"] <= 1

    # A budget between the two sizes keeps the narrow one only; below both,
    # nothing fits and the error names the smallest. (The measurements are
    # reused: the same shapes measure the same.)
    measured = [{k: v for k, v in row.items() if k in
                 ("num_layers", "hidden_dim", "parameters", "size_mb", "latency_ms")} for row in rows]
    monkeypatch.setattr(student_search, "measure_students", lambda *a, **k: [dict(r) for r in measured])
    between = (rows[0]["size_mb"] + rows[1]["size_mb"]) / 2
    found = pipeline.search_student(
        config, teacher, train, validation, cache, max_size_mb=between, shapes=SHAPES,
    )
    assert (found.num_layers, found.hidden_dim) == (1, 8)
    assert [row["fits"] for row in found.rows] == [True, False]
    with pytest.raises(ValueError, match=(
        rf"No student shape fits max_size_mb=0.0001.*smallest measured is 1 layer\(s\) "
        rf"at hidden 8: {rows[0]['size_mb']:.2f} MB")):
        pipeline.search_student(
            config, teacher, train, validation, cache, max_size_mb=0.0001, shapes=SHAPES,
        )


def test_refused_before_any_work(setting, monkeypatch):
    config, teacher, train, validation, cache = setting

    def measured(*args, **kwargs):
        raise AssertionError("measured before refusing")

    monkeypatch.setattr(student_search, "measure_students", measured)
    with pytest.raises(ValueError, match="needs a budget: pass max_size_mb or max_latency_ms"):
        pipeline.search_student(config, teacher, train, validation, cache)
    with pytest.raises(ValueError, match=r"`max_latency_ms` must be a finite number > 0.*max_latency_ms=-1"):
        pipeline.search_student(config, teacher, train, validation, cache, max_latency_ms=-1)
    with pytest.raises(ValueError, match="validation split; `validation` is None"):
        pipeline.search_student(config, teacher, train, None, cache, max_size_mb=4)


def test_an_unreachable_budget_is_refused_before_the_search(setting, monkeypatch):
    config, teacher, train, validation, _ = setting
    calls = []
    measure_students = student_search.measure_students

    def recorded(teacher, shapes, *args, **kwargs):
        calls.append(list(shapes))
        return measure_students(teacher, shapes, *args, **kwargs)

    monkeypatch.setattr(student_search, "measure_students", recorded)
    # The narrowest, shallowest shape is measured alone; it fits.
    rows = student_search.check_budget_reachable(
        config, teacher, train, validation, max_size_mb=1000, shapes=[(1, 16), (1, 8)],
    )
    assert calls == [[(1, 8)]] and rows[0]["fits"]
    # It misses: every shape is measured, and none fits.
    calls.clear()
    with pytest.raises(ValueError, match=r"No student shape fits max_size_mb=0.0001.*1 layer\(s\) at hidden 8"):
        student_search.check_budget_reachable(
            config, teacher, train, validation, max_size_mb=0.0001, shapes=SHAPES,
        )
    assert calls == [[(1, 8)], SHAPES]
    with pytest.raises(ValueError, match=r"`max_size_mb` must be a finite number > 0"):
        student_search.check_budget_reachable(config, teacher, train, validation, max_size_mb=0)


def test_sizes_are_those_of_trained_students(setting, tmp_path):
    # The converter stores identical constants once: an untrained
    # student's zero biases and unit norm scales make its file smaller
    # than the trained student's, which the search must not report.
    config, teacher, train, validation, cache = setting
    [row] = student_search.measure_students(teacher, [SHAPES[1]], train.texts, 16, latency_runs=1)
    student = student_search._build(teacher, SHAPES[1], 0).trim_vocabulary(train.texts)

    def size_bytes(name):
        return student_search.kd_export.export_tflite(
            student.token_id_model, str(tmp_path / name), quantization="dynamic_int8",
            representative_data=train.texts[:200], sequence_length=16,
            vocabulary=student.preprocessor.tokenizer.get_vocabulary(), verify=False,
        ).size_bytes

    untrained = size_bytes("untrained.tflite")
    student.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,
    )
    student.fit(train.texts, train.labels, batch_size=16, epochs=1, verbose=0)
    trained = size_bytes("trained.tflite")
    assert untrained < trained
    assert abs(row["size_mb"] * 1e6 - trained) < 0.1 * (trained - untrained)
