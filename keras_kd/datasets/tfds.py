"""TensorFlow Datasets, offline: `tfds_data_dir`, reading a dataset already
prepared on disk (the `"tfds:NAME[/CONFIG][:VERSION]"` sources of `load()`),
and `prepare_tfds`, which stores a `TextClassificationData` as one."""

import difflib
import os
from pathlib import Path

from keras_kd.datasets.sources import _check_text
from keras_kd.datasets.text_split import SPLIT_NAMES


def tfds_data_dir(data_dir=None):
    """Returns the TensorFlow Datasets folder: `data_dir`, else
    `$TFDS_DATA_DIR`, else `~/tensorflow_datasets`.

    >>> tfds_data_dir("/data/tfds").as_posix()
    '/data/tfds'
    """
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
        _check_known_name(name, root, found)
        raise FileNotFoundError(
            f"The TensorFlow Datasets dataset {spec!r} is not prepared in "
            f"{str(root)!r} (prepared there under that name: {found}), and "
            "keras-kd never downloads it. Prepare it "
            f"where the internet is reachable (`tfds build {name} "
            f"--data_dir {root}`) and copy the folder here, or point at "
            "a prepared copy with `data_dir=` (the `TFDS_DATA_DIR` "
            "environment variable for the keras-kd command)."
        )
    return max(candidates, key=_version_key)


def _check_known_name(name, root, found):
    """Refuses a name that is neither in the TFDS catalogue nor prepared in
    `root`: a misspelling, which "prepare it" would not mend."""
    import tensorflow_datasets as tfds

    builder = name.split("/")[0]
    known = set(tfds.list_builders(with_community_datasets=False))
    if found or builder in known:
        return
    prepared = {p.parent.parent.name for p in root.glob("*/*/dataset_info.json")}
    prepared |= {
        p.parent.parent.parent.name
        for p in root.glob("*/*/*/dataset_info.json")
    }
    if builder in prepared:
        return
    close = difflib.get_close_matches(builder, sorted(known | prepared), n=3)
    raise FileNotFoundError(
        f"{builder!r} is not a TensorFlow Datasets name, nor a dataset "
        f"prepared in {str(root)!r}. "
        + (f"Did you mean {' or '.join(map(repr, close))}? " if close else "")
        + "The names are listed by `tfds.list_builders()`."
    )


def _read_tfds(spec, text_column, label_column, data_dir):
    """Reads the labeled splits of a prepared TFDS dataset.

    Returns `({split name: (texts, labels)}, class names)`; splits whose
    labels are all -1 (TFDS's mark of unlabeled examples) are left out.
    """
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
    for name in SPLIT_NAMES:
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

    TFDS writes the dataset in a temporary folder and renames it into place
    when complete; it prints where to (TFDS always does).

    Example:

    >>> import tempfile
    >>> from keras_kd.datasets import load
    >>> data = load((["good", "bad", "fine", "awful"], [1, 0, 1, 0]),
    ...             splits=(1.0, 0.0, 0.0))
    >>> root = tempfile.mkdtemp()
    >>> folder = prepare_tfds(data, "tiny_reviews", root)  # doctest: +ELLIPSIS
    Downloading and preparing dataset ...
    Dataset tiny_reviews downloaded and prepared to .../tiny_reviews/1.0.0. ...
    >>> folder.relative_to(root).as_posix()
    'tiny_reviews/1.0.0'
    >>> load("tfds:tiny_reviews", data_dir=root).train.texts
    ['good', 'bad', 'fine', 'awful']
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
