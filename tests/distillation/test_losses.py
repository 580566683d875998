import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_kd
from keras_kd.distillation import losses

RNG = np.random.default_rng(0)


def _log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _kl(log_p, log_q):
    # 0 * log(0 / q) is 0, also for q = 0.
    with np.errstate(invalid="ignore"):
        terms = np.where(log_p > -np.inf, np.exp(log_p) * (log_p - log_q), 0.0)
    return terms.sum(axis=-1)


def reference(name, t, s, temperature=1.0, beta=0.5, mask=None):
    """Float64 numpy reference of each loss, per example then averaged."""
    t, s = np.asarray(t, np.float64), np.asarray(s, np.float64)
    lp, lq = _log_softmax(t / temperature), _log_softmax(s / temperature)
    if name == "kl":
        per = temperature**2 * _kl(lp, lq)
    elif name == "reverse_kl":
        per = temperature**2 * _kl(lq, lp)
    elif name == "jsd":
        lm = np.logaddexp(lp + np.log(beta), lq + np.log(1 - beta))
        per = temperature**2 * (beta * _kl(lp, lm) + (1 - beta) * _kl(lq, lm))
    elif name == "mse":
        kept = t > -np.inf  # tokens the teacher masks are left out
        per = np.where(kept, (s - t) ** 2, 0.0).sum(axis=-1) / kept.sum(axis=-1)
    if mask is None:
        return per.mean()
    return (per * mask).sum() / mask.sum()


def make(name, temperature=1.0, beta=0.5):
    if name == "kl":
        return losses.KLDivergence(temperature=temperature)
    if name == "reverse_kl":
        return losses.ReverseKLDivergence(temperature=temperature)
    if name == "jsd":
        return losses.JensenShannonDivergence(beta=beta, temperature=temperature)
    return losses.LogitsMSE()


NAMES = ["kl", "reverse_kl", "jsd", "mse"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("temperature", [1.0, 2.0, 5.0])
def test_matches_numpy_reference_for_classes(name, temperature):
    t = RNG.normal(size=(16, 10)) * 3
    s = RNG.normal(size=(16, 10)) * 3
    value = float(make(name, temperature)(t, s))
    expected = reference(name, t, s, temperature)
    np.testing.assert_allclose(value, expected, rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_sequence_mask_averages_over_unmasked_tokens(name):
    t = RNG.normal(size=(3, 7, 50)) * 2
    s = RNG.normal(size=(3, 7, 50)) * 2
    mask = np.ones((3, 7))
    mask[0, 4:] = 0
    mask[2, 1:] = 0
    value = float(make(name, 2.0)(t, s, sample_weight=mask))
    np.testing.assert_allclose(
        value, reference(name, t, s, 2.0, mask=mask), rtol=1e-5
    )
    # Changing masked positions must not change the loss.
    s2 = s.copy()
    s2[mask == 0] = 100.0
    assert float(make(name, 2.0)(t, s2, sample_weight=mask)) == pytest.approx(
        value, rel=1e-6
    )


def test_jsd_beta_reference():
    t = RNG.normal(size=(8, 5)) * 4
    s = RNG.normal(size=(8, 5)) * 4
    for beta in (0.1, 0.5, 0.9):
        value = float(make("jsd", 1.5, beta)(t, s))
        np.testing.assert_allclose(
            value, reference("jsd", t, s, 1.5, beta), rtol=1e-5
        )


@pytest.mark.parametrize("name", NAMES)
def test_finite_and_exact_with_huge_logits(name):
    t = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3]])
    s = np.array([[-1e4, 1e4, 0.0], [1e4, -1e4, 2e3]])
    value = float(make(name, 2.0)(t, s))
    assert np.isfinite(value)
    np.testing.assert_allclose(value, reference(name, t, s, 2.0), rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_masked_teacher_vocabulary(name):
    """Teacher logits of -inf (a masked vocabulary): finite losses and
    gradients, equal to the reference over the unmasked tokens."""
    t = RNG.normal(size=(4, 6)) * 2
    t[:, [1, 4]] = -np.inf
    t[0, 2] = -np.inf
    s = RNG.normal(size=(4, 6)) * 2
    if name == "reverse_kl":
        # Reverse KL is infinite where the student has mass the teacher
        # masks: the student is masked the same way.
        with np.errstate(invalid="ignore"):
            assert np.isposinf(float(make(name, 2.0)(t, s)))
        s = np.where(t > -np.inf, s, -np.inf)
    s_var = tf.Variable(s.astype("float32"))
    with tf.GradientTape() as tape:
        value = make(name, 2.0)(t.astype("float32"), s_var)
    gradient = tape.gradient(value, s_var).numpy()
    expected = reference(name, t, s, 2.0)
    assert np.isfinite(expected)
    np.testing.assert_allclose(float(value), expected, rtol=1e-5)
    assert np.isfinite(gradient).all()


def test_kl_is_not_clipped_like_keras():
    # A peaked teacher: the exact KL is 60; clipping probabilities at 1e-7,
    # as keras.losses.KLDivergence does, caps it at log(1e7) ~ 16.1.
    t = np.array([[30.0, -30.0]])
    s = np.array([[-30.0, 30.0]])
    value = float(losses.KLDivergence()(t, s))
    np.testing.assert_allclose(value, reference("kl", t, s), rtol=1e-5)
    np.testing.assert_allclose(value, 60.0, rtol=1e-5)
    clipped = float(
        keras.losses.KLDivergence()(
            keras.ops.softmax(t.astype("float32")),
            keras.ops.softmax(s.astype("float32")),
        )
    )
    assert clipped < 16.2


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_logits_are_compared_in_float32(name, dtype):
    keras.config.set_dtype_policy(f"mixed_{dtype}")
    t = tf.constant(RNG.normal(size=(4, 6, 300)) * 8, dtype=dtype)
    s = tf.constant(RNG.normal(size=(4, 6, 300)) * 8, dtype=dtype)
    value = make(name, 2.0)(t, s)
    assert value.dtype == tf.float32
    expected = reference(
        name, tf.cast(t, "float64").numpy(), tf.cast(s, "float64").numpy(), 2.0
    )
    np.testing.assert_allclose(float(value), expected, rtol=1e-5)
    huge = tf.constant([[6e4, -6e4, 0.0]], dtype=dtype)
    assert np.isfinite(float(make(name, 2.0)(huge, -huge)))


@pytest.mark.parametrize("name", NAMES)
def test_gradient_matches_finite_differences(name):
    t = RNG.normal(size=(2, 4)) * 2
    s = RNG.normal(size=(2, 4)) * 2
    loss = make(name, 1.7)
    s_var = tf.Variable(s.astype("float32"))
    with tf.GradientTape() as tape:
        value = loss(t.astype("float32"), s_var)
    grad = tape.gradient(value, s_var).numpy()
    numeric = np.zeros_like(s)
    eps = 1e-6
    for index in np.ndindex(*s.shape):
        up, down = s.copy(), s.copy()
        up[index] += eps
        down[index] -= eps
        numeric[index] = (
            reference(name, t, up, 1.7) - reference(name, t, down, 1.7)
        ) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_serialization_round_trip(name):
    loss = make(name, 3.0, beta=0.3)
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(loss)
    )
    assert type(restored) is type(loss)
    assert restored.get_config() == loss.get_config()
    t, s = RNG.normal(size=(3, 4)), RNG.normal(size=(3, 4))
    assert float(restored(t, s)) == float(loss(t, s))


