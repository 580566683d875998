"""`TeacherCache`: a teacher's logits computed once and kept on disk.

Offline distillation runs the teacher once over the training data and trains
the student from the stored logits, so each epoch costs about as much as
training the student alone. The cache is a folder of `.npy` arrays, one row
per example: the model inputs, the labels (and sample weights), and the
teacher logits, plus `manifest.json`, which records what the cache was built
from. Each element of `TeacherCache.dataset()` carries an example together
with its own logits, so shuffling, repeating and re-batching cannot pair an
example with another example's logits.
"""

import hashlib
import json
import types
import warnings
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from keras_kd import datasets as kd_datasets
from keras_kd.distillation.losses import check_temperature
from keras_kd.distillation.shapes import check_logits_not_probabilities
from keras_kd.distillation.multi_teacher import (
    check_teacher_weights,
    combine_teacher_logits,
    teacher_list,
)
from keras_kd.datasets.prompt_responses import check_responses_fit
from keras_kd.datasets.tokenization import check_finite
from keras_kd.distillation.top_k import top_k_logits
from keras_kd.utils.io import atomic_folder, atomic_write, atomic_write_json, file_above
from keras_kd.utils.validation import check_causal_lm_texts, check_choice, check_int, check_not_a_distiller, check_seed, is_prompt_responses

_FORMAT = "keras_kd.TeacherCache/1"
_MANIFEST = "manifest.json"
_PAD_FIX = (
    "or pass the texts with `preprocessor=`, which pads them to its "
    "`sequence_length`"
)


