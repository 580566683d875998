"""The `Distiller`'s objective: which losses it calls, and how their values
become one loss.

Each term (labels vs student, teacher vs student) is computed per position
(per example, or per token of a sequence model) and averaged over the same
weighted positions, so `alpha` weighs the two terms alike whatever the
padding. Under `tf.distribute` each replica divides its weighted sum by the
weight of the whole global batch, so the gradients summed over the replicas
are those of one device on the global batch.
"""

import inspect

import keras
import tensorflow as tf
from keras import ops

from keras_kd.distillation.shapes import check_label_shape, check_logits_shapes
from keras_kd.distillation.top_k import is_top_k


def _is_keras_cross_entropy(fn):
    """Keras's own loss functions that take `from_logits`: the cross-entropies."""
    return getattr(fn, "__module__", "").startswith("keras.") and (
        "from_logits" in inspect.signature(fn).parameters
    )


def _same_rank(y_true, y_pred):
    """Squeezes or expands a trailing axis of 1 where the two ranks differ
    by one, as Keras does before calling a loss function."""
    true_rank, pred_rank = len(y_true.shape), len(y_pred.shape)
    if pred_rank == true_rank + 1 and y_pred.shape[-1] == 1:
        if true_rank == 1:
            return ops.expand_dims(y_true, -1), y_pred
        return y_true, ops.squeeze(y_pred, -1)
    if true_rank == pred_rank + 1 and y_true.shape[-1] == 1:
        if pred_rank == 1:
            return y_true, ops.expand_dims(y_pred, -1)
        return ops.squeeze(y_true, -1), y_pred
    return y_true, y_pred


class FunctionLoss(keras.losses.Loss):
    """A loss function `fn(y_true, y_pred, **kwargs)` as a `keras.losses.Loss`,
    called as `keras.Model.compile` calls one.

    Args:
        fn: the function, returning one value per example (or position).
        **kwargs: keyword arguments of `fn`.

    Example:

    >>> import numpy as np
    >>> loss = FunctionLoss(keras.losses.mean_absolute_error)
    >>> float(loss(np.array([1.0, 2.0]), np.array([[2.0], [2.0]])))
    0.5
    """

    def __init__(self, fn, **kwargs):
        super().__init__(name=getattr(fn, "__name__", None))
        self.fn, self.fn_kwargs = fn, kwargs

    def call(self, y_true, y_pred):
        return self.fn(*_same_rank(y_true, y_pred), **self.fn_kwargs)


def student_loss(identifier):
    """Resolves `Distiller.compile`'s `student_loss_fn` to a `keras.losses.Loss`.

    The student produces logits, so a Keras cross-entropy given by name
    (`"sparse_categorical_crossentropy"`, `"CategoricalCrossentropy"`,
    `"binary_crossentropy"`, ...) or as Keras's own function
    (`keras.losses.sparse_categorical_crossentropy`) is built with
    `from_logits=True`. Other names resolve as in `keras.Model.compile`, and
    a plain function `fn(y_true, y_pred)` is wrapped as Keras wraps it.

    Args:
        identifier: None (sparse categorical cross-entropy from logits), a
            loss name or config, a `keras.losses.Loss` instance, or a
            function `(y_true, y_pred) -> per-example losses`.

    Returns:
        A `keras.losses.Loss`.

    Raises:
        ValueError: a Keras cross-entropy instance with `from_logits=False`
            (it would read the student's logits as probabilities), or an
            unknown name.

    Example:

    >>> loss = student_loss("sparse_categorical_crossentropy")
    >>> loss.fn.__name__, loss.fn_kwargs
    ('sparse_categorical_crossentropy', {'from_logits': True})
    >>> student_loss(keras.losses.SparseCategoricalCrossentropy())
    Traceback (most recent call last):
    ...
    ValueError: `student_loss_fn=SparseCategoricalCrossentropy(from_logits=False)` reads the student's outputs as probabilities, but the student produces logits. Pass `keras.losses.SparseCategoricalCrossentropy(from_logits=True)`, or the loss's name.
    """
    if identifier is None:
        identifier = "sparse_categorical_crossentropy"
    from_name = isinstance(identifier, str)
    try:
        loss = keras.losses.get(identifier)
    except ValueError as error:
        raise ValueError(
            f"Unknown `student_loss_fn`: {identifier!r}. Pass a loss name of "
            "`keras.losses` (e.g. 'sparse_categorical_crossentropy', "
            "'mse'), a `keras.losses.Loss` instance or a function "
            "`(y_true, y_pred)`."
        ) from error
    if isinstance(loss, keras.losses.Loss):
        if getattr(loss, "from_logits", None) is False:
            if not from_name:
                name = type(loss).__name__
                raise ValueError(
                    f"`student_loss_fn={name}(from_logits=False)` reads the "
                    "student's outputs as probabilities, but the student "
                    f"produces logits. Pass `keras.losses.{name}("
                    "from_logits=True)`, or the loss's name."
                )
            loss = type(loss).from_config({**loss.get_config(), "from_logits": True})
        return loss
    if _is_keras_cross_entropy(loss):
        return FunctionLoss(loss, from_logits=True)
    return FunctionLoss(loss)


