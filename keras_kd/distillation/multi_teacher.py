"""Several teachers: their checks, and the one target they give.

The target is the weighted average of the teachers' probabilities at the
distillation temperature `T`, not of their logits: a mixture keeps each
teacher's distribution (two confident teachers that disagree give a
two-peaked target, where averaged logits would give one flat peak). The
distillation losses take logits and apply `softmax(logits / T)`, so the
mixture is passed as the logits `T * log(sum_i w_i softmax(t_i / T))`,
whose softmax at `T` is exactly the mixture, computed stably as
`T * logsumexp_i(log w_i + log_softmax(t_i / T))`.

A loss between the logits themselves (`LogitsMSE`, see
`keras_kd.distillation.losses.matches_logits`) gets the weighted mean of
the logits instead: those mixture logits are log-probabilities, shifted
from the teachers' logits by a per-position constant that a squared error
would count. The squared error to the mean differs from the weighted mean
of the squared errors to each teacher by a constant, so the student gets
the same gradient as from each teacher in turn.
"""

import math
import warnings

import keras
from keras import ops

from keras_kd.distillation.losses import matches_logits
from keras_kd.distillation.shapes import check_model_output_shapes
from keras_kd.distillation.shapes import compatible
from keras_kd.utils.validation import check_choice, check_not_a_distiller

MIXTURES = ("probabilities", "logits")


def teacher_list(teacher):
    """The teachers as a list: `teacher` itself if it is a list or tuple of
    models, else `[teacher]`.

    Raises:
        ValueError: an empty list, or a model given twice.

    Example:

    >>> import keras
    >>> t = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    >>> len(teacher_list(t)), len(teacher_list([t]))
    (1, 1)
    """
    teachers = list(teacher) if isinstance(teacher, (list, tuple)) else [teacher]
    if not teachers:
        raise ValueError(
            "`teacher` is an empty list. Pass a `keras.Model`, or a list of "
            "them for several teachers."
        )
    if len({id(t) for t in teachers}) != len(teachers):
        raise ValueError(
            "The same teacher model is given more than once in `teacher`; "
            "weigh it with `teacher_weights` instead."
        )
    shapes = [
        tuple(t.outputs[0].shape) if len(getattr(t, "outputs", None) or []) == 1 else None
        for t in teachers
    ]
    for i, shape in enumerate(shapes[1:], start=1):
        if None not in (shape, shapes[0]) and not compatible(shape, shapes[0]):
            raise ValueError(
                f"All teachers must produce logits of the same shape, but "
                f"teacher {i} ({teachers[i].name!r}) gives {shape} and teacher "
                f"0 ({teachers[0].name!r}) gives {shapes[0]}. Pass teachers "
                "with the same classes (or vocabulary)."
            )
    return teachers


def check_teacher_weights(teacher_weights, num_teachers):
    """The teachers' weights, normalized to sum to 1; equal by default.

    Args:
        teacher_weights: None, or one float >= 0 per teacher, summing to
            more than 0.
        num_teachers: the number of teachers.

    Returns:
        A list of floats summing to 1.

    Example:

    >>> check_teacher_weights([1, 3], 2)
    [0.25, 0.75]
    >>> check_teacher_weights([1, -1], 2)
    Traceback (most recent call last):
    ...
    ValueError: `teacher_weights` must be finite and >= 0 with a positive sum, one per teacher, e.g. [1.0, 1.0]. Received: teacher_weights=[1, -1] (bad: [-1])
    """
    if teacher_weights is None:
        return [1.0 / num_teachers] * num_teachers
    example = [1.0] * num_teachers
    try:
        weights = [float(w) for w in teacher_weights]
    except (TypeError, ValueError):
        raise ValueError(
            f"`teacher_weights` must be a list of {num_teachers} numbers, "
            f"one per teacher, e.g. {example}. Received: "
            f"teacher_weights={teacher_weights!r}"
        ) from None
    if len(weights) != num_teachers:
        raise ValueError(
            f"`teacher_weights` has {len(weights)} entries for "
            f"{num_teachers} teachers. Pass one weight per teacher, e.g. "
            f"{example}. Received: teacher_weights={teacher_weights!r}"
        )
    bad = [
        w for w, f in zip(teacher_weights, weights)
        if not math.isfinite(f) or f < 0
    ]
    if bad or sum(weights) <= 0:
        raise ValueError(
            "`teacher_weights` must be finite and >= 0 with a positive sum, "
            f"one per teacher, e.g. {example}. Received: "
            f"teacher_weights={teacher_weights!r}"
            + (f" (bad: {bad})" if bad else "")
        )
    total = sum(weights)
    return [w / total for w in weights]