def fingerprint_weights(model):
    """SHA-256 of a model's weights (shapes, dtypes and values, in order).

    Layer names are left out: the same weights in a re-created model (whose
    auto-generated names differ) give the same fingerprint.
    """
    digest = hashlib.sha256()
    for weight in model.weights:
        value = np.ascontiguousarray(weight.numpy())
        digest.update(f"{value.dtype}{value.shape}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def _fingerprint_teachers(teachers, weights, temperature):
    """One teacher's `fingerprint_weights`; for several, a digest of theirs
    with the weights and temperature that combine them."""
    if len(teachers) == 1:
        return fingerprint_weights(teachers[0])
    parts = [fingerprint_weights(t) for t in teachers] + [repr(weights), repr(temperature)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _fingerprint_arrays(arrays):
    digest = hashlib.sha256()
    for name in sorted(arrays):
        value = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}{value.dtype}{value.shape}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


class TeacherCache:
    """Teacher logits for a fixed set of examples, stored in a folder.

    Build one with `TeacherCache.build(teacher, data, directory)`; open an
    existing one (in another process, without the teacher) with
    `TeacherCache(directory)`. `cache.dataset()` yields
    `(x, {"labels": y, "teacher_logits": logits})` (and `sample_weight` if the
    data had one), which `keras_kd.Distiller.fit` consumes without calling
    its teacher.

    Built over several teachers (`teacher=[t1, t2]`, `teacher_weights`,
    `temperature`), the cache holds their combined target, as the
    `Distiller` combines live teachers: the logits whose softmax at the
    distillation temperature is the weighted mean of the teachers'
    softmaxes (`keras_kd.distillation.multi_teacher`); with `top_k`, the
    top k of those combined logits. Distill from it at the same
    temperature.

    Dense logits cost `4·classes` bytes per example (`4·vocabulary` per
    token for a sequence model). With `top_k=k`, only the `k` largest logits
    per position and their indices are kept: `4·k` bytes per token with
    the default `top_k_dtype="float16"` (BERT's vocabulary of 30,522 and
    `k=32`: 128 B instead of 119 KiB; `8·k` with `"float32"`); the
    distillation losses take the teacher's softmax over those `k` entries
    and the student's over the whole vocabulary (see
    `keras_kd.losses.top_k_logits`).

    Args:
        directory: folder of a complete cache.

    Raises:
        FileNotFoundError: there is no complete cache in `directory`.

    Attributes:
        directory: the cache folder.
        manifest: dict with `num_examples`, `top_k`, `teacher_fingerprint`,
            `data_fingerprint` and the stored array layout.
        reused: True when `build` found a matching cache and ran nothing.

    Example:

    >>> import tempfile
    >>> import keras, numpy as np, tensorflow as tf
    >>> import keras_kd
    >>> def linear():
    ...     return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> teacher, student = linear(), linear()
    >>> data = tf.data.Dataset.from_tensor_slices(
    ...     (np.random.rand(10, 4).astype("float32"), np.arange(10) % 3))
    >>> folder = tempfile.TemporaryDirectory()
    >>> cache = keras_kd.TeacherCache.build(
    ...     teacher, data, f"{folder.name}/cache", verbose=0)
    >>> len(cache), cache.top_k, cache.reused
    (10, None, False)
    >>> distiller = keras_kd.Distiller(student=student, teacher=teacher)
    >>> distiller.compile(optimizer="adam", jit_compile=False)
    >>> history = distiller.fit(
    ...     cache.dataset(batch_size=4, shuffle=True, seed=0), verbose=0)
    >>> sorted(history.history)
    ['distillation_loss', 'loss', 'student_loss']
    >>> keras_kd.TeacherCache.build(
    ...     teacher, data, f"{folder.name}/cache", verbose=0).reused
    True
    >>> folder.cleanup()
    """

    def __init__(self, directory):
        self.directory = Path(directory)
        self.manifest = _read_manifest(self.directory)
        if self.manifest is None:
            raise FileNotFoundError(
                f"No complete teacher cache in {str(self.directory)!r} (a "
                f"complete one has a {_MANIFEST} of format {_FORMAT!r}). "
                "Create it with `TeacherCache.build(teacher, data, "
                "directory)`."
            )
        self.reused = False

    def __len__(self):
        return self.manifest["num_examples"]

    @property
    def top_k(self):
        """The `k` of a sparse cache, or None for dense logits."""
        return self.manifest["top_k"]

    @classmethod
    def build(
        cls,
        teacher,
        data,
        directory,
        *,
        preprocessor=None,
        batch_size=64,
        top_k=None,
        top_k_dtype="float16",
        jit_compile=True,
        verbose=1,
        teacher_weights=None,
        temperature=None,
    ):
        """Runs `teacher` once over `data` and stores the logits, or reuses
        the cache already in `directory` if it was built from the same
        teacher weights and the same examples.

        A cache built from other teacher weights or other data is replaced,
        with a warning that says which changed. The new cache is written to
        a temporary folder next to `directory` and moved into place when
        complete, so an interrupted build never leaves a cache that reads as
        complete.

        Args:
            teacher: a `keras.Model` producing logits, run with
                `training=False`; or a list of them, whose combined target
                is stored.
            data: the examples, in a fixed order: an unbatched
                `tf.data.Dataset` of `(x, y)` or `(x, y, sample_weight)`, or,
                with `preprocessor`, a `keras_kd.datasets.TextSplit`, an
                unbatched dataset of `(text, label)`, or (for a causal LM,
                whose preprocessor makes the targets) a list of texts.
            directory: folder of the cache; created if missing. An existing
                folder that is not a teacher cache is never touched.
            preprocessor: optional keras-hub preprocessor that tokenizes
                texts once before they are stored.
            batch_size: teacher inference batch size.
            top_k: None keeps all logits; an int `k` keeps the `k` largest
                per position (for large vocabularies).
            top_k_dtype: storage of the top-k values: `"float16"` (shifted
                so the largest is 0, where float16 is most precise; with
                uint16 token ids, 4 bytes per entry) or `"float32"` (exact).
            jit_compile: compile the teacher's forward pass with XLA.
            verbose: 1 shows a progress bar, 0 is silent.
            teacher_weights: with several teachers, one float >= 0 each
                (default: equal).
            temperature: with several teachers, the distillation
                temperature at which their probabilities are averaged
                (required: the combined target depends on it).

        Returns:
            A `TeacherCache`.
        """
        directory = Path(directory)
        teachers = teacher_list(teacher)
        for t in teachers:
            check_not_a_distiller(t, "teacher", "TeacherCache.build")
            if not isinstance(t, keras.Model):
                raise ValueError(
                    "`teacher` must be a keras.Model or a list of them. "
                    f"Received: {type(t).__name__}"
                )
        weights = check_teacher_weights(teacher_weights, len(teachers))
        if len(teachers) > 1:
            if temperature is None:
                raise ValueError(
                    f"A cache of {len(teachers)} teachers stores their "
                    "probabilities averaged at the distillation temperature. "
                    "Pass `temperature=`, the one you will compile the "
                    "Distiller with (e.g. 2.0)."
                )
            temperature = check_temperature(temperature)
        check_int("top_k", top_k, allow_none=True, example=32)
        # range(0, n, 0) failed only after the whole dataset was read.
        check_int("batch_size", batch_size, example=64)
        check_choice("top_k_dtype", top_k_dtype, ("float16", "float32"))
        _check_cache_destination(directory)
        if isinstance(data, kd_datasets.TextSplit):
            data = data.as_dataset()
        elif preprocessor is not None and not isinstance(data, tf.data.Dataset):
            # A causal LM's texts: its preprocessor makes the targets.
            data = tf.data.Dataset.from_tensor_slices(check_causal_lm_texts("data", data))
        prompt_responses = isinstance(data, tf.data.Dataset) and is_prompt_responses(data.element_spec)
        if preprocessor is not None:
            _check_preprocessor(teachers, preprocessor)
            _check_unbatched_texts(data)
            data = kd_datasets.tokenized_examples(data, preprocessor)
        _check_unbatched(teachers[0], data)
        arrays, x_keys = _materialize(data)
        if prompt_responses:
            check_responses_fit(arrays["sample_weight"])
        fingerprints = {
            "teacher_fingerprint": _fingerprint_teachers(teachers, weights, temperature),
            "data_fingerprint": _fingerprint_arrays(arrays),
        }
        previous = _read_manifest(directory)
        if previous is not None:
            changed = [
                what
                for what, key in (
                    ("teacher weights", "teacher_fingerprint"),
                    ("data", "data_fingerprint"),
                )
                if previous[key] != fingerprints[key]
            ]
            if previous["top_k"] != top_k:
                changed.append(f"top_k ({previous['top_k']} -> {top_k})")
            elif top_k is not None and previous.get("top_k_dtype") != top_k_dtype:
                changed.append(
                    f"top_k_dtype ({previous.get('top_k_dtype')} -> {top_k_dtype})"
                )
            if not changed:
                cache = cls(directory)
                cache.reused = True
                return cache
            warnings.warn(
                f"The teacher cache in {str(directory)!r} was built from "
                f"other {' and '.join(changed)}; rebuilding it.",
                stacklevel=2,
            )
        stored = dict(arrays)
        stored.update(
            _run_teacher(
                teachers, arrays, x_keys, batch_size, top_k, top_k_dtype,
                jit_compile, verbose, weights, temperature,
            )
        )
        manifest = {
            "format": _FORMAT,
            "num_examples": int(len(arrays["labels"])),
            "x_keys": x_keys,
            "arrays": sorted(stored),
            "top_k": top_k,
            "top_k_dtype": None if top_k is None else top_k_dtype,
            "teacher": teachers[0].name if len(teachers) == 1 else [t.name for t in teachers],
            "teacher_weights": weights if len(teachers) > 1 else None,
            "temperature": temperature,
            **fingerprints,
        }
        with atomic_folder(directory, overwrite=True) as staging:
            # The manifest last: a folder without one is never read as a
            # complete cache. `_check_cache_destination` made sure that
            # `directory` is absent, empty or a teacher cache.
            for name, value in stored.items():
                atomic_write(
                    staging / f"{name}.npy",
                    lambda tmp, value=value: np.save(tmp, value),
                )
            atomic_write_json(staging / _MANIFEST, manifest)
        return cls(directory)

    def _check_unchanged(self):
        """Refuses to read a folder rebuilt or removed since this object read
        its manifest: `len(self)` and the array layout would describe the
        old cache (another row count, or dense logits where top-k ones are
        now), while the arrays come from the new one."""
        current = _read_manifest(self.directory)
        if current == self.manifest:
            return
        what = (
            "no longer holds a complete cache"
            if current is None
            else f"was rebuilt ({current['num_examples']} examples, "
            f"top_k={current['top_k']}; {self.manifest['num_examples']} "
            f"examples, top_k={self.manifest['top_k']} when opened)"
        )
        raise FileNotFoundError(
            f"The teacher cache in {str(self.directory)!r} {what} since this "
            "TeacherCache was opened. Open it again: "
            f"`TeacherCache({str(self.directory)!r})`, or build it again "
            "with `TeacherCache.build`."
        )

    def bytes_per_position(self):
        """Bytes of teacher logits stored per example, or per token for a
        sequence model: `4·k` for a top-k cache (float16 values and uint16
        indices while the vocabulary fits 65,536 ids), `4·vocabulary` for
        dense float32 logits.

        Returns:
            An int.
        """
        self._check_unchanged()
        per_position = 0
        for name in self.manifest["arrays"]:
            if name.startswith("teacher_logits"):
                array = np.load(self.directory / f"{name}.npy", mmap_mode="r")
                per_position += array.dtype.itemsize * array.shape[-1]
        return per_position

    def arrays(self):
        """The cached examples and their teacher logits as NumPy arrays, for
        batching of one's own (such as `keras_kd.speech.trimmed_batches`).

        Returns:
            `(x, target, sample_weight)`: `target` is `{"labels": y,
            "teacher_logits": logits}`, `logits` the dict `{"values",
            "indices"}` for a top-k cache, in their stored dtypes (float16
            and uint16 by default; the losses widen them);
            `sample_weight` is None if the data had none. Every array is
            memory-mapped from the cache folder.

        Example:

        >>> import tempfile
        >>> import keras, numpy as np, tensorflow as tf
        >>> teacher = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        >>> data = tf.data.Dataset.from_tensor_slices((np.ones((5, 4), "float32"), np.arange(5) % 3))
        >>> folder = tempfile.TemporaryDirectory()
        >>> x, target, weight = TeacherCache.build(teacher, data, f"{folder.name}/c", verbose=0).arrays()
        >>> x.shape, target["labels"].tolist(), target["teacher_logits"].shape, weight
        ((5, 4), [0, 1, 2, 0, 1], (5, 3), None)
        >>> folder.cleanup()
        """
        self._check_unchanged()
        arrays = {
            name: np.load(self.directory / f"{name}.npy", mmap_mode="r")
            for name in self.manifest["arrays"]
        }
        x_keys = self.manifest["x_keys"]
        x = (
            arrays["x"]
            if x_keys is None
            else {key: arrays[f"x.{key}"] for key in x_keys}
        )
        logits = (
            arrays["teacher_logits"]
            if self.top_k is None
            # Kept as stored: the losses widen each batch, so the whole
            # cache never takes twice its bytes in memory.
            else {
                "values": arrays["teacher_logits.values"],
                "indices": arrays["teacher_logits.indices"],
            }
        )
        target = {"labels": arrays["labels"], "teacher_logits": logits}
        return x, target, arrays.get("sample_weight")

    def dataset(self, batch_size=32, *, shuffle=False, seed=None):
        """The cached examples with their teacher logits, batched.

        Args:
            batch_size: examples per batch.
            shuffle: reshuffle every epoch (each example keeps its logits).
            seed: shuffle seed, with `shuffle=True` only (refused without
                it: the examples keep their stored order).

        Returns:
            A `tf.data.Dataset` of `(x, {"labels": y, "teacher_logits":
            logits})`, or `(x, {...}, sample_weight)`, as `arrays()`
            returns them. The arrays are read into memory once, when the
            dataset is created.
        """
        check_int("batch_size", batch_size, example=32)
        check_seed(seed, shuffle)
        x, target, sample_weight = self.arrays()
        element = (x, target) if sample_weight is None else (x, target, sample_weight)
        ds = tf.data.Dataset.from_tensor_slices(element)
        if shuffle:
            ds = ds.shuffle(len(self), seed=seed, reshuffle_each_iteration=True)
        return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _check_cache_destination(directory):
    if directory.exists() and not directory.is_dir():
        raise FileExistsError(
            f"{str(directory)!r} is a file, not a cache folder. Pass a "
            "folder path for the teacher cache."
        )
    blocking = file_above(directory)
    if blocking is not None:
        raise NotADirectoryError(
            f"The teacher cache {str(directory)!r} cannot be created: "
            f"{blocking!r} is a file. Pass a folder path that is not below "
            "a file."
        )
    if (
        directory.is_dir()
        and any(directory.iterdir())
        and _read_manifest(directory) is None
    ):
        raise FileExistsError(
            f"{str(directory)!r} holds files but no teacher cache; it is "
            "left untouched. Pass an empty or new folder."
        )


def _read_manifest(directory):
    try:
        manifest = json.loads((Path(directory) / _MANIFEST).read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None
    return manifest if manifest.get("format") == _FORMAT else None


def _check_preprocessor(teachers, preprocessor):
    """Refuses a `preprocessor` whose tokenizer is not the teachers': the
    cache would hold their logits on other words (or fail on ids past a
    trimmed teacher's vocabulary)."""
    from keras_kd.transfer.vocabulary import vocabulary_difference

    given = types.SimpleNamespace(preprocessor=preprocessor)
    for teacher in teachers:
        difference = vocabulary_difference(teacher, given)
        if difference is not None:
            raise ValueError(
                "`preprocessor`'s tokenizer differs from the teacher's (token "
                "id {} is {!r} for the teacher, {!r} for the preprocessor): the "
                "cache would hold the teacher's logits on other words. Pass "
                "the teacher's own: `preprocessor=teacher.preprocessor`.".format(*difference)
            )


def _check_unbatched_texts(data):
    """Refuses a batched dataset of texts before they are tokenized."""
    if not isinstance(data, tf.data.Dataset):
        return
    spec = data.element_spec
    first = keras.tree.flatten(spec[0] if isinstance(spec, tuple) else spec)[0]
    if first.dtype == tf.string and first.shape.rank:
        raise ValueError(
            "`data` looks batched: its texts come in batches of shape "
            f"{tuple(first.shape)}. Pass one text per element: "
            "`data.unbatch()`. (TeacherCache.build batches by `batch_size`.)"
        )


def _check_unbatched(teacher, data):
    """Refuses a batched dataset, whose examples have one axis more than
    the teacher's inputs: `_materialize` would join its batches into
    one example each (or fail in the teacher's first call)."""
    if not isinstance(data, tf.data.Dataset) or not isinstance(data.element_spec, tuple):
        return
    # A subclassed teacher has no symbolic inputs to compare with.
    inputs = getattr(teacher, "inputs", None) or []
    x_spec = keras.tree.flatten(data.element_spec[0])
    if len(inputs) != len(x_spec):
        return
    if all(spec.shape.rank == len(tensor.shape) for spec, tensor in zip(x_spec, inputs)):
        raise ValueError(
            "`data` looks batched: its examples' inputs have shape "
            f"{tuple(x_spec[0].shape)}, as many axes as the teacher's "
            f"inputs {tuple(inputs[0].shape)}, batch axis included. Pass "
            "one example per element: `data.unbatch()`. (TeacherCache.build "
            "batches by `batch_size`.)"
        )


def _materialize(data):
    """Reads an unbatched `(x, y[, sample_weight])` dataset into arrays."""
    if not isinstance(data, tf.data.Dataset):
        raise ValueError(
            "`data` must be an unbatched tf.data.Dataset of (x, y) or "
            "(x, y, sample_weight), or a TextSplit with `preprocessor=`. "
            f"Received: {type(data).__name__}"
        )
    check_finite("data", data, "`TeacherCache.build`")
    spec = data.element_spec
    if not isinstance(spec, tuple) or len(spec) not in (2, 3):
        raise ValueError(
            "Each example of `data` must be (x, y) or (x, y, sample_weight). "
            f"Received elements of spec {spec}. Pass texts with "
            "`preprocessor=`."
        )
    x_spec = spec[0]
    x_keys = sorted(x_spec) if isinstance(x_spec, dict) else None
    if x_spec == tf.TensorSpec((), tf.string) or (
        x_keys and any(x_spec[k].dtype == tf.string for k in x_keys)
    ):
        raise ValueError(
            "`data` holds raw strings; pass `preprocessor=` so the texts are "
            "tokenized once before the teacher sees them."
        )
    for part in keras.tree.flatten(x_spec):
        # A ragged `x` was read whole and failed in the teacher's first call.
        if not isinstance(part, tf.TensorSpec):
            raise ValueError(
                "The inputs of `data` must be dense tensors, every example "
                f"of one shape. Received inputs of spec {part}. Pad them to "
                f"one length (`x.to_tensor(shape=[length])`), {_PAD_FIX}."
            )
    for name, part in zip(("labels", "sample_weight"), spec[1:]):
        # Checked before the teacher runs: a nested part failed in
        # np.concatenate, strings only when the finished cache was read.
        if not isinstance(part, tf.TensorSpec):
            raise ValueError(
                f"The {name} of `data` must be one tensor per example. "
                f"Received elements whose {name} have spec {part}. Pass "
                "(x, y) or (x, y, sample_weight) with y a class id (or a "
                "vector of targets)."
            )
        if not (part.dtype.is_integer or part.dtype.is_floating or part.dtype.is_bool):
            fix = (
                " Map class names to class ids first: `data.map(lambda x, y: "
                "(x, lookup(y)))` with `lookup = keras.layers.StringLookup("
                "vocabulary=class_names, num_oov_indices=0)`."
                if part.dtype == tf.string and name == "labels"
                else ""
            )
            raise ValueError(
                f"The {name} of `data` are {part.dtype.name} values; a teacher "
                f"cache stores numbers.{fix}"
            )
    names = (
        ["x"] if x_keys is None else [f"x.{key}" for key in x_keys]
    ) + ["labels", "sample_weight"][: len(spec) - 1]
    columns = {name: [] for name in names}
    try:
        for batch in data.batch(4096).as_numpy_iterator():
            x = batch[0] if x_keys is None else [batch[0][k] for k in x_keys]
            values = ([x] if x_keys is None else x) + list(batch[1:])
            for name, value in zip(names, values):
                columns[name].append(value)
    except tf.errors.InvalidArgumentError:
        # tf.data's "Cannot batch tensors with different shapes".
        _check_same_shapes(data, names)
        raise
    if not columns["labels"]:
        raise ValueError("`data` is empty; a teacher cache needs examples.")
    if any(len({part.shape[1:] for part in parts}) > 1 for parts in columns.values()):
        # Batches of one shape each, which np.concatenate cannot join.
        _check_same_shapes(data, names)
    return {name: np.concatenate(parts) for name, parts in columns.items()}, x_keys


def _check_same_shapes(data, names):
    """Refuses `data` whose examples differ in shape, naming the part and
    the first shape that differs from the first example's."""
    # As the (x, y, sample_weight) that the docstring names them.
    parts = [
        f"x[{name[2:]!r}]" if name.startswith("x.") else {"labels": "y"}.get(name, name)
        for name in names
    ]
    first = None
    for i, example in enumerate(data.as_numpy_iterator()):
        shapes = [np.shape(value) for value in keras.tree.flatten(example)]
        first = first or shapes
        for part, expected, shape in zip(parts, first, shapes):
            if shape != expected:
                raise ValueError(
                    f"The examples of `data` differ in shape: `{part}` of "
                    f"example 0 has shape {expected}, of example {i} {shape}. "
                    "A teacher cache stores examples of one shape: pad them "
                    f"to one length, {_PAD_FIX}."
                )


def _run_teacher(
    teachers, arrays, x_keys, batch_size, top_k, top_k_dtype, jit_compile, verbose,
    weights, temperature,
):
    n = len(arrays["labels"])

    @tf.function(jit_compile=jit_compile)
    def forward(x):
        # Several teachers: combined densely first, then the top k taken.
        logits = keras.ops.cast(
            combine_teacher_logits(
                [t(x, training=False) for t in teachers], weights, temperature
            ),
            "float32",
        )
        if top_k is None:
            return logits
        return top_k_logits(logits, top_k)

    def batch(start, stop):
        if x_keys is None:
            return arrays["x"][start:stop]
        return {key: arrays[f"x.{key}"][start:stop] for key in x_keys}

    # Before hours of caching, not after.
    for i, teacher in enumerate(teachers):
        who = "teacher" if len(teachers) == 1 else f"teacher {i}"
        first = teacher(batch(0, batch_size), training=False)
        check_logits_not_probabilities(first, who)
        if top_k is not None and top_k > first.shape[-1]:
            raise ValueError(
                f"top_k={top_k} exceeds the {who}'s {first.shape[-1]} logits "
                f"per position. Pass top_k <= {first.shape[-1]}, or "
                "top_k=None to store every logit."
            )
    outputs = []
    progbar = keras.utils.Progbar(n, verbose=verbose, unit_name="example")
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        x = batch(start, stop)
        outputs.append(keras.tree.map_structure(np.asarray, forward(x)))
        progbar.update(stop)
    if top_k is None:
        return {"teacher_logits": np.concatenate(outputs)}
    values = np.concatenate([o["values"] for o in outputs])
    indices = np.concatenate([o["indices"] for o in outputs])
    if top_k_dtype == "float16":
        # Compact storage (DistillKit-style): the losses normalise the
        # teacher over its k entries, so the values may be shifted to make the largest 0,
        # where float16 is most precise; token ids fit uint16 for
        # vocabularies up to 65,536 (SmolLM2's 49,152: 4 bytes an entry).
        values = (values - values[..., :1]).astype(np.float16)
        if indices.size and int(indices.max()) < 2**16:
            indices = indices.astype(np.uint16)
    return {"teacher_logits.values": values, "teacher_logits.indices": indices}
