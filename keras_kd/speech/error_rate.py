"""Word and character error rates of transcripts, after the normalization
that speech-recognition results are usually compared under."""

import re

import numpy as np

from keras_kd.utils.validation import check_texts

_PUNCTUATION = re.compile(r"[^\w\s']|_")


def normalize_transcript(text):
    """Lower case, punctuation removed (apostrophes kept), spaces collapsed:
    "Ever tried. Ever failed." and "ever tried, ever failed" compare equal.

    Example:

    >>> normalize_transcript("Ever tried.  Ever FAILED!")
    'ever tried ever failed'
    """
    return " ".join(_PUNCTUATION.sub(" ", text.lower()).split())


def _edit_distance(reference, hypothesis):
    """Levenshtein distance between two sequences (substitutions, insertions
    and deletions all cost 1)."""
    previous = np.arange(len(hypothesis) + 1)
    for i, token in enumerate(reference, 1):
        current = np.empty_like(previous)
        current[0] = i
        for j, other in enumerate(hypothesis, 1):
            current[j] = min(
                previous[j] + 1,
                current[j - 1] + 1,
                previous[j - 1] + (token != other),
            )
        previous = current
    return int(previous[-1])


def _error_rate(references, hypotheses, split):
    if isinstance(references, str) or isinstance(hypotheses, str):
        raise TypeError(
            "`references` and `hypotheses` are lists of transcripts; wrap a "
            f"single one in a list. Received: {type(references).__name__} and "
            f"{type(hypotheses).__name__}"
        )
    # None, or a transcript that is None or bytes, failed with a bare
    # TypeError or AttributeError.
    references = check_texts("references", references)
    hypotheses = check_texts("hypotheses", hypotheses)
    if len(references) != len(hypotheses):
        raise ValueError(
            f"{len(references)} references but {len(hypotheses)} hypotheses; "
            "pass one hypothesis per reference."
        )
    errors = total = 0
    for reference, hypothesis in zip(references, hypotheses):
        reference = split(normalize_transcript(reference))
        errors += _edit_distance(reference, split(normalize_transcript(hypothesis)))
        total += len(reference)
    if total == 0:
        raise ValueError("The references are empty after normalization: nothing to score.")
    return errors / total


def word_error_rate(references, hypotheses):
    """Word error rate: word-level edit distance summed over the pairs,
    divided by the references' word count (both normalized first).

    Args:
        references: what was said, a list of strings.
        hypotheses: the transcripts, a list of strings of the same length.

    Returns:
        A float (0.0 is perfect; above 1.0 when the hypotheses insert
        more words than the references hold).

    Example:

    >>> word_error_rate(["ever tried ever failed"], ["Ever tried, never failed."])
    0.25
    """
    return _error_rate(references, hypotheses, str.split)


def character_error_rate(references, hypotheses):
    """Character error rate, as `word_error_rate` over characters (spaces
    included).

    Example:

    >>> round(character_error_rate(["fail better"], ["fail bitter"]), 4)
    0.0909
    """
    return _error_rate(references, hypotheses, list)