def per_position(loss_fn, y_true, y_pred):
    """The unreduced values of `loss_fn(y_true, y_pred)`, in float32.

    A `keras.losses.Loss` is called through its `call` (its `reduction` is
    not used), on inputs cast to its dtype as `Loss.__call__` casts them; a
    plain function is called as `fn(y_true, y_pred)` and may return one
    value per position or a scalar.

    Example:

    >>> import numpy as np
    >>> per_position(keras.losses.MeanSquaredError(), np.zeros((2, 2)),
    ...              np.array([[1.0, 1.0], [2.0, 0.0]])).numpy().tolist()
    [1.0, 2.0]
    """
    if isinstance(loss_fn, keras.losses.Loss):
        y_true, y_pred = keras.tree.map_structure(
            lambda v: ops.convert_to_tensor(v, dtype=loss_fn.dtype), (y_true, y_pred)
        )
        values = loss_fn.call(y_true, y_pred)
    else:
        values = loss_fn(y_true, y_pred)
    return ops.cast(values, "float32")


def position_weights(sample_weight, y_pred):
    """The weight of each position of the logits `y_pred`: `sample_weight`
    (per example, or per token for sequence logits), or 1, broadcast to
    `y_pred.shape[:-1]` in float32.

    Example:

    >>> import numpy as np
    >>> position_weights(np.array([1, 0]), np.zeros((2, 3, 5))).numpy().tolist()
    [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]
    """
    positions = ops.shape(y_pred)[:-1]
    if sample_weight is None:
        return ops.ones(positions, dtype="float32")
    # keras-hub preprocessors give the padding mask as booleans.
    weight = ops.cast(sample_weight, "float32")
    rank = len(y_pred.shape) - 1
    if len(weight.shape) == rank + 1 and weight.shape[-1] == 1:
        weight = ops.squeeze(weight, axis=-1)
    while len(weight.shape) < rank:
        weight = ops.expand_dims(weight, axis=-1)
    return ops.broadcast_to(weight, positions)


def num_replicas():
    """Replicas in sync in a replica's step under a `tf.distribute`
    strategy; 1 without one, and in a strategy's cross-replica context
    (eager code in its `scope()`, such as `fit`'s check of the first
    batch), which sees the whole batch."""
    context = tf.distribute.get_replica_context()
    return 1 if context is None else context.num_replicas_in_sync


