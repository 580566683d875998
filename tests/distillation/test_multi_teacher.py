"""Several teachers: the combined target, the Distiller and the TeacherCache."""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_kd
from keras_kd.distillation import HiddenStateLoss, combine_teacher_logits
from keras_kd.utils.testing import tiny_mlp


def _softmax(z):
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 4.0])
@pytest.mark.parametrize("weights", [[0.5, 0.5], [0.2, 0.8], [0.0, 1.0], [0.1, 0.3, 0.6]])
def test_combined_softmax_is_the_weighted_mean_of_the_teachers_softmaxes(weights, temperature):
    rng = np.random.default_rng(0)
    logits = [rng.normal(scale=3.0, size=(4, 6, 5)) for _ in weights]
    combined = np.asarray(combine_teacher_logits(logits, weights, temperature), "float64")
    expected = sum(w * _softmax(t / temperature) for w, t in zip(weights, logits))
    np.testing.assert_allclose(_softmax(combined / temperature), expected, atol=1e-6)


@pytest.mark.parametrize("weights", [[0.5, 0.5], [0.2, 0.8], [0.0, 1.0], [0.1, 0.3, 0.6]])
def test_logits_mixture_is_the_weighted_mean_of_the_logits(weights):
    rng = np.random.default_rng(0)
    logits = [rng.normal(scale=3.0, size=(4, 6, 5)) for _ in weights]
    combined = np.asarray(combine_teacher_logits(logits, weights, 2.0, mixture="logits"))
    np.testing.assert_allclose(combined, sum(w * t for w, t in zip(weights, logits)), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="Received: mixture='mean'"):
        combine_teacher_logits(logits, weights, 2.0, mixture="mean")


def test_combined_logits_stay_finite_for_extreme_teachers():
    a = np.array([[1e4, -1e4, 0.0]], "float32")
    b = np.array([[-1e4, 1e4, 0.0]], "float32")
    combined = np.asarray(combine_teacher_logits([a, b], [0.5, 0.5], 2.0))
    assert np.isfinite(combined).all()
    np.testing.assert_allclose(_softmax(combined / 2.0), [[0.5, 0.5, 0.0]], atol=1e-6)


def _data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 8)).astype("float32"), rng.integers(0, 3, size=n)


def _distiller(weights=(1.0, 3.0)):
    teachers = [tiny_mlp(16, seed=2), tiny_mlp(32, seed=3)]
    distiller = keras_kd.Distiller(
        student=tiny_mlp(8, seed=1), teacher=teachers, teacher_weights=list(weights)
    )
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2), alpha=0.5, temperature=2.0, jit_compile=False)
    return distiller


def test_distillation_loss_uses_the_probability_mixture():
    distiller = _distiller()
    assert distiller.teacher_weights == [0.25, 0.75]
    x, y = _data()
    mixture = sum(
        w * _softmax(np.asarray(t(x), "float64") / 2.0)
        for w, t in zip([0.25, 0.75], distiller.teachers)
    )
    student = _softmax(np.asarray(distiller.student(x), "float64") / 2.0)
    kl = 4.0 * np.mean((mixture * (np.log(mixture) - np.log(student))).sum(-1))
    distiller.compile(optimizer="sgd", alpha=0.5, temperature=2.0, jit_compile=False,
                      evaluate_distillation=True)
    logs = distiller.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    assert logs["distillation_loss"] == pytest.approx(kl, rel=1e-5)


@pytest.mark.parametrize(
    "loss", [keras_kd.losses.LogitsMSE(), keras.losses.MeanSquaredError()],
    ids=["LogitsMSE", "keras_MeanSquaredError"],
)
def test_logits_mse_matches_the_weighted_mean_of_the_teachers_logits(loss):
    x, y = _data()
    teachers = [tiny_mlp(16, seed=2), tiny_mlp(32, seed=3)]
    distiller = keras_kd.Distiller(
        student=tiny_mlp(8, seed=1), teacher=teachers, teacher_weights=[1.0, 3.0]
    )
    distiller.compile(optimizer="sgd", alpha=0.5, distillation_loss_fn=loss,
                      jit_compile=False, evaluate_distillation=True)
    logits = [np.asarray(t(x), "float64") for t in teachers]
    student = np.asarray(distiller.student(x), "float64")
    expected = np.mean((student - (0.25 * logits[0] + 0.75 * logits[1])) ** 2)
    logs = distiller.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    assert logs["distillation_loss"] == pytest.approx(expected, rel=1e-5)
    # Its gradient is that of the weighted mean of the errors to each teacher.
    per_teacher = 0.25 * np.mean((student - logits[0]) ** 2) + 0.75 * np.mean((student - logits[1]) ** 2)
    spread = 0.25 * 0.75 * np.mean((logits[0] - logits[1]) ** 2)
    assert per_teacher - expected == pytest.approx(spread, rel=1e-6)


