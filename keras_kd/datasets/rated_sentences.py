"""The offline datasets: four sets of sentences rated for sentiment by
people (Hutto & Gilbert, ICWSM 2014), each fetched once from the
`vaderSentiment==3.3.2` sdist on PyPI (with `pip download`), checked against
pinned SHA-256 sums and cached in `cache_dir()`.

- `"movie_reviews"`, the embedded default: 10,605 sentences of Pang & Lee's
  movie reviews;
- `"product_reviews"`: 3,708 sentences of Amazon product reviews;
- `"news_editorials"`: 5,190 sentences of New York Times opinion pieces;
- `"tweets"`: 4,200 tweets.

Each sentence was rated in [-4, 4] by about 20 people; `load_rated_sentences`
makes them negative/positive examples by one rule.
"""

import hashlib
import io
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from keras_kd.datasets.splitting import _build
from keras_kd.datasets.splitting import _split_by_text_hash
from keras_kd.utils.cache import cache_dir
from keras_kd.utils.io import atomic_write_bytes
from keras_kd.utils.validation import check_choice

RATED_CLASS_NAMES = ("negative", "positive")
MOVIE_REVIEWS_CLASS_NAMES = RATED_CLASS_NAMES
MOVIE_REVIEWS_COUNTS = {"train": 8454, "validation": 1056, "test": 1056}

_VADER_REQUIREMENT = "vaderSentiment==3.3.2"
_VADER_SDIST = "vaderSentiment-3.3.2.tar.gz"
_VADER_SDIST_SHA256 = (
    "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
)
_VADER_INNER_ARCHIVE = (
    "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
)
# name: (file in the sdist's hutto_ICWSM_2014 folder, its SHA-256)
RATED_SENTENCES = {
    "movie_reviews": (
        "movieReviewSnippets_GroundTruth.txt",
        "c8293b0d942e90e223ea2c0955d969040d1a1be514a978b9af0698940bd13350",
    ),
    "product_reviews": (
        "amazonReviewSnippets_GroundTruth.txt",
        "11a9807a0974a2506a2d3b4851eaf69b3d6d20688ce4923adda2312a4f6dd6c2",
    ),
    "news_editorials": (
        "nytEditorialSnippets_GroundTruth.txt",
        "7d8fbcce7dde5d716da53e78f4ef4be6b706e9ef1e1d51887e6d0ad4b69cc27e",
    ),
    "tweets": (
        "tweets_GroundTruth.txt",
        "dfbe7102e2f92579ed8b19df9a3822491880697c67adf712fb66e520cc05102f",
    ),
}
_PIP_TIMEOUT_S = 300


def check_no_columns(source, text_column=None, label_column=None):
    """Refuses columns given with an offline set, which has none: a user
    who meant a file of their own (`--text-column review` without
    `--data`) would otherwise train on the offline set without a word.
    The default column names (and None) pass.

    Example:

    >>> check_no_columns("movie_reviews", text_column="text")
    >>> check_no_columns("movie_reviews", text_column="review")
    Traceback (most recent call last):
    ...
    ValueError: text_column='review' (--text-column) names a column of a file, but the data 'movie_reviews' is an offline set of sentences, which has no columns. Pass your file as the data (--data FILE), or leave text_column out.
    """
    given = [
        (name, value)
        for name, value, default in (
            ("text_column", text_column, "text"), ("label_column", label_column, "label"),
        )
        if value not in (None, default)
    ]
    if source in RATED_SENTENCES and given:
        named = " and ".join(f"{n}={v!r} (--{n.replace('_', '-')})" for n, v in given)
        raise ValueError(
            f"{named} name{'s' if len(given) == 1 else ''} a column of a file, but "
            f"the data {source!r} is an offline set of sentences, which has no "
            "columns. Pass your file as the data (--data FILE), or leave "
            f"{' and '.join(n for n, _ in given)} out."
        )


def load_movie_reviews():
    """Loads the embedded movie-review sentences, fetching them once:
    `load_rated_sentences("movie_reviews")`.

    The 10,605 rated sentences of `movieReviewSnippets_GroundTruth.txt`
    (sentences from Pang & Lee's movie-review data) become 10,566
    examples: train 8,454 (4,166 positive), validation 1,056 (546
    positive), test 1,056 (529 positive).

    Returns:
        A `TextClassificationData` with `class_names == ["negative",
        "positive"]`.
    """
    return load_rated_sentences("movie_reviews")


