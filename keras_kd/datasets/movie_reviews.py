"""The embedded default dataset, `"movie_reviews"`: its pinned constants,
`cache_dir`, `load_movie_reviews`, and the one-off fetch of its file from the
`vaderSentiment==3.3.2` sdist on PyPI (with `pip download`), checked against
pinned SHA-256 sums."""

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

MOVIE_REVIEWS_CLASS_NAMES = ("negative", "positive")
MOVIE_REVIEWS_COUNTS = {"train": 8454, "validation": 1056, "test": 1056}

_VADER_REQUIREMENT = "vaderSentiment==3.3.2"
_VADER_SDIST = "vaderSentiment-3.3.2.tar.gz"
_VADER_SDIST_SHA256 = (
    "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
)
_VADER_INNER_ARCHIVE = (
    "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
)
_MOVIE_REVIEWS_MEMBER = "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
_MOVIE_REVIEWS_FILE = "movieReviewSnippets_GroundTruth.txt"
_MOVIE_REVIEWS_SHA256 = (
    "c8293b0d942e90e223ea2c0955d969040d1a1be514a978b9af0698940bd13350"
)
_PIP_TIMEOUT_S = 300


def load_movie_reviews():
    """Loads the embedded movie-review sentences, fetching them once.

    The 10,605 rated sentences of `movieReviewSnippets_GroundTruth.txt`
    (Hutto & Gilbert, ICWSM 2014; sentences from Pang & Lee's movie-review
    data, each rated in [-4, 4] by about 20 people) become 10,566 examples:

    - exact duplicate sentences (2 pairs) are merged into one example whose
      rating is the mean of their ratings, so no sentence is in two splits;
    - label = sign of the (mean) rating: 1 `"positive"`, 0 `"negative"`;
      the 37 sentences rated exactly 0 are dropped;
    - split 80/10/10 by SHA-256 rank of `"0\\x00" + sentence` (seed 0):
      train 8,454 (4,166 positive), validation 1,056 (546 positive),
      test 1,056 (529 positive).

    The file comes from the `vaderSentiment==3.3.2` sdist on PyPI
    (`pip download`, SHA-256 checked) and is cached in `cache_dir()`; put the
    file there yourself on a machine without PyPI access.

    Returns:
        A `TextClassificationData` with `class_names == ["negative",
        "positive"]`.
    """
    path = cache_dir() / "datasets" / _MOVIE_REVIEWS_FILE
    if not path.is_file():
        _fetch_movie_reviews(path)
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != _MOVIE_REVIEWS_SHA256:
        raise ValueError(
            f"The cached {str(path)!r} has SHA-256 {digest}, expected "
            f"{_MOVIE_REVIEWS_SHA256}. Delete it to fetch it again."
        )
    ratings = {}
    # Split on CRLF only: str.splitlines() would also break on the Unicode
    # line separators some sentences may contain.
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
    return _build(raw, list(MOVIE_REVIEWS_CLASS_NAMES), "movie_reviews")


def _fetch_movie_reviews(destination):
    """Downloads the vaderSentiment sdist with pip and extracts the file."""
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
                "Could not fetch the movie_reviews data: "
                f"`{' '.join(command)}` failed (is PyPI reachable?).\n"
                f"{reason}\nOn a machine without PyPI access, copy "
                f"{_MOVIE_REVIEWS_MEMBER} from that sdist to "
                f"{str(destination)!r}."
            )
        payload = sdist.read_bytes()
    digest = hashlib.sha256(payload).hexdigest()
    if digest != _VADER_SDIST_SHA256:
        raise RuntimeError(
            f"The downloaded {_VADER_SDIST} has SHA-256 {digest}, expected "
            f"{_VADER_SDIST_SHA256}; refusing to use it. Check your package "
            "index (PIP_INDEX_URL)."
        )
    with tarfile.open(fileobj=io.BytesIO(payload)) as outer:
        inner_bytes = outer.extractfile(_VADER_INNER_ARCHIVE).read()
    with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
        text = inner.extractfile(_MOVIE_REVIEWS_MEMBER).read()
    digest = hashlib.sha256(text).hexdigest()
    if digest != _MOVIE_REVIEWS_SHA256:
        raise RuntimeError(
            f"{_MOVIE_REVIEWS_MEMBER} in the sdist has SHA-256 {digest}, "
            f"expected {_MOVIE_REVIEWS_SHA256}."
        )
    atomic_write_bytes(destination, text, overwrite=True)
