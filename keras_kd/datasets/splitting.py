"""Building the splits of a dataset: `_split_by_text_hash` (the
deterministic train/validation/test split keyed by each text's SHA-256) and
`_build` (raw labels to class indices and class names, with the checks that
every split can be learned), and `hold_out` (`fit`'s `validation_split` of
in-memory data)."""

import hashlib
import math
import re
import warnings

import numpy as np

from keras_kd.datasets.text_split import SPLIT_NAMES
from keras_kd.datasets.text_split import TextClassificationData
from keras_kd.datasets.text_split import TextSplit


def _split_by_text_hash(texts, labels, fractions, seed):
    """Splits `(texts, labels)` into train/validation/test by text hash.

    Examples are ranked by the SHA-256 of `f"{seed}\\x00{text}"`; the first
    `int(n * validation)` go to validation, the next `int(n * test)` to test,
    the rest to train. The split is independent of row order, and identical
    texts land in the same split. Each split keeps the source order.

    Args:
        texts: list of `str`.
        labels: list of raw labels, aligned with `texts`.
        fractions: `(train, validation, test)`, summing to 1, train > 0.
        seed: seed of the ranking.

    Returns:
        A dict `{split name: (texts, labels)}` of the non-empty splits.

    Example:

    >>> raw = _split_by_text_hash(["a", "b", "c", "d"], [0, 1, 0, 1], (0.5, 0.25, 0.25), 0)
    >>> {name: len(texts) for name, (texts, _) in raw.items()}
    {'validation': 1, 'test': 1, 'train': 2}
    """
    fractions = _check_splits(fractions)
    n = len(texts)
    keys = [
        hashlib.sha256(f"{seed}\x00{text}".encode("utf-8")).digest()
        for text in texts
    ]
    rank = sorted(range(n), key=keys.__getitem__)
    n_validation = int(n * fractions[1])
    n_test = int(n * fractions[2])
    bounds = {
        "validation": (0, n_validation),
        "test": (n_validation, n_validation + n_test),
        "train": (n_validation + n_test, n),
    }
    raw = {}
    for name, (start, stop) in bounds.items():
        if stop > start:
            # Source order within a split keeps files and printouts readable.
            chosen = sorted(rank[start:stop])
            raw[name] = ([texts[i] for i in chosen], [labels[i] for i in chosen])
    return raw


def _check_splits(fractions):
    """Returns `fractions` as a tuple after checking it is three fractions
    (train, validation, test) that sum to 1, train non-zero.

    >>> _check_splits((0.5, 0.5, 0.5))
    Traceback (most recent call last):
    ...
    ValueError: `splits` must be three fractions (train, validation, test) that sum to 1 with a non-zero train fraction, e.g. (0.8, 0.1, 0.1). Received: splits=(0.5, 0.5, 0.5)
    """
    fractions = tuple(fractions)
    if (
        len(fractions) != 3
        or any(f < 0 for f in fractions)
        or not np.isclose(sum(fractions), 1.0)
        or fractions[0] == 0
    ):
        raise ValueError(
            "`splits` must be three fractions (train, validation, test) "
            "that sum to 1 with a non-zero train fraction, e.g. "
            f"(0.8, 0.1, 0.1). Received: splits={fractions}"
        )
    return fractions


def texts_to_hold_out(fraction):
    """The fewest texts of which `_split_by_text_hash` holds out at least
    one for a split of `fraction` (it holds out `int(n * fraction)`).

    Example:

    >>> texts_to_hold_out(0.1), texts_to_hold_out(0.15), texts_to_hold_out(0.5)
    (10, 7, 2)
    """
    count = math.ceil(1 / fraction)
    return count if int(count * fraction) >= 1 else count + 1


def hold_out(data, fraction):
    """Splits in-memory training data `(x, y, sample_weight)` into the
    examples to train on and `int(n * fraction)` drawn at random (seed 0:
    the same ones at every call) to validate on: `fit`'s
    `validation_split`, without Keras's choice of the last examples, which
    in a file sorted by label are all of one class.

    Args:
        data: `(x, y, sample_weight)`: lists, tuples, arrays or dicts of arrays of
            one row per example; None where absent.
        fraction: the fraction to hold out, in `[0, 1)`.

    Returns:
        `(train, validation)`: `train` as `(x, y, sample_weight)`,
        `validation` a `validation_data` tuple without the Nones.

    Example:

    >>> train, validation = hold_out((["a", "b", "c", "d"], [0, 0, 1, 1], None), 0.5)
    >>> train, validation
    ((array(['b', 'd'], dtype='<U1'), array([0, 1]), None), (array(['c', 'a'], dtype='<U1'), array([1, 0])))
    >>> hold_out((["a", "b"], [0, 1], None), 0.1)
    Traceback (most recent call last):
    ...
    ValueError: validation_split=0.1 of 2 examples holds out none. Pass a larger split, or `validation_data=`.
    """
    import keras

    from keras_kd.utils.validation import check_number

    check_number("validation_split", fraction, low=0, high=1, high_open=True, example=0.1)
    # A list or tuple is one array of examples (texts, labels), not a
    # structure.
    data = [np.asarray(v) if isinstance(v, (list, tuple)) else v for v in data]
    size = len(keras.tree.flatten(data[0])[0])
    count = int(size * fraction)
    if not count:
        raise ValueError(
            f"validation_split={fraction!r} of {size} examples holds out "
            "none. Pass a larger split, or `validation_data=`."
        )
    order = np.random.default_rng(0).permutation(size)

    def rows(index):
        return [
            None if v is None
            else keras.tree.map_structure(lambda a: np.asarray(a)[index], v)
            for v in data
        ]

    validation = tuple(v for v in rows(order[:count]) if v is not None)
    return tuple(rows(order[count:])), validation