def load_rated_sentences(name):
    """Loads one of the four rated-sentence sets, fetching it once.

    Its sentences become examples by one rule:

    - exact duplicate sentences are merged into one example whose rating is
      the mean of their ratings, so no sentence is in two splits;
    - label = sign of the (mean) rating: 1 `"positive"`, 0 `"negative"`;
      sentences rated exactly 0 are dropped;
    - split 80/10/10 by SHA-256 rank of `"0\\x00" + sentence` (seed 0).

    The file comes from the `vaderSentiment==3.3.2` sdist on PyPI (`pip
    download`, SHA-256 checked) and is cached in `cache_dir()`; put the
    file there yourself on a machine without PyPI access.

    Args:
        name: `"movie_reviews"`, `"product_reviews"`, `"news_editorials"`
            or `"tweets"`.

    Returns:
        A `TextClassificationData` with `class_names == ["negative",
        "positive"]`.

    Example:

    >>> data = load_rated_sentences("tweets")
    >>> data.class_names, [len(split) for split in data.splits.values()]
    (['negative', 'positive'], [3358, 419, 419])
    >>> load_rated_sentences("amazon")
    Traceback (most recent call last):
    ...
    ValueError: `name` must be one of 'movie_reviews', 'product_reviews', 'news_editorials', 'tweets'. Received: name='amazon'
    """
    check_choice("name", name, tuple(RATED_SENTENCES))
    file_name, sha256 = RATED_SENTENCES[name]
    path = cache_dir() / "datasets" / file_name
    if not path.is_file():
        _fetch(name, path.parent)
    data = _checked(
        path.read_bytes(), sha256, ValueError, f"The cached {str(path)!r}",
        "Delete it to fetch it again.",
    )
    ratings = {}
    # Split on CRLF only (all four files end their lines so):
    # str.splitlines() would also break on the Unicode line separators some
    # sentences may contain.
    for line in data.decode("utf-8").rstrip("\r\n").split("\r\n"):
        _, rating, text = line.split("\t", 2)
        ratings.setdefault(text, []).append(float(rating))
    texts, labels = [], []
    for text, values in ratings.items():
        mean = sum(values) / len(values)
        if mean != 0:
            texts.append(text)
            labels.append(int(mean > 0))
    raw = _split_by_text_hash(texts, labels, (0.8, 0.1, 0.1), seed=0)
    return _build(raw, list(RATED_CLASS_NAMES), name)


def _fetch(name, folder):
    """Downloads the vaderSentiment sdist with pip and extracts the files
    of every rated-sentence set into `folder` (one download serves all
    four), each checked against its pinned SHA-256 before any is written;
    files already there are kept. `name` is the set asked for, for the
    message."""
    wanted = RATED_SENTENCES[name][0]
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps",
            "--no-binary", ":all:", _VADER_REQUIREMENT, "-d", tmp,
        ]  # fmt: skip
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            result = None
            reason = str(error)
        if result is not None:
            reason = (result.stderr or result.stdout)[-2000:]
        sdist = Path(tmp) / _VADER_SDIST
        if result is None or result.returncode != 0 or not sdist.is_file():
            raise RuntimeError(
                f"Could not fetch the {name} data: "
                f"`{' '.join(command)}` failed (is PyPI reachable?).\n"
                f"{reason}\nOn a machine without PyPI access, copy "
                f"{_member(wanted)} from that sdist to "
                f"{str(folder / wanted)!r}."
            )
        payload = _checked(
            sdist.read_bytes(), _VADER_SDIST_SHA256, RuntimeError,
            f"The downloaded {_VADER_SDIST}",
            "Refusing to use it; check your package index (PIP_INDEX_URL).",
        )
    with tarfile.open(fileobj=io.BytesIO(payload)) as outer:
        inner_bytes = outer.extractfile(_VADER_INNER_ARCHIVE).read()
    with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
        texts = {
            file_name: _checked(
                inner.extractfile(_member(file_name)).read(), sha256, RuntimeError,
                f"{_member(file_name)} in the sdist", "The sdist is not the one pinned.",
            )
            for file_name, sha256 in RATED_SENTENCES.values()
        }
    for file_name, text in texts.items():
        if not (folder / file_name).is_file():
            atomic_write_bytes(folder / file_name, text, overwrite=False)


def _member(file_name):
    """The path of a rated-sentence file in the sdist's inner archive."""
    return f"hutto_ICWSM_2014/{file_name}"


def _checked(payload, sha256, error, what, fix):
    """`payload`, after checking its SHA-256 against the pinned `sha256`;
    raises `error` naming `what` and the `fix` otherwise."""
    digest = hashlib.sha256(payload).hexdigest()
    if digest != sha256:
        raise error(f"{what} has SHA-256 {digest}, expected {sha256}. {fix}")
    return payload