def combine_teacher_logits(teacher_logits, weights, temperature, mixture="probabilities"):
    """The teachers' one target (see the module docstring).

    Args:
        teacher_logits: list of logits of the same shape, one per teacher.
        weights: the normalized weights (`check_teacher_weights`).
        temperature: float > 0, the distillation temperature.
        mixture: `"probabilities"`: the logits whose softmax at
            `temperature` is the weighted mean of the teachers' softmaxes
            at `temperature`, for losses between distributions;
            `"logits"`: the weighted mean of the logits, for losses
            between logits (`teacher_mixture` picks it for a loss).

    Returns:
        float32 logits of the teachers' shape; one teacher's logits are
        returned as they are.

    Example:

    >>> import numpy as np
    >>> a, b = np.array([[4.0, 0.0]]), np.array([[0.0, 4.0]])
    >>> combined = combine_teacher_logits([a, b], [0.5, 0.5], temperature=2.0)
    >>> np.round(keras.ops.softmax(combined / 2.0), 3).tolist()
    [[0.5, 0.5]]
    >>> np.asarray(combine_teacher_logits([a, b], [0.25, 0.75], 2.0, "logits")).tolist()
    [[1.0, 3.0]]
    """
    check_choice("mixture", mixture, MIXTURES)
    if len(teacher_logits) == 1:
        return teacher_logits[0]
    # A teacher of weight 0 adds nothing (and log 0 = -inf, 0 * -inf = NaN).
    weighted = [
        (ops.cast(t, "float32"), w) for t, w in zip(teacher_logits, weights) if w > 0
    ]
    if mixture == "logits":
        return sum(w * t for t, w in weighted)
    log_probs = ops.stack(
        [ops.log_softmax(t / temperature, axis=-1) + math.log(w) for t, w in weighted]
    )
    return temperature * ops.logsumexp(log_probs, axis=0)


def teacher_temperature(loss_fn, default):
    """The temperature at which teachers are combined for `loss_fn`: its own
    `temperature`, else `default` (the compile `temperature`)."""
    return float(getattr(loss_fn, "temperature", default))


def teacher_mixture(loss_fn):
    """How teachers are combined for the distillation loss `loss_fn`:
    `"logits"` for a loss between the logits themselves
    (`keras_kd.distillation.losses.matches_logits`), else
    `"probabilities"`.

    Args:
        loss_fn: a distillation loss.

    Returns:
        One of `MIXTURES`, for `combine_teacher_logits`.

    Example:

    >>> from keras_kd import losses
    >>> teacher_mixture(losses.LogitsMSE()), teacher_mixture(losses.KLDivergence())
    ('logits', 'probabilities')
    """
    return "logits" if matches_logits(loss_fn) else "probabilities"


def _warn_of_shared_weights(student, teachers):
    # The Distiller freezes its teachers' variables: a trainable student
    # variable that is also a teacher's stops training without a word.
    teacher_variables = {id(v) for t in teachers for v in t.variables}
    shared = [v.path for v in student.trainable_variables if id(v) in teacher_variables]
    if shared:
        warnings.warn(
            f"The student shares {len(shared)} trainable weights with the "
            f"teacher (e.g. {shared[:3]}): the Distiller freezes the teacher, "
            "and with it these weights of the student, which will not train. "
            "To train them, give the student its own copies "
            "(`keras_kd.transfer.student_like` copies the teacher's layers); "
            "to keep them frozen, set `trainable = False` on those layers "
            "first, which silences this warning.",
            stacklevel=3,
        )


def check_teachers(student, teacher, teacher_weights):
    """The `Distiller`'s checks of its models: each a `keras.Model`, the
    student none of the teachers, the same tokenizer (for causal LMs, the
    same vocabulary size as well), and
    the same output shapes (where the models have symbolic outputs).

    Returns:
        `(teachers, weights)`: the teachers as a list (`teacher_list`) and
        their normalized weights (`check_teacher_weights`).
    """
    teachers = teacher_list(teacher)
    roles = [("student", student)] + [
        ("teacher" if len(teachers) == 1 else f"teacher[{i}]", t)
        for i, t in enumerate(teachers)
    ]
    for role, model in roles:
        check_not_a_distiller(model, role, "Distiller")
        if not isinstance(model, keras.Model):
            raise TypeError(
                f"`{role}` must be a `keras.Model` producing logits. "
                f"Received: {role}={model!r} of type {type(model).__name__}"
            )
    if any(student is t for t in teachers):
        raise ValueError(
            "`student` and `teacher` are the same model object; the teacher "
            "is frozen, so the student would never train. Pass a separate "
            "(for example smaller) student model."
        )
    _warn_of_shared_weights(student, teachers)
    weights = check_teacher_weights(teacher_weights, len(teachers))
    from keras_kd.transfer.causal_lm import check_same_vocabulary

    for i, t in enumerate(teachers):
        check_same_vocabulary(t, student, roles[i + 1][0])
        check_model_output_shapes(t, student)
    return teachers, weights