@pytest.mark.parametrize("bad", [0.0, -1.0, float("inf"), float("nan"), "2"])
def test_bad_temperature(bad):
    with pytest.raises(ValueError, match="temperature"):
        losses.KLDivergence(temperature=bad)


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.5, 2.0])
def test_bad_beta(bad):
    with pytest.raises(ValueError, match=r"`beta` must be a finite number > 0 and < 1"):
        losses.JensenShannonDivergence(beta=bad)


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 4\)"):
        losses.KLDivergence()(np.zeros((2, 3)), np.zeros((2, 4)))


def test_get_by_name_and_unknown_name():
    assert isinstance(losses.get("logits_mse"), losses.LogitsMSE)
    assert losses.get("kl_divergence", temperature=3.0).temperature == 3.0
    with pytest.raises(ValueError, match="kl_divergence"):
        losses.get("kl")


@pytest.mark.parametrize("loss, name", [
    (keras.losses.KLDivergence(), "KLDivergence"),
    (keras.losses.kl_divergence, "kl_divergence"),
    (keras.losses.CategoricalCrossentropy(), "CategoricalCrossentropy"),
    (keras.losses.CategoricalCrossentropy(from_logits=True), "CategoricalCrossentropy"),
    (keras.losses.categorical_crossentropy, "categorical_crossentropy"),
])
def test_keras_losses_that_read_probabilities_are_refused(loss, name):
    # On logits, Keras's KL divergence is far from the KL of the two
    # softmaxes, which keras_kd's computes.
    teacher = np.array([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0]], "float32")
    student = np.array([[0.0, 1.0, 0.5], [1.0, 0.2, -3.0]], "float32")

    def log_softmax(z):
        return z - np.log(np.exp(z).sum(-1, keepdims=True))

    reference = (np.exp(log_softmax(teacher)) * (log_softmax(teacher) - log_softmax(student))).sum(-1)
    np.testing.assert_allclose(float(losses.KLDivergence(temperature=1.0)(teacher, student)), reference.mean(), rtol=1e-5)
    assert np.all(np.abs(np.asarray(keras.losses.kl_divergence(teacher, student)) - reference) > 1.0)
    with pytest.raises(ValueError, match=rf"Keras's {name}, which reads the teacher's outputs as probabilities.*KLDivergence\(temperature=2.0\)"):
        losses.get(loss)
    distiller = keras_kd.Distiller(student=keras.Sequential([keras.Input((3,)), keras.layers.Dense(3)]),
                                   teacher=keras.Sequential([keras.Input((3,)), keras.layers.Dense(3)]))
    with pytest.raises(ValueError, match=rf"Keras's {name}"):
        distiller.compile(optimizer="adam", distillation_loss_fn=loss)
    # Keras's mean squared error of logits is a fair target.
    assert callable(losses.get(keras.losses.MeanSquaredError()))


def test_public_paths():
    # `keras_kd.losses` was an attribute only: `from keras_kd.losses import
    # KLDivergence` raised ModuleNotFoundError.
    import keras_kd.losses
    from keras_kd.losses import KLDivergence, get

    assert KLDivergence is losses.KLDivergence and get is losses.get
    assert sorted(keras_kd.losses.__all__) == sorted(losses.__all__)
    for name in losses.__all__:
        assert getattr(keras_kd.losses, name) is getattr(losses, name)
    assert keras_kd.losses.top_k_logits is keras_kd.distillation.top_k_logits
    assert keras_kd.distillation.KLDivergence is losses.KLDivergence
    # Registered names are those of keras_kd <= 0.1, so old .keras files load.
    assert keras.saving.get_registered_name(losses.KLDivergence) == "keras_kd>KLDivergence"
    assert keras.saving.get_registered_name(keras_kd.Distiller) == "keras_kd>Distiller"
