"""`verify_litert_lm`: greedy generation of a `.litertlm` bundle in the
LiteRT-LM runtime, from raw text, against the Keras model's own greedy
`generate`, token for token, with the runtime's speeds and the file size.

`keras_greedy_tokens` is the Keras side: keras-hub's compiled generation
function (`CausalLM.make_generate_function`, the one `generate` runs) with a
greedy sampler, on the preprocessor's token ids of the prompts; the model's
sampler is restored afterwards. It stops where the bundle must: the runtime
fits the prompt and the generated tokens in the bundle's context
(`max_num_tokens`), and refuses a prompt that fills it
(`check_prompt_lengths`).
"""

import dataclasses
import os
import statistics

import numpy as np

from keras_kd.export.litert_lm_runtime import UNDECODED, LiteRTLMGenerator, read_bundle
from keras_kd.transfer.causal_lm import generation_settings, prompt_token_ids
from keras_kd.utils.validation import check_int, check_prompts_fit

# Short, varied English openings (reviews, facts, dialogue, lists): enough
# for a float32 bundle to show any divergence from Keras within a few tokens.
DEFAULT_VERIFICATION_PROMPTS = (
    "The movie was",
    "Once upon a time",
    "The capital of France is",
    "I really enjoyed the",
    "This film is a",
    "The best thing about the book was",
    "She opened the door and",
    "In the morning, the",
    "The acting was terrible, but",
    "My favourite food is",
    "The weather today is",
    "He said that the",
    "A good story needs",
    "The plot of the film",
    "After the rain, the",
    "One, two, three,",
    "The director's new movie",
    "It was the worst",
    "Water boils at",
    "The children played in the",
)


@dataclasses.dataclass
class PromptComparison:
    """One prompt, generated greedily by Keras and by the bundle.

    Attributes:
        prompt: the raw text.
        prompt_ids_match: whether the runtime's tokenizer gave the Keras
            preprocessor's ids for the prompt.
        keras_tokens, litert_tokens: the generated ids (stop token excluded).
        identical: whether they are equal.
        first_difference: index of the first differing generated token
            (None when identical; the shorter length when one is a prefix).
        litert_text: the runtime's generated text.
    """

    prompt: str
    prompt_ids_match: bool
    keras_tokens: list
    litert_tokens: list
    identical: bool
    first_difference: int = None
    litert_text: str = ""


@dataclasses.dataclass
class LiteRTLMVerification:
    """How a `.litertlm` bundle's greedy generation compares with Keras.

    Attributes:
        path: the bundle.
        size_bytes: its size.
        max_new_tokens: tokens generated per prompt (at most).
        prompts: a `PromptComparison` per prompt.
        identical_prompts: share of prompts with identical tokens.
        token_agreement: share of generated positions (up to the longer of
            the two generations) where both have the same token.
        first_difference_mean: mean first differing position over the
            prompts that differ (None if all are identical).
        prefill_tokens_per_second, decode_tokens_per_second: medians over
            the prompts of the runtime's own benchmark figures.
        num_threads: the runtime's CPU threads (None: its default).
    """

    path: str
    size_bytes: int
    max_new_tokens: int
    prompts: list
    identical_prompts: float
    token_agreement: float
    first_difference_mean: float = None
    prefill_tokens_per_second: float = None
    decode_tokens_per_second: float = None
    num_threads: int = None

    @property
    def all_identical(self):
        return all(p.identical and p.prompt_ids_match for p in self.prompts)

    def to_dict(self):
        return dataclasses.asdict(self)


def _until_stop(ids, stop_ids):
    out = []
    for token in ids:
        if token in stop_ids:
            break
        out.append(int(token))
    return out


def stop_token_ids(causal_lm):
    """The ids keras-hub's `generate` stops at ("auto")."""
    tokenizer = causal_lm.preprocessor.tokenizer
    ids = [tokenizer.end_token_id]
    if getattr(tokenizer, "end_token2_id", None) is not None:
        ids.append(tokenizer.end_token2_id)
    return ids


