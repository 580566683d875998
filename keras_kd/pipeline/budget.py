"""Training budgets that adapt to the data.

A `PipelineConfig` field left at None means "from the data":
`sequence_length` becomes a high percentile of the training texts' token
lengths (`token_lengths`, `percentile_length`) and `teacher_epochs` /
`epochs` enough epochs for a minimum number of optimizer steps
(`auto_epochs`; more for a student with new layers, `new_student_layers`); `resolve_budget` makes those choices once and says how
each was made. `fit_best_epoch` trains with the validation split watched:
the best epoch's weights are kept, and training stops once validation
accuracy has not improved for `patience` epochs.
"""

import dataclasses
import math

import numpy as np

from keras_kd.utils.validation import check_int

# The length covers this percentile of the training texts: 95% of them fit
# whole and the longest 5% lose their tail. Covering them all would make
# every example pay for the longest few, since a transformer's cost grows
# with the length (the movie reviews: 95% fit in 46 tokens, the longest
# needs 79).
LENGTH_PERCENTILE = 95
# Rounded up to a multiple of this: a few more or fewer long texts do not
# change the length, so runs on slightly different data compare at the
# same length.
LENGTH_MULTIPLE = 8
# At least this long: texts of a few words would otherwise get a length
# that the first longer text seen in use no longer fits.
MIN_LENGTH = 16
# Tokenizing for the percentile when the preset's config does not give its
# positions (a keras-hub name, whose config is remote): keras-hub's
# TextClassifierPreprocessor default.
DEFAULT_MAX_LENGTH = 512

# Auto epochs: as many whole epochs as reach MIN_STEPS optimizer steps, at
# most MAX_EPOCHS. Fine-tuning a pretrained transformer on a small data set
# is unstable when it gets few updates, and more updates, not fewer, are the
# fix (Mosbach et al. 2021, "On the stability of fine-tuning BERT"; Zhang
# et al. 2021, "Revisiting few-sample BERT fine-tuning"). 250 is about the
# one epoch of the movie reviews (8,454 texts, 265 steps of 32) on which
# the demo's learning rates and warm-up were tuned: data of that size or
# more trains one epoch, as measured; smaller data as many epochs as give
# it at least as many updates. The cap bounds the time on tiny data, where
# more passes mostly memorise; early stopping on the validation split
# (`fit_best_epoch`) ends a run sooner once it stops improving.
MIN_STEPS = 250
MAX_EPOCHS = 10
# A student whose transformer layers start new (one narrower than its
# teacher: projected embeddings, new layers) needs more updates than one
# copied from the teacher's layers. On the movie reviews a 1-layer, 128-wide
# MiniLM student, with early stopping over 5 epochs, scored its best
# validation accuracy after 2 to 5 epochs (0.805 to 0.807 test accuracy
# against 0.793 after one); a 2-layer 192-wide one after 3.
NEW_LAYERS_MIN_STEPS = 1000


def percentile_length(
    lengths,
    maximum=None,
    percentile=LENGTH_PERCENTILE,
    multiple=LENGTH_MULTIPLE,
    minimum=MIN_LENGTH,
):
    """The sequence length that fits `percentile`% of `lengths`: that
    percentile (NumPy's linear interpolation), rounded up to a multiple of
    `multiple`, at least `minimum`, at most `maximum` (the backbone's
    positions).

    Args:
        lengths: token counts, one per text (special tokens included).
        maximum: the longest allowed length, or None.
        percentile, multiple, minimum: the rule's settings.

    Returns:
        An int.

    Example:

    >>> percentile_length([5, 7, 9, 12, 40])  # 95th percentile 34.4 -> 40
    40
    >>> percentile_length([3, 4, 5])  # short texts: at least 16
    16
    >>> percentile_length([300, 700], maximum=512)
    512
    >>> percentile_length([])
    Traceback (most recent call last):
    ...
    ValueError: percentile_length needs the token lengths of at least one text. Received: lengths=[]
    """
    lengths = np.asarray(lengths)
    if lengths.size == 0:
        raise ValueError(
            "percentile_length needs the token lengths of at least one text. "
            f"Received: lengths={lengths.tolist()}"
        )
    length = math.ceil(float(np.percentile(lengths, percentile)))
    length = max(minimum, multiple * math.ceil(length / multiple))
    return length if maximum is None else min(length, maximum)


