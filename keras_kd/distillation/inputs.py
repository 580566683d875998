"""What the `Distiller` does with its inputs before training: it peeks at
the first batch without losing it (for the checks before the first step),
checks class ids as batches are read (XLA cannot), splits the targets of a
`TeacherCache`, and, when the student is a keras-hub task with a preprocessor (a
`CausalLM`, a `FinetuneModel`), it takes raw texts, as keras-hub tasks do,
and tokenizes them with the student's preprocessor in `tf.data`."""

import functools
import types

import keras
import numpy as np
import tensorflow as tf

from keras_kd.datasets.prompt_responses import causal_lm_inputs, check_responses_fit
from keras_kd.utils.validation import check_causal_lm_texts, check_texts, is_prompt_responses


def _is_string_leaf(value):
    if isinstance(value, (str, bytes)):
        return True
    if isinstance(value, (list, tuple)) and value:
        return isinstance(value[0], (str, bytes))
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "USO" and value.size > 0 and isinstance(
            value.flat[0], (str, bytes)
        )
    if isinstance(value, (tf.Tensor, tf.TensorSpec)):
        return value.dtype == tf.string
    return False


def holds_strings(x):
    """Whether `x` (arrays, lists, a dict of them, or a `tf.data.Dataset`)
    holds raw strings as inputs.

    Example:

    >>> holds_strings(["a film", "a book"]), holds_strings(np.zeros((2, 3)))
    (True, False)
    """
    if isinstance(x, tf.data.Dataset):
        spec = x.element_spec
        first = spec[0] if isinstance(spec, tuple) else spec
        return any(_is_string_leaf(s) for s in tf.nest.flatten(first))
    if isinstance(x, (list, tuple)) and x and isinstance(x[0], (str, bytes)):
        return True
    if isinstance(x, dict):
        return any(_is_string_leaf(v) for v in x.values())
    return _is_string_leaf(x)


def check_no_targets(preprocessor, given):
    """Refuses targets or weights for a preprocessor that makes its own.

    A keras-hub `CausalLMPreprocessor` takes the next tokens as targets
    and the padding mask as weights, and ignores any `y` or
    `sample_weight` it is handed without a word: labels a user meant to
    train on would be dropped silently.

    Args:
        preprocessor: a keras-hub preprocessor.
        given: what was passed besides the texts, for the message.

    Example:

    >>> from keras_kd.utils.testing import tiny_llama3_causal_lm
    >>> check_no_targets(tiny_llama3_causal_lm().preprocessor, "`y`")
    Traceback (most recent call last):
    ...
    ValueError: A causal LM learns from its texts alone: its Llama3CausalLMPreprocessor makes the targets (each next token) and their weights (the padding mask) itself and would ignore `y`. Pass the texts alone: fit(texts), or a dataset of strings, not of (text, label) pairs.
    """
    import keras_hub

    if isinstance(preprocessor, keras_hub.models.CausalLMPreprocessor):
        raise ValueError(
            "A causal LM learns from its texts alone: its "
            f"{type(preprocessor).__name__} makes the targets (each next "
            "token) and their weights (the padding mask) itself and would "
            f"ignore {given}. Pass the texts alone: fit(texts), or a dataset "
            "of strings, not of (text, label) pairs."
        )


