"""Shape checks of distillation: teacher logits against student logits, and
labels against the student loss. The one place both the `Distiller` and the
losses compare shapes; `None` (an unknown dimension) matches any size. Also
the checks that outputs are logits, not a softmax's probabilities, and
scores of mutually exclusive classes, not a multi-label model's."""

import keras
import numpy as np


def shape_of(tensor):
    """The shape of a tensor (symbolic or not) as a tuple."""
    return tuple(tensor.shape)


def compatible(shape_a, shape_b):
    """True if two shapes have the same rank and agree wherever both are known.

    Example:

    >>> compatible((None, 3), (16, 3))
    True
    >>> compatible((16, 3), (16, 5))
    False
    """
    return len(shape_a) == len(shape_b) and all(
        a is None or b is None or a == b for a, b in zip(shape_a, shape_b)
    )


def check_logits_shapes(teacher_logits, student_logits):
    """Raises `ValueError` unless teacher and student logits have the same
    (compatible) shape.

    Example:

    >>> import numpy as np
    >>> check_logits_shapes(np.zeros((2, 3)), np.zeros((2, 4)))
    Traceback (most recent call last):
    ...
    ValueError: Teacher and student logits must have the same shape, (batch, classes) or (batch, sequence, vocabulary). Received: teacher logits of shape (2, 3), student logits of shape (2, 4). Give the student the teacher's number of classes (or vocabulary size).
    """
    t_shape, s_shape = shape_of(teacher_logits), shape_of(student_logits)
    if not compatible(t_shape, s_shape):
        raise ValueError(
            "Teacher and student logits must have the same shape, "
            "(batch, classes) or (batch, sequence, vocabulary). Received: "
            f"teacher logits of shape {t_shape}, student logits of shape "
            f"{s_shape}. Give the student the teacher's number of classes "
            "(or vocabulary size)."
        )


def check_logits_not_probabilities(outputs, who):
    """Raises `ValueError` when `outputs` (a batch of a model's outputs,
    classes or vocabulary last) are probabilities: every row non-negative
    and summing to 1, as a model ending in a softmax gives. Distillation
    softens logits with its temperature and takes their `log_softmax`;
    probabilities taken for logits give a near-uniform target (or a student
    that cannot fit one) without any error.

    Args:
        outputs: the outputs of `who` on a batch, with at least 2 classes.
        who: `"teacher"`, `"student"` or a teacher's name, for the message.

    Example:

    >>> check_logits_not_probabilities(np.array([[2.0, -1.0], [0.5, 0.1]]), "teacher")
    >>> check_logits_not_probabilities(np.array([[0.9, 0.1], [0.25, 0.75]]), "teacher")
    Traceback (most recent call last):
    ...
    ValueError: The teacher's outputs are probabilities, not logits: every row of the first batch is non-negative and sums to 1 (row 0: [0.9, 0.1]). Distillation needs logits. Build the teacher without its final softmax (`activation=None` on its last layer); a trained one keeps its weights with `model.layers[-1].activation = keras.activations.linear`.
    """
    values = np.asarray(keras.ops.convert_to_numpy(outputs), dtype=np.float64)
    if values.ndim < 2 or values.shape[-1] < 2 or values.size == 0:
        return
    # Half precision sums a large vocabulary's probabilities to within 1e-2.
    if values.min() >= 0.0 and np.all(np.abs(values.sum(axis=-1) - 1.0) < 1e-2):
        row = values.reshape(-1, values.shape[-1])[0]
        raise ValueError(
            f"The {who}'s outputs are probabilities, not logits: every row of "
            "the first batch is non-negative and sums to 1 (row 0: "
            f"{[round(float(v), 4) for v in row[:5]]}{' ...' if row.size > 5 else ''}). "
            f"Distillation needs logits. Build the {who} without its final "
            "softmax (`activation=None` on its last layer); a trained one "
            "keeps its weights with `model.layers[-1].activation = "
            "keras.activations.linear`."
        )


