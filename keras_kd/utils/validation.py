"""Argument checks shared by the whole library.

Each raises `ValueError` with the argument's name, the value received and
what is expected, before any expensive work starts.
"""

import math
import numbers


def check_int(name, value, minimum=1, allow_none=False, example=None, maximum=None, why=None):
    """Checks that `value` is an int (not a bool) of at least `minimum` (and
    at most `maximum`, when given).

    Args:
        name: the argument's name, quoted in the message.
        value: the value to check.
        minimum: the smallest accepted value (1: a positive int).
        allow_none: accept `None` as well.
        example: a valid value for the message (default: `minimum`).
        maximum: the largest accepted value; None: no upper bound.
        why: where the bounds come from, added to the message in
            parentheses (such as "the decoder's positions").

    Returns:
        `value`, unchanged.

    Example:

    >>> check_int("epochs", 3)
    3
    >>> check_int("epochs", 0)
    Traceback (most recent call last):
    ...
    ValueError: `epochs` must be an int >= 1, e.g. 1. Received: epochs=0
    >>> check_int("max_length", 500, 4, maximum=448, why="the decoder's positions")
    Traceback (most recent call last):
    ...
    ValueError: `max_length` must be an int in [4, 448] (the decoder's positions), e.g. 448. Received: max_length=500
    """
    if value is None and allow_none:
        return value
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        what = "None or an int" if allow_none else "an int"
        bounds = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        if example is None:
            example = minimum if maximum is None else maximum
        raise ValueError(
            f"`{name}` must be {what} {bounds}"
            + (f" ({why})" if why else "")
            + f", e.g. {example}. Received: {name}={value!r}"
        )
    return value


def check_sequence_length(sequence_length, allow_none=False, example=128):
    """Checks a text classifier's `sequence_length`: an int of at least 3.

    BERT's and RoBERTa's packers add a start and an end token, so at 2 no
    token of the text is left and every text gets the same prediction.

    Example:

    >>> check_sequence_length(48)
    48
    >>> check_sequence_length(2)
    Traceback (most recent call last):
    ...
    ValueError: `sequence_length` must be an int >= 3 (a start token, an end token and at least one of the text), e.g. 128. Received: sequence_length=2
    """
    return check_int(
        "sequence_length", sequence_length, minimum=3, allow_none=allow_none,
        example=example,
        why="a start token, an end token and at least one of the text",
    )


def check_number(
    name, value, low=None, high=None, low_open=False, high_open=False, example=None
):
    """Checks that `value` is a finite real number within [low, high].

    `low_open`/`high_open` exclude the bound itself. Returns `float(value)`.

    Example:

    >>> check_number("alpha", 0.5, 0, 1)
    0.5
    >>> check_number("temperature", -1, 0, low_open=True)
    Traceback (most recent call last):
    ...
    ValueError: `temperature` must be a finite number > 0. Received: temperature=-1
    """
    ok = (
        not isinstance(value, bool)
        and isinstance(value, numbers.Real)
        and math.isfinite(value)
        and (low is None or (value > low if low_open else value >= low))
        and (high is None or (value < high if high_open else value <= high))
    )
    if not ok:
        bounds = []
        if low is not None:
            bounds.append(f"{'>' if low_open else '>='} {low}")
        if high is not None:
            bounds.append(f"{'<' if high_open else '<='} {high}")
        hint = f", e.g. {example}" if example is not None else ""
        raise ValueError(
            f"`{name}` must be a finite number {' and '.join(bounds)}{hint}. "
            f"Received: {name}={value!r}"
        )
    return float(value)


def check_choice(name, value, choices):
    """Checks that `value` is one of `choices`; returns it.

    Example:

    >>> check_choice("pooling", "max", ("cls", "mean"))
    Traceback (most recent call last):
    ...
    ValueError: `pooling` must be one of 'cls', 'mean'. Received: pooling='max'
    """
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {', '.join(repr(c) for c in choices)}. "
            f"Received: {name}={value!r}"
        )
    return value


def check_seed(seed, shuffle):
    """Refuses a shuffle `seed` without `shuffle=True`: the examples would
    keep their order and the seed go unused. Returns `seed`.

    Example:

    >>> check_seed(0, shuffle=True)
    0
    >>> check_seed(0, shuffle=False)
    Traceback (most recent call last):
    ...
    ValueError: `seed` only applies with shuffle=True; without it the examples keep their order. Pass shuffle=True, or leave `seed` out. Received: seed=0, shuffle=False
    """
    if seed is not None and not shuffle:
        raise ValueError(
            "`seed` only applies with shuffle=True; without it the examples "
            "keep their order. Pass shuffle=True, or leave `seed` out. "
            f"Received: seed={seed!r}, shuffle={shuffle!r}"
        )
    return seed


