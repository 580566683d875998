"""Several teachers: their checks, and the one target they give.

The target is the weighted average of the teachers' probabilities at the
distillation temperature `T`, not of their logits: a mixture keeps each
teacher's distribution (two confident teachers that disagree give a
two-peaked target, where averaged logits would give one flat peak). The
distillation losses take logits and apply `softmax(logits / T)`, so the
mixture is passed as the logits `T * log(sum_i w_i softmax(t_i / T))`,
whose softmax at `T` is exactly the mixture, computed stably as
`T * logsumexp_i(log w_i + log_softmax(t_i / T))`.
"""

import math

import keras
from keras import ops

from keras_kd.distillation.shapes import check_model_output_shapes
from keras_kd.distillation.shapes import compatible


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


def combine_teacher_logits(teacher_logits, weights, temperature):
    """The logits whose softmax at `temperature` is the weighted mean of the
    teachers' softmaxes at `temperature` (see the module docstring).

    Args:
        teacher_logits: list of logits of the same shape, one per teacher.
        weights: the normalized weights (`check_teacher_weights`).
        temperature: float > 0, the distillation temperature.

    Returns:
        float32 logits of the teachers' shape; one teacher's logits are
        returned as they are.

    Example:

    >>> import numpy as np
    >>> a, b = np.array([[4.0, 0.0]]), np.array([[0.0, 4.0]])
    >>> combined = combine_teacher_logits([a, b], [0.5, 0.5], temperature=2.0)
    >>> np.round(keras.ops.softmax(combined / 2.0), 3).tolist()
    [[0.5, 0.5]]
    """
    if len(teacher_logits) == 1:
        return teacher_logits[0]
    # A teacher of weight 0 adds nothing to the mixture (and log 0 = -inf).
    log_probs = ops.stack(
        [
            ops.log_softmax(ops.cast(t, "float32") / temperature, axis=-1) + math.log(w)
            for t, w in zip(teacher_logits, weights)
            if w > 0
        ]
    )
    return temperature * ops.logsumexp(log_probs, axis=0)


def teacher_temperature(loss_fn, default):
    """The temperature at which teachers are combined for `loss_fn`: its own
    `temperature`, else `default` (the compile `temperature`)."""
    return float(getattr(loss_fn, "temperature", default))


def _is_causal_lm(model):
    from keras_hub.models import CausalLM

    return isinstance(model, CausalLM)


def _check_same_vocabulary(teacher, student, role):
    """Refuses a teacher whose tokenizer differs from the student's: the
    Distiller tokenizes raw texts with the student's preprocessor and hands
    the same token ids to the teacher, which would read other words."""
    from keras_kd.transfer.vocabulary import vocabulary_difference

    difference = vocabulary_difference(teacher, student)
    if difference is not None:
        index, theirs, ours = difference
        raise ValueError(
            f"The {role}'s tokenizer differs from the student's (token id "
            f"{index} is {theirs!r} for the {role}, {ours!r} for the "
            "student). The Distiller tokenizes texts with the student's "
            f"preprocessor and gives the {role} the same token ids, so it "
            "would read other words. Build the student from the teacher "
            "(`keras_kd.transfer.student_like` keeps its tokenizer) and trim "
            "the student's vocabulary after distilling "
            "(`FinetuneModel.trim_vocabulary`)."
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
    weights = check_teacher_weights(teacher_weights, len(teachers))
    for i, t in enumerate(teachers):
        if _is_causal_lm(t) and _is_causal_lm(student):
            from keras_kd.transfer.causal_lm import check_same_tokenizer

            check_same_tokenizer(t, student)
        _check_same_vocabulary(t, student, roles[i + 1][0])
        check_model_output_shapes(t, student)
    return teachers, weights
