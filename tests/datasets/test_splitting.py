"""Splitting by text hash, and labels to class indices (`load` on
in-memory pairs and dicts of pairs), with the checks on labels and splits."""

import random
import warnings

import pytest

from keras_kd import datasets
from keras_kd.datasets.splitting import _split_by_text_hash


def test_split_by_text_hash_ignores_row_order_and_keeps_duplicates_together():
    texts = [f"sentence {i}" for i in range(200)] + ["sentence 7"] * 3
    labels = [i % 2 for i in range(203)]
    raw = _split_by_text_hash(texts, labels, (0.8, 0.1, 0.1), seed=0)
    assert [len(raw[n][0]) for n in ("train", "validation", "test")] == [
        163,
        20,
        20,
    ]
    homes = {n for n, (t, _) in raw.items() if "sentence 7" in t}
    assert len(homes) == 1 and raw[homes.pop()][0].count("sentence 7") == 4
    order = list(range(203))
    random.Random(1).shuffle(order)
    shuffled = _split_by_text_hash(
        [texts[i] for i in order], [labels[i] for i in order], (0.8, 0.1, 0.1), 0
    )
    for name in raw:
        assert sorted(shuffled[name][0]) == sorted(raw[name][0])
    other_seed = _split_by_text_hash(texts, labels, (0.8, 0.1, 0.1), 1)
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


def test_a_text_labelled_two_ways_is_counted_across_splits_and_kept():
    texts = [f"review {i}" for i in range(20)] + ["review  4", "review 7"]
    labels = [i % 2 for i in range(20)] + [1, 0]
    with pytest.warns(UserWarning, match=r"^3 texts appear with different labels .*\['0', '1'\]"):
        data = datasets.load((texts, labels), test_data=(["review 9", "new"], [0, 1]),
                             validation_data=(["other"], [0]))
    # review 4, review 7 (in training, twice each) and review 9 (labelled 1 in
    # training, 0 in the test file) are all kept.
    assert len(data.train) == 22
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        datasets.load((texts[:20] * 2, labels[:20] * 2))


def test_bad_split_fractions():
    with pytest.raises(ValueError, match=r"splits=\(0\.5, 0\.1, 0\.1\)"):
        datasets.load((["a", "b"], [0, 1]), splits=(0.5, 0.1, 0.1))


def test_copies_of_training_texts_in_a_users_test_file_are_counted():
    texts = [f"review {i}" for i in range(20)]
    labels = [i % 2 for i in range(20)]
    with pytest.warns(UserWarning, match=r"^2 of the 3 test texts are also training texts"):
        datasets.load(
            (texts, labels), validation_data=(["other"], [0]),
            test_data=(["review 3", "review  5", "new"], [1, 1, 0]),
        )
    # One source split by text: identical texts land in the same split.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = datasets.load((texts * 2, labels * 2))
    assert not set(data.test.texts) & set(data.train.texts)


def test_a_label_column_of_ids_or_scores_is_refused():
    texts = [f"review {i}" for i in range(40)]
    with pytest.raises(ValueError, match=r"has 32 classes for 32 texts \(labels such as \[.*--label-column"):
        datasets.load((texts, list(range(40))))
    scores = [str(round(0.025 * i, 3)) for i in range(40)]  # as a CSV file gives them
    with pytest.raises(ValueError, match=r"classes for 32 texts.*bin scores into classes"):
        datasets.load((texts, scores))
    # Named classes are taken as given, each of one example named.
    with pytest.warns(UserWarning, match=r"^40 of the 40 classes have fewer than two"):
        data = datasets.load(
            (texts, [str(i) for i in range(40)]), class_names=[str(i) for i in range(40)],
            splits=(1.0, 0.0, 0.0),
        )
    assert len(data.class_names) == 40


def test_a_class_with_one_training_example_is_named_in_a_warning():
    texts = [f"review {i}" for i in range(21)]
    labels = ["pos", "neg"] * 10 + ["rare"]
    with pytest.warns(UserWarning, match=r"^1 of the 3 classes have fewer than two training examples \(\{'rare': 1\}\)"):
        datasets.load((texts, labels), splits=(1.0, 0.0, 0.0))


def test_held_out_splits_too_small_to_exist_are_named_in_a_warning():
    texts, labels = ["good", "bad", "fine", "awful", "nice"], [1, 0, 1, 0, 1]
    # 5 texts: int(5 * 0.1) = 0 for each held-out split.
    with pytest.warns(UserWarning, match=(
            r"holds 5 texts: too few to hold out validation \(10%\) and test \(10%\), so they are "
            r"empty; every text trains.*at least 10 texts")):
        data = datasets.load((texts, labels))
    assert sorted(data.splits) == ["train"]
    # 10 texts hold one of each; asking for no held-out split warns of nothing.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sorted(datasets.load((texts * 2, labels * 2)).splits) == ["test", "train", "validation"]
        datasets.load((texts, labels), splits=(1.0, 0.0, 0.0))


@pytest.mark.parametrize(
    "labels, pair",
    [(["Pos", "neg", "pos", "neg"], "'Pos' and 'pos'"), (["1", "0", "1.0", "0"], "'1' and '1.0'")],
    ids=["case", "number"],
)
def test_one_class_spelled_two_ways_is_refused(labels, pair):
    # They became two classes without a word (three or four in all).
    from keras_kd.datasets import load

    texts = [f"review {i}" for i in range(len(labels))]
    with pytest.raises(ValueError, match=f"spell one class two ways: {pair}"):
        load((texts, labels))
    assert load((texts, labels), class_names=sorted(set(labels))).class_names == sorted(set(labels))


def test_class_names_given_twice_are_refused():
    from keras_kd.datasets import load

    with pytest.raises(ValueError, match=r"class_names=\['a', 'a', 'b'\] names 'a' more than once"):
        load((["x", "y", "z", "w"], ["a", "b", "a", "b"]), class_names=["a", "a", "b"])


def test_data_to_score_a_model_on_may_hold_one_class():
    # `keras-kd evaluate` refused a file of positive reviews alone.
    from keras_kd.datasets import load

    texts = [f"a fine film {i}" for i in range(20)]
    with pytest.raises(ValueError, match="has a single class"):
        load((texts, ["pos"] * 20), class_names=["neg", "pos"])
    data = load((texts, ["pos"] * 20), class_names=["neg", "pos"], training=False)
    assert sum(len(s) for s in data.splits.values()) == 20
    assert all(set(s.labels.tolist()) == {1} for s in data.splits.values())