def test_two_teacher_fit_lowers_the_distillation_loss_and_freezes_both():
    distiller = _distiller()
    before = [[w.numpy().copy() for w in t.weights] for t in distiller.teachers]
    x, y = _data(64)
    history = distiller.fit(x, y, batch_size=16, epochs=6, verbose=0).history
    assert history["distillation_loss"][-1] < 0.8 * history["distillation_loss"][0]
    for weights, teacher in zip(before, distiller.teachers):
        for a, b in zip(weights, teacher.weights):
            np.testing.assert_array_equal(a, b.numpy())


def test_save_and_load_keep_both_teachers_and_their_weights(tmp_path):
    distiller = _distiller()
    x, y = _data()
    distiller.fit(x, y, batch_size=16, verbose=0)
    distiller.save(tmp_path / "d.keras")
    loaded = keras.models.load_model(tmp_path / "d.keras")
    assert len(loaded.teachers) == 2 and loaded.teacher_weights == [0.25, 0.75]
    assert all(not t.trainable for t in loaded.teachers)
    for a, b in zip(distiller.teachers, loaded.teachers):
        np.testing.assert_allclose(a(x), b(x), atol=1e-6)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), distiller.predict(x, verbose=0), atol=1e-6)


@pytest.mark.parametrize(
    "weights, message",
    [
        ([1.0], r"1 entries for 2 teachers.*teacher_weights=\[1.0\]"),
        ([1.0, -0.5], r"bad: \[-0.5\]"),
        ([0.0, 0.0], r"positive sum.*teacher_weights=\[0.0, 0.0\]"),
        ([1.0, float("nan")], r"bad: \[nan\]"),
        ("ab", r"list of 2 numbers.*teacher_weights='ab'"),
    ],
)
def test_bad_teacher_weights_are_refused_naming_the_value(weights, message):
    with pytest.raises(ValueError, match=message):
        keras_kd.Distiller(
            student=tiny_mlp(4, seed=0), teacher=[tiny_mlp(8, seed=1), tiny_mlp(8, seed=2)],
            teacher_weights=weights,
        )


def test_bad_teacher_lists_are_refused():
    student = tiny_mlp(4, seed=0)
    with pytest.raises(ValueError, match=r"teacher 1 \('.*'\) gives \(None, 4\) and teacher 0"):
        keras_kd.Distiller(student=student, teacher=[tiny_mlp(8, 1), tiny_mlp(8, 2, num_classes=4)])
    teacher = tiny_mlp(8, seed=1)
    with pytest.raises(ValueError, match="more than once"):
        keras_kd.Distiller(student=student, teacher=[teacher, teacher])
    with pytest.raises(ValueError, match="empty list"):
        keras_kd.Distiller(student=student, teacher=[])
    with pytest.raises(TypeError, match=r"`teacher\[1\]` must be a `keras.Model`"):
        keras_kd.Distiller(student=student, teacher=[teacher, "bert"])
    distiller = keras_kd.Distiller(student=student, teacher=[teacher, tiny_mlp(8, seed=2)])
    with pytest.raises(ValueError, match="this distiller has 2 teachers"):
        distiller.compile(feature_losses=[HiddenStateLoss()])