def weighted_means(terms, weights):
    """Averages each term over the weighted positions of the global batch.

    Args:
        terms: dict of per-position values (or scalars, which count at every
            position), as `per_position` returns them.
        weights: the position weights, as `position_weights` returns them.

    Returns:
        `(local, total)`: two dicts with the keys of `terms`. `total` holds
        each term's weighted mean over the global batch (the same on every
        replica: what to log). `local` holds this replica's share of it (its
        weighted sum over the global weight; what to differentiate, since
        the optimizer sums the replicas' gradients). Without a strategy both
        are the same. A batch of zero weight gives 0.

    Example:

    >>> import numpy as np
    >>> local, total = weighted_means(
    ...     {"a": np.array([1.0, 3.0, 100.0])}, np.array([1.0, 1.0, 0.0]))
    >>> float(total["a"])
    2.0
    """
    names = list(terms)
    weights = ops.cast(weights, "float32")
    sums = [
        ops.sum(
            ops.broadcast_to(ops.cast(terms[n], "float32"), ops.shape(weights))
            * weights
        )
        for n in names
    ]
    local_sums = ops.stack([*sums, ops.sum(weights)])
    global_sums = local_sums
    if num_replicas() > 1:
        # Only `local` is differentiated: no gradient through the all-reduce.
        global_sums = tf.distribute.get_replica_context().all_reduce(
            tf.distribute.ReduceOp.SUM, ops.stop_gradient(local_sums)
        )
    weight = global_sums[-1]
    local = {n: ops.divide_no_nan(local_sums[i], weight) for i, n in enumerate(names)}
    total = {n: ops.divide_no_nan(global_sums[i], weight) for i, n in enumerate(names)}
    return local, total


def logits_terms(student_loss_fn, distillation_loss_fn, alpha, y, teacher_logits, y_pred):
    """The per-position terms on the student's logits, and their weights.

    Args:
        student_loss_fn: the student loss, or None when the labels are not
            used (`alpha=1` in training).
        distillation_loss_fn: the distillation loss.
        alpha: the distillation loss's weight; at 0 it is not computed.
        y: the labels (None when the data has none).
        teacher_logits: the teacher's logits, or None when not computed.
        y_pred: the student's logits.

    Returns:
        `(terms, weights)`: dicts of the `student_loss` and
        `distillation_loss` computed, and of both weights (0 for a term not
        computed).

    Raises:
        ValueError: no labels where the student loss needs them; labels or
            teacher logits of a shape that does not fit the student's.
    """
    terms = {}
    if student_loss_fn is not None:
        if y is None:
            raise ValueError(
                "The data has no labels `y`, which the student loss needs "
                f"(alpha={alpha}). Pass `(x, y)` batches, or compile with "
                "alpha=1.0 to train from the teacher alone."
            )
        check_label_shape(y, y_pred, student_loss_fn)
        terms["student_loss"] = per_position(student_loss_fn, y, y_pred)
    if teacher_logits is not None and alpha > 0.0:
        if not is_top_k(teacher_logits):
            # Sparse top-k logits are checked by the loss itself.
            check_logits_shapes(teacher_logits, y_pred)
        terms["distillation_loss"] = per_position(
            distillation_loss_fn, teacher_logits, y_pred
        )
    alpha = alpha if "distillation_loss" in terms else 0.0
    return terms, {"student_loss": 1.0 - alpha, "distillation_loss": alpha}


def weighted_total(terms, weights, position_weights, regularization_losses):
    """The distiller's loss from its terms: each averaged over the weighted
    positions (`weighted_means`), weighed, summed, plus the regularization
    losses once, unweighted.

    Args:
        terms: dict of per-position values.
        weights: dict of each term's weight (a name absent from `terms` is
            logged as 0).
        position_weights: as `position_weights` returns them.
        regularization_losses: the student's `losses`.

    Returns:
        `(replica_loss, logs)`: this replica's share of the loss, to
        differentiate, and the global batch's `loss` and terms, to log.

    Example:

    >>> import numpy as np
    >>> _, logs = weighted_total({"a": np.array([1.0, 3.0])}, {"a": 0.5, "b": 1.0},
    ...                          np.ones(2), [])
    >>> {name: float(value) for name, value in sorted(logs.items())}
    {'a': 2.0, 'b': 0.0, 'loss': 1.0}
    """
    local, logs = weighted_means(terms, position_weights)
    regularization = ops.zeros((), dtype="float32")
    if regularization_losses:
        regularization = ops.cast(ops.sum(regularization_losses), "float32")
    # Every replica adds the same regularization; the optimizer sums the
    # replicas' gradients.
    replica_loss = sum(weights[n] * local[n] for n in terms) + (
        regularization / num_replicas()
    )
    logs["loss"] = sum(weights[n] * logs[n] for n in terms) + regularization
    for name in weights:
        logs.setdefault(name, ops.zeros((), dtype="float32"))
    return replica_loss, logs
