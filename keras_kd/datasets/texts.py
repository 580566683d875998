"""`read_texts` and `load_texts`: unlabelled text, for language models and
for distilling a classifier on more of its domain; `load_prompt_responses`:
prompts and their responses, for a causal LM."""

import os
from pathlib import Path

from keras_kd.datasets.rated_sentences import RATED_SENTENCES, check_no_columns, load_rated_sentences
from keras_kd.datasets.sources import _FILE_FORMATS, _check_text, _read_file, read_utf8
from keras_kd.datasets.splitting import _split_by_text_hash
from keras_kd.datasets.splitting import texts_to_hold_out
from keras_kd.utils.validation import check_causal_lm_texts, check_number


def read_texts(source, *, text_column="text"):
    """Reads texts without labels: a list of strings.

    Args:
        source: an offline set of rated sentences (`"movie_reviews"`,
            `"product_reviews"`, `"news_editorials"`, `"tweets"`: all its
            splits, the labels dropped), a path to a `.txt` file (one text
            per line; blank lines are skipped), a `.csv`, `.tsv` or
            `.jsonl` file (its `text_column`; other columns, labels among
            them, are ignored), or a list of strings.
        text_column: the column (or JSON key) of the texts in a `.csv`,
            `.tsv` or `.jsonl` file.

    Returns:
        A list of strings, in the source's order.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: an unknown source, a missing column, an empty or
            non-string text, or no texts at all.

    Example:

    >>> read_texts(["a fine film", "dull"])
    ['a fine film', 'dull']
    >>> read_texts("reviews.xlsx")
    Traceback (most recent call last):
    ...
    ValueError: A text source must be 'movie_reviews', 'product_reviews', 'news_editorials', 'tweets', a .txt file (one text per line), a .csv, .jsonl or .tsv file (its text_column) or a list of strings. Received: 'reviews.xlsx'
    """
    return _read(source, text_column)[0]


def _read(source, text_column):
    """`(texts, where)`: `read_texts`'s texts and where they came from."""
    if isinstance(source, str) and source in RATED_SENTENCES:
        check_no_columns(source, text_column)
        data = load_rated_sentences(source)
        return [text for split in data.splits.values() for text in split.texts], repr(source)
    suffix = Path(source).suffix.lower() if isinstance(source, (str, os.PathLike)) else None
    if suffix == ".txt":
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(
                f"No text file at {str(path)!r}. Check the path (relative "
                f"paths start from {os.getcwd()!r})."
            )
        texts = [
            line.strip()
            for line in read_utf8(path).splitlines()
            if line.strip()
        ]
        where = str(path)
    elif suffix in _FILE_FORMATS:
        texts, _ = _read_file(Path(source), text_column, None)
        where = str(source)
    elif isinstance(source, (list, tuple)):
        texts = list(source)
        for i, text in enumerate(texts):
            _check_text(text, f"text {i}")
        where = "the list"
    else:
        raise ValueError(
            "A text source must be "
            + ", ".join(repr(name) for name in RATED_SENTENCES)
            + ", a .txt file (one text per line), a "
            + ", ".join(sorted(_FILE_FORMATS)[:-1]) + " or " + sorted(_FILE_FORMATS)[-1]
            + f" file (its text_column) or a list of strings. Received: {source!r:.200}"
        )
    if not texts:
        raise ValueError(f"{where} holds no texts. Pass a source with at least one.")
    return texts, where


def load_texts(source="movie_reviews", *, text_column="text", test_fraction=0.1, seed=0):
    """Loads text for a language model: `(train_texts, test_texts)`.

    Args:
        source: an offline set of rated sentences (`"movie_reviews"`,
            `"product_reviews"`, `"news_editorials"`, `"tweets"`: its
            train and test splits, the labels dropped), a path to a `.txt`
            file (one text per line; blank lines are skipped), a `.csv`,
            `.tsv` or `.jsonl` file (its `text_column`; other columns,
            labels among them, are ignored), or a list of strings.
        text_column: the column (or JSON key) of the texts in a `.csv`,
            `.tsv` or `.jsonl` file.
        test_fraction: the share held out from a file or list, by the
            deterministic text-hash split of `keras_kd.datasets.load` (the
            same text always lands in the same split).
        seed: seed of that split.

    Returns:
        Two lists of strings, `(train_texts, test_texts)`.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: an unknown source, a missing column, an empty or
            non-string text, or too few texts to hold any out.

    Example:

    >>> train, test = load_texts([f"text number {i}" for i in range(20)])
    >>> len(train), len(test)
    (18, 2)
    >>> load_texts("reviews.xlsx")
    Traceback (most recent call last):
    ...
    ValueError: A text source must be 'movie_reviews', 'product_reviews', 'news_editorials', 'tweets', a .txt file (one text per line), a .csv, .jsonl or .tsv file (its text_column) or a list of strings. Received: 'reviews.xlsx'
    """
    check_number("test_fraction", test_fraction, 0, 1, low_open=True, high_open=True, example=0.1)
    if isinstance(source, str) and source in RATED_SENTENCES:
        check_no_columns(source, text_column)
        data = load_rated_sentences(source)
        return list(data.train.texts), list(data.test.texts)
    texts, where = _read(source, text_column)
    (train, _), (test, _) = _hold_out(texts, texts, where, test_fraction, seed)
    return train, test


