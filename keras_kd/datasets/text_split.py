"""The containers `load()` returns: `TextSplit` (one split's texts and
integer labels, in memory) and `TextClassificationData` (the class names and
the train/validation/test splits)."""

import dataclasses

import numpy as np
import tensorflow as tf

from keras_kd.datasets.tokenization import tokenize

SPLIT_NAMES = ("train", "validation", "test")


@dataclasses.dataclass(frozen=True, eq=False)
class TextSplit:
    """One split of a text-classification dataset, held in memory.

    Attributes:
        texts: list of `str`, one per example.
        labels: `int32` numpy array of class indices, aligned with `texts`.

    Example:

    >>> split = TextSplit(["good", "bad", "fine"], np.array([1, 0, 1], "int32"))
    >>> len(split), split.labels.tolist()
    (3, [1, 0, 1])
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

        >>> split = TextSplit(["a", "b", "c", "d"], np.array([0, 1, 1, 0], "int32"))
        >>> part = split.sample(2, seed=0)
        >>> part.texts, part.labels.tolist()
        (['a', 'c'], [0, 1])
        >>> split.sample(10) is split
        True
        """
        if size is None or len(self) <= size:
            return self
        index = np.sort(np.random.default_rng(seed).permutation(len(self))[:size])
        return TextSplit([self.texts[i] for i in index], self.labels[index])

    def extended(self, other):
        """Returns a `TextSplit` of this split's examples, then `other`'s.

        Example:

        >>> split = TextSplit(["good"], np.array([1], "int32"))
        >>> both = split.extended(TextSplit(["bad"], np.array([0], "int32")))
        >>> both.texts, both.labels.tolist()
        (['good', 'bad'], [1, 0])
        """
        return TextSplit(
            list(self.texts) + list(other.texts),
            np.concatenate([self.labels, other.labels]).astype("int32"),
        )

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

        `tokenize(self.as_dataset(), preprocessor, ...)`: see
        `keras_kd.datasets.tokenize` for the arguments and an example.
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

    Example:

    >>> data = TextClassificationData(
    ...     ["negative", "positive"],
    ...     train=TextSplit(["good", "bad"], np.array([1, 0], "int32")),
    ...     test=TextSplit(["fine"], np.array([1], "int32")),
    ... )
    >>> {name: len(split) for name, split in data.splits.items()}
    {'train': 2, 'test': 1}
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
            for name in SPLIT_NAMES
            if getattr(self, name) is not None
        }