def token_lengths(preset, texts, maximum=DEFAULT_MAX_LENGTH):
    """The number of tokens of each text as the preset's classifier
    preprocessor packs it, the special tokens it adds ([CLS], [SEP])
    included, counted up to `maximum`.

    Args:
        preset: a text-classification preset (as for
            `keras_kd.transfer.build_finetune_model`).
        texts: a list of strings.
        maximum: texts longer than this count as `maximum`.

    Returns:
        An int NumPy array, one count per text.
    """
    import keras_hub
    import tensorflow as tf

    from keras_kd.presets import resolve_preset

    preprocessor = keras_hub.models.TextClassifierPreprocessor.from_preset(
        resolve_preset(preset), sequence_length=maximum
    )
    counts = [
        np.sum(preprocessor(tf.constant(texts[start : start + 1024]))["padding_mask"], axis=-1)
        for start in range(0, len(texts), 1024)
    ]
    return np.concatenate(counts).astype(int) if counts else np.zeros(0, int)


def auto_epochs(num_examples, batch_size, min_steps=MIN_STEPS, max_epochs=MAX_EPOCHS):
    """The epochs of an auto budget: as many as give at least `min_steps`
    optimizer steps, from 1 to `max_epochs` (see `MIN_STEPS` for why).

    Example:

    >>> auto_epochs(8454, 32)  # the movie reviews: 265 steps an epoch
    1
    >>> auto_epochs(4000, 32)  # 125 steps an epoch
    2
    >>> auto_epochs(100, 32)  # 4 steps an epoch: capped
    10
    """
    check_int("num_examples", num_examples)
    return min(max_epochs, math.ceil(min_steps / math.ceil(num_examples / batch_size)))


@dataclasses.dataclass
class Budget:
    """A `PipelineConfig` with its auto fields decided, and how.

    Attributes:
        config: the config with ints in place of None.
        chosen: field name -> `{"value": ..., "rule": ...}` for
            `sequence_length` (when decided here), `teacher_epochs` and
            `epochs`; JSON-able, for reports.
    """

    config: object
    chosen: dict


def new_student_layers(config, teacher_hidden_dim=None):
    """Whether `config`'s student starts with new transformer layers: its
    `student_hidden_dim` is set and differs from the teacher's width
    (`teacher_hidden_dim`, else the width of `config.teacher`'s preset,
    else unknown, which counts as different).

    Example:

    >>> from keras_kd.pipeline import PipelineConfig
    >>> new_student_layers(PipelineConfig(), 384)
    False
    >>> new_student_layers(PipelineConfig(student_hidden_dim=128), 384)
    True
    """
    if config.student_hidden_dim is None:
        return False
    if teacher_hidden_dim is None:
        from keras_kd.presets import preset_dimensions

        teacher_hidden_dim = preset_dimensions(config.teacher).get("hidden_dim")
    return config.student_hidden_dim != teacher_hidden_dim