def check_texts(name, texts):
    """Returns the strings `texts` as a list; raises `ValueError` unless it
    is a non-empty iterable of strings (one string is refused: it is an
    iterable of characters).

    Example:

    >>> check_texts("corpus", (t for t in ["a fine film"]))
    ['a fine film']
    >>> check_texts("corpus", "a fine film")
    Traceback (most recent call last):
    ...
    ValueError: `corpus` must be a list of strings, not one string. Wrap it in a list: corpus=['a fine film']
    """
    if isinstance(texts, str):
        raise ValueError(
            f"`{name}` must be a list of strings, not one string. Wrap it "
            f"in a list: {name}=[{texts!r:.80}]"
        )
    if isinstance(texts, dict):
        # list(a dict) is its keys: a model would train on the column names.
        raise ValueError(
            f"`{name}` must be a list of strings, not a dict (keys "
            f"{sorted(map(str, texts))}). Pass the texts themselves, e.g. "
            f"{name}=data[{next(iter(texts), 'text')!r}]."
        )
    try:
        texts = list(texts)
    except TypeError:
        raise ValueError(
            f"`{name}` must be a list of strings. Received: "
            f"{type(texts).__name__} {texts!r:.80}"
        ) from None
    if not texts:
        raise ValueError(f"`{name}` is empty: pass at least one text.")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(
                f"`{name}` must hold strings; item {i} is "
                f"{type(text).__name__}: {text!r:.80}"
            )
    return texts



def check_not_a_distiller(model, name, taker):
    """Refuses a `keras_kd.Distiller` given where the model it trains
    belongs: the Distiller's own outputs are its student's, so most calls
    would half work (an export fails on its missing symbolic inputs, a
    teacher or student of another Distiller nests the wrapper).

    Args:
        model: the argument's value.
        name: the argument's name, quoted in the message.
        taker: the function or class that takes it, for the message.

    Example:

    >>> from keras_kd.utils.testing import tiny_mlp
    >>> from keras_kd import Distiller
    >>> distiller = Distiller(student=tiny_mlp(4, 0), teacher=tiny_mlp(8, 1))
    >>> check_not_a_distiller(distiller, "model", "export_tflite")
    Traceback (most recent call last):
    ...
    TypeError: `model` is a Distiller, the training wrapper of a student and its teacher; export_tflite takes a model itself. Pass `distiller.student` (the trained student), or `distiller.teacher`.
    """
    from keras_kd.distillation.distiller import Distiller

    if isinstance(model, Distiller):
        raise TypeError(
            f"`{name}` is a Distiller, the training wrapper of a student and "
            f"its teacher; {taker} takes a model itself. Pass "
            "`distiller.student` (the trained student), or `distiller.teacher`."
        )


def check_prompts_fit(prompts, lengths, max_length, context, fix):
    """Refuses the prompts whose tokens leave no room for a generated
    token within `max_length` tokens (prompt and continuation): keras-hub's
    `generate` cuts such a prompt short without a word, and the LiteRT-LM
    runtime's prefill fails on it with "prefill failed" alone.

    Args:
        prompts: the raw texts, quoted in the message.
        lengths: the tokens of each prompt, as the model sees it.
        max_length: the tokens of prompt and continuation together.
        context: what holds the `max_length` tokens, for the message.
        fix: the sentence that says what to change.

    Example:

    >>> check_prompts_fit(["the tea", "a"], [3, 1], 3,
    ...     "max_length=3 tokens", "Pass a larger max_length.")
    Traceback (most recent call last):
    ...
    ValueError: The prompts ['the tea'] (3 tokens) do not fit max_length=3 tokens, which holds the prompt and at least one generated token: prompts of at most 2 tokens. Pass a larger max_length.
    """
    too_long = [(p, n) for p, n in zip(prompts, lengths) if n >= max_length]
    if too_long:
        shown = [p for p, _ in too_long[:5]] + (["..."] if len(too_long) > 5 else [])
        counts = ", ".join(str(n) for _, n in too_long[:5])
        raise ValueError(
            f"The prompts {shown!r} ({counts} tokens) do not fit {context}, "
            "which holds the prompt and at least one generated token: "
            f"prompts of at most {max_length - 1} tokens. {fix}"
        )


