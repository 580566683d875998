"""Training text made by generation: prompts cut from the data,
sequence-level distillation (Kim & Rush, 2016), where the student trains on
the teacher's own continuations of those prompts, and new in-domain texts
for a classifier's student (`in_domain_texts`), which its teacher then
labels."""

import numpy as np
import tensorflow as tf

from keras_kd.transfer.causal_lm import prompt_token_ids
from keras_kd.utils.validation import check_int, check_prompts_fit, check_texts


def split_prompts(texts, prompt_words=4):
    """Splits each text into a prompt (its first words) and the rest.

    Args:
        texts: a list of strings.
        prompt_words: the number of whitespace-separated words in a prompt.
            Texts of at most that many words are left out; if every text
            is, `ValueError`.

    Returns:
        `(prompts, continuations)`, two lists of strings; each continuation
        starts with the space that followed its prompt, so
        `prompt + continuation` is the original text.

    Example:

    >>> split_prompts(["a fine and moving film .", "dull"], prompt_words=2)
    (['a fine'], [' and moving film .'])
    """
    check_int("prompt_words", prompt_words)
    texts = check_texts("texts", texts)
    prompts, continuations = [], []
    for text in texts:
        words = text.split(" ")
        if len(words) > prompt_words:
            prompt = " ".join(words[:prompt_words])
            prompts.append(prompt)
            continuations.append(text[len(prompt) :])
    if not prompts:
        raise ValueError(
            f"None of the {len(texts)} texts has more than prompt_words="
            f"{prompt_words} words, so no prompt is left with a continuation. "
            "Pass a smaller prompt_words, or longer texts."
        )
    return prompts, continuations


def generate_texts(model, prompts, max_length, batch_size=16, strip_prompt=False):
    """Generates a continuation of each prompt with a keras-hub `CausalLM`.

    Generation uses the model's sampler (`keras_kd.transfer.set_sampler`:
    `"greedy"`, `"top_k"`, ...), batch by batch, and stops at the model's
    end tokens or at `max_length` tokens in all.

    Args:
        model: a keras-hub `CausalLM` with a preprocessor.
        prompts: a list of strings.
        max_length: the most tokens of prompt and continuation together.
        batch_size: prompts generated at once.
        strip_prompt: return the continuations alone.

    Raises:
        ValueError: a prompt of `max_length` tokens or more, which
            keras-hub's `generate` would cut short without a word.

    Returns:
        A list of strings: each prompt followed by its continuation (the
        continuation alone with `strip_prompt`).

    Example, with a tiny random causal LM:

    >>> from keras_kd.utils.testing import tiny_llama3_causal_lm
    >>> model = tiny_llama3_causal_lm(num_layers=1)
    >>> texts = generate_texts(model, ["the cat", "a dog sat"], max_length=12)
    >>> [text.startswith(prompt) for text, prompt in zip(texts, ["the cat", "a dog sat"])]
    [True, True]
    >>> generate_texts(model, ["the cat"], max_length=12, strip_prompt=True)[0] == texts[0][len("the cat"):]
    True
    >>> generate_texts(model, ["a dog sat on the mat"], max_length=8)
    Traceback (most recent call last):
    ...
    ValueError: The prompts ['a dog sat on the mat'] (15 tokens) do not fit max_length=8 tokens, which holds the prompt and at least one generated token: prompts of at most 7 tokens. Shorten the prompts (`split_prompts(texts, prompt_words=...)`), or pass a larger max_length.
    """
    check_int("max_length", max_length, minimum=2)
    check_int("batch_size", batch_size)
    prompts = check_texts("prompts", prompts)
    check_prompts_fit(
        prompts, [len(ids) for ids in prompt_token_ids(model, prompts)], max_length,
        f"max_length={max_length} tokens",
        "Shorten the prompts (`split_prompts(texts, prompt_words=...)`), or pass a larger max_length.",
    )
    texts = []
    for start in range(0, len(prompts), batch_size):
        outputs = model.generate(
            prompts[start : start + batch_size], max_length=max_length,
            strip_prompt=strip_prompt,
        )
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

    Example, with a tiny random causal LM:

    >>> from keras_kd.utils.testing import tiny_llama3_causal_lm
    >>> teacher = tiny_llama3_causal_lm(num_layers=1)
    >>> dataset = sequence_kd_dataset(teacher, ["the cat", "a dog"], max_length=8)
    >>> int(dataset.cardinality()), dataset.element_spec.dtype.name
    (2, 'string')
    """
    texts = generate_texts(teacher, prompts, max_length, batch_size=batch_size)
    return tf.data.Dataset.from_tensor_slices(texts)


def in_domain_texts(model, texts, num_texts, prompt_words=4, max_length=48, batch_size=16, seed=0):
    """New texts like `texts`: a causal LM's continuations of prompts cut
    from them, for a student to learn its teacher on more of the domain
    than the labelled data holds.

    Each prompt is the first `prompt_words` words of a text drawn at
    random (seeded; every text with more words is drawn before any is
    drawn again). The model continues each with its sampler (set a
    sampling one, such as `"top_k"`, with `keras_kd.transfer.set_sampler`:
    greedy decoding gives one continuation per prompt) up to `max_length`
    tokens in all; each text ends at its first line break, and texts that
    repeat one another or a text of `texts` are dropped.

    Args:
        model: a keras-hub `CausalLM` with a preprocessor.
        texts: the data's texts (a list of strings).
        num_texts: how many prompts to continue.
        prompt_words: the words of each prompt.
        max_length: the most tokens of a prompt and its continuation.
        batch_size: prompts generated at once.
        seed: the seed of the draw.

    Returns:
        A list of at most `num_texts` new strings, in the order drawn.

    Example:

    >>> from keras_kd.utils.testing import tiny_llama3_causal_lm
    >>> lm = tiny_llama3_causal_lm()
    >>> new = in_domain_texts(lm, ["a fine and moving film", "a dull plot"],
    ...                       num_texts=2, prompt_words=2, max_length=8)
    >>> len(new), all(t.startswith(("a fine", "a dull")) for t in new)
    (2, True)
    """
    check_int("num_texts", num_texts)
    check_int("max_length", max_length, minimum=2)
    prompts, _ = split_prompts(list(texts), prompt_words)
    # A few words can be many tokens (a URL, another script): such prompts
    # are left out rather than failing the run.
    prompts = [
        p for p, ids in zip(prompts, prompt_token_ids(model, prompts)) if len(ids) < max_length
    ]
    if not prompts:
        raise ValueError(
            f"No text of `texts` has more than prompt_words={prompt_words} "
            f"words whose first {prompt_words} fit in max_length={max_length} "
            "tokens with room to continue them. Pass a smaller `prompt_words` "
            "or a larger `max_length`."
        )
    rng = np.random.default_rng(seed)
    rounds = -(-num_texts // len(prompts))
    order = np.concatenate([rng.permutation(len(prompts)) for _ in range(rounds)])
    drawn = [prompts[i] for i in order[:num_texts]]
    seen = set(texts)
    new = []
    for text in generate_texts(model, drawn, max_length, batch_size=batch_size):
        text = text.split("\n", 1)[0].strip()
        if text and text not in seen:
            seen.add(text)
            new.append(text)
    return new