def resolve_budget(config, train, sequence_length=True, teacher_hidden_dim=None):
    """Decides the auto fields of `config` from the training split.

    Fields given as ints are kept. Resolving an already resolved config
    changes nothing, so each step may resolve the config it is given. Auto
    `epochs` give a student with new transformer layers
    (`new_student_layers`) `NEW_LAYERS_MIN_STEPS` steps, others
    `MIN_STEPS`.

    Args:
        config: a `PipelineConfig`.
        train: the training `keras_kd.datasets.TextSplit`.
        sequence_length: also decide `sequence_length` (tokenizing the
            texts with `config.teacher`'s preset); False where the teacher
            is a trained model whose preprocessor fixes the length.
        teacher_hidden_dim: the teacher's width, where `config.teacher`
            is a trained model rather than a preset.

    Returns:
        A `Budget`.
    """
    from keras_kd.presets import preset_dimensions

    chosen, fields = {}, {}
    if sequence_length:
        if config.sequence_length is None:
            maximum = preset_dimensions(config.teacher).get("max_sequence_length")
            lengths = token_lengths(config.teacher, train.texts, maximum or DEFAULT_MAX_LENGTH)
            fields["sequence_length"] = percentile_length(lengths, maximum)
            rule = (
                f"auto: the {LENGTH_PERCENTILE}th percentile of the {len(lengths)} "
                f"training texts' token lengths "
                f"({math.ceil(float(np.percentile(lengths, LENGTH_PERCENTILE)))}), "
                f"rounded up to a multiple of {LENGTH_MULTIPLE}, at least "
                f"{MIN_LENGTH}, at most the preset's "
                + (f"{maximum} positions" if maximum else "positions (unknown offline)")
            )
        else:
            fields["sequence_length"], rule = config.sequence_length, "given"
        chosen["sequence_length"] = {"value": fields["sequence_length"], "rule": rule}
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    min_steps = {
        "teacher_epochs": MIN_STEPS,
        "epochs": (
            NEW_LAYERS_MIN_STEPS
            if config.epochs is None and new_student_layers(config, teacher_hidden_dim)
            else MIN_STEPS
        ),
    }
    for name in ("teacher_epochs", "epochs"):
        value = getattr(config, name)
        rule = "given"
        if value is None:
            value = auto_epochs(len(train), config.batch_size, min_steps[name])
            rule = (
                f"auto: {steps_per_epoch} steps an epoch ({len(train)} texts, "
                f"batch {config.batch_size}); enough epochs for {min_steps[name]} "
                f"steps, 1 to {MAX_EPOCHS}"
                + (", the student's layers being new" if min_steps[name] != MIN_STEPS else "")
            )
        fields[name] = value
        chosen[name] = {"value": value, "rule": rule, "steps": value * steps_per_epoch}
    return Budget(dataclasses.replace(config, **fields), chosen)


def fit_best_epoch(
    model,
    dataset,
    epochs,
    *,
    validation_data=None,
    patience=2,
    backup_dir=None,
    backup_every=50,
    callbacks=(),
    **fit_kwargs,
):
    """`model.fit` that keeps the best validation epoch.

    With `validation_data`, the model is scored on it after every epoch
    (its `val_accuracy`: compile it with the `"accuracy"` metric); training
    stops once that has not improved for `patience` epochs, and the
    weights of the best epoch are restored at the end
    (`keras.callbacks.EarlyStopping(restore_best_weights=True)`). The
    learning-rate schedule is not shortened when training stops early: it
    is built for `epochs`, and the epochs after the best are the evidence
    that more would not help. Without `validation_data`, all `epochs` run
    and the last weights stay.

    With `backup_dir`, a `keras_kd.utils.backup.BackupAndRestore` backs the
    training up every `backup_every` steps, the early stopping's state with
    it: a `fit` killed and called again continues, stops and restores as
    the uninterrupted one.

    Args:
        model: a compiled Keras model (a `keras_kd.Distiller` included).
        dataset: the training data.
        epochs: the most epochs to train.
        validation_data: the data scored after each epoch, or None.
        patience: epochs without improvement before stopping, >= 1.
        backup_dir, backup_every: as above.
        callbacks: more callbacks, run after these.
        **fit_kwargs: passed to `model.fit`.

    Returns:
        The Keras `History`, with `budget`: `{"epochs": epochs,
        "trained_epochs": n, "best_epoch": b}`, `b` 1-based (None without
        validation).
    """
    import keras

    from keras_kd.distillation.inputs import no_keras_shuffle
    from keras_kd.utils.backup import BackupAndRestore

    stopping = None
    own = []
    if validation_data is not None:
        stopping = keras.callbacks.EarlyStopping(
            "val_accuracy", mode="max", patience=patience, restore_best_weights=True
        )
        own.append(stopping)
    if backup_dir is not None:
        # After the early stopping: it restores that callback's state.
        own.append(BackupAndRestore(backup_dir, save_freq=backup_every, early_stopping=stopping))
    no_keras_shuffle(dataset, fit_kwargs)
    history = model.fit(
        dataset,
        validation_data=validation_data,
        epochs=epochs,
        callbacks=own + list(callbacks),
        **fit_kwargs,
    )
    history.budget = {
        "epochs": epochs,
        # History holds the epochs of this process: a resumed fit's start
        # at the epoch of its backup.
        "trained_epochs": history.epoch[-1] + 1 if history.epoch else 0,
        "best_epoch": None if stopping is None else stopping.best_epoch + 1,
    }
    return history