def check_model_output_shapes(teacher, student):
    """`check_logits_shapes` on the symbolic outputs of two functional models;
    models without a single symbolic output are checked on the first batch
    instead."""
    outputs = [getattr(m, "outputs", None) for m in (teacher, student)]
    if all(o is not None and len(o) == 1 for o in outputs):
        check_logits_shapes(outputs[0][0], outputs[1][0])


def check_label_shape(y, y_pred, loss_fn):
    """Raises `ValueError` unless labels `y` fit the student logits `y_pred`
    for `loss_fn`, a `keras.losses.Loss` (as `objective.student_loss`
    returns it): class ids of shape `y_pred.shape[:-1]` (or with a trailing
    1) for Keras's sparse categorical cross-entropy, `y_pred`'s shape for
    Keras's other losses. Losses of other origins define their own labels
    and are not checked.

    Example:

    >>> import numpy as np
    >>> loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    >>> check_label_shape(np.zeros((4,)), np.zeros((4, 3)), loss)
    >>> check_label_shape(np.zeros((4, 3)), np.zeros((4, 3)), loss)
    Traceback (most recent call last):
    ...
    ValueError: The labels do not fit the student's output: sparse_categorical_crossentropy expects integer class ids of shape (4,), but the labels have shape (4, 3) for student logits of shape (4, 3). Pass labels of the expected shape, or a `student_loss_fn` that matches your labels.
    """
    fn = getattr(loss_fn, "fn", None)
    if not getattr(fn, "__module__", "").startswith("keras."):
        return
    y_shape, pred_shape = shape_of(y), shape_of(y_pred)
    if is_sparse(loss_fn):
        expected = pred_shape[:-1]
        ok = compatible(y_shape, expected) or compatible(y_shape, expected + (1,))
        what = "integer class ids of shape"
    else:
        expected = pred_shape
        ok = compatible(y_shape, expected) or (
            pred_shape[-1:] == (1,) and compatible(y_shape, pred_shape[:-1])
        )
        what = "labels of shape"
    if not ok:
        raise ValueError(
            f"The labels do not fit the student's output: {fn.__name__} "
            f"expects {what} {expected}, but the labels have shape {y_shape} "
            f"for student logits of shape {pred_shape}. Pass labels of the "
            "expected shape, or a `student_loss_fn` that matches your labels."
        )


def is_sparse(loss_fn):
    """True if `loss_fn` is Keras's sparse categorical cross-entropy, which
    takes class ids as labels.

    Example:

    >>> is_sparse(keras.losses.SparseCategoricalCrossentropy())
    True
    """
    return getattr(loss_fn, "fn", None) is keras.losses.sparse_categorical_crossentropy


_SIGMOID_ACTIVATIONS = ("sigmoid", "hard_sigmoid")
_BINARY_LOSSES = ("binary_crossentropy", "binary_focal_crossentropy")


def _name(value):
    return value if isinstance(value, str) else getattr(getattr(value, "fn", value), "__name__", None)


def _output_operation(model):
    """The layer or op that makes `model`'s one symbolic output, else None."""
    outputs = getattr(model, "outputs", None) or []
    history = getattr(outputs[0], "_keras_history", None) if len(outputs) == 1 else None
    return getattr(history, "operation", None)


def _final_operation(model):
    """`_output_operation`, looked for inside a nested model that makes
    the output."""
    operation = _output_operation(model)
    while isinstance(operation, keras.Model):
        operation = _output_operation(operation)
    return operation


def softmax_output(model):
    """How `model` ends in a softmax (it outputs probabilities, not
    logits), or None when nothing says so: its output layer's `activation`
    (a keras-hub task's `activation="softmax"`, a `Dense` head), a
    `keras.layers.Softmax` or `keras.ops.softmax`, also inside a nested
    model. Models without symbolic outputs (subclassed) give None.

    Args:
        model: a `keras.Model`.

    Returns:
        A phrase naming what was found, or None.

    Example:

    >>> dense = keras.layers.Dense(3, activation="softmax", name="scores")
    >>> softmax_output(keras.Sequential([keras.Input((4,)), dense]))
    "its output layer 'scores' has a softmax activation"
    >>> softmax_output(keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])) is None
    True
    """
    operation = _final_operation(model)
    if _name(getattr(operation, "activation", None)) == "softmax":
        return f"its output layer {operation.name!r} has a softmax activation"
    if type(operation).__name__.lower() == "softmax":
        return "its output is a softmax"
    return None


