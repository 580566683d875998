"""TensorFlow Datasets: prepared copies only, never a download
(`prepare_tfds` and `load("tfds:...")`)."""

import numpy as np
import pytest

from keras_kd import datasets


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
    with pytest.raises(FileNotFoundError, match=r"'glue/sst2' is not prepared.*`TFDS_DATA_DIR` environment variable for the keras-kd command"):
        datasets.load("tfds:glue/sst2")
    with pytest.raises(FileNotFoundError, match=r"'imdb_reviews:1.0.0'"):
        datasets.load("tfds:imdb_reviews:1.0.0")


def test_tfds_misspelled_name_is_named_with_the_close_ones(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"'imbd_reviews' is not a TensorFlow Datasets name.*Did you mean 'imdb_reviews'"):
        datasets.load("tfds:imbd_reviews", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"'gleu' is not a TensorFlow Datasets name.*'glue'"):
        datasets.load("tfds:gleu/sst2", data_dir=tmp_path)
