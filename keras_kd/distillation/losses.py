"""Distillation losses between teacher and student logits.

Every loss here is a `keras.losses.Loss` called as
`loss(teacher_logits, student_logits, sample_weight=None)`. The logits may be
of shape `(batch, classes)` or `(batch, sequence, vocabulary)`. Keras casts
both to the loss's dtype (float32 unless `keras.backend.floatx()` says
otherwise) before `call`, so `mixed_float16`/`mixed_bfloat16` logits are
compared in float32.

Probabilities are never formed and then logged: each divergence works on
`log_softmax` outputs, which stay finite for logits of any finite size
(`keras.losses.KLDivergence` clips probabilities to `[1e-7, 1]` instead, which
is wrong for peaked teachers). Teacher logits of `-inf` (a masked vocabulary)
are tokens of probability 0: they add nothing to `KLDivergence` and
`JensenShannonDivergence` and are left out of `LogitsMSE`'s mean.

The default reduction is `"mean_with_sample_weight"`: the per-example (or
per-token) losses are averaged, and a `sample_weight` of shape
`(batch, sequence)` acts as a mask whose mean is taken over unmasked tokens
only.
"""

import inspect
import math

import keras
from keras import ops

from keras_kd import _backend  # noqa: F401 (fails early on another backend)
from keras_kd.distillation.shapes import check_logits_shapes
from keras_kd.distillation.top_k import gather_top_k, is_top_k, top_k_logits
from keras_kd.utils.validation import check_number

__all__ = [
    "DistillationLoss",
    "JensenShannonDivergence",
    "KLDivergence",
    "LogitsMSE",
    "ReverseKLDivergence",
    "get",
    "is_top_k",
    "top_k_logits",
]


def check_temperature(temperature):
    """Returns `temperature` as a float; raises `ValueError` unless it is a
    finite number > 0."""
    return check_number("temperature", temperature, 0, low_open=True, example=2.0)


def _log_probs(logits, temperature):
    return ops.log_softmax(logits / temperature, axis=-1)


def _kl_from_log_probs(log_p, log_q):
    """`KL(p || q)` summed over the last axis, from log-probabilities.

    A term where `p` is 0 is 0 (its limit), also where `log_q` is `-inf`:
    a teacher that masks tokens with `-inf` logits would otherwise give
    `exp(-inf) * -inf`, NaN. Where `p > 0` and `q = 0` the term is `+inf`,
    which is the divergence's true value.

    Example:

    >>> import numpy as np
    >>> masked = np.array([[1.0, 1.0, -np.inf]])
    >>> float(KLDivergence()(masked, masked))
    0.0
    """
    p = ops.exp(log_p)
    # Dropped inside the product, not after it: `where` then passes a zero
    # gradient to the dropped `-inf - -inf`, where `0 * NaN` would be NaN.
    return ops.sum(p * ops.where(p > 0, log_p - log_q, 0.0), axis=-1)


