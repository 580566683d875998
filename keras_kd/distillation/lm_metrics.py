"""Measures of causal language models: perplexity (a Keras metric and a
whole-corpus evaluation) and top-1 agreement with a teacher."""

import math
import time

import keras
import tensorflow as tf
from keras import ops

from keras_kd.utils.validation import check_int


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
    model, texts, teacher=None, batch_size=16, sequence_length=64, jit_compile=True
):
    """Held-out perplexity of a keras-hub `CausalLM`, and its top-1
    agreement with a teacher's next token.

    Every text is preprocessed with the model's preprocessor (at most
    `sequence_length` tokens) and scored at its unpadded positions.

    Args:
        model: a keras-hub `CausalLM` with a preprocessor.
        texts: a list of strings.
        teacher: optional keras-hub `CausalLM` with the same tokenizer.
        batch_size: texts per forward pass.
        sequence_length: tokens per text.
        jit_compile: compile the forward passes with XLA.

    Returns:
        A dict: `perplexity`, `tokens` (positions scored) and, with a
        teacher, `top1_agreement` (the fraction of positions where the
        model's most likely next token is the teacher's).
    """
    check_int("batch_size", batch_size)
    check_int("sequence_length", sequence_length, minimum=2)
    preprocessor = model.preprocessor
    dataset = (
        tf.data.Dataset.from_tensor_slices(list(texts))
        .batch(batch_size)
        .map(lambda t: preprocessor(t, sequence_length=sequence_length))
    )

    @tf.function(jit_compile=jit_compile, reduce_retracing=True)
    def score(x, y, weight):
        logits = model(x, training=False)
        weight = tf.cast(weight, "float32")
        nll = tf.reduce_sum(token_nll(y, logits) * weight)
        agree = tf.constant(0.0)
        if teacher is not None:
            same = tf.equal(
                tf.argmax(logits, axis=-1), tf.argmax(teacher(x, training=False), axis=-1)
            )
            agree = tf.reduce_sum(tf.cast(same, "float32") * weight)
        return nll, agree, tf.reduce_sum(weight)

    nll = agree = count = 0.0
    for x, y, weight in dataset:
        batch_nll, batch_agree, batch_count = score(x, y, weight)
        nll += float(batch_nll)
        agree += float(batch_agree)
        count += float(batch_count)
    result = {"perplexity": math.exp(nll / count), "tokens": int(count)}
    if teacher is not None:
        result["top1_agreement"] = agree / count
    return result



def greedy_tokens_per_second(model, prompts, max_length):
    """Greedy generation speed of a keras-hub `CausalLM` at batch 1.

    Each prompt is continued to `max_length` tokens without stopping, after
    a warm-up call that compiles the generate function for this length;
    the new tokens of all prompts are divided by the time of all calls.

    Args:
        model: a keras-hub `CausalLM` with a preprocessor.
        prompts: a list of strings, each shorter than `max_length` tokens.
        max_length: tokens per generation, prompt included.

    Returns:
        Generated tokens per second.

    Example:

    >>> from keras_kd.utils.testing import tiny_llama3_causal_lm
    >>> greedy_tokens_per_second(tiny_llama3_causal_lm(), ["the tea"], max_length=8) > 0
    True
    """
    check_int("max_length", max_length, minimum=2)
    lengths = [len(model.preprocessor.tokenizer(p)) for p in prompts]
    if max(lengths) >= max_length:
        raise ValueError(
            f"A prompt of {max(lengths)} tokens leaves nothing to generate at "
            f"max_length={max_length}: pass a larger max_length or shorter "
            "prompts."
        )
    model.generate(prompts[0], max_length=max_length, stop_token_ids=None)
    start = time.perf_counter()
    for prompt in prompts:
        model.generate(prompt, max_length=max_length, stop_token_ids=None)
    new_tokens = sum(max_length - length for length in lengths)
    return new_tokens / (time.perf_counter() - start)