# Training splits of fewer texts (examples, smoke runs) have classes of
# one example by nature: the checks on classes per text skip them.
_CHECKED_SIZE = 20


def _same_class_key(name):
    """What two spellings of one class share: case aside, and a number's
    value (`1` and `1.0`)."""
    try:
        return float(name)
    except ValueError:
        return name.strip().casefold()


def _check_distinct_classes(class_names, derived, description):
    """Refuses class names given twice, and labels that are one class
    spelled two ways (`Pos` and `pos`, `1` and `1.0`), which would train as
    two classes.

    Example:

    >>> _check_distinct_classes(["Pos", "neg", "pos"], True, "reviews.csv")
    Traceback (most recent call last):
    ...
    ValueError: The labels of 'reviews.csv' spell one class two ways: 'Pos' and 'pos', which would be two classes. Write each class one way in the data (e.g. all lowercase, or whole numbers), or pass `class_names=` if they are distinct classes.
    """
    if len(set(class_names)) != len(class_names):
        twice = sorted({n for n in class_names if class_names.count(n) > 1})
        raise ValueError(
            f"class_names={class_names!r} names {twice[0]!r} more than once: "
            "give each class one name, in the order of its index."
        )
    if not derived:
        return
    seen = {}
    for name in class_names:
        other = seen.setdefault(_same_class_key(name), name)
        if other != name:
            raise ValueError(
                f"The labels of {description!r} spell one class two ways: "
                f"{other!r} and {name!r}, which would be two classes. Write "
                "each class one way in the data (e.g. all lowercase, or whole "
                "numbers), or pass `class_names=` if they are distinct classes."
            )


def _check_training_classes(splits, class_names, description):
    """Refuses a training split of one class, or without a class that the
    validation or test split holds; warns of classes of one example."""
    seen = set(splits["train"].labels.tolist())
    if len(seen) < 2:
        raise ValueError(
            f"The training split of {description!r} has a single class "
            f"({[class_names[i] for i in seen]}); a classifier needs at "
            "least two. Check the label column and the data."
        )
    for name in ("validation", "test"):
        if name in splits:
            unseen = sorted(set(splits[name].labels.tolist()) - seen)
            if unseen:
                raise ValueError(
                    f"The {name} split has labels "
                    f"{[class_names[i] for i in unseen]} that never occur in "
                    "the training split, so the model cannot learn them. "
                    "Add training examples of those classes or remove them."
                )
    counts = np.bincount(splits["train"].labels, minlength=len(class_names))
    rare = {class_names[i]: int(counts[i]) for i in np.flatnonzero(counts < 2)}
    if rare and len(splits["train"]) >= _CHECKED_SIZE:
        warnings.warn(
            f"{len(rare)} of the {len(class_names)} classes have fewer than two "
            f"training examples ({dict(list(rare.items())[:5])}): a model can "
            "hardly learn a class from one text, and scores on it say little. "
            "Add examples, or merge the class into another.",
            stacklevel=4,
        )


