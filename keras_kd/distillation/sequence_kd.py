"""Training text made by generation: prompts cut from the data, and
sequence-level distillation (Kim & Rush, 2016), where the student trains on
the teacher's own continuations of those prompts."""

import numpy as np
import tensorflow as tf

from keras_kd.utils.validation import check_int


def split_prompts(texts, prompt_words=4):
    """Splits each text into a prompt (its first words) and the rest.

    Args:
        texts: a list of strings.
        prompt_words: the number of whitespace-separated words in a prompt.
            Texts of at most that many words are left out.

    Returns:
        `(prompts, continuations)`, two lists of strings; each continuation
        starts with the space that followed its prompt, so
        `prompt + continuation` is the original text.

    Example:

    >>> split_prompts(["a fine and moving film .", "dull"], prompt_words=2)
    (['a fine'], [' and moving film .'])
    """
    check_int("prompt_words", prompt_words)
    prompts, continuations = [], []
    for text in texts:
        words = text.split(" ")
        if len(words) > prompt_words:
            prompt = " ".join(words[:prompt_words])
            prompts.append(prompt)
            continuations.append(text[len(prompt) :])
    return prompts, continuations


def generate_texts(model, prompts, max_length, batch_size=16):
    """Generates a continuation of each prompt with a keras-hub `CausalLM`.

    Generation uses the model's sampler (`keras_kd.transfer.set_sampler`:
    `"greedy"`, `"top_k"`, ...), batch by batch, and stops at the model's
    end tokens or at `max_length` tokens in all.

    Args:
        model: a keras-hub `CausalLM` with a preprocessor.
        prompts: a list of strings.
        max_length: the most tokens of prompt and continuation together.
        batch_size: prompts generated at once.

    Returns:
        A list of strings: each prompt followed by its continuation.
    """
    check_int("max_length", max_length, minimum=2)
    check_int("batch_size", batch_size)
    prompts = list(prompts)
    texts = []
    for start in range(0, len(prompts), batch_size):
        outputs = model.generate(prompts[start : start + batch_size], max_length=max_length)
        texts.extend(str(text) for text in np.asarray(outputs).reshape(-1))
    return texts


def sequence_kd_dataset(teacher, prompts, max_length, batch_size=16):
    """Sequence-level knowledge distillation data: the teacher's
    continuations of `prompts`, as a dataset of strings to train a student
    on (with `Distiller(alpha=0)`, the student's cross-entropy on the
    teacher's text; with `alpha > 0`, token-level distillation on it too).

    Args:
        teacher: a keras-hub `CausalLM`; its sampler chooses greedy or
            sampled continuations.
        prompts: a list of strings (`split_prompts` cuts them from data).
        max_length: the most tokens of each generated text.
        batch_size: prompts generated at once.

    Returns:
        A `tf.data.Dataset` of strings, one per prompt, unbatched.
    """
    texts = generate_texts(teacher, prompts, max_length, batch_size=batch_size)
    return tf.data.Dataset.from_tensor_slices(texts)
