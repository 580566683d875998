"""Prompt-response data for causal LMs: `{"prompts": [...], "responses":
[...]}`, keras-hub's convention (its Gemma 3 and 4 preprocessors'), for
every keras-hub `CausalLM`: a model fine-tunes, distills and is scored on
the responses' tokens alone, as TRL trains on prompt-completion data.

Prompt and response are tokenized apart and their tokens joined, so the
response's tokens are those the model produces after the prompt's tokens at
generation time (`generate(prompt)` tokenizes the prompt alone); tokenizing
the joined text could merge the prompt's last characters with the
response's first.
"""

import numpy as np
import tensorflow as tf

from keras_kd.utils.validation import is_prompt_responses


def start_token_ids(preprocessor):
    """The start token a causal LM's preprocessor prepends to a text, as a
    list: `[id]`, or `[]` when it adds none (`add_start_token=False`, or a
    tokenizer without one, such as Qwen's, whose preprocessor says
    `add_start_token=True` and adds nothing).

    Args:
        preprocessor: a keras-hub `CausalLMPreprocessor`.

    Returns:
        A list of at most one int.

    Example:

    >>> import keras_hub
    >>> from keras_kd.utils.testing import tiny_llama3_tokenizer
    >>> tokenizer = tiny_llama3_tokenizer()
    >>> start_token_ids(keras_hub.models.Llama3CausalLMPreprocessor(tokenizer))
    [1]
    >>> start_token_ids(keras_hub.models.Llama3CausalLMPreprocessor(tokenizer, add_start_token=False))
    []
    >>> qwen = keras_hub.models.QwenTokenizer(vocabulary=tokenizer.vocabulary, merges=["Ġ t"])
    >>> start_token_ids(keras_hub.models.QwenCausalLMPreprocessor(qwen))
    []
    """
    token = getattr(preprocessor.tokenizer, "start_token_id", None)
    if not getattr(preprocessor, "add_start_token", False) or token is None:
        return []
    return [int(token)]


def mask_prompts(sample_weight, lengths):
    """Zeroes the weight of the label positions that predict prompt tokens.

    Position `i` of the labels is the token after `token_ids[i]`, so a
    prompt of `n` tokens (its start token included) fills label positions
    `0 .. n - 2`.

    Args:
        sample_weight: `(batch, sequence)` weights of the labels.
        lengths: `(batch,)` prompt lengths in tokens.

    Returns:
        The weights as float32, 0 at the prompts' label positions (a NumPy
        array for NumPy inputs, a tensor for tensors).

    Example:

    >>> mask_prompts(np.ones((2, 5)), np.array([3, 1])).tolist()
    [[0.0, 0.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0, 1.0]]
    """
    weight = tf.cast(sample_weight, "float32")
    positions = tf.range(tf.shape(weight)[1])[None, :]
    lengths = tf.cast(lengths, "int32")[:, None]
    masked = weight * tf.cast(positions >= lengths - 1, "float32")
    if isinstance(sample_weight, np.ndarray):
        return masked.numpy()
    return masked


def _tokens(tokenizer, texts):
    """Token ids of `texts` and their lengths: lists eagerly (keras-hub's
    Python path), a `tf.RaggedTensor` in a `tf.data` pipeline."""
    ids = tokenizer(texts)
    if isinstance(ids, tf.RaggedTensor):
        return ids, ids.row_lengths()
    ids = [list(row) for row in ids]
    return ids, np.array([len(row) for row in ids])