def preprocessed(
    preprocessor, x, y=None, sample_weight=None, batch_size=None, shuffle=False,
    sequence_length=None,
):
    """Returns a batched `tf.data.Dataset` of the preprocessor's outputs.

    Args:
        preprocessor: a keras-hub preprocessor, called on batches as
            `preprocessor(x[, y[, sample_weight]])`.
        x: texts (a list or array of strings), or a `tf.data.Dataset` of
            texts or of `(text, label)` pairs, batched or not.
        y, sample_weight: labels and weights when `x` holds arrays.
        batch_size: batch size of array inputs (default 32). A dataset keeps
            its own batching; an unbatched one is batched with it.
        shuffle: reshuffle array inputs every epoch (as `fit` does with
            arrays); a dataset keeps its own order.
        sequence_length: tokens per row of a causal LM's texts (default: the
            preprocessor's).

    Returns:
        A `tf.data.Dataset` of `(x, y, sample_weight)` batches (or what the
        preprocessor returns).
    """
    if isinstance(x, tf.data.Dataset):
        if y is not None or sample_weight is not None:
            raise ValueError(
                "With a tf.data.Dataset `x`, pass the labels inside the "
                "dataset, not as `y` or `sample_weight`."
            )
        spec = x.element_spec
        if isinstance(spec, tuple) and len(spec) > 1:
            check_no_targets(preprocessor, "the dataset's elements beyond the texts")
        first = spec[0] if isinstance(spec, tuple) else spec
        if tf.nest.flatten(first)[0].shape.rank == 0:
            x = x.batch(batch_size or 32)
        return x.map(
            lambda *element: causal_lm_inputs(
                preprocessor, *element, sequence_length=sequence_length
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
        ).prefetch(tf.data.AUTOTUNE)
    given = [n for n, a in (("y", y), ("sample_weight", sample_weight)) if a is not None]
    if given:
        check_no_targets(preprocessor, " and ".join(f"`{n}`" for n in given))
    # One string would be read as a list of characters.
    texts = isinstance(x, str) or (
        isinstance(x, (list, tuple, np.ndarray)) and len(x) and isinstance(x[0], str)
    )
    if _is_causal_lm(preprocessor) and (texts or isinstance(x, dict)):
        x = check_causal_lm_texts("x", list(x) if isinstance(x, np.ndarray) else x)
    elif texts:
        x = check_texts("x", x)
    # Arrays are tokenized eagerly, 1,024 texts at a time: tracing a
    # keras-hub tokenizer into a tf.data map costs seconds for every new
    # dataset.
    if isinstance(x, (list, tuple)):
        x = np.asarray(x, dtype=object)
    # Labels and weights as arrays: chunks are joined with np.concatenate,
    # and a list would be read as a structure of numbers.
    arrays = [
        {k: np.asarray(v) for k, v in a.items()} if isinstance(a, dict)
        else np.asarray(a) if isinstance(a, (list, tuple)) else a
        for a in (x, y, sample_weight) if a is not None
    ]

    def chunk(array, i):
        part = array[i : i + 1024]
        if isinstance(part, np.ndarray) and part.dtype.kind in "USO":
            # keras-hub tokenizers take lists or tensors of strings.
            return tf.constant(part.tolist())
        return part

    size = len(keras.tree.flatten(x)[0])
    chunks = [
        causal_lm_inputs(
            preprocessor,
            *[keras.tree.map_structure(lambda a: chunk(a, i), a) for a in arrays],
            sequence_length=sequence_length,
        )
        for i in range(0, size, 1024)
    ]
    tokenized = keras.tree.map_structure(
        lambda *parts: np.concatenate([np.asarray(p) for p in parts]), *chunks
    )
    if is_prompt_responses(x):
        check_responses_fit(tokenized[2])
    dataset = tf.data.Dataset.from_tensor_slices(tokenized)
    if shuffle:
        dataset = dataset.shuffle(size, reshuffle_each_iteration=True)
    return (
        dataset.batch(batch_size or 32)
        .prefetch(tf.data.AUTOTUNE)
    )


def _is_causal_lm(preprocessor):
    import keras_hub

    return isinstance(preprocessor, keras_hub.models.CausalLMPreprocessor)


def split_cached_teacher(y):
    """Splits a teacher-cache target `{"labels", "teacher_logits"}`.

    Returns `(labels, teacher_logits)`; `teacher_logits` is None for plain
    labels, and `labels` is None for a cache built without labels.
    `teacher_logits` may be dense logits or the sparse top-k dict
    `{"values", "indices"}` of `keras_kd.losses.top_k_logits`.

    Example:

    >>> split_cached_teacher({"labels": [1, 0], "teacher_logits": [[0.2], [0.9]]})
    ([1, 0], [[0.2], [0.9]])
    >>> split_cached_teacher([1, 0])
    ([1, 0], None)
    """
    if isinstance(y, dict) and "teacher_logits" in y:
        return y.get("labels"), y["teacher_logits"]
    return y, None


def _length(value):
    if isinstance(value, dict):
        value = next(iter(value.values()), None)
    if isinstance(value, (list, np.ndarray)):
        return len(value)
    return None


def check_same_length(x, y=None, sample_weight=None):
    """Refuses in-memory inputs whose labels or weights are not one per
    example (Keras, slicing them into a dataset, fails with "Dimensions 8
    and 2 are not compatible").

    Example:

    >>> check_same_length(["a fine film", "a dull plot"], [1])
    Traceback (most recent call last):
    ...
    ValueError: `x` holds 2 examples but `y` holds 1: give one per example.
    """
    examples = _length(x)
    if examples is None:
        return
    for name, value in (("y", y), ("sample_weight", sample_weight)):
        count = _length(value)
        if count is not None and count != examples:
            raise ValueError(
                f"`x` holds {examples} examples but `{name}` holds {count}: "
                "give one per example."
            )


def tokenized_inputs(preprocessor, x, y, kwargs, shuffle=False):
    """Maps a keras-hub `preprocessor` over raw-text inputs `x` (and the
    `validation_data` in `fit`'s `kwargs`), as keras-hub tasks do; a
    `validation_split` of texts holds out their last fraction before
    tokenizing, as Keras does with arrays.

    Returns:
        `(x, y, kwargs)`, unchanged where they hold no texts; tokenized
        arrays become a batched `tf.data.Dataset` (`y` is then None, and
        `sample_weight`, `batch_size` and `shuffle` leave `kwargs`).
    """
    if preprocessor is None:
        return x, y, kwargs
    kwargs = dict(kwargs)
    if isinstance(x, (list, tuple)) and not x:
        # Keras fails on an empty list with a KeyError.
        check_texts("x", x)
    if holds_strings(x):
        check_same_length(x, y, kwargs.get("sample_weight"))
        split = kwargs.pop("validation_split", None)
        if split and isinstance(x, tf.data.Dataset):
            raise ValueError(
                f"validation_split={split!r} splits in-memory texts, not a "
                "tf.data.Dataset, whose examples Keras cannot count or "
                "index. Pass validation_data= (a dataset, or (texts, "
                "labels)), or the texts as a list."
            )
        if split and kwargs.get("validation_data") is None:
            from keras_kd.datasets.splitting import hold_out

            (x, y, kwargs["sample_weight"]), kwargs["validation_data"] = hold_out(
                (x, y, kwargs.get("sample_weight")), split
            )
        x = preprocessed(
            preprocessor,
            x,
            y,
            kwargs.pop("sample_weight", None),
            kwargs.pop("batch_size", None),
            shuffle=shuffle and kwargs.pop("shuffle", True),
        )
        y = None
    validation = kwargs.get("validation_data")
    if isinstance(validation, (list, tuple)) and validation and all(
        isinstance(v, str) for v in validation
    ):
        raise ValueError(
            f"validation_data is {len(validation)} texts in a "
            f"{type(validation).__name__}, which Keras reads as (x, y, ...). "
            "Pass the texts as one element: validation_data=(texts,) for a "
            "causal LM, (texts, labels) for a classifier."
        )
    if validation is not None:
        if isinstance(validation, tf.data.Dataset):
            if holds_strings(validation):
                kwargs["validation_data"] = preprocessed(preprocessor, validation)
        elif holds_strings(validation[0]):
            check_same_length(*validation)
            kwargs["validation_data"] = preprocessed(preprocessor, *validation)
    return x, y, kwargs


def is_generator(x):
    """A Python iterator of batches (a generator), not a `tf.data.Dataset`.

    Example:

    >>> is_generator(batch for batch in []), is_generator(tf.data.Dataset.range(2))
    (True, False)
    """
    return isinstance(x, types.GeneratorType) or (
        hasattr(x, "__next__") and not isinstance(x, (tf.data.Dataset,))
    )


def no_keras_shuffle(x, fit_kwargs):
    """Sets `shuffle=False` in `fit_kwargs` (unless given) when `x` is a
    `tf.data.Dataset` or a generator: Keras cannot shuffle those (they come
    shuffled by their maker, or are meant in order), and with its default
    `shuffle=True` it warns on every `fit` that the setting is ignored.

    Example:

    >>> kwargs = {}
    >>> no_keras_shuffle(tf.data.Dataset.range(3), kwargs)
    >>> kwargs
    {'shuffle': False}
    >>> kwargs = {}
    >>> no_keras_shuffle(np.zeros(3), kwargs)
    >>> kwargs
    {}
    """
    if isinstance(x, tf.data.Dataset) or is_generator(x):
        fit_kwargs.setdefault("shuffle", False)


def _replay(first, rest):
    yield first
    yield from rest


def peek_first_batch(x, y, sample_weight, batch_size):
    """Returns `(first_batch, x)` without losing any data from `x`.

    A Python generator is consumed by peeking, so a generator that yields the
    peeked batch again is returned in its place.
    """
    if isinstance(x, tf.data.Dataset):
        for first in x.take(1):
            return first, x
        raise _no_examples("the dataset")
    if isinstance(x, keras.utils.PyDataset):
        return x[0], x
    if is_generator(x):
        try:
            first = next(x)
        except StopIteration:
            raise _no_examples("the generator") from None
        return first, _replay(first, x)
    leaves = keras.tree.flatten(x)
    if not leaves or np.shape(leaves[0])[:1] == (0,):
        raise _no_examples("`x`")
    size = batch_size or 32
    first = keras.tree.map_structure(
        lambda a: a[:size] if a is not None else None,
        (x, y, sample_weight),
    )
    return first, x


def _data_ranks(x, y, sample_weight):
    """`(ranks, x)`: the rank of every input and label tensor of the data,
    read without losing any of it (a dataset's element spec, a
    `PyDataset`'s first batch, a generator's first batch, which the
    returned generator yields again)."""
    if isinstance(x, tf.data.Dataset):
        specs = keras.tree.flatten_with_path(x.element_spec)
        return tuple((path, spec.shape.rank) for path, spec in specs), x
    if isinstance(x, keras.utils.PyDataset):
        data = x[0]
    elif is_generator(x):
        data, x = peek_first_batch(x, None, None, None)
    else:
        data = (x, y, sample_weight)
    leaves = keras.tree.flatten_with_path(data)
    return tuple((path, len(np.shape(leaf))) for path, leaf in leaves), x


def new_step_for_new_ranks(model, function, x, y=None, sample_weight=None):
    """Drops the model's compiled `function` (`"train_function"` or
    `"test_function"`) when the data (`x`, `y`, `sample_weight` as `fit`
    takes them, or validation data) has inputs or labels of other ranks
    than the data it last ran on: Keras would retrace it for both at once,
    with tensors of unknown rank that its losses cannot read ("Cannot
    iterate over a shape with unknown rank"; plain `keras.Model.fit` fails
    so on labels of shape `(n,)`, then `(n, 1)`).

    Returns:
        `x`, or a generator that yields the batch read from it again.

    Example:

    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.train_function = "traced for labels (n,)"
    >>> _ = new_step_for_new_ranks(model, "train_function", np.zeros((4, 2)), np.zeros(4))
    >>> model.train_function
    'traced for labels (n,)'
    >>> _ = new_step_for_new_ranks(model, "train_function", np.zeros((4, 2)), np.zeros((4, 1)))
    >>> model.train_function is None
    True
    """
    ranks, x = _data_ranks(x, y, sample_weight)
    seen = dict(getattr(model, "_step_ranks", None) or {})
    if seen.get(function, ranks) != ranks:
        setattr(model, function, None)
    seen[function] = ranks
    model._step_ranks = seen
    return x


def batches_as_dataset(x):
    """A generator or `keras.utils.PyDataset` of batches as a
    `tf.data.Dataset` of the same batches, in order; other data is
    returned as it is. keras-hub's `Task.fit` and `evaluate` take datasets
    and in-memory data only (they would slice a generator as an array).

    A generator is read once, as Keras reads it; a `PyDataset` is read in
    full each epoch, and its `on_epoch_end` called after. The dataset's
    element spec comes from the first batch, with every dimension free
    (batches may differ in size and length).

    Args:
        x: training or evaluation data.

    Returns:
        A `tf.data.Dataset` when `x` is a generator or a `PyDataset`, else `x`.

    Example:

    >>> batches = ((np.array([[1, 2]]), np.array([0])) for _ in range(3))
    >>> dataset = batches_as_dataset(batches)
    >>> [labels.numpy().tolist() for _, labels in dataset]
    [[0], [0], [0]]
    """
    if isinstance(x, keras.utils.PyDataset):
        if x.num_batches == 0:
            raise _no_examples("the PyDataset")

        def batches():
            index = 0
            while x.num_batches is None or index < x.num_batches:
                yield x[index]
                index += 1
            x.on_epoch_end()

        first = x[0]
    elif is_generator(x):
        try:
            first = next(x)
        except StopIteration:
            raise _no_examples("the generator") from None
        rest = x

        def batches():
            yield from _replay(first, rest)
    else:
        return x
    signature = keras.tree.map_structure(
        lambda value: tf.TensorSpec(
            [None] * np.ndim(value), tf.convert_to_tensor(value).dtype
        ),
        first,
    )
    dataset = tf.data.Dataset.from_generator(batches, output_signature=signature)
    size = getattr(x, "num_batches", None)
    if size is not None:
        # Known, Keras counts the steps of an epoch and does not warn at its
        # end that the data ran out.
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(size))
    return dataset