class DistillationLoss(keras.losses.Loss):
    """Base class of the losses between teacher and student logits.

    Subclasses implement `divergence(teacher_logits, student_logits)`, which
    returns one value per example (or per token) in float32.

    `teacher_logits` may also be the sparse top-k form of `top_k_logits`
    (as stored by a `TeacherCache` with `top_k`). The teacher's distribution
    is then its softmax over those k entries (zero elsewhere), and the
    student's is its softmax over the whole vocabulary, so probability the
    student puts outside the teacher's top-k is penalised (DistillKit's
    sparse KD). Subclasses that support it implement
    `top_k_divergence(log_p, log_q)`; with k equal to the vocabulary every
    loss equals its dense form.

    `matches_logits` says what the loss compares: the softmax
    distributions of the logits (False: several teachers give their
    probability mixture), or the logits themselves (True, `LogitsMSE`:
    their weighted mean), see `keras_kd.distillation.multi_teacher`.

    Args:
        temperature: float > 0. Both logits are divided by it before the
            softmax; the result is multiplied by `temperature**2` so that
            gradients keep their scale as the temperature changes (Hinton et
            al., 2015).
        reduction: how per-example losses are reduced; see
            `keras.losses.Loss`. Defaults to `"mean_with_sample_weight"`.
        name: optional name of the loss.
        dtype: dtype of the computation. Defaults to `keras.backend.floatx()`.
    """

    matches_logits = False

    def __init__(
        self,
        temperature=1.0,
        reduction="mean_with_sample_weight",
        name=None,
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.temperature = check_temperature(temperature)

    def call(self, y_true, y_pred):
        if not is_top_k(y_true):
            check_logits_shapes(y_true, y_pred)
            return self.temperature**2 * self.divergence(y_true, y_pred)
        values, student_at_k = gather_top_k(y_true, y_pred)
        k, vocabulary = values.shape[-1], y_pred.shape[-1]
        if k is not None and k == vocabulary:
            # Every token is kept: the dense loss, on permuted logits.
            return self.temperature**2 * self.divergence(values, student_at_k)
        log_p = _log_probs(values, self.temperature)
        # The student's log-probabilities over the whole vocabulary, read
        # at the teacher's k tokens: one logsumexp over the vocabulary, no
        # full-vocabulary log_softmax kept for the gradient.
        log_q = student_at_k / self.temperature - ops.logsumexp(
            y_pred / self.temperature, axis=-1, keepdims=True
        )
        return self.temperature**2 * self.top_k_divergence(log_p, log_q)

    def divergence(self, teacher_logits, student_logits):
        raise NotImplementedError

    def top_k_divergence(self, log_p, log_q):
        """The divergence from the teacher's top-k log-probabilities `log_p`
        (normalised over the k entries) and the student's `log_q` at the
        same tokens (normalised over the vocabulary, so `sum(exp(log_q))`
        is at most 1)."""
        raise ValueError(
            f"{type(self).__name__} needs the teacher's full logits: with "
            "top-k teacher logits (a `TeacherCache` with `top_k`) the "
            "teacher gives zero probability outside its k tokens. Use "
            "`KLDivergence` or `JensenShannonDivergence`, a cache without "
            "`top_k`, or the live teacher."
        )

    def get_config(self):
        config = super().get_config()
        config.update({"temperature": self.temperature})
        return config


@keras.saving.register_keras_serializable(package="keras_kd")
class KLDivergence(DistillationLoss):
    """Forward KL divergence `T² · KL(softmax(t/T) ‖ softmax(s/T))`.

    The classic distillation loss of Hinton et al. (2015): the student is
    pushed to cover every class the teacher gives probability to.

    Args:
        temperature: float > 0, the softening temperature `T`.
        reduction: see `keras.losses.Loss`. Defaults to
            `"mean_with_sample_weight"`.
        name: optional name of the loss.

    Returns:
        A scalar loss (or per-example losses with `reduction=None`).

    Example:

    >>> import numpy as np
    >>> loss = KLDivergence(temperature=2.0)
    >>> teacher = np.array([[2.0, 0.0, -1.0]])
    >>> float(loss(teacher, teacher))
    0.0
    >>> round(float(loss(teacher, np.zeros((1, 3)))), 4)
    0.7706
    """

    def divergence(self, teacher_logits, student_logits):
        return _kl_from_log_probs(
            _log_probs(teacher_logits, self.temperature),
            _log_probs(student_logits, self.temperature),
        )

    def top_k_divergence(self, log_p, log_q):
        # Tokens outside the top-k carry no teacher probability: no term.
        return _kl_from_log_probs(log_p, log_q)


@keras.saving.register_keras_serializable(package="keras_kd")
class ReverseKLDivergence(DistillationLoss):
    """Reverse KL divergence `T² · KL(softmax(s/T) ‖ softmax(t/T))`.

    Mode-seeking: the student concentrates on the teacher's most likely
    outputs, which suits generative students too small to cover every mode
    (MiniLLM, Gu et al., 2024). Where the teacher masks a token (a `-inf`
    logit) that the student gives probability, the divergence is `+inf`:
    mask the student's logits the same way, or use `KLDivergence`.

    Args:
        temperature: float > 0, the softening temperature `T`.
        reduction: see `keras.losses.Loss`. Defaults to
            `"mean_with_sample_weight"`.
        name: optional name of the loss.

    Returns:
        A scalar loss (or per-example losses with `reduction=None`).

    Example:

    >>> import numpy as np
    >>> loss = ReverseKLDivergence()
    >>> round(float(loss(np.array([[2.0, 0.0]]), np.zeros((1, 2)))), 4)
    0.4338
    """

    def divergence(self, teacher_logits, student_logits):
        return _kl_from_log_probs(
            _log_probs(student_logits, self.temperature),
            _log_probs(teacher_logits, self.temperature),
        )


@keras.saving.register_keras_serializable(package="keras_kd")
class JensenShannonDivergence(DistillationLoss):
    """Generalized Jensen-Shannon divergence, as in GKD (Agarwal et al., 2024).

    With teacher distribution `P = softmax(t/T)`, student distribution
    `Q = softmax(s/T)` and their mixture `M = beta·P + (1 - beta)·Q`:

    `T² · (beta · KL(P ‖ M) + (1 - beta) · KL(Q ‖ M))`.

    `beta=0.5` is the symmetric Jensen-Shannon divergence (bounded by
    `T² · log 2`); `beta` near 0 behaves like `beta · KL(P ‖ Q)` and near 1
    like `(1 - beta) · KL(Q ‖ P)`. The mixture is formed in log space with
    `logsumexp`, so it is exact for peaked distributions.

    Args:
        beta: float strictly between 0 and 1 (at either end the divergence is
            identically zero).
        temperature: float > 0, the softening temperature `T`.
        reduction: see `keras.losses.Loss`. Defaults to
            `"mean_with_sample_weight"`.
        name: optional name of the loss.

    Returns:
        A scalar loss (or per-example losses with `reduction=None`).

    Example:

    >>> import numpy as np
    >>> loss = JensenShannonDivergence(beta=0.5)
    >>> round(float(loss(np.array([[50.0, -50.0]]), np.array([[-50.0, 50.0]]))), 4)
    0.6931
    """

    def __init__(
        self,
        beta=0.5,
        temperature=1.0,
        reduction="mean_with_sample_weight",
        name=None,
        dtype=None,
    ):
        super().__init__(
            temperature=temperature, reduction=reduction, name=name, dtype=dtype
        )
        self.beta = check_number(
            "beta",
            beta,
            0,
            1,
            low_open=True,
            high_open=True,
            example="0.5 (the symmetric Jensen-Shannon divergence)",
        )

    def divergence(self, teacher_logits, student_logits):
        return self._jsd(
            _log_probs(teacher_logits, self.temperature),
            _log_probs(student_logits, self.temperature),
        )

    def top_k_divergence(self, log_p, log_q):
        # Outside the top-k the mixture is (1 - beta)·q: the student's mass
        # there, q_tail, adds (1 - beta)·q_tail·log(1 / (1 - beta)).
        q_tail = ops.maximum(1.0 - ops.sum(ops.exp(log_q), axis=-1), 0.0)
        tail = -(1.0 - self.beta) * math.log(1.0 - self.beta) * q_tail
        return self._jsd(log_p, log_q) + tail

    def _jsd(self, log_p, log_q):
        log_m = ops.logsumexp(
            ops.stack(
                [log_p + math.log(self.beta), log_q + math.log(1.0 - self.beta)]
            ),
            axis=0,
        )
        return self.beta * _kl_from_log_probs(log_p, log_m) + (
            1.0 - self.beta
        ) * _kl_from_log_probs(log_q, log_m)

    def get_config(self):
        config = super().get_config()
        config.update({"beta": self.beta})
        return config


@keras.saving.register_keras_serializable(package="keras_kd")
class LogitsMSE(DistillationLoss):
    """Mean squared error between teacher and student logits.

    Matches logits directly (Ba & Caruana, 2014), without a softmax; the
    mean is over the last axis, then over examples (or unmasked tokens).
    Tokens the teacher masks with a `-inf` logit are left out of the mean
    over the last axis (a position whose teacher logits are all `-inf`
    gives 0).

    Several teachers give the weighted mean of their logits as the target:
    the mean squared error to it differs from the weighted mean of the
    errors to each teacher by a constant, so the student gets the same
    gradient.

    Args:
        reduction: see `keras.losses.Loss`. Defaults to
            `"mean_with_sample_weight"`.
        name: optional name of the loss.

    Returns:
        A scalar loss (or per-example losses with `reduction=None`).

    Example:

    >>> import numpy as np
    >>> float(LogitsMSE()(np.array([[1.0, 3.0]]), np.array([[0.0, 1.0]])))
    2.5
    >>> float(LogitsMSE()(np.array([[1.0, -np.inf]]), np.array([[0.0, 1.0]])))
    1.0
    """

    matches_logits = True

    def __init__(
        self, reduction="mean_with_sample_weight", name=None, dtype=None
    ):
        super().__init__(
            temperature=1.0, reduction=reduction, name=name, dtype=dtype
        )

    def divergence(self, teacher_logits, student_logits):
        kept = teacher_logits > -math.inf
        # Dropped before squaring, so that no inf reaches the gradient.
        error = ops.where(kept, student_logits - teacher_logits, 0.0)
        return ops.divide_no_nan(
            ops.sum(ops.square(error), axis=-1),
            ops.sum(ops.cast(kept, error.dtype), axis=-1),
        )

    def get_config(self):
        config = super().get_config()
        del config["temperature"]
        return config


def matches_logits(loss_fn):
    """Whether the distillation loss `loss_fn` compares logits themselves
    (`LogitsMSE`; Keras's losses that take no `from_logits`, such as
    `keras.losses.MeanSquaredError`) rather than the distributions of
    their softmax (the other `DistillationLoss`es). A function of other
    origin is taken to compare distributions.

    Args:
        loss_fn: a distillation loss, as `get` returns it.

    Returns:
        A bool.

    Example:

    >>> matches_logits(LogitsMSE()), matches_logits(KLDivergence())
    (True, False)
    >>> matches_logits(keras.losses.MeanSquaredError())
    True
    """
    if isinstance(loss_fn, DistillationLoss):
        return loss_fn.matches_logits
    fn = getattr(loss_fn, "fn", loss_fn)
    # Keras's probability losses are refused by `get`; the rest compare values.
    return (getattr(fn, "__module__", None) or "").startswith("keras.")


def _refuse_keras_probability_loss(identifier):
    """Refuses Keras's KL divergence and cross-entropies (instances or
    functions) as distillation losses: they read `y_true`, here the
    teacher's logits, as probabilities, and give a number that is not the
    divergence of the two distributions, without any error."""
    fn = getattr(identifier, "fn", identifier)
    if not callable(fn) or not (getattr(fn, "__module__", None) or "").startswith("keras."):
        return
    if fn is keras.losses.kl_divergence or "from_logits" in inspect.signature(fn).parameters:
        name = type(identifier).__name__ if hasattr(identifier, "fn") else fn.__name__
        raise ValueError(
            f"distillation_loss_fn is Keras's {name}, which reads the "
            "teacher's outputs as probabilities; the Distiller passes it the "
            "teacher's logits, so the loss would not be the divergence of the "
            "two distributions (a cross-entropy can even turn negative) and "
            "the student would learn a wrong target. Use a "
            "keras_kd.losses loss, which takes logits: "
            "KLDivergence(temperature=2.0) (or 'kl_divergence'), "
            "ReverseKLDivergence, JensenShannonDivergence or LogitsMSE."
        )


def get(identifier, temperature=1.0):
    """Returns a distillation loss from an instance, a name or a config.

    Args:
        identifier: a `DistillationLoss` or other `keras.losses.Loss`, a
            callable `(teacher_logits, student_logits) -> loss`, or one of
            the names `"kl_divergence"`, `"reverse_kl_divergence"`,
            `"jensen_shannon_divergence"`, `"logits_mse"`.
        temperature: temperature given to a loss built from a name.

    Returns:
        A callable loss.

    Example:

    >>> get("reverse_kl_divergence", temperature=2.0).temperature
    2.0
    """
    _refuse_keras_probability_loss(identifier)
    if callable(identifier):
        return identifier
    if isinstance(identifier, dict):
        return keras.saving.deserialize_keras_object(identifier)
    names = {
        "kl_divergence": KLDivergence,
        "reverse_kl_divergence": ReverseKLDivergence,
        "jensen_shannon_divergence": JensenShannonDivergence,
    }
    if identifier in names:
        return names[identifier](temperature=temperature)
    if identifier == "logits_mse":
        return LogitsMSE()
    raise ValueError(
        "Unknown distillation loss. Expected a loss instance, a callable or "
        f"one of {sorted([*names, 'logits_mse'])}. "
        f"Received: {identifier!r}"
    )
