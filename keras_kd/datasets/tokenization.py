"""Tokenizing `(text, label)` datasets with a keras-hub preprocessor, once:
`tokenize` (cached tokens, then shuffled, batched and optionally bucketed by
length every epoch) and `tokenized_examples` (the unbatched map it starts
from), plus the trimming and padding helpers of length buckets."""

import functools

import tensorflow as tf

from keras_kd.datasets.prompt_responses import causal_lm_inputs
from keras_kd.utils.validation import check_seed


def check_finite(name, dataset, reader):
    """Refuses an infinite `dataset` (a `.repeat()`) before `reader`, which
    reads it whole, would read it forever.

    Example:

    >>> check_finite("data", tf.data.Dataset.range(3).repeat(), "`TeacherCache.build`")
    Traceback (most recent call last):
    ...
    ValueError: `data` is infinite (a `.repeat()`), and `TeacherCache.build` reads it whole. Pass the dataset without `.repeat()`.
    """
    if int(dataset.cardinality()) == tf.data.INFINITE_CARDINALITY:
        raise ValueError(
            f"`{name}` is infinite (a `.repeat()`), and {reader} reads it "
            "whole. Pass the dataset without `.repeat()`."
        )


def tokenize(
    dataset,
    preprocessor,
    batch_size=32,
    *,
    shuffle=False,
    seed=None,
    bucket_lengths=None,
):
    """Tokenizes a `(text, label)` dataset once, then batches it per epoch.

    The keras-hub preprocessor runs in `tf.data` (`map` with `AUTOTUNE` on
    large batches), its output is cached in memory, and only the cheap steps
    (shuffle, batch, prefetch) repeat every epoch, so training steps never
    tokenize.

    Args:
        dataset: an unbatched `tf.data.Dataset` of `(text, label)`, such as
            `TextSplit.as_dataset()`.
        preprocessor: a keras-hub text-classifier preprocessor, e.g.
            `keras_hub.models.BertTextClassifierPreprocessor`, whose
            `sequence_length` sets the (maximum) length.
        batch_size: examples per batch.
        shuffle: reshuffle all the examples every epoch (a buffer of the
            whole set).
        seed: shuffle seed, with `shuffle=True` only.
        bucket_lengths: None pads every batch to the preprocessor's
            `sequence_length`. A sorted list of lengths, e.g. `[16, 32, 64]`,
            groups examples of similar length and pads each batch to the
            smallest listed length that fits it; the last one must be at
            least `sequence_length`.

    Returns:
        A `tf.data.Dataset` of `(x, label)` batches, `x` the preprocessor's
        dict (`token_ids`, `padding_mask`, ...).

    Example (a BERT preprocessor with a two-word vocabulary):

    >>> import keras_hub
    >>> tokenizer = keras_hub.models.BertTokenizer(
    ...     vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad"])
    >>> preprocessor = keras_hub.models.BertTextClassifierPreprocessor(
    ...     tokenizer, sequence_length=8)
    >>> dataset = tf.data.Dataset.from_tensor_slices(
    ...     (["good", "bad bad", "good bad good"], [1, 0, 1]))
    >>> x, y = next(iter(tokenize(dataset, preprocessor, batch_size=2)))
    >>> x["token_ids"].numpy().tolist(), y.numpy().tolist()
    ([[2, 5, 3, 0, 0, 0, 0, 0], [2, 6, 6, 3, 0, 0, 0, 0]], [1, 0])
    >>> [x["token_ids"].shape[1] for x, _ in tokenize(
    ...     dataset, preprocessor, batch_size=2, bucket_lengths=[4, 8])]
    [4, 8]
    """
    # The tokens are cached once and repeated every epoch.
    check_finite("dataset", dataset, "`tokenize`")
    check_seed(seed, shuffle)
    sequence_length = getattr(preprocessor, "sequence_length", None)
    if bucket_lengths is not None:
        bucket_lengths = sorted(int(n) for n in bucket_lengths)
        if not bucket_lengths or bucket_lengths[0] < 1 or (
            sequence_length is not None and bucket_lengths[-1] < sequence_length
        ):
            raise ValueError(
                "`bucket_lengths` must be positive lengths whose largest is "
                "at least the preprocessor's sequence_length="
                f"{sequence_length}. Received: bucket_lengths={bucket_lengths}"
            )
    tokenized = tokenized_examples(dataset, preprocessor)
    if bucket_lengths is not None:
        tokenized = tokenized.map(_trim_padding, tf.data.AUTOTUNE)
    tokenized = tokenized.cache()
    if shuffle:
        # A buffer of the whole set: files are often sorted by label, and
        # a smaller buffer would hand out one label's run at a time. The
        # tokens are cached in memory already.
        count = int(tokenized.cardinality())
        if count == tf.data.UNKNOWN_CARDINALITY:
            # One pass, which fills the cache the epochs read.
            count = int(tokenized.reduce(0, lambda n, *_: n + 1))
        tokenized = tokenized.shuffle(
            max(count, 1), seed=seed, reshuffle_each_iteration=True
        )
    if bucket_lengths is None:
        batched = tokenized.batch(batch_size)
    else:
        pad_id = getattr(getattr(preprocessor, "tokenizer", None), "pad_token_id", 0)
        x_spec = tokenized.element_spec[0]
        padding_values = (
            {
                key: tf.cast(pad_id if key == "token_ids" else 0, spec.dtype)
                for key, spec in x_spec.items()
            },
            tf.constant(0, tokenized.element_spec[1].dtype),
        )
        batched = tokenized.bucket_by_sequence_length(
            lambda x, y: tf.shape(x["padding_mask"])[0],
            # A length equal to a boundary goes to the next bucket.
            bucket_boundaries=[n + 1 for n in bucket_lengths[:-1]],
            bucket_batch_sizes=[batch_size] * len(bucket_lengths),
            padded_shapes=None,
            padding_values=padding_values,
            pad_to_bucket_boundary=False,
        )
        batched = batched.map(
            lambda x, y: (_pad_to_bucket(x, bucket_lengths, padding_values[0]), y)
        )
    return batched.prefetch(tf.data.AUTOTUNE)


