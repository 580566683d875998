"""`load_texts`: unlabelled text for language models, as training and
held-out lists of strings."""

import os
from pathlib import Path

from keras_kd.datasets.rated_sentences import load_movie_reviews
from keras_kd.datasets.sources import _check_text, read_utf8
from keras_kd.datasets.splitting import _split_by_text_hash
from keras_kd.utils.validation import check_number


def load_texts(source="movie_reviews", *, test_fraction=0.1, seed=0):
    """Loads text for a language model: `(train_texts, test_texts)`.

    Args:
        source: `"movie_reviews"` (its train and test splits, the labels
            dropped), a path to a `.txt` file (one text per line; blank
            lines are skipped), or a list of strings.
        test_fraction: the share held out from a file or list, by the
            deterministic text-hash split of `keras_kd.datasets.load` (the
            same text always lands in the same split).
        seed: seed of that split.

    Returns:
        Two lists of strings, `(train_texts, test_texts)`.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: an unknown source, an empty or non-string text, or too
            few texts to hold any out.

    Example:

    >>> train, test = load_texts([f"text number {i}" for i in range(20)])
    >>> len(train), len(test)
    (18, 2)
    >>> load_texts("reviews.csv")
    Traceback (most recent call last):
    ...
    ValueError: A text source must be 'movie_reviews', a .txt file (one text per line) or a list of strings. Received: 'reviews.csv'
    """
    check_number("test_fraction", test_fraction, 0, 1, low_open=True, high_open=True, example=0.1)
    if isinstance(source, str) and source == "movie_reviews":
        data = load_movie_reviews()
        return list(data.train.texts), list(data.test.texts)
    if isinstance(source, (str, os.PathLike)) and Path(source).suffix.lower() == ".txt":
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
    elif isinstance(source, (list, tuple)):
        texts = list(source)
        for i, text in enumerate(texts):
            _check_text(text, f"text {i}")
        where = "the list"
    else:
        raise ValueError(
            "A text source must be 'movie_reviews', a .txt file (one text "
            f"per line) or a list of strings. Received: {source!r:.200}"
        )
    raw = _split_by_text_hash(texts, texts, (1 - test_fraction, 0.0, test_fraction), seed)
    if "test" not in raw:
        raise ValueError(
            f"{where} holds {len(texts)} texts: too few to hold "
            f"{test_fraction:.0%} out. Give at least {int(1 / test_fraction) + 1}."
        )
    return raw["train"][0], raw["test"][0]
