"""The `Distiller`'s checks of the data of `fit` and `evaluate`: the first
batch of `fit`, before any training (shapes, class ids and losses on real
data, then whether the step compiles with XLA), the class ids and token
ids of every batch, the backup callbacks that would not resume exactly, and the
callback that stops at a non-finite loss."""

import numbers
import warnings

import keras
import numpy as np
import tensorflow as tf

from keras_kd.distillation.inputs import (
    check_batch,
    holds_strings,
    new_step_for_new_ranks,
    no_keras_shuffle,
    one_output_name,
    peek_first_batch,
    split_cached_teacher,
    vocabulary_size,
    with_checked_batches,
)
from keras_kd.distillation.multi_teacher import teacher_mixture, teacher_temperature
from keras_kd.distillation.non_finite import StopOnNonFiniteLoss
from keras_kd.distillation.shapes import check_logits_not_probabilities, check_logits_shapes
from keras_kd.distillation.xla import xla_lowering_error


def _check_each_teacher(distiller, x, y, y_pred):
    """Several teachers' logits are combined into one target; each is
    checked first (its shape, logits and not probabilities), so that a
    mismatch names its teacher."""
    if len(distiller.teachers) == 1 or split_cached_teacher(y)[1] is not None:
        return
    for i, teacher in enumerate(distiller.teachers):
        try:
            logits = teacher(x, training=False)
            check_logits_shapes(logits, y_pred)
            check_logits_not_probabilities(logits, "teacher")
        except ValueError as error:
            raise ValueError(f"Teacher {i} ({teacher.name!r}): {error}") from None


# Mean total-variation distance between the cached and the live teacher's
# distributions above which the cache is not this teacher's: float16
# storage and XLA-or-not rounding stay under 0.01, a teacher trained on
# further or another one lands far above.
_CACHE_MISMATCH = 0.1


def cached_teacher_distance(live_logits, cached, padding_mask=None):
    """How far cached teacher logits are from a live teacher's: the mean,
    over positions (those `padding_mask` keeps, when given), of the total
    variation distance between their softmaxes, over the cached entries
    (the top k of a top-k cache). 0 for the same logits, at most 1.

    Args:
        live_logits: the live teacher's logits, `(..., classes)`.
        cached: cached logits of the same shape, or a top-k dict
            `{"values", "indices"}` (values shifted or not).
        padding_mask: the positions to compare, `(batch, sequence)`, or None.

    Returns:
        A float.

    Example:

    >>> live = np.array([[2.0, 0.0, -1.0]])
    >>> cached_teacher_distance(live, live - 5.0)
    0.0
    >>> round(cached_teacher_distance(live, np.array([[0.0, 2.0, -1.0]])), 3)
    0.73
    >>> top_2 = {"values": np.array([[0.0, -2.0]]), "indices": np.array([[0, 1]])}
    >>> cached_teacher_distance(live, top_2)
    0.0
    """
    live = np.asarray(live_logits, "float32")
    if isinstance(cached, dict):
        indices = np.asarray(cached["indices"]).astype("int64")
        live = np.take_along_axis(live, indices, axis=-1)
        cached = cached["values"]
    cached = np.asarray(cached, "float32")
    if cached.shape != live.shape:
        raise ValueError(
            f"The cached teacher logits have shape {cached.shape}, the "
            f"teacher's {live.shape}: the cache was built for other data or "
            "another teacher. Build it from this teacher and data."
        )

    def softmax(logits):
        shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return shifted / shifted.sum(axis=-1, keepdims=True)

    distances = 0.5 * np.abs(softmax(live) - softmax(cached)).sum(axis=-1)
    if padding_mask is not None and distances.ndim == 2:
        kept = np.asarray(padding_mask).astype(bool)
        return float(distances[kept].mean()) if kept.any() else 0.0
    return float(distances.mean())