def check_prompt_lengths(causal_lm, prompts, max_sequence_length):
    """The Keras model's ids of `prompts` (`prompt_token_ids`), refusing a
    prompt that leaves no room for a generated token in a context of
    `max_sequence_length` tokens: the LiteRT-LM runtime's prefill fails on
    it.

    Args:
        causal_lm: a keras-hub causal LM with its preprocessor.
        prompts: raw texts.
        max_sequence_length: the bundle's context length.

    Returns:
        A list of lists of ints, one per prompt.

    Raises:
        ValueError: naming each prompt too long, its length and the context.

    Example (`causal_lm`: a tiny Llama without a start token):

    >>> check_prompt_lengths(causal_lm, ["the tea"], max_sequence_length=8)
    [[22, 33, 32, 7, 3]]
    >>> check_prompt_lengths(causal_lm, ["the tea"], max_sequence_length=5)
    Traceback (most recent call last):
    ...
    ValueError: The prompts ['the tea'] (5 tokens) do not fit a context of max_sequence_length=5 tokens, which holds the prompt and at least one generated token: prompts of at most 4 tokens. Shorten the prompts or export with a larger max_sequence_length.
    """
    prompt_ids = prompt_token_ids(causal_lm, prompts)
    check_prompts_fit(
        prompts, [len(ids) for ids in prompt_ids], max_sequence_length,
        f"a context of max_sequence_length={max_sequence_length} tokens",
        "Shorten the prompts or export with a larger max_sequence_length.",
    )
    return prompt_ids


def keras_greedy_tokens(causal_lm, prompts, max_new_tokens, max_sequence_length=None):
    """Greedy continuations of `prompts` by the Keras model, as token ids.

    One batch through keras-hub's compiled generation function with a
    `GreedySampler` (the model's own sampler is restored afterwards), padded
    to the longest prompt plus `max_new_tokens`; each row is cut at its
    first stop token, at `max_new_tokens` and where the prompt and its
    continuation fill `max_sequence_length` tokens, as the LiteRT-LM
    runtime stops.

    Args:
        causal_lm: a keras-hub causal LM with its preprocessor.
        prompts: raw texts.
        max_new_tokens: tokens to generate per prompt (at most).
        max_sequence_length: the bundle's context length (None: no limit).

    Returns:
        `(prompt_ids, generated_ids)`: two lists of lists of ints.

    Raises:
        ValueError: a prompt that fills `max_sequence_length`
            (`check_prompt_lengths`).

    Example (`causal_lm`: a tiny Llama; "the tea" is 5 tokens):

    >>> _, (tokens,) = keras_greedy_tokens(causal_lm, ["the tea"], 8, max_sequence_length=8)
    >>> len(tokens)
    3
    """
    import keras_hub

    if max_sequence_length is None:
        prompt_ids = prompt_token_ids(causal_lm, prompts)
        limits = [max_new_tokens] * len(prompts)
    else:
        prompt_ids = check_prompt_lengths(causal_lm, prompts, max_sequence_length)
        limits = [min(max_new_tokens, max_sequence_length - len(ids)) for ids in prompt_ids]
    length = max(len(ids) + limit for ids, limit in zip(prompt_ids, limits))
    token_ids = np.zeros((len(prompts), length), np.int32)
    padding_mask = np.zeros((len(prompts), length), bool)
    for row, ids in enumerate(prompt_ids):
        token_ids[row, : len(ids)] = ids
        padding_mask[row, : len(ids)] = True
    stops = stop_token_ids(causal_lm)
    with generation_settings(causal_lm, sampler=keras_hub.samplers.GreedySampler()):
        generate = causal_lm.make_generate_function()
        outputs = generate(
            {"token_ids": token_ids, "padding_mask": padding_mask},
            stop_token_ids=tuple(stops),
        )
    outputs = np.asarray(outputs["token_ids"])
    generated = [
        _until_stop(outputs[row, len(ids) : len(ids) + limit], stops)
        for row, (ids, limit) in enumerate(zip(prompt_ids, limits))
    ]
    return prompt_ids, generated


def _byte_fragments(causal_lm):
    """Whether a token id is shown as U+FFFD alone: a byte-level piece of a
    UTF-8 character (or the U+FFFD token itself), which the runtime streams
    as that character, so its id comes back as None."""
    tokenizer = causal_lm.preprocessor.tokenizer

    def is_fragment(token_id):
        return set(str(tokenizer.detokenize([int(token_id)]))) == {UNDECODED}

    return is_fragment


def _same_token(keras_token, litert_token, is_fragment):
    if litert_token is None:
        return is_fragment(keras_token)
    return keras_token == litert_token