def _no_examples(what):
    return ValueError(
        f"No examples to train or evaluate on: {what} is empty. Pass data "
        "with at least one example."
    )


def _checked(labels, values, bad, template):
    """`labels`, once no element of `values` is `bad`: eagerly, a
    `ValueError` otherwise; in a graph, after an assertion. `template` is
    the message, with `{}` for the first bad value."""
    ok = tf.logical_not(tf.reduce_any(bad))
    if tf.executing_eagerly() and bool(ok):
        return labels
    message = tf.strings.format(
        template, tf.gather(values, tf.argmax(tf.cast(bad, tf.int32)))
    )
    if tf.executing_eagerly():
        raise ValueError(message.numpy().decode())
    check = tf.debugging.Assert(ok, [message])
    with tf.control_dependencies([check]):
        return tf.identity(labels)


def _checked_range(ids, size, template):
    """`ids` once each is in `[0, size)`, as `_checked` says."""
    flat = tf.reshape(tf.cast(ids, tf.int64), [-1])
    return _checked(ids, flat, tf.logical_or(flat < 0, flat >= size), template)


def assert_class_ids(labels, num_classes):
    """Checks that every class id in `labels` is a whole number in
    `[0, num_classes)`.

    Eagerly (array labels, generators, the first batch) a bad id raises
    `ValueError`; in a `tf.data` pipeline, `tf.errors.InvalidArgumentError`,
    with the same message, naming the first bad id and `num_classes`. The
    check cannot happen in the training step: XLA ignores assertions and
    makes out-of-range ids NaN losses. Float labels are accepted when whole
    (`1.0`); a fraction (`0.5`, `1.7`) or a non-finite value is refused, as
    the cross-entropy would cast it to an id without a word (`1.7` trained
    as class 1).

    Args:
        labels: class ids, of any shape (an array or a tensor).
        num_classes: the number of the model's classes.

    Returns:
        `labels` as a tensor (in a graph, after the check).

    Example:

    >>> assert_class_ids(np.array([0, 2, 1]), 3).numpy().tolist()
    [0, 2, 1]
    >>> assert_class_ids(np.array([0, 7]), 3)
    Traceback (most recent call last):
    ...
    ValueError: Label (class id) 7 is out of range: the model has 3 classes, so class ids go from 0 to 2. Fix the labels, or give the model (in distillation, the student and the teacher) as many outputs as classes.
    >>> assert_class_ids(np.array(["pos", "neg"]), 2)
    Traceback (most recent call last):
    ...
    ValueError: Labels are strings ('pos', ...), but class ids are the integers 0 to 1. Map each name to its index in the model's class names (`keras_kd.datasets.load` does: its `class_names` and integer labels), e.g. `[class_names.index(name) for name in labels]`.
    >>> assert_class_ids(np.array([0.0, 1.7]), 3)
    Traceback (most recent call last):
    ...
    ValueError: Label (class id) 1.7 is not a whole number: class ids are the whole numbers 0 to 2 of the model's 3 classes, and a fraction would be cast to one without a word. Round the labels if they are class ids stored as floats (`np.round(labels).astype(int)`); for soft labels (class probabilities), give each example a row of 3 probabilities and distill with `Distiller.compile(student_loss_fn="categorical_crossentropy")`.
    """
    labels = tf.convert_to_tensor(labels)
    if labels.dtype == tf.string:
        # Known when the labels are traced too: refused before any step.
        example = (
            f" ({labels.numpy().reshape(-1)[0].decode()!r}, ...)"
            if tf.executing_eagerly() and tf.size(labels) else ""
        )
        raise ValueError(
            f"Labels are strings{example}, but class ids are the integers 0 "
            f"to {num_classes - 1}. Map each name to its index in the "
            "model's class names (`keras_kd.datasets.load` does: its "
            "`class_names` and integer labels), e.g. "
            "`[class_names.index(name) for name in labels]`."
        )
    if labels.dtype.is_floating:
        values = tf.reshape(labels, [-1])
        whole = tf.logical_and(
            tf.math.is_finite(values), tf.equal(values, tf.floor(values))
        )
        labels = _checked(
            labels,
            values,
            tf.logical_not(whole),
            "Label (class id) {} is not a whole number: class ids are the "
            f"whole numbers 0 to {num_classes - 1} of the model's "
            f"{num_classes} classes, and a fraction would be cast to one "
            "without a word. Round the labels if they are class ids stored "
            "as floats (`np.round(labels).astype(int)`); for soft labels "
            f"(class probabilities), give each example a row of {num_classes} "
            "probabilities and distill with `Distiller.compile("
            'student_loss_fn="categorical_crossentropy")`.',
        )
    return _checked_range(
        labels,
        num_classes,
        "Label (class id) {} is out of range: the model has "
        f"{num_classes} classes, so class ids go from 0 to {num_classes - 1}. "
        "Fix the labels, or give the model (in distillation, the student and "
        "the teacher) as many outputs as classes.",
    )


