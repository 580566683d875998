"""Measures of causal language models: perplexity (a Keras metric and a
whole-corpus evaluation) and top-1 agreement with a teacher."""

import math
import time

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_kd.transfer.causal_lm import check_same_vocabulary, generation_settings
from keras_kd.datasets.prompt_responses import causal_lm_inputs, start_token_ids
from keras_kd.utils.validation import check_causal_lm_texts, check_choice, check_int, is_prompt_responses


def token_nll(labels, logits):
    """Negative log-likelihood of each label under `logits`, in float32
    from `log_softmax`.

    Args:
        labels: int tensor `(batch, sequence)`.
        logits: `(batch, sequence, vocabulary)`.

    Returns:
        float32 tensor `(batch, sequence)`.
    """
    log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
    labels = ops.expand_dims(ops.cast(labels, "int32"), -1)
    return -ops.squeeze(ops.take_along_axis(log_probs, labels, axis=-1), -1)


@keras.saving.register_keras_serializable(package="keras_kd")
class Perplexity(keras.metrics.Metric):
    """Perplexity of next-token predictions: `exp` of the mean negative
    log-likelihood over the weighted (unpadded) label positions.

    Pass it as `metrics=[keras_kd.metrics.Perplexity()]`: keras-hub's
    preprocessors give the padding mask as the sample weight.

    Example:

    >>> import numpy as np
    >>> metric = Perplexity()
    >>> logits = np.log(np.array([[[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]]]))
    >>> metric.update_state(np.array([[0, 2]]), logits, np.array([[1, 0]]))
    >>> round(float(metric.result()), 4)   # exp(-log 0.5); padding ignored
    2.0
    """

    def __init__(self, name="perplexity", **kwargs):
        super().__init__(name=name, **kwargs)
        self.total = self.add_variable((), "zeros", dtype="float32", name="total")
        self.count = self.add_variable((), "zeros", dtype="float32", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        nll = token_nll(y_true, y_pred)
        weight = (
            ops.ones_like(nll)
            if sample_weight is None
            else ops.cast(ops.reshape(sample_weight, ops.shape(nll)), "float32")
        )
        self.total.assign_add(ops.sum(nll * weight))
        self.count.assign_add(ops.sum(weight))

    def result(self):
        return ops.exp(ops.divide_no_nan(self.total, self.count))

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)


def evaluate_causal_lm(
    model,
    texts,
    teacher=None,
    batch_size=16,
    sequence_length=64,
    jit_compile=True,
    return_predictions=False,
):
    """Held-out perplexity of a keras-hub `CausalLM`, and its top-1
    agreement with a teacher's next token.

    Every text is preprocessed with the model's preprocessor (at most
    `sequence_length` tokens) and scored at its unpadded positions; of
    prompt-response data, the responses' tokens alone are scored.

    Args:
        model: a keras-hub `CausalLM` with a preprocessor.
        texts: a list of strings, or prompt-response data
            `{"prompts": [...], "responses": [...]}`.
        teacher: optional keras-hub `CausalLM` with the same tokenizer, or
            its next-token predictions on the same `texts` at the same
            `sequence_length` (`predictions` of an earlier call with
            `return_predictions=True`): a teacher scored once serves the
            agreement of several students without running it again.
        batch_size: texts per forward pass.
        sequence_length: tokens per text.
        jit_compile: compile the forward passes with XLA.
        return_predictions: also return the model's most likely next token
            at every position.

    Returns:
        A dict: `perplexity`, `tokens` (positions scored) and, with a
        teacher, `top1_agreement` (the fraction of positions where the
        model's most likely next token is the teacher's); with
        `return_predictions`, `predictions`, an int32 array
        `(len(texts), sequence_length)` (padded positions included).

    Raises:
        ValueError: `teacher` is an array of another shape than
            `(len(texts), sequence_length)`, or a model whose tokenizer
            differs from `model`'s (`keras_kd.transfer.causal_lm.check_same_vocabulary`:
            score a student's agreement before trimming its vocabulary).

    Example (a tiny random model; its own predictions agree with it):

    >>> from keras_kd.utils.testing import tiny_llama3_causal_lm
    >>> model = tiny_llama3_causal_lm(num_layers=1)
    >>> texts = ["the tea is hot", "a cat sat on the mat"]
    >>> scored = evaluate_causal_lm(model, texts, sequence_length=8,
    ...                             jit_compile=False, return_predictions=True)
    >>> scored["predictions"].shape
    (2, 8)
    >>> evaluate_causal_lm(model, texts, teacher=scored["predictions"],
    ...                    sequence_length=8, jit_compile=False)["top1_agreement"]
    1.0
    """
    check_int("batch_size", batch_size)
    check_int("sequence_length", sequence_length, minimum=2)
    texts = check_causal_lm_texts("texts", texts)
    examples = len(texts["prompts"]) if is_prompt_responses(texts) else len(texts)
    teacher_predictions = None
    if teacher is not None and hasattr(teacher, "preprocessor"):
        # The teacher reads the model's token ids, and the agreement
        # compares ids: a trimmed model's would be other tokens.
        check_same_vocabulary(teacher, model, reader="evaluate_causal_lm")
    elif teacher is not None:
        teacher_predictions = np.asarray(teacher)
        if teacher_predictions.shape != (examples, sequence_length):
            raise ValueError(
                "`teacher` predictions must have the shape (len(texts), "
                f"sequence_length) = {(examples, sequence_length)}, those of "
                "evaluate_causal_lm(teacher, texts, sequence_length=..., "
                "return_predictions=True) on the same texts. Received: "
                f"shape {teacher_predictions.shape}"
            )
    @tf.function(jit_compile=jit_compile, reduce_retracing=True)
    def score(x, y, weight, given):
        logits = model(x, training=False)
        weight = tf.cast(weight, "float32")
        nll = tf.reduce_sum(token_nll(y, logits) * weight)
        predicted = tf.cast(tf.argmax(logits, axis=-1), "int32")
        agree = tf.constant(0.0)
        if teacher is not None:
            if teacher_predictions is None:
                given = tf.cast(
                    tf.argmax(teacher(x, training=False), axis=-1), "int32"
                )
            same = tf.equal(predicted, given)
            agree = tf.reduce_sum(tf.cast(same, "float32") * weight)
        return nll, agree, tf.reduce_sum(weight), predicted

    nll = agree = count = 0.0
    predictions = []
    for start in range(0, examples, batch_size):
        if is_prompt_responses(texts):
            rows = {key: column[start : start + batch_size] for key, column in texts.items()}
        else:
            rows = texts[start : start + batch_size]
        size = min(batch_size, examples - start)
        # Tokenized eagerly: tracing the tokenizer into a tf.data pipeline
        # took seconds a call (keras_hub_fixes makes both paths agree). The
        # last batch is padded to a full one (weight 0), so that the forward
        # pass compiles for one shape.
        x, y, weight = causal_lm_inputs(model.preprocessor, rows, sequence_length=sequence_length)
        given = (
            teacher_predictions[start : start + batch_size]
            if teacher_predictions is not None
            else np.zeros((size, sequence_length), "int32")
        )
        x, y, weight, given = keras.tree.map_structure(
            lambda a: _pad_rows(a, batch_size), (x, y, weight, given)
        )
        batch_nll, batch_agree, batch_count, predicted = score(x, y, weight, given)
        nll += float(batch_nll)
        agree += float(batch_agree)
        count += float(batch_count)
        if return_predictions:
            predictions.append(predicted.numpy()[:size])
    if not count and is_prompt_responses(texts):
        raise ValueError(
            f"No token to score: none of the {examples} responses has a "
            f"token within sequence_length={sequence_length} (the prompts "
            "fill the rows, and a prompt's tokens are not scored). Pass a "
            "larger sequence_length, or shorter prompts."
        )
    if not count:
        raise ValueError(
            f"No token to score: none of the {examples} texts has a token "
            "after its first (texts of one token, and a preprocessor that "
            "adds no end token). Pass texts of at least two tokens."
        )
    result = {"perplexity": math.exp(nll / count), "tokens": int(count)}
    if teacher is not None:
        result["top1_agreement"] = agree / count
    if return_predictions:
        result["predictions"] = np.concatenate(predictions)
    return result