def _check_cache_is_the_teachers(distiller, x, y):
    """A batch's cached logits (a `TeacherCache`'s) must be the target the
    live teachers give (several: combined at the Distiller's weights and
    temperature): else the student trains toward one target and is
    validated, saved and exported with another, without a word."""
    cached = split_cached_teacher(y)[1]
    if cached is None:
        return
    loss_fn = distiller.distillation_loss_fn
    if len(distiller.teachers) > 1 and teacher_mixture(loss_fn) == "logits":
        raise ValueError(
            f"{type(loss_fn).__name__} matches the teachers' weighted mean "
            "logits, but a TeacherCache of several teachers holds the "
            "log-probabilities of their probability mixture, shifted from "
            "any logits by a constant per position that a loss between "
            "logits counts. Distill from the live teachers (data without "
            "the cache), or use a loss between distributions (the default "
            "KLDivergence)."
        )
    live = distiller.live_teacher_logits(x)
    mask = x.get("padding_mask") if isinstance(x, dict) else None
    distance = cached_teacher_distance(live, cached, mask)
    if distance <= _CACHE_MISMATCH:
        return
    measured = (
        f"on the first batch their softmaxes differ by {distance:.3f} on "
        f"average (total variation distance; under {_CACHE_MISMATCH} from "
        "the target the cache was built from)."
    )
    if len(distiller.teachers) == 1:
        raise ValueError(
            "The cached teacher logits in the data (a TeacherCache's) are "
            f"not this Distiller's teacher's ({distiller.teacher.name!r}): "
            f"{measured} Build the cache from the Distiller's teacher as it "
            "is now (`TeacherCache.build(distiller.teacher, data, "
            "directory)`; a teacher trained since rebuilds it), or give the "
            "Distiller the teacher the cache was built from."
        )
    temperature = teacher_temperature(distiller.distillation_loss_fn, distiller.temperature)
    names = [t.name for t in distiller.teachers]
    raise ValueError(
        "The cached teacher logits in the data (a TeacherCache's) are not "
        f"the combined target of this Distiller's teachers {names} at "
        f"teacher_weights={distiller.teacher_weights} and "
        f"temperature={temperature}: {measured} Build the cache from these "
        "teachers with the same weights and temperature "
        "(`TeacherCache.build(distiller.teachers, data, directory, "
        f"teacher_weights={distiller.teacher_weights}, "
        f"temperature={temperature})`), or give the Distiller the cache's "
        "`teacher_weights` and compile it at the cache's `temperature` (the "
        "cache's manifest lists both)."
    )


def _vocabulary_size(distiller):
    return vocabulary_size([distiller.student, *distiller.teachers])


def _checked_batches(distiller, x, y, training):
    """`with_checked_batches` with the distiller's bounds: class ids where
    a sparse cross-entropy reads labels, token ids where the models say
    their vocabulary."""
    num_classes = distiller._num_classes if distiller._checks_class_ids(training) else None
    return with_checked_batches(x, y, num_classes, _vocabulary_size(distiller))


def check_first_batch(distiller, batch):
    """Runs the distiller's losses once on `batch` (errors name the bad
    value before any step), records the student's number of classes, and,
    with `jit_compile="auto"`, lowers the training step to XLA once: if
    that fails, warns and turns XLA off.

    Args:
        distiller: a compiled `keras_kd.Distiller`.
        batch: the first batch, `(x, y)` or `(x, y, sample_weight)`.
    """
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(batch)
    if getattr(distiller.student, "preprocessor", None) is not None and holds_strings(x):
        # Lists, arrays and datasets of texts were tokenized already.
        raise ValueError(
            "The first batch holds raw texts, which the student's "
            "preprocessor tokenizes in a list, an array or a "
            "tf.data.Dataset of strings, not in a generator or a "
            "keras.utils.PyDataset. Pass the texts as a list, or wrap the "
            "generator: tf.data.Dataset.from_generator(make_batches, "
            "output_signature=(tf.TensorSpec([None], tf.string), "
            "tf.TensorSpec([None], tf.int32)))."
        )
    # Before the student reads them: an id out of range fails in TF's
    # gather here, and is clamped without a word in XLA steps.
    check_batch(batch, vocabulary_size=_vocabulary_size(distiller))
    student_logits = distiller.student(x, training=False)
    distiller._num_classes = student_logits.shape[-1]
    check_logits_not_probabilities(student_logits, "student")
    if distiller._checks_class_ids(training=True):
        check_batch(batch, num_classes=distiller._num_classes)
    if distiller._uses_teacher(training=True):
        _check_each_teacher(distiller, x, y, student_logits)
        _check_cache_is_the_teachers(distiller, x, y)
    teacher = distiller._teacher_outputs(x, y, training=True)
    live = teacher[0] is not None and split_cached_teacher(y)[1] is None
    if live and len(distiller.teachers) == 1:
        # One teacher's outputs are its own logits (several: checked above).
        check_logits_not_probabilities(teacher[0], "teacher")
    y_pred, features = distiller._student_outputs(x, False, teacher)
    distiller._loss_terms(x, y, sample_weight, y_pred, features, teacher, True)
    if not distiller._jit_auto:
        return

    def gradients(x, y, sample_weight):
        teacher = distiller._teacher_outputs(x, y, training=True)
        with tf.GradientTape() as tape:
            _, loss, _ = distiller._forward(x, y, sample_weight, teacher, training=True)
        return tape.gradient(loss, distiller.step_weights())

    error = xla_lowering_error(gradients, x, y, sample_weight)
    if error is not None:
        warnings.warn(
            "The distillation step does not compile with XLA; training "
            f"without it (jit_compile=False). XLA said: {error}",
            stacklevel=4,
        )
        distiller.jit_compile = False
        distiller.train_function = None
        distiller.test_function = None
        distiller.predict_function = None