def assert_token_ids(token_ids, vocabulary_size):
    """Checks that every id in `token_ids` is in `[0, vocabulary_size)`, as
    `assert_class_ids` checks labels: eagerly a `ValueError`, in a
    `tf.data` pipeline a `tf.errors.InvalidArgumentError`, naming the first
    bad id. In an XLA-compiled step an embedding lookup clamps an id out of
    range to the table's last row, and the model trains on it without an
    error.

    Args:
        token_ids: integer token ids, of any shape.
        vocabulary_size: the rows of the models' token embeddings.

    Returns:
        `token_ids` as a tensor (in a graph, after the check).

    Example:

    >>> assert_token_ids(np.array([[2, 7, 0]]), 30522).numpy().tolist()
    [[2, 7, 0]]
    >>> assert_token_ids(np.array([[2, 40000]]), 30522)
    Traceback (most recent call last):
    ...
    ValueError: Token id 40000 is out of range: the vocabulary of the models has 30522 tokens, ids 0 to 30521. Tokenize with the tokenizer of the student (`student.preprocessor`; a trimmed vocabulary renumbers its tokens), or pass raw texts.
    """
    token_ids = tf.convert_to_tensor(token_ids)
    if not token_ids.dtype.is_integer:
        return token_ids
    return _checked_range(
        token_ids,
        vocabulary_size,
        # No apostrophes: a tf.data assertion would print them escaped.
        "Token id {} is out of range: the vocabulary of the models has "
        f"{vocabulary_size} tokens, ids 0 to {vocabulary_size - 1}. Tokenize "
        "with the tokenizer of the student (`student.preprocessor`; a "
        "trimmed vocabulary renumbers its tokens), or pass raw texts.",
    )


