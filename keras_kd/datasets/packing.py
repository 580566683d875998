"""`pack_texts`: language-model training rows without padding, the texts
tokenized and concatenated into one token stream."""

import numpy as np
import tensorflow as tf

from keras_kd.datasets.prompt_responses import start_token_ids
from keras_kd.datasets.sources import _check_text
from keras_kd.utils.validation import check_int
from keras_kd.utils.validation import check_texts


def pack_texts(texts, preprocessor, sequence_length=None):
    """Packs texts into full rows for causal-LM training.

    Each text is tokenized as `preprocessor` would (its start token if it
    adds one, the text, its end token if it adds one); the texts follow one
    another in one stream, which is cut into rows of `sequence_length`
    tokens. A row's labels are its tokens shifted by one, and the next row
    starts where it ends, so every token of every text is a label exactly
    once and no text is truncated. Only the last row is padded.

    Short texts leave most of a padded row empty: on movie-review sentences
    at length 48, padding is 47% of the positions, which packing turns into
    training tokens at the same cost per step. Attention crosses the end
    token into the previous text, as in GPT pre-training and TRL's
    `packing=True`.

    Args:
        texts: a list of non-blank strings, in the order they are packed.
        preprocessor: the keras-hub `CausalLMPreprocessor` of the model that
            trains on the rows (its tokenizer and start/end settings).
        sequence_length: tokens per row; default: the preprocessor's.

    Returns:
        An unbatched `tf.data.Dataset` of `(x, labels, sample_weight)` in the
        preprocessor's layout: `x` a dict of `token_ids` (int32) and
        `padding_mask` (bool), `labels` (int32) and `sample_weight` (bool,
        False only where a padded row has no next token).

    Raises:
        ValueError: a text that is not a non-blank string, or a bad
            `sequence_length`; before anything is tokenized.

    Example (a tiny Llama 3 model, end token 2: twelve tokens make three
    rows of four, whose last position has no next token):

    >>> from keras_kd.utils.testing import tiny_llama3_causal_lm
    >>> preprocessor = tiny_llama3_causal_lm(1, 8, 0, 16).preprocessor
    >>> rows = list(pack_texts(["a dog", "the sun"], preprocessor, sequence_length=4))
    >>> [x["token_ids"].numpy().tolist() for x, _, _ in rows]
    [[3, 31, 6, 17], [9, 2, 22, 33], [39, 23, 16, 2]]
    >>> [y.numpy().tolist() for _, y, _ in rows]
    [[31, 6, 17, 9], [2, 22, 33, 39], [23, 16, 2, 0]]
    >>> rows[-1][2].numpy().tolist()
    [True, True, True, False]
    """
    texts = check_texts("texts", texts)
    for i, text in enumerate(texts):
        _check_text(text, f"text {i}")
    if sequence_length is None:
        sequence_length = getattr(preprocessor, "sequence_length", None)
    check_int("sequence_length", sequence_length, example=128)

    tokenizer = preprocessor.tokenizer
    tokens = tokenizer(tf.constant(texts))
    if isinstance(tokens, tf.RaggedTensor):
        tokens = tokens.to_list()
    start = start_token_ids(preprocessor)
    end = [tokenizer.end_token_id] if getattr(preprocessor, "add_end_token", False) else []
    stream = np.array(
        [token for ids in tokens for token in (*start, *ids, *end)], "int32"
    )

    # Row r holds stream[r*L : r*L+L] and its labels stream[r*L+1 : r*L+L+1].
    num_rows = -(-(len(stream) - 1) // sequence_length)
    if num_rows < 1:
        raise ValueError(
            f"The texts make {len(stream)} token(s): too few to train on. "
            "Give more text."
        )
    padded = np.full(num_rows * sequence_length + 1, tokenizer.pad_token_id, "int32")
    padded[: len(stream)] = stream
    position = np.arange(num_rows * sequence_length + 1)
    shape = (num_rows, sequence_length)
    x = {
        "token_ids": padded[:-1].reshape(shape),
        "padding_mask": (position[:-1] < len(stream)).reshape(shape),
    }
    labels = padded[1:].reshape(shape)
    sample_weight = (position[1:] < len(stream)).reshape(shape)
    return tf.data.Dataset.from_tensor_slices((x, labels, sample_weight))