def check_backup_callbacks(callbacks):
    """Refuses Keras's own `BackupAndRestore` with a step frequency: after a
    mid-epoch restart it trains the steps before the backup a second time
    (Keras 3.15), so the resumed weights are silently not the
    uninterrupted run's. `keras_kd.BackupAndRestore` resumes exactly.

    Example:

    >>> import keras, tempfile
    >>> check_backup_callbacks([keras.callbacks.BackupAndRestore(
    ...     tempfile.mkdtemp(), save_freq=50)])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: keras.callbacks.BackupAndRestore(save_freq=50) trains ...
    """
    from keras_kd.utils.backup import BackupAndRestore

    for callback in callbacks:
        keras_backup = isinstance(callback, keras.callbacks.BackupAndRestore)
        if keras_backup and not isinstance(callback, BackupAndRestore):
            if isinstance(callback.save_freq, int) and not isinstance(callback.save_freq, bool):
                raise ValueError(
                    f"keras.callbacks.BackupAndRestore(save_freq="
                    f"{callback.save_freq!r}) trains the steps before a "
                    "mid-epoch backup twice after a restart (Keras 3.15), so "
                    "the resumed weights differ from an uninterrupted run's. "
                    "Pass keras_kd.BackupAndRestore(backup_dir, save_freq="
                    f"{callback.save_freq!r}) instead: it resumes exactly."
                )


def with_class_weights(dataset, class_weight, num_classes):
    """`dataset` with `class_weight` applied as sample weights where Keras
    cannot: batches of a `TeacherCache` (`{"labels", "teacher_logits"}`
    targets, which Keras refuses as "a model with more than one
    output"); other datasets are returned as they are, for Keras.

    Args:
        dataset: a `tf.data.Dataset` of `(x, y[, sample_weight])` batches.
        class_weight: a dict `{class id: weight}`; classes not in it
            weigh 1.
        num_classes: the student's number of classes.

    Returns:
        The dataset, each batch's sample weight multiplied by its labels'
        class weights.

    Example:

    >>> import numpy as np
    >>> batches = tf.data.Dataset.from_tensor_slices(({"x": np.zeros((3, 1))},
    ...     {"labels": [0, 1, 1], "teacher_logits": np.zeros((3, 2))})).batch(3)
    >>> _, _, w = next(iter(with_class_weights(batches, {1: 4.0}, 2)))
    >>> w.numpy().tolist()
    [1.0, 4.0, 4.0]
    """
    _, y_spec, _ = keras.utils.unpack_x_y_sample_weight(dataset.element_spec)
    labels, cached = split_cached_teacher(y_spec)
    if cached is None:
        return dataset
    if labels is None:
        raise ValueError(
            f"class_weight={class_weight!r} weighs examples by their class, "
            "but this teacher cache holds no labels. Build it from data "
            "of (x, labels) pairs, or leave class_weight out."
        )
    unknown = [key for key in class_weight if not (
        isinstance(key, (int, np.integer)) and not isinstance(key, bool) and 0 <= key < num_classes
    )]
    if unknown:
        # Keras checks this for its own datasets; here a key that is no
        # class id would weigh nothing without a word.
        raise ValueError(
            f"class_weight has the key {unknown[0]!r}, which is no class id: "
            f"the student has {num_classes} classes, ids 0 to {num_classes - 1}. "
            "Key the weights by class id (`{class_names.index(name): weight}`)."
        )
    weights = tf.constant(
        [float(class_weight.get(i, 1.0)) for i in range(num_classes)], tf.float32
    )

    def weighted(*batch):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(
            batch if len(batch) > 1 else batch[0]
        )
        weight = tf.gather(weights, tf.cast(y["labels"], tf.int32))
        if sample_weight is not None:
            weight = tf.cast(sample_weight, tf.float32) * weight
        return x, y, weight

    return dataset.map(weighted)


