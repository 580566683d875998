"""The Distiller's objective: loss forms (names, instances, functions), the
regularization term, one reduction for both terms, class-id checks, the XLA
fallback and where the teacher runs."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_kd
from keras_kd.distillation import losses
from keras_kd.utils.testing import tiny_mlp as mlp
from keras_kd.utils.testing import tiny_token_model

NUM_CLASSES = 3
RNG = np.random.default_rng(0)


def log_softmax(z, temperature=1.0):
    z = np.asarray(z, np.float64) / temperature
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def kl(teacher, student, temperature):
    log_p, log_q = log_softmax(teacher, temperature), log_softmax(student, temperature)
    return temperature**2 * (np.exp(log_p) * (log_p - log_q)).sum(-1)


def weighted_mean(values, weights):
    return (values * weights).sum() / weights.sum()


def first_step_logs(model, x, y, sample_weight):
    """The logs of one full-batch step: the losses at the initial weights."""
    return model.fit(
        x, y, sample_weight=sample_weight, batch_size=len(x), verbose=0
    ).history


X = RNG.normal(size=(16, 8)).astype("float32")
Y = RNG.integers(0, NUM_CLASSES, size=(16,))
ONE_HOT = np.eye(NUM_CLASSES, dtype="float32")[Y]
WEIGHTS = RNG.uniform(0.1, 2.0, size=(16,)).astype("float32")


def sparse_ce(logits):
    return -np.take_along_axis(log_softmax(logits), Y[:, None], -1)[:, 0]


STUDENT_LOSSES = {
    "name": ("sparse_categorical_crossentropy", Y, sparse_ce),
    "class_name": ("SparseCategoricalCrossentropy", Y, sparse_ce),
    "instance": (
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        Y,
        sparse_ce,
    ),
    "keras_function": (keras.losses.sparse_categorical_crossentropy, Y, sparse_ce),
    "plain_function": (
        lambda y, p: keras.ops.sum(keras.ops.abs(p - y), axis=-1),
        ONE_HOT,
        lambda z: np.abs(z - ONE_HOT).sum(-1),
    ),
    "categorical_name": (
        "categorical_crossentropy",
        ONE_HOT,
        lambda z: -(ONE_HOT * log_softmax(z)).sum(-1),
    ),
    "mse": ("mse", ONE_HOT, lambda z: ((z - ONE_HOT) ** 2).mean(-1)),
}


@pytest.mark.parametrize("form", list(STUDENT_LOSSES))
def test_student_loss_forms_match_numpy(form):
    loss_fn, labels, reference = STUDENT_LOSSES[form]
    model = keras_kd.Distiller(student=mlp(16, 1), teacher=mlp(32, 2))
    model.compile(
        optimizer="sgd", student_loss_fn=loss_fn, alpha=0.25, jit_compile=False
    )
    student, teacher = model.student(X).numpy(), model.teacher(X).numpy()
    logs = first_step_logs(model, X, labels, WEIGHTS)
    expected_student = weighted_mean(reference(student), WEIGHTS)
    expected_kd = weighted_mean(kl(teacher, student, 2.0), WEIGHTS)
    np.testing.assert_allclose(logs["student_loss"][0], expected_student, rtol=1e-5)
    np.testing.assert_allclose(logs["distillation_loss"][0], expected_kd, rtol=1e-5)
    np.testing.assert_allclose(
        logs["loss"][0], 0.75 * expected_student + 0.25 * expected_kd, rtol=1e-5
    )


@pytest.mark.parametrize(
    "loss_fn",
    [
        "kl_divergence",
        losses.KLDivergence(temperature=3.0, reduction="sum"),
        lambda t, s: losses.KLDivergence(temperature=3.0, reduction=None)(t, s),
    ],
    ids=["name", "instance", "plain_function"],
)
def test_distillation_loss_forms_match_numpy(loss_fn):
    model = keras_kd.Distiller(student=mlp(16, 1), teacher=mlp(32, 2))
    model.compile(
        optimizer="sgd",
        distillation_loss_fn=loss_fn,
        temperature=3.0,
        alpha=0.6,
        evaluate_distillation=True,
        jit_compile=False,
    )
    student, teacher = model.student(X).numpy(), model.teacher(X).numpy()
    logs = model.evaluate(X, Y, sample_weight=WEIGHTS, return_dict=True, verbose=0)
    # The instance's own reduction ("sum") is not used: both terms are
    # averaged over the same weighted examples.
    expected_kd = weighted_mean(kl(teacher, student, 3.0), WEIGHTS)
    expected_student = weighted_mean(sparse_ce(student), WEIGHTS)
    np.testing.assert_allclose(logs["distillation_loss"], expected_kd, rtol=1e-5)
    np.testing.assert_allclose(
        logs["loss"], 0.4 * expected_student + 0.6 * expected_kd, rtol=1e-5
    )
    # Training runs with it too.
    assert np.isfinite(model.fit(X, Y, batch_size=8, verbose=0).history["loss"]).all()


def test_cross_entropy_instance_reading_probabilities_is_refused():
    model = keras_kd.Distiller(student=mlp(8, 1), teacher=mlp(8, 2))
    with pytest.raises(ValueError, match=r"from_logits=False.*from_logits=True"):
        model.compile(student_loss_fn=keras.losses.CategoricalCrossentropy())
    with pytest.raises(ValueError, match="Unknown `student_loss_fn`: 'crossentropy_typo'"):
        model.compile(student_loss_fn="crossentropy_typo")


@pytest.mark.parametrize("alpha", [0.3, 1.0])
def test_regularization_is_added_once_unweighted(alpha):
    l2 = 0.05
    model = keras_kd.Distiller(
        student=mlp(16, 1, regularizer=keras.regularizers.L2(l2)),
        teacher=mlp(32, 2),
    )
    model.compile(optimizer="sgd", alpha=alpha, jit_compile=False)
    student, teacher = model.student(X).numpy(), model.teacher(X).numpy()
    regularization = l2 * (model.student.layers[0].kernel.numpy().astype("float64") ** 2).sum()
    assert regularization > 0.01
    logs = first_step_logs(model, X, Y, None)
    expected_student = sparse_ce(student).mean() if alpha < 1 else 0.0
    expected_kd = kl(teacher, student, 2.0).mean()
    np.testing.assert_allclose(logs["student_loss"][0], expected_student, rtol=1e-5)
    np.testing.assert_allclose(
        logs["loss"][0],
        (1 - alpha) * expected_student + alpha * expected_kd + regularization,
        rtol=1e-5,
    )


def test_both_terms_average_over_the_same_tokens_with_heavy_padding():
    """30 of the 48 tokens are padding: each term is the weighted mean over
    the 18 kept ones, whatever the student loss's own reduction."""
    x = RNG.integers(0, 20, size=(6, 8)).astype("int32")
    y = RNG.integers(0, 20, size=(6, 8))
    mask = np.zeros((6, 8), "float32")
    mask[:, :2] = 1.0
    mask[0, :] = 1.0
    model = keras_kd.Distiller(
        student=tiny_token_model(8, 1, vocabulary=20, length=8),
        teacher=tiny_token_model(16, 2, vocabulary=20, length=8),
    )
    model.compile(
        optimizer="sgd",
        # Keras's default reduction, "sum_over_batch_size", divides by all
        # 48 tokens; the distiller divides by the 18 kept ones.
        student_loss_fn=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        alpha=0.5,
        jit_compile=False,
    )
    student, teacher = model.student(x).numpy(), model.teacher(x).numpy()
    logs = first_step_logs(model, x, y, mask)
    ce = -np.take_along_axis(log_softmax(student), y[..., None], -1)[..., 0]
    expected_student = weighted_mean(ce, mask)
    expected_kd = weighted_mean(kl(teacher, student, 2.0), mask)
    np.testing.assert_allclose(logs["student_loss"][0], expected_student, rtol=1e-5)
    np.testing.assert_allclose(logs["distillation_loss"][0], expected_kd, rtol=1e-5)
    np.testing.assert_allclose(
        logs["loss"][0], 0.5 * expected_student + 0.5 * expected_kd, rtol=1e-5
    )