PROMPT_RESPONSE_KEYS = ("prompts", "responses")


def is_prompt_responses(x):
    """Whether `x` is prompt-response data for a causal LM: a dict (or a
    `tf.data` element spec) with exactly the keys `"prompts"` and
    `"responses"`, keras-hub's convention (its Gemma 3 and 4
    preprocessors').

    Example:

    >>> is_prompt_responses({"prompts": ["Hi"], "responses": [" there"]})
    True
    >>> is_prompt_responses(["Hi there"])
    False
    """
    return isinstance(x, dict) and sorted(x) == sorted(PROMPT_RESPONSE_KEYS)


def check_causal_lm_texts(name, x):
    """Checks the raw data of a causal LM: texts (`check_texts`) or
    prompt-response data, `{"prompts": [...], "responses": [...]}` of
    strings, one response per prompt.

    Args:
        name: the argument's name, quoted in the message.
        x: the data.

    Returns:
        A list of strings, or a dict of the two lists.

    Example:

    >>> check_causal_lm_texts("x", {"prompts": ("Hi",), "responses": [" there"]})
    {'prompts': ['Hi'], 'responses': [' there']}
    >>> check_causal_lm_texts("x", {"prompt": ["Hi"], "completion": [" there"]})
    Traceback (most recent call last):
    ...
    ValueError: `x` is a dict with keys ['completion', 'prompt']; a causal LM takes a list of texts, or prompts and responses as {"prompts": [...], "responses": [...]} (keras-hub's keys; TRL's "prompt" and "completion" columns are these), whose loss counts the responses' tokens alone.
    """
    if not isinstance(x, dict):
        return _with_a_token(name, check_texts(name, x))
    if not is_prompt_responses(x):
        raise ValueError(
            f"`{name}` is a dict with keys {sorted(map(str, x))}; a causal "
            "LM takes a list of texts, or prompts and responses as "
            '{"prompts": [...], "responses": [...]} (keras-hub\'s keys; '
            'TRL\'s "prompt" and "completion" columns are these), whose loss '
            "counts the responses' tokens alone."
        )
    checked = {key: check_texts(f"{name}[{key!r}]", x[key]) for key in PROMPT_RESPONSE_KEYS}
    prompts, responses = (len(checked[key]) for key in PROMPT_RESPONSE_KEYS)
    if prompts != responses:
        raise ValueError(
            f"`{name}` holds {prompts} prompts and {responses} responses: "
            "give one response per prompt."
        )
    _with_a_token(f"{name}['responses']", checked["responses"])
    return checked


def _with_a_token(name, texts):
    # A causal LM's preprocessor adds no token to an empty text (SmolLM2's
    # adds no start token), so data of empty texts alone trained with a loss
    # of exactly 0 and scored a perplexity of nothing, without an error.
    if not any(texts):
        raise ValueError(
            f"`{name}` holds {len(texts)} texts, all empty: a causal LM has "
            "no tokens to learn from or to score in them. Check the column "
            "or the file the texts came from."
        )
    return texts


def check_same_settings(what, saved, current, discard="discard it with overwrite=True (--overwrite)"):
    """Checks that `current` settings equal the `saved` ones of `what`
    (a run to resume, for example); raises `ValueError` naming each field
    that differs, with both values.

    Args:
        what: what the saved settings belong to, for the message.
        saved, current: dicts of settings.
        discard: how to start afresh instead, for the message.

    Example:

    >>> check_same_settings("The run", {"epochs": 1, "alpha": 0.5}, {"epochs": 1, "alpha": 0.5})
    >>> check_same_settings("The run", {"epochs": 1, "alpha": 0.5}, {"epochs": 2, "alpha": 0.5})
    Traceback (most recent call last):
    ...
    ValueError: The run was started with other settings: epochs=2 (started with 1). Resume it with the settings it was started with, or discard it with overwrite=True (--overwrite).
    """
    differing = sorted(
        name for name in saved.keys() | current.keys()
        if saved.get(name) != current.get(name)
    )
    if differing:
        fields = ", ".join(
            f"{name}={current.get(name)!r} (started with {saved.get(name)!r})"
            for name in differing
        )
        raise ValueError(
            f"{what} was started with other settings: {fields}. Resume it "
            f"with the settings it was started with, or {discard}."
        )