def one_output_name(model):
    """The name a one-output model's labels may be keyed by, or None for
    a model of several outputs: a keras-kd `FinetuneModel`'s one head's
    name (several heads' labels are keyed by theirs), else the name Keras
    gives the output (its layer's; a `Sequential`'s last layer's).

    Example:

    >>> one_output_name(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="logits")]))
    'logits'
    """
    heads = getattr(model, "heads", None)
    if isinstance(heads, dict):
        return next(iter(heads)) if len(heads) == 1 else None
    names = getattr(model, "output_names", None) or (
        [model.layers[-1].name] if isinstance(model, keras.Sequential) and model.layers else []
    )
    return names[0] if len(names) == 1 else None


def single_output_labels(y, output_name):
    """The labels of a model with one output, named `output_name`, given
    plainly or keyed by that name as Keras keys a multi-output model's
    (`{output_name: labels}`, which Keras itself fails on for one output
    with "Expected float32, but got logits of type 'str'").

    Args:
        y: labels, or a dict of them.
        output_name: the name of the model's one output.

    Returns:
        The labels.

    Example:

    >>> single_output_labels({"logits": [0, 1]}, "logits")
    [0, 1]
    >>> single_output_labels([0, 1], "logits")
    [0, 1]
    >>> single_output_labels({"label": [0, 1]}, "logits")
    Traceback (most recent call last):
    ...
    ValueError: The labels are a dict keyed ['label'], but this model has one output, 'logits'. Pass the labels themselves (`y=labels`) or key them by the name of the output (`{'logits': labels}`).
    """
    if not isinstance(y, dict):
        return y
    if set(y) == {output_name}:
        return y[output_name]
    raise ValueError(
        f"The labels are a dict keyed {sorted(y)!r}, but this model has one "
        f"output, {output_name!r}. Pass the labels themselves (`y=labels`) "
        f"or key them by the name of the output (`{{{output_name!r}: labels}}`)."
    )