def _build(raw, class_names, description, training=True):
    """Maps raw labels to class indices and validates the splits.

    Args:
        raw: a dict `{split name: (texts, labels)}` with a `"train"` entry.
        class_names: list of names, or None to take the sorted distinct
            labels of the training split. Integer labels are matched to
            names that are integers by value, else taken as indices.
        description: the source's description, for messages and the
            result's `name`.
        training: check that training sees two classes or more, and every
            class of the other splits (False: data to score a model on).

    Returns:
        A `TextClassificationData`.

    Example:

    >>> data = _build({"train": (["good", "bad"], ["pos", "neg"])}, None, "lists")
    >>> data.class_names, data.train.labels.tolist(), data.name
    (['neg', 'pos'], [1, 0], 'lists')

    Integer labels other than `0..n-1` name their classes:

    >>> data = _build({"train": (["a", "b", "c"], [5, 1, 4])}, None, "stars")
    >>> data.class_names, data.train.labels.tolist()
    (['1', '4', '5'], [2, 0, 1])
    """
    train_labels = raw["train"][1]
    string_labels = any(isinstance(label, str) for label in train_labels)
    if string_labels and not all(isinstance(label, str) for label in train_labels):
        mixed = sorted({type(label).__name__ for label in train_labels})
        raise ValueError(
            f"The training labels mix types {mixed}, e.g. "
            f"{[v for v in train_labels if not isinstance(v, str)][0]!r} and "
            f"{[v for v in train_labels if isinstance(v, str)][0]!r}. Give "
            "every label as a string, or every label as an integer."
        )
    derived = class_names is None
    if class_names is None:
        class_names = sorted({_hashable(label) for label in train_labels})
        if len(train_labels) >= _CHECKED_SIZE and len(class_names) > len(train_labels) / 2:
            raise ValueError(
                f"The training split of {description!r} has {len(class_names)} "
                f"classes for {len(train_labels)} texts (labels such as "
                f"{[str(v) for v in class_names[:3]]}): most classes would have "
                "one example, as when the label column holds ids or scores. "
                "Pass the column of class labels (`label_column=`, "
                "--label-column), bin scores into classes, or pass "
                "`class_names=` if these are the classes."
            )
    class_names = [str(name) for name in class_names]
    _check_distinct_classes(class_names, derived, description)
    if string_labels:
        index = {name: i for i, name in enumerate(class_names)}
    elif all(re.fullmatch(r"-?\d+", name) for name in class_names):
        # Integer labels are their classes' names (1..5 stars, -1/+1), in
        # numeric order; for 0..n-1 the name and the index agree.
        index = {int(name): i for i, name in enumerate(class_names)}
    else:
        index = {i: i for i in range(len(class_names))}
    splits = {}
    for name in SPLIT_NAMES:
        if name not in raw:
            continue
        texts, labels = raw[name]
        unknown = sorted({str(v) for v in labels if _hashable(v) not in index})
        if unknown:
            raise ValueError(
                f"The {name} split has labels {unknown[:10]} outside the "
                f"classes {class_names}. Pass `class_names=` listing every "
                "class, or fix those labels."
            )
        splits[name] = TextSplit(
            texts, np.array([index[_hashable(v)] for v in labels], np.int32)
        )
    if training:
        _check_training_classes(splits, class_names, description)
    _warn_of_training_copies(splits)
    _warn_of_contradicting_labels(splits, class_names)
    return TextClassificationData(
        class_names=class_names, name=description, **splits
    )


def text_key(text):
    """What two texts share when they are the same text: their words, runs
    of white space made one space (`new_texts` and the copies
    `_build` warns about compare texts by it).

    Example:

    >>> text_key("  a  fine\tfilm ")
    'a fine film'
    """
    return " ".join(text.split())


def _warn_of_training_copies(splits):
    """Warns when validation or test texts are also training texts
    (`text_key`), as a user's own files can have them: a split hashed from
    one file keeps identical texts together (texts that differ in white
    space alone may still fall apart).

    Example:

    >>> import warnings
    >>> splits = {"train": TextSplit(["a fine film", "dull"], np.array([1, 0])),
    ...           "test": TextSplit(["a  fine film", "new"], np.array([1, 0]))}
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _warn_of_training_copies(splits)
    >>> print(caught[0].message)
    1 of the 2 test texts are also training texts (e.g. 'a  fine film'): the test accuracy then counts texts the model trained on. Remove them from one of the files.
    """
    training = {text_key(text) for text in splits["train"].texts}
    for name in ("validation", "test"):
        if name not in splits:
            continue
        copies = [text for text in splits[name].texts if text_key(text) in training]
        if copies:
            warnings.warn(
                f"{len(copies)} of the {len(splits[name])} {name} texts are "
                f"also training texts (e.g. {copies[0]!r:.80}): the {name} "
                "accuracy then counts texts the model trained on. Remove "
                "them from one of the files.",
                stacklevel=4,
            )


def _warn_of_contradicting_labels(splits, class_names):
    """Warns when one text (`text_key`) carries two labels, anywhere in the
    splits: a model cannot be right on both copies, and training on both
    teaches it neither. The copies stay: which label is right is the
    user's call.

    Example:

    >>> import warnings
    >>> splits = {"train": TextSplit(["a fine film", "dull", "a fine  film"], np.array([1, 0, 0]))}
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _warn_of_contradicting_labels(splits, ["negative", "positive"])
    >>> print(caught[0].message)
    1 text appears with different labels (e.g. 'a fine film': ['negative', 'positive']): a model cannot be right on every copy. Fix those labels or remove the copies.
    """
    labels = {}
    for split in splits.values():
        for text, label in zip(split.texts, split.labels.tolist()):
            labels.setdefault(text_key(text), set()).add(label)
    contradicting = [(text, found) for text, found in labels.items() if len(found) > 1]
    if contradicting:
        text, found = contradicting[0]
        count = len(contradicting)
        warnings.warn(
            f"{count} {'text appears' if count == 1 else 'texts appear'} with "
            f"different labels (e.g. {text!r:.80}: "
            f"{[class_names[i] for i in sorted(found)]}): a model cannot be "
            "right on every copy. Fix those labels or remove the copies.",
            stacklevel=4,
        )


def _hashable(label):
    if isinstance(label, str):
        return label
    if isinstance(label, float) and label.is_integer():
        return int(label)
    return label
