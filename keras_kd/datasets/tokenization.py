"""Tokenizing `(text, label)` datasets with a keras-hub preprocessor, once:
`tokenize` (cached tokens, then shuffled, batched and optionally bucketed by
length every epoch) and `tokenized_examples` (the unbatched map it starts
from), plus the trimming and padding helpers of length buckets, and
`warn_of_unknown_tokens` for texts a WordPiece vocabulary cannot read."""

import functools
import warnings

import numpy as np
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


# Above this share of unknown tokens a model reads too little of its
# training texts: MiniLM's English vocabulary leaves 68% of a Chinese
# review, 78% of a Korean one and all of a Thai one as [UNK], against 0 to
# 4% for English, Russian and Arabic ones.
_UNKNOWN_SHARE = 0.1


def unknown_token_share(tokenizer, texts, sample=1000):
    """How much of `texts` a tokenizer cannot read: the share of their
    tokens that are its out-of-vocabulary token (`oov_token`, WordPiece's
    `[UNK]`), over the first `sample` texts, and the text with the largest
    share. A tokenizer without one (byte-level BPE reads any text) gives 0.

    Args:
        tokenizer: a keras-hub tokenizer.
        texts: a list of strings.
        sample: how many texts, from the first, are read.

    Returns:
        `(share, text, text_share)`: `text` is None when `share` is 0.

    Example:

    >>> import keras_hub
    >>> tokenizer = keras_hub.models.BertTokenizer(
    ...     vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "film"])
    >>> unknown_token_share(tokenizer, ["a film", "a 電影"])
    (0.4, 'a 電影', 0.6666666666666666)
    """
    oov = getattr(tokenizer, "oov_token", None)
    texts = list(texts[:sample])
    if oov is None or not texts:
        return 0.0, None, 0.0
    ids = tokenizer(tf.constant(texts))
    if isinstance(ids, tf.RaggedTensor):
        ids = ids.to_list()
    elif not isinstance(ids, list):
        ids = np.asarray(ids).tolist()
    oov_id = tokenizer.token_to_id(oov)
    unknown = np.array([sum(i == oov_id for i in row) for row in ids])
    lengths = np.array([max(len(row), 1) for row in ids])
    if not unknown.sum():
        return 0.0, None, 0.0
    worst = int(np.argmax(unknown / lengths))
    return float(unknown.sum() / lengths.sum()), texts[worst], float(unknown[worst] / lengths[worst])


def warn_of_unknown_tokens(tokenizer, texts):
    """Warns when over 10% of the tokens of `texts` (the first 1,000) are
    the tokenizer's unknown token: the model trains on what is left, which
    for text in a script its vocabulary lacks is next to nothing.

    Args:
        tokenizer: a keras-hub tokenizer.
        texts: the training data as given to `fit`; read only when it is a
            list or array of strings.

    Example:

    >>> import keras_hub
    >>> tokenizer = keras_hub.models.BertTokenizer(
    ...     vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "film"])
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_of_unknown_tokens(tokenizer, ["a film", "a film"])
    ...     warn_of_unknown_tokens(tokenizer, ["a \u96fb\u5f71"])
    >>> [str(w.message)[:49] for w in caught]
    ['67% of the tokens of the training texts are [UNK]']
    """
    if not isinstance(texts, (list, np.ndarray)) or not len(texts) or not isinstance(texts[0], str):
        return
    share, text, text_share = unknown_token_share(tokenizer, texts)
    if share > _UNKNOWN_SHARE:
        shown = text if len(text) <= 60 else text[:57] + "..."
        warnings.warn(
            f"{share:.0%} of the tokens of the training texts are "
            f"{tokenizer.oov_token}, words the model's vocabulary has no "
            f"pieces for (the worst text, {text_share:.0%}: {shown!r}): the "
            "model cannot read them and learns from the rest. For text in "
            "other languages or scripts, use a model whose vocabulary covers "
            "them (keras-hub's multilingual preset 'bert_base_multi', or a "
            "Hugging Face folder of a multilingual encoder).",
            # Raised here, so that Python shows it once for the same texts
            # however many steps of a run read them.
            stacklevel=1,
        )
