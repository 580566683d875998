"""The sparse top-k form of teacher logits: the `k` largest logits per
position and their indices, `{"values": ..., "indices": ...}`.

A `TeacherCache` with `top_k` stores this form; every `DistillationLoss`
accepts it as `teacher_logits`.
"""

from keras import ops

from keras_kd.distillation.shapes import compatible, shape_of


def top_k_logits(logits, k):
    """Keeps the `k` largest teacher logits per position: the sparse form.

    A teacher cache of a sequence model stores this instead of the full
    `(batch, sequence, vocabulary)` logits: `8·k` bytes per token (float32
    values and int32 indices) instead of `4·vocabulary` (with BERT's 30,522
    tokens and `k=32`, 256 B instead of 119 KiB). Every `DistillationLoss`
    accepts the sparse form as `teacher_logits`: the teacher's distribution
    is its softmax over the k entries (zero elsewhere), the student's its
    softmax over the whole vocabulary, so the student is also pushed off
    every token outside the teacher's top-k. With `k` equal to the
    vocabulary size it equals the dense loss.

    Args:
        logits: teacher logits, `(..., vocabulary)`.
        k: int, `1 <= k <= vocabulary`.

    Returns:
        A dict `{"values": (..., k) float, "indices": (..., k) int32}`,
        largest first.

    Example:

    >>> import numpy as np
    >>> sparse = top_k_logits(np.array([[0.5, 3.0, -1.0, 2.0]]), k=2)
    >>> sparse["indices"].numpy().tolist()
    [[1, 3]]
    >>> sparse["values"].numpy().tolist()
    [[3.0, 2.0]]
    """
    values, indices = ops.top_k(logits, k)
    return {"values": values, "indices": ops.cast(indices, "int32")}


def is_top_k(teacher_logits):
    """True if `teacher_logits` is the sparse form of `top_k_logits`.

    Example:

    >>> import numpy as np
    >>> is_top_k(top_k_logits(np.array([[0.5, 3.0, -1.0]]), k=2))
    True
    >>> is_top_k(np.array([[0.5, 3.0, -1.0]]))
    False
    """
    return isinstance(teacher_logits, dict) and set(teacher_logits) == {
        "values",
        "indices",
    }


def gather_top_k(top_k, student_logits):
    """Returns `(teacher_values, student_logits_at_the_same_indices)`.

    Raises `ValueError` unless the student logits have the teacher values'
    leading shape and at least `k` entries on the last axis.
    """
    values, indices = top_k["values"], top_k["indices"]
    t_shape, s_shape = shape_of(values), shape_of(student_logits)
    k, vocabulary = t_shape[-1], s_shape[-1]
    if not compatible(t_shape[:-1], s_shape[:-1]) or (
        k is not None and vocabulary is not None and k > vocabulary
    ):
        raise ValueError(
            "Top-k teacher logits must have the student's leading shape and "
            f"k <= vocabulary. Received: values.shape={t_shape}, "
            f"student_logits.shape={s_shape}"
        )
    # Keras casts every target leaf to the loss dtype; token ids below 2**24
    # survive float32 exactly. A cache's compact float16 values widen here
    # when a loss is called directly.
    indices = ops.cast(indices, "int32")
    values = ops.cast(values, ops.dtype(student_logits))
    return values, ops.take_along_axis(student_logits, indices, axis=-1)