def preprocess_prompt_responses(preprocessor, x, sequence_length=None):
    """What a keras-hub `CausalLMPreprocessor` returns for texts, for
    prompt-response pairs: `(x, y, sample_weight)`, the prompt's label
    positions weighted 0.

    Each row is the preprocessor's start token (if it adds one), the
    prompt's tokens, the response's and its end token (if it adds one), cut
    at `sequence_length` (the response's end first). A prompt that fills the
    row leaves it no weight.

    Args:
        preprocessor: a keras-hub `CausalLMPreprocessor`.
        x: `{"prompts": ..., "responses": ...}`: lists or string tensors of
            one batch.
        sequence_length: tokens per row; default: the preprocessor's.

    Returns:
        `(x, y, sample_weight)`: `x` a dict of `token_ids` and
        `padding_mask`, `y` the next tokens, `sample_weight` float32.

    Example:

    >>> from keras_kd.utils.testing import tiny_llama3_causal_lm
    >>> preprocessor = tiny_llama3_causal_lm().preprocessor
    >>> x, y, weight = preprocess_prompt_responses(
    ...     preprocessor, {"prompts": ["the cat"], "responses": [" sat"]}, sequence_length=12)
    >>> np.asarray(weight).tolist()
    [[0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]]
    >>> # The weighted labels: the response's tokens, then the end token.
    >>> np.asarray(y)[np.asarray(weight) > 0].tolist() == (
    ...     list(preprocessor.tokenizer([" sat"])[0]) + [preprocessor.tokenizer.end_token_id])
    True
    """
    if not preprocessor.built:
        preprocessor.build(None)
    sequence_length = sequence_length or preprocessor.sequence_length
    prompts, lengths = _tokens(preprocessor.tokenizer, x["prompts"])
    responses, _ = _tokens(preprocessor.tokenizer, x["responses"])
    if isinstance(prompts, tf.RaggedTensor):
        joined = tf.concat([prompts, responses], axis=1)
    else:
        joined = [p + r for p, r in zip(prompts, responses)]
    token_ids, padding_mask = preprocessor.packer(
        joined,
        sequence_length=sequence_length + 1,
        add_start_value=preprocessor.add_start_token,
        add_end_value=preprocessor.add_end_token,
    )
    start = len(start_token_ids(preprocessor))
    weight = mask_prompts(padding_mask[..., 1:], lengths + start)
    inputs = {"token_ids": token_ids[..., :-1], "padding_mask": padding_mask[..., :-1]}
    return inputs, token_ids[..., 1:], weight


def check_responses_fit(sample_weight):
    """Refuses prompt-response data none of whose responses fits its rows
    (the prompts fill them): nothing would train or be scored.

    Args:
        sample_weight: the `(examples, sequence)` weights of the rows.

    Example:

    >>> check_responses_fit(np.array([[0.0, 1.0]]))
    >>> check_responses_fit(np.zeros((3, 4)))
    Traceback (most recent call last):
    ...
    ValueError: None of the 3 responses has a token within the sequence length (4 tokens): the prompts fill the rows, and a prompt's tokens carry no loss. Raise the sequence length (the preprocessor's `sequence_length`) or shorten the prompts.
    """
    weight = np.asarray(sample_weight)
    if not weight.any():
        raise ValueError(
            f"None of the {len(weight)} responses has a token within the "
            f"sequence length ({weight.shape[1]} tokens): the prompts fill "
            "the rows, and a prompt's tokens carry no loss. Raise the "
            "sequence length (the preprocessor's `sequence_length`) or "
            "shorten the prompts."
        )


def causal_lm_inputs(preprocessor, x, *rest, sequence_length=None):
    """`preprocessor(x, *rest)`, or `preprocess_prompt_responses` when `x`
    is prompt-response data (which carries no labels or weights beside it).

    Example:

    >>> from keras_kd.utils.testing import tiny_llama3_causal_lm
    >>> preprocessor = tiny_llama3_causal_lm().preprocessor
    >>> _, _, weight = causal_lm_inputs(preprocessor, ["the cat sat"], sequence_length=4)
    >>> np.asarray(weight).tolist()
    [[True, True, True, True]]
    """
    kwargs = {} if sequence_length is None else {"sequence_length": sequence_length}
    if is_prompt_responses(x):
        return preprocess_prompt_responses(preprocessor, x, **kwargs)
    return preprocessor(x, *rest, **kwargs)