@pytest.mark.parametrize("bad, message", [
    (7, r"Label \(class id\) 7 is out of range: the model has 3 classes"),
    # A fraction was cast to a class id without a word (1.7 trained as 1).
    (0.5, r"Label \(class id\) 0.5 is not a whole number.*np.round\(labels\)"),
    (1.7, r"Label \(class id\) 1.7 is not a whole number.*np.round\(labels\)"),
])
def test_bad_class_id_is_named_under_xla(bad, message):
    labels = Y.astype("float32" if isinstance(bad, float) else Y.dtype)
    labels[11] = bad
    model = keras_kd.Distiller(student=mlp(8, 1), teacher=mlp(8, 2))
    model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match=message):
        model.fit(X, labels, batch_size=8, verbose=0)
    # In a dataset, the bad id is in the second batch: past the checks of
    # the first batch, inside the XLA-compiled training.
    data = tf.data.Dataset.from_tensor_slices((X, labels)).batch(8)
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        model.fit(data, verbose=0)
    assert model.jit_compile is True
    # Whole numbers stored as floats are class ids.
    history = model.fit(X, np.round(labels) % 3, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"][0])


class GraphOnlyBug(keras.layers.Layer):
    """A layer with a bug that only shows when traced into a graph."""

    def call(self, x):
        if not tf.executing_eagerly():
            raise ValueError("a bug of the model, not of XLA")
        return x


class StudentWithGraphBug(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(NUM_CLASSES)
        self.bug = GraphOnlyBug()

    def call(self, x):
        return self.bug(self.dense(x))


def test_real_bugs_are_not_reported_as_xla_failures():
    student = StudentWithGraphBug()
    student(X)
    model = keras_kd.Distiller(student=student, teacher=mlp(8, 2))
    model.compile(optimizer="sgd")
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="a bug of the model"):
            model.fit(X, Y, batch_size=8, verbose=0)
    assert not [w for w in warned if "XLA" in str(w.message)]


class RecordingTeacher(keras.Model):
    def __init__(self, record):
        super().__init__()
        self.dense = keras.layers.Dense(NUM_CLASSES)
        self.record = record

    def call(self, x, training=False):
        self.record("teacher")
        return self.dense(x)


def test_teacher_runs_before_the_gradient_tape(monkeypatch):
    events = []

    class RecordingTape(tf.GradientTape):
        def __enter__(self):
            events.append("tape")
            return super().__enter__()

    teacher = RecordingTeacher(events.append)
    teacher(X)
    model = keras_kd.Distiller(student=mlp(8, 1), teacher=teacher)
    model.compile(optimizer="sgd", run_eagerly=True)
    monkeypatch.setattr(tf, "GradientTape", RecordingTape)
    events.clear()
    model.fit(X, Y, batch_size=8, epochs=1, verbose=0)
    # The first-batch check runs the teacher, then each of the 2 steps.
    assert events == ["teacher", "teacher", "tape", "teacher", "tape"]


def test_jit_auto_is_off_under_a_strategy():
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        model = keras_kd.Distiller(student=mlp(8, 1), teacher=mlp(8, 2))
        model.compile(optimizer="sgd")
    assert model.jit_compile is False
    model.fit(X, Y, batch_size=8, verbose=0)
    assert model.jit_compile is False