def _output_labels(y, output_name):
    """`single_output_labels` where an output is named; a `TeacherCache`
    target (`{"labels", "teacher_logits"}`) is left as it is."""
    if output_name is None or split_cached_teacher(y)[1] is not None:
        return y
    return single_output_labels(y, output_name)


def check_batch(batch, num_classes=None, vocabulary_size=None, output_name=None):
    """`assert_class_ids` on the labels of an `(x, y[, sample_weight])`
    batch (the `"labels"` of a `TeacherCache` batch included) when
    `num_classes` is given, `assert_token_ids` on its `x["token_ids"]`
    when `vocabulary_size` is; labels keyed by `output_name` are taken out
    of their dict (`single_output_labels`) when it is given (a
    `TeacherCache` target is left as it is). Returns the
    batch (in a graph, after the checks). What a batch lacks is not
    checked.

    Example:

    >>> x = {"token_ids": np.array([[2, 7]])}
    >>> checked_x, labels = check_batch(
    ...     (x, {"logits": np.array([1])}), num_classes=2,
    ...     vocabulary_size=10, output_name="logits")
    >>> labels.numpy().tolist()
    [1]
    >>> check_batch((x, np.array([1])), vocabulary_size=5)
    Traceback (most recent call last):
    ...
    ValueError: Token id 7 is out of range: the vocabulary of the models has 5 tokens, ids 0 to 4. Tokenize with the tokenizer of the student (`student.preprocessor`; a trimmed vocabulary renumbers its tokens), or pass raw texts.
    """
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(batch)
    y = _output_labels(y, output_name)
    if vocabulary_size is not None and isinstance(x, dict) and "token_ids" in x:
        x = {**x, "token_ids": assert_token_ids(x["token_ids"], vocabulary_size)}
    labels, teacher_logits = split_cached_teacher(y)
    if num_classes is not None and labels is not None:
        labels = assert_class_ids(labels, num_classes)
        y = {**y, "labels": labels} if teacher_logits is not None else labels
    return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)