def independent_outputs(model):
    """How `model` scores each class on its own (a multi-label or sigmoid
    binary classifier), or None when nothing says so: a keras-kd
    `Head("multilabel")`, a sigmoid on its one output (an output layer's
    `activation` or `keras.ops.sigmoid`), or a binary cross-entropy as its
    compiled loss. Models without symbolic outputs (subclassed) are judged
    by their loss alone.

    Args:
        model: a `keras.Model`.

    Returns:
        A phrase naming what was found, or None.

    Example:

    >>> dense = keras.layers.Dense(3, activation="sigmoid", name="tags")
    >>> independent_outputs(keras.Sequential([keras.Input((4,)), dense]))
    "its output layer 'tags' has a sigmoid activation"
    >>> independent_outputs(keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])) is None
    True
    """
    operation = _output_operation(model)
    if isinstance(operation, keras.Model):
        found = independent_outputs(operation)
        if found is not None:
            return found
    elif getattr(operation, "kind", None) == "multilabel":
        return (
            f"its output layer {operation.name!r} is Head('multilabel') "
            "(independent sigmoid outputs)"
        )
    elif _name(getattr(operation, "activation", None)) in _SIGMOID_ACTIVATIONS:
        return f"its output layer {operation.name!r} has a sigmoid activation"
    elif type(operation).__name__.lower() in _SIGMOID_ACTIVATIONS:
        return "its output is a sigmoid"
    loss = getattr(model, "loss", None)
    if _name(loss) in _BINARY_LOSSES:
        return f"it is compiled with the loss {_name(loss)}"
    return None


def regression_output(model):
    """The name of `model`'s output layer when it is a keras-kd
    `Head("regression")` (real values, not class scores), else None.

    Example:

    >>> from keras_kd.transfer import Head
    >>> inputs = keras.Input((4,))
    >>> regression_output(keras.Model(inputs, Head("regression", name="score")(inputs)))
    'score'
    >>> regression_output(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])) is None
    True
    """
    operation = _final_operation(model)
    if getattr(operation, "kind", None) == "regression":
        return operation.name
    return None


def check_exclusive_classes(models, loss_name):
    """Refuses, for a loss that takes a softmax over the outputs, a model
    whose outputs are independent per-class scores (`independent_outputs`):
    the softmax would make its classes compete, and distillation would
    train towards a wrong target without an error.

    Args:
        models: `[(role, model), ...]`, e.g. `[("student", student)]`.
        loss_name: the distillation loss, for the message.

    Raises:
        ValueError: naming the model, what makes it multi-label, and the
            loss to use instead.

    Example:

    >>> dense = keras.layers.Dense(3, activation="sigmoid", name="tags")
    >>> student = keras.Sequential([keras.Input((4,)), dense])
    >>> check_exclusive_classes([("student", student)], "KLDivergence")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: The student scores each class on its own (a multi-label or sigmoid classifier): its output layer 'tags' has a sigmoid activation. ...
    """
    for role, model in models:
        found = independent_outputs(model)
        if found is not None:
            raise ValueError(
                f"The {role} scores each class on its own (a multi-label or "
                f"sigmoid classifier): {found}. The distillation loss "
                f"{loss_name} takes a softmax over the outputs, which "
                "assumes mutually exclusive classes: it would make the "
                "classes compete and train towards a wrong target. Distill "
                "it with distillation_loss_fn=keras_kd.losses.LogitsMSE() "
                "(each output matched on its own) and alpha=1.0 (the "
                "default student loss takes one class id per example), or "
                "your own "
                "distillation_loss_fn(teacher_outputs, student_outputs)."
            )
