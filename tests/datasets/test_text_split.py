"""The containers: `TextSplit` (sample, as_dataset) and
`TextClassificationData.splits`."""

import numpy as np

from keras_kd import datasets


def test_as_dataset_yields_text_label_pairs(movie_reviews):
    split = movie_reviews.test
    pairs = [(t.numpy().decode(), int(y)) for t, y in split.as_dataset().take(3)]
    assert pairs == list(zip(split.texts[:3], split.labels[:3].tolist()))


def test_sample_is_seeded_in_split_order_and_keeps_pairs():
    split = datasets.TextSplit(
        [f"t{i}" for i in range(20)], np.arange(20, dtype=np.int32)
    )
    part = split.sample(5, seed=3)
    assert len(part) == 5
    assert part.labels.dtype == np.int32
    assert part.texts == [f"t{i}" for i in part.labels.tolist()]
    assert part.labels.tolist() == sorted(part.labels.tolist())
    again = split.sample(5, seed=3)
    assert again.texts == part.texts
    assert split.sample(5, seed=4).texts != part.texts
    assert split.sample(None) is split
    assert split.sample(20) is split


def test_splits_lists_only_the_present_splits_in_order():
    split = datasets.TextSplit(["a"], np.zeros(1, np.int32))
    data = datasets.TextClassificationData(["x", "y"], train=split, test=split)
    assert list(data.splits) == ["train", "test"]
    assert data.splits["test"] is split