def tokenized_examples(dataset, preprocessor):
    """Maps a keras-hub preprocessor over `(text, label)` examples (or a
    causal LM's texts, or its prompt-response dicts:
    `keras_kd.datasets.prompt_responses`).

    The texts are tokenized in batches of 1024 (the tokenizer is much faster
    on batches) on parallel `tf.data` threads, then unbatched again.

    Args:
        dataset: an unbatched `tf.data.Dataset` of `(text, label)`.
        preprocessor: a keras-hub text-classifier preprocessor.

    Returns:
        An unbatched `tf.data.Dataset` of `(x, label)`, in the same order.

    Example:

    >>> import keras_hub
    >>> vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "fine", "film"]
    >>> preprocessor = keras_hub.models.BertTextClassifierPreprocessor(
    ...     keras_hub.models.BertTokenizer(vocabulary=vocabulary), sequence_length=6)
    >>> data = tf.data.Dataset.from_tensor_slices((["a fine film", "a film"], [1, 0]))
    >>> x, label = next(iter(tokenized_examples(data, preprocessor)))
    >>> x["token_ids"].numpy().tolist(), int(label)
    ([2, 5, 6, 7, 3, 0], 1)
    """
    tokenized = (
        dataset.batch(1024)
        .map(
            functools.partial(causal_lm_inputs, preprocessor),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        .unbatch()
    )
    count = int(dataset.cardinality())
    if count >= 0:
        # `unbatch` forgets the size; Keras needs it for progress bars and to
        # know an epoch's steps before the first one ends.
        tokenized = tokenized.apply(tf.data.experimental.assert_cardinality(count))
    return tokenized


def _trim_padding(x, y):
    length = tf.reduce_sum(tf.cast(x["padding_mask"], tf.int32))
    return {key: value[:length] for key, value in x.items()}, y


def _pad_to_bucket(x, bucket_lengths, padding_values):
    length = tf.shape(x["padding_mask"])[1]
    buckets = tf.constant(bucket_lengths, tf.int32)
    target = tf.reduce_min(tf.boolean_mask(buckets, buckets >= length))
    return {
        key: tf.pad(
            value,
            [[0, 0], [0, target - length]],
            constant_values=padding_values[key],
        )
        for key, value in x.items()
    }