class _CheckedPyDataset(keras.utils.PyDataset):
    def __init__(self, dataset, check):
        super().__init__(
            workers=dataset.workers,
            use_multiprocessing=dataset.use_multiprocessing,
            max_queue_size=dataset.max_queue_size,
        )
        self.dataset, self.check = dataset, check

    def __getitem__(self, index):
        return self.check(self.dataset[index])

    @property
    def num_batches(self):
        return self.dataset.num_batches

    def on_epoch_begin(self):
        self.dataset.on_epoch_begin()

    def on_epoch_end(self):
        self.dataset.on_epoch_end()


def with_checked_batches(x, y, num_classes=None, vocabulary_size=None, output_name=None):
    """Returns `(x, y)` that raise a clear error (`check_batch`) on a batch
    whose labels hold a class id outside `[0, num_classes)` or whose token
    ids fall outside `[0, vocabulary_size)` (either check skipped when its
    bound is None), with labels keyed by `output_name` taken out of their
    dict when it is given: a `tf.data.Dataset`, a generator or a
    `keras.utils.PyDataset` is wrapped to check each batch as it is read;
    arrays are checked at once, as are those of an
    `(x, y[, sample_weight])` tuple given as `x` (`fit`'s
    `validation_data`). Batches of a `TeacherCache` have their `"labels"`
    checked.

    Example:

    >>> x = {"token_ids": np.array([[2, 7], [3, 1]])}
    >>> dataset = tf.data.Dataset.from_tensor_slices((x, np.array([0, 4]))).batch(2)
    >>> checked, _ = with_checked_batches(dataset, None, num_classes=3)
    >>> for batch in checked:
    ...     pass
    Traceback (most recent call last):
    ...
    tensorflow.python.framework.errors_impl.InvalidArgumentError: ...Label (class id) 4 is out of range...
    """
    check = functools.partial(
        check_batch,
        num_classes=num_classes,
        vocabulary_size=vocabulary_size,
        output_name=output_name,
    )
    if isinstance(x, (tuple, list)) and y is None:
        # `fit`'s `validation_data=(x, y[, sample_weight])` of arrays.
        x = tuple(x)
        if len(x) > 1:
            x = (x[0], _output_labels(x[1], output_name), *x[2:])
        check(x)
        return x, y
    if isinstance(x, tf.data.Dataset):
        labels, _ = split_cached_teacher(keras.utils.unpack_x_y_sample_weight(x.element_spec)[1])
        if num_classes is not None and getattr(labels, "dtype", None) == tf.string:
            # Refused here, not in the traced map, whose error would come
            # wrapped in a trace of keras-kd's code.
            assert_class_ids(tf.constant([], tf.string), num_classes)
        return x.map(lambda *batch: check(batch if len(batch) > 1 else batch[0])), y
    if isinstance(x, keras.utils.PyDataset):
        return _CheckedPyDataset(x, check), y
    if is_generator(x):
        return (check(batch) for batch in x), y
    y = _output_labels(y, output_name)
    check((x, y))
    return x, y