def _pad_rows(array, rows):
    """`array` with zero rows added up to `rows`."""
    array = np.asarray(array)
    padding = [(0, rows - len(array))] + [(0, 0)] * (array.ndim - 1)
    return np.pad(array, padding)


def greedy_tokens_per_second(model, prompts, max_length, jit_compile=True):
    """Greedy generation speed of a keras-hub `CausalLM` at batch 1.

    Each prompt is continued to `max_length` tokens without stopping, after
    a warm-up call that compiles the generate function for this length;
    the new tokens of all prompts (not the prompt's, nor a start token the
    preprocessor adds) are divided by the time of all calls.

    The generate function is compiled with the given `jit_compile`, not
    with the model's own setting: a model that went through `compile`
    (a fine-tuned teacher) and one that did not (a fresh student) would
    otherwise be timed one with XLA and one without (on this CPU, XLA
    generates SmolLM2-135M 1.3x faster). The model's setting and compiled
    function are restored afterwards.

    Args:
        model: a keras-hub `CausalLM` with a preprocessor.
        prompts: a list of strings, each shorter than `max_length` tokens.
        max_length: tokens per generation, prompt included.
        jit_compile: compile the generate function with XLA.

    Returns:
        Generated tokens per second.

    Example:

    >>> from keras_kd.utils.testing import tiny_llama3_causal_lm
    >>> greedy_tokens_per_second(tiny_llama3_causal_lm(), ["the tea"], max_length=8) > 0
    True
    """
    check_int("max_length", max_length, minimum=2)
    check_choice("jit_compile", jit_compile, (True, False))
    preprocessor = model.preprocessor
    # The prompt as `generate` sees it: GPT-2's preprocessor, for one,
    # prepends a start token, which is no generated token.
    start = len(start_token_ids(preprocessor))
    lengths = [start + len(preprocessor.tokenizer(p)) for p in prompts]
    if max(lengths) >= max_length:
        raise ValueError(
            f"A prompt of {max(lengths)} tokens leaves nothing to generate at "
            f"max_length={max_length} (the start token the preprocessor adds "
            "counts): pass a larger max_length or shorter prompts."
        )
    with generation_settings(model, jit_compile=jit_compile):
        model.generate(prompts[0], max_length=max_length, stop_token_ids=None)
        start = time.perf_counter()
        for prompt in prompts:
            model.generate(prompt, max_length=max_length, stop_token_ids=None)
        seconds = time.perf_counter() - start
    return sum(max_length - length for length in lengths) / seconds