def _compare(prompt, keras_prompt, keras_tokens, generation, is_fragment):
    first = None
    for i, (a, b) in enumerate(zip(keras_tokens, generation.token_ids)):
        if not _same_token(a, b, is_fragment):
            first = i
            break
    if first is None and len(keras_tokens) != len(generation.token_ids):
        first = min(len(keras_tokens), len(generation.token_ids))
    return PromptComparison(
        prompt=prompt,
        prompt_ids_match=list(keras_prompt) == list(generation.prompt_token_ids),
        keras_tokens=list(keras_tokens),
        litert_tokens=list(generation.token_ids),
        identical=first is None,
        first_difference=first,
        litert_text=generation.text,
    )


def verify_litert_lm(
    path, causal_lm, prompts=None, max_new_tokens=16, num_threads=None
):
    """Compares a `.litertlm` bundle's greedy generation with Keras.

    Each prompt goes to the LiteRT-LM runtime as raw text (no chat template,
    greedy sampling: top-k 1); the runtime tokenizes it with the bundle's
    `tokenizer.json`. The Keras model generates from its preprocessor's ids
    (`keras_greedy_tokens`), up to the bundle's context length, where the
    runtime stops. A float32 bundle should give identical tokens.

    Args:
        path: the `.litertlm` bundle.
        causal_lm: the keras-hub causal LM it was exported from.
        prompts: raw texts (default: `DEFAULT_VERIFICATION_PROMPTS`, 20).
        max_new_tokens: tokens to generate per prompt (fewer at a stop token).
        num_threads: the runtime's CPU threads (default: its own).

    Returns:
        A `LiteRTLMVerification`.

    Raises:
        ValueError: a prompt that fills the bundle's context
            (`check_prompt_lengths`).

    Example, with `causal_lm` a tiny Llama and `litertlm_path` its float32
    bundle (see `conftest.py`):

    >>> report = verify_litert_lm(
    ...     litertlm_path, causal_lm, ["the tea", "a cat sat"], max_new_tokens=4
    ... )
    >>> report.all_identical, report.identical_prompts
    (True, 1.0)
    """
    check_int("max_new_tokens", max_new_tokens)
    prompts = check_prompts(
        DEFAULT_VERIFICATION_PROMPTS if prompts is None else prompts
    )
    metadata = read_bundle(path, include_model=False)["llm_metadata"]
    keras_prompts, keras_tokens = keras_greedy_tokens(
        causal_lm, prompts, max_new_tokens,
        max_sequence_length=metadata.max_num_tokens if metadata is not None else None,
    )
    comparisons, prefill, decode = [], [], []
    is_fragment = _byte_fragments(causal_lm)
    with LiteRTLMGenerator(path, num_threads=num_threads) as generator:
        for prompt, ids, tokens in zip(prompts, keras_prompts, keras_tokens):
            generation = generator.generate(prompt, max_new_tokens=max_new_tokens)
            comparisons.append(_compare(prompt, ids, tokens, generation, is_fragment))
            if generation.prefill_tokens_per_second:
                prefill.append(generation.prefill_tokens_per_second)
            if generation.decode_tokens_per_second:
                decode.append(generation.decode_tokens_per_second)
    agree = total = 0
    for c in comparisons:
        length = max(len(c.keras_tokens), len(c.litert_tokens))
        total += length
        agree += sum(
            _same_token(a, b, is_fragment) for a, b in zip(c.keras_tokens, c.litert_tokens)
        )
    firsts = [c.first_difference for c in comparisons if not c.identical]
    return LiteRTLMVerification(
        path=os.fspath(path),
        size_bytes=os.path.getsize(path),
        max_new_tokens=max_new_tokens,
        prompts=comparisons,
        identical_prompts=float(np.mean([c.identical for c in comparisons])),
        token_agreement=agree / total if total else 1.0,
        first_difference_mean=float(np.mean(firsts)) if firsts else None,
        prefill_tokens_per_second=statistics.median(prefill) if prefill else None,
        decode_tokens_per_second=statistics.median(decode) if decode else None,
        num_threads=num_threads,
    )


def check_prompts(prompts, name="verification_prompts"):
    """A list of non-empty strings, or `ValueError` quoting the bad value."""
    if not isinstance(prompts, str):
        prompts = list(prompts) if hasattr(prompts, "__iter__") else prompts
    if isinstance(prompts, str) or not isinstance(prompts, list) or not all(
        isinstance(p, str) and p for p in prompts
    ):
        raise ValueError(
            f"`{name}` must be a list of non-empty strings, e.g. "
            f"['The movie was']. Received: {name}={prompts!r}"
        )
    if not prompts:
        raise ValueError(
            f"`{name}` is empty: give at least one prompt, e.g. "
            "['The movie was']."
        )
    return prompts