def _as_array(values):
    """A flat list of numbers (labels, weights) as an array: Keras reads a
    list as a structure of inputs, and the first batch's slicing failed on
    its numbers ("'int' object is not subscriptable").

    Example:

    >>> _as_array([1, 0, 1]).tolist(), _as_array(None)
    ([1, 0, 1], None)
    """
    if isinstance(values, (list, tuple)) and values and all(
        isinstance(v, (numbers.Number, np.number)) for v in values
    ):
        return np.asarray(values)
    return values


def _labels_of_the_output(distiller, x, y, kwargs):
    """`(x, y)`, and `kwargs["validation_data"]`, with labels keyed by the
    name of the student's one output (`one_output_name`), as Keras keys a
    multi-output model's, taken out of their dict (`single_output_labels`);
    Keras fails on them for one output."""
    name = one_output_name(distiller.student)
    if name is None:
        return x, y
    if kwargs.get("validation_data") is not None:
        kwargs["validation_data"] = with_checked_batches(
            kwargs["validation_data"], None, output_name=name
        )[0]
    return with_checked_batches(x, y, output_name=name)


def checked_fit_data(distiller, x, y, kwargs):
    """`fit`'s data and arguments, checked: the first batch (once per
    `compile`, `check_first_batch`), the class ids (for a sparse
    cross-entropy) and token ids of every batch of the
    training and validation data for a sparse cross-entropy, Keras's
    `BackupAndRestore` with a step frequency refused
    (`check_backup_callbacks`), a `StopOnNonFiniteLoss` among the
    callbacks unless one is there, and `shuffle=False` for a dataset or
    generator, which Keras cannot shuffle.

    Returns:
        `(x, y, kwargs)` to pass on to `keras.Model.fit`.
    """
    x, y = _labels_of_the_output(distiller, x, y, kwargs)
    y = _as_array(y)
    if kwargs.get("sample_weight") is not None:
        kwargs["sample_weight"] = _as_array(kwargs["sample_weight"])
    callbacks = list(kwargs.pop("callbacks", None) or [])
    check_backup_callbacks(callbacks)
    if not any(isinstance(c, StopOnNonFiniteLoss) for c in callbacks):
        callbacks.append(StopOnNonFiniteLoss())
    kwargs["callbacks"] = callbacks
    if not distiller._first_batch_checked:
        batch, x = peek_first_batch(
            x, y, kwargs.get("sample_weight"), kwargs.get("batch_size")
        )
        check_first_batch(distiller, batch)
        distiller._first_batch_checked = True
    x = new_step_for_new_ranks(distiller, "train_function", x, y, kwargs.get("sample_weight"))
    if kwargs.get("validation_data") is not None:
        kwargs["validation_data"] = new_step_for_new_ranks(
            distiller, "test_function", kwargs["validation_data"]
        )
    x, y = _checked_batches(distiller, x, y, training=True)
    if kwargs.get("class_weight") is not None and isinstance(x, tf.data.Dataset):
        # After the class-id check, which names a bad id first.
        x = with_class_weights(x, kwargs.pop("class_weight"), distiller._num_classes)
    if kwargs.get("validation_data") is not None:
        kwargs["validation_data"] = _checked_batches(
            distiller, kwargs["validation_data"], None, training=False
        )[0]
    no_keras_shuffle(x, kwargs)
    return x, y, kwargs


def checked_evaluation_data(distiller, x, y, kwargs):
    """`evaluate`'s data with its class ids and token ids checked as in
    `fit`; returns `(x, y)`."""
    x, y = _labels_of_the_output(distiller, x, y, {})
    x = new_step_for_new_ranks(distiller, "test_function", x, y, kwargs.get("sample_weight"))
    if not distiller._checks_class_ids(training=False):
        return with_checked_batches(x, y, None, _vocabulary_size(distiller))
    if distiller._num_classes is None:
        batch, x = peek_first_batch(
            x, y, kwargs.get("sample_weight"), kwargs.get("batch_size")
        )
        first_x, _, _ = keras.utils.unpack_x_y_sample_weight(batch)
        distiller._num_classes = distiller.student(first_x, training=False).shape[-1]
    return _checked_batches(distiller, x, y, training=False)