def _token_embedding_rows(model):
    size = getattr(getattr(model, "backbone", model), "vocabulary_size", None)
    if isinstance(size, (int, np.integer)):
        return int(size)
    # A functional model built on a backbone's inputs holds its layers, not
    # the backbone; keras-hub names the token table "token_embedding".
    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.layers.Embedding) and layer.name == "token_embedding":
            return int(layer.input_dim)
        if isinstance(layer, keras.Model):
            size = _token_embedding_rows(layer)
            if size is not None:
                return size
    return None


def vocabulary_size(models):
    """The fewest token embedding rows among `models` (keras-hub backbones
    and tasks, whose `vocabulary_size` says it, or models holding
    keras-hub's `token_embedding` layer), or None when none says.

    Example:

    >>> import keras_hub
    >>> backbone = keras_hub.models.BertBackbone(vocabulary_size=50, num_layers=1,
    ...     num_heads=1, hidden_dim=4, intermediate_dim=8, max_sequence_length=8)
    >>> head = keras.layers.Dense(2)(backbone.output["pooled_output"])
    >>> vocabulary_size([backbone, keras.Model(backbone.input, head)])
    50
    >>> vocabulary_size([keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])]) is None
    True
    """
    sizes = [_token_embedding_rows(model) for model in models if model is not None]
    sizes = [size for size in sizes if size is not None]
    return min(sizes) if sizes else None
