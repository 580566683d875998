"""What the `Distiller` does with its inputs before training: it peeks at
the first batch without losing it (for the checks before the first step),
and, when the student is a keras-hub task with a preprocessor (a
`CausalLM`, a `FinetuneModel`), it takes raw texts, as keras-hub tasks do,
and tokenizes them with the student's preprocessor in `tf.data`."""

import types

import keras
import numpy as np
import tensorflow as tf


def _is_string_leaf(value):
    if isinstance(value, (str, bytes)):
        return True
    if isinstance(value, (list, tuple)) and value:
        return isinstance(value[0], (str, bytes))
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "USO" and value.size > 0 and isinstance(
            value.flat[0], (str, bytes)
        )
    if isinstance(value, (tf.Tensor, tf.TensorSpec)):
        return value.dtype == tf.string
    return False


def holds_strings(x):
    """Whether `x` (arrays, lists, a dict of them, or a `tf.data.Dataset`)
    holds raw strings as inputs.

    Example:

    >>> holds_strings(["a film", "a book"]), holds_strings(np.zeros((2, 3)))
    (True, False)
    """
    if isinstance(x, tf.data.Dataset):
        spec = x.element_spec
        first = spec[0] if isinstance(spec, tuple) else spec
        return any(_is_string_leaf(s) for s in tf.nest.flatten(first))
    if isinstance(x, (list, tuple)) and x and isinstance(x[0], (str, bytes)):
        return True
    if isinstance(x, dict):
        return any(_is_string_leaf(v) for v in x.values())
    return _is_string_leaf(x)


def preprocessed(
    preprocessor, x, y=None, sample_weight=None, batch_size=None, shuffle=False
):
    """Returns a batched `tf.data.Dataset` of the preprocessor's outputs.

    Args:
        preprocessor: a keras-hub preprocessor, called on batches as
            `preprocessor(x[, y[, sample_weight]])`.
        x: texts (a list or array of strings), or a `tf.data.Dataset` of
            texts or of `(text, label)` pairs, batched or not.
        y, sample_weight: labels and weights when `x` holds arrays.
        batch_size: batch size of array inputs (default 32). A dataset keeps
            its own batching; an unbatched one is batched with it.
        shuffle: reshuffle array inputs every epoch (as `fit` does with
            arrays); a dataset keeps its own order.

    Returns:
        A `tf.data.Dataset` of `(x, y, sample_weight)` batches (or what the
        preprocessor returns).
    """
    if isinstance(x, tf.data.Dataset):
        if y is not None or sample_weight is not None:
            raise ValueError(
                "With a tf.data.Dataset `x`, pass the labels inside the "
                "dataset, not as `y` or `sample_weight`."
            )
        spec = x.element_spec
        first = spec[0] if isinstance(spec, tuple) else spec
        if tf.nest.flatten(first)[0].shape.rank == 0:
            x = x.batch(batch_size or 32)
        return x.map(
            lambda *element: preprocessor(*element),
            num_parallel_calls=tf.data.AUTOTUNE,
        ).prefetch(tf.data.AUTOTUNE)
    # Arrays are tokenized eagerly, 1,024 texts at a time: tracing a
    # keras-hub tokenizer into a tf.data map costs seconds for every new
    # dataset.
    if isinstance(x, (list, tuple)):
        x = np.asarray(x, dtype=object)
    arrays = [a for a in (x, y, sample_weight) if a is not None]

    def chunk(array, i):
        part = array[i : i + 1024]
        if isinstance(part, np.ndarray) and part.dtype.kind in "USO":
            # keras-hub tokenizers take lists or tensors of strings.
            return tf.constant(part.tolist())
        return part

    chunks = [
        preprocessor(*[chunk(a, i) for a in arrays])
        for i in range(0, len(x), 1024)
    ]
    tokenized = keras.tree.map_structure(
        lambda *parts: np.concatenate([np.asarray(p) for p in parts]), *chunks
    )
    dataset = tf.data.Dataset.from_tensor_slices(tokenized)
    if shuffle:
        dataset = dataset.shuffle(len(x), reshuffle_each_iteration=True)
    return (
        dataset.batch(batch_size or 32)
        .prefetch(tf.data.AUTOTUNE)
    )


def _is_generator(x):
    return isinstance(x, types.GeneratorType) or (
        hasattr(x, "__next__") and not isinstance(x, (tf.data.Dataset,))
    )


def _replay(first, rest):
    yield first
    yield from rest


def peek_first_batch(x, y, sample_weight, batch_size):
    """Returns `(first_batch, x)` without losing any data from `x`.

    A Python generator is consumed by peeking, so a generator that yields the
    peeked batch again is returned in its place.
    """
    if isinstance(x, tf.data.Dataset):
        return next(iter(x.take(1))), x
    if isinstance(x, keras.utils.PyDataset):
        return x[0], x
    if _is_generator(x):
        first = next(x)
        return first, _replay(first, x)
    size = batch_size or 32
    first = keras.tree.map_structure(
        lambda a: a[:size] if a is not None else None,
        (x, y, sample_weight),
    )
    return first, x