def test_teacher_cache_over_two_teachers_stores_the_combined_target(tmp_path):
    teachers = [tiny_mlp(16, seed=2), tiny_mlp(32, seed=3)]
    x, y = _data(20)
    data = tf.data.Dataset.from_tensor_slices((x, y))
    with pytest.raises(ValueError, match="Pass `temperature=`"):
        keras_kd.TeacherCache.build(teachers, data, tmp_path / "c", verbose=0)
    cache = keras_kd.TeacherCache.build(
        teachers, data, tmp_path / "c", teacher_weights=[1, 3], temperature=2.0,
        jit_compile=False, verbose=0,
    )
    assert cache.manifest["teacher_weights"] == [0.25, 0.75]
    assert cache.manifest["temperature"] == 2.0
    stored = np.load(tmp_path / "c" / "teacher_logits.npy")
    expected = combine_teacher_logits([t(x) for t in teachers], [0.25, 0.75], 2.0)
    np.testing.assert_allclose(stored, expected, atol=1e-5)
    # Other weights are another target: the cache is rebuilt.
    with pytest.warns(UserWarning, match="rebuilding"):
        cache = keras_kd.TeacherCache.build(
            teachers, data, tmp_path / "c", temperature=2.0, jit_compile=False, verbose=0
        )
    top = keras_kd.TeacherCache.build(
        teachers, data, tmp_path / "top", temperature=2.0, top_k=2,
        top_k_dtype="float32", jit_compile=False, verbose=0,
    )
    assert top.top_k == 2
    dense = combine_teacher_logits([t(x) for t in teachers], [0.5, 0.5], 2.0)
    values, _ = tf.math.top_k(dense, 2)
    np.testing.assert_allclose(np.load(tmp_path / "top" / "teacher_logits.values.npy"), values, atol=1e-5)
    distiller = keras_kd.Distiller(student=tiny_mlp(8, seed=1), teacher=teachers)
    distiller.compile(optimizer="adam", temperature=2.0, jit_compile=False)
    history = distiller.fit(cache.dataset(batch_size=10), verbose=0).history
    assert np.isfinite(history["distillation_loss"][0])


def test_a_cache_of_the_teachers_at_other_weights_is_refused_before_training(tmp_path):
    # The student trained toward the cache's mixture and was validated with
    # the Distiller's, without a word. Confident teachers: their mixtures
    # at weights [1, 3] and [1, 1] differ by 0.185 (total variation).
    teachers = [tiny_mlp(16, seed=2), tiny_mlp(32, seed=3)]
    for teacher in teachers:
        weights = teacher.get_weights()
        weights[-2] *= 4
        teacher.set_weights(weights)
    x, y = _data(20)
    data = tf.data.Dataset.from_tensor_slices((x, y))
    cache = keras_kd.TeacherCache.build(
        teachers, data, tmp_path / "c", teacher_weights=[1, 3], temperature=2.0,
        jit_compile=False, verbose=0,
    )
    student = tiny_mlp(8, seed=1)
    before = student.get_weights()
    distiller = keras_kd.Distiller(student=student, teacher=teachers)
    distiller.compile(optimizer="adam", temperature=2.0, jit_compile=False)
    names = [t.name for t in teachers]
    with pytest.raises(ValueError, match=(
        r"are not the combined target of this Distiller's teachers "
        + re.escape(str(names)) + r" at teacher_weights=\[0\.5, 0\.5\] and "
        r"temperature=2\.0: on the first batch their softmaxes differ by 0\.185 .*"
        r"teacher_weights=\[0\.5, 0\.5\], temperature=2\.0\)`")):
        distiller.fit(cache.dataset(batch_size=20), verbose=0)
    for a, b in zip(before, student.get_weights()):
        np.testing.assert_array_equal(a, b)
    # One of the two teachers alone is not their mixture either.
    alone = keras_kd.Distiller(student=tiny_mlp(8, seed=1), teacher=teachers[0])
    alone.compile(optimizer="adam", temperature=2.0, jit_compile=False)
    with pytest.raises(ValueError, match="not this Distiller's teacher's"):
        alone.fit(cache.dataset(batch_size=20), verbose=0)
    # A loss between logits would match the cache's log-probabilities.
    mse = keras_kd.Distiller(student=tiny_mlp(8, seed=1), teacher=teachers, teacher_weights=[1, 3])
    mse.compile(optimizer="adam", distillation_loss_fn=keras_kd.losses.LogitsMSE(), jit_compile=False)
    with pytest.raises(ValueError, match="LogitsMSE matches the teachers' weighted mean logits"):
        mse.fit(cache.dataset(batch_size=20), verbose=0)
    # The weights the cache was built at train.
    matching = keras_kd.Distiller(student=student, teacher=teachers, teacher_weights=[1, 3])
    matching.compile(optimizer="adam", temperature=2.0, jit_compile=False)
    matching.fit(cache.dataset(batch_size=20), verbose=0)
    assert not np.allclose(before[0], student.get_weights()[0])