def _hold_out(texts, aligned, where, test_fraction, seed):
    """`((train texts, aligned), (test texts, aligned))` by the text-hash
    split of `keras_kd.datasets.load`, refusing too few texts."""
    raw = _split_by_text_hash(texts, aligned, (1 - test_fraction, 0.0, test_fraction), seed)
    if "test" not in raw:
        raise ValueError(
            f"{where} holds {len(texts)} text{'' if len(texts) == 1 else 's'}: too few to hold "
            f"{test_fraction:.0%} out. Give at least {texts_to_hold_out(test_fraction)}."
        )
    return raw["train"], raw["test"]


def load_prompt_responses(
    source, *, prompt_column="prompt", response_column="completion", test_fraction=0.1, seed=0
):
    """Loads prompt-response data for a causal LM: `(train, test)`, each
    `{"prompts": [...], "responses": [...]}` (`keras_kd.datasets.prompt_responses`:
    a causal LM trains, distills and is scored on the responses' tokens).

    Args:
        source: a `.csv`, `.tsv` or `.jsonl` file with a prompt and a
            response column (TRL's prompt-completion datasets), or a dict
            `{"prompts": [...], "responses": [...]}`.
        prompt_column, response_column: the two columns (or JSON keys) of a
            file; the defaults are TRL's names.
        test_fraction: the share held out, by the deterministic text-hash
            split of `keras_kd.datasets.load`, on the prompts (a prompt
            given twice lands in one split).
        seed: seed of that split.

    Returns:
        Two dicts of two lists of strings, `(train, test)`; each text as
        the file has it (a response's leading space is kept).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: another source, a missing column, an empty or
            non-string text, or too few pairs to hold any out.

    Example:

    >>> data = {"prompts": [f"Q{i}: " for i in range(20)],
    ...         "responses": [f"answer {i}" for i in range(20)]}
    >>> train, test = load_prompt_responses(data)
    >>> len(train["prompts"]), len(test["responses"])
    (18, 2)
    >>> load_prompt_responses("chat.txt")
    Traceback (most recent call last):
    ...
    ValueError: Prompt-response data must be a .csv, .jsonl or .tsv file with the columns prompt_column='prompt' and response_column='completion', or a dict {"prompts": [...], "responses": [...]}. Received: 'chat.txt'
    """
    check_number("test_fraction", test_fraction, 0, 1, low_open=True, high_open=True, example=0.1)
    suffix = Path(source).suffix.lower() if isinstance(source, (str, os.PathLike)) else None
    if isinstance(source, dict):
        data = check_causal_lm_texts("source", source)
        prompts, responses = data["prompts"], data["responses"]
        for i, (prompt, response) in enumerate(zip(prompts, responses)):
            _check_text(prompt, f"prompt {i}")
            _check_text(response, f"response {i}")
        where = "the dict"
    elif suffix in _FILE_FORMATS:
        prompts, _ = _read_file(Path(source), prompt_column, None, text_role="prompt")
        responses, _ = _read_file(Path(source), response_column, None, text_role="response")
        where = str(source)
    else:
        raise ValueError(
            "Prompt-response data must be a "
            + ", ".join(sorted(_FILE_FORMATS)[:-1]) + " or " + sorted(_FILE_FORMATS)[-1]
            + f" file with the columns prompt_column={prompt_column!r} and "
            f"response_column={response_column!r}, or a dict "
            '{"prompts": [...], "responses": [...]}. '
            f"Received: {source!r:.200}"
        )
    train, test = _hold_out(prompts, responses, where, test_fraction, seed)
    return tuple({"prompts": list(p), "responses": list(r)} for p, r in (train, test))
