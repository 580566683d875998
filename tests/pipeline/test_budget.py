"""`keras_kd.pipeline.budget`: the sequence length and the epochs decided
from the data, and best-epoch training with early stopping, also across a
killed and resumed `fit`. (The whole run with auto settings:
test_pipeline.py.)"""

import json
import os

import keras
import numpy as np
import pytest

from keras_kd import Distiller
from keras_kd.datasets import TextSplit
from keras_kd.pipeline import PipelineConfig, budget, check_config, finetune_teacher
from keras_kd.utils.testing import tiny_mlp


def _split(texts):
    return TextSplit(list(texts), np.arange(len(texts), dtype="int32") % 2)


def test_sequence_length_is_the_95th_percentile_of_known_token_lengths(tiny_preset):
    # "film" is one WordPiece token: n words are n + 2 tokens with [CLS]
    # and [SEP]. Lengths 3..22: the 95th percentile is 21.05 -> 22 -> 24.
    texts = [" ".join(["film"] * n) for n in range(1, 21)]
    lengths = budget.token_lengths(tiny_preset, texts)
    assert lengths.tolist() == list(range(3, 23))
    assert budget.percentile_length(lengths) == 24
    chosen = budget.resolve_budget(PipelineConfig(teacher=tiny_preset), _split(texts))
    assert chosen.config.sequence_length == 24
    assert chosen.chosen["sequence_length"] == {
        "value": 24,
        "rule": "auto: the 95th percentile of the 20 training texts' token lengths "
        "(22), rounded up to a multiple of 8, at least 16, at most the preset's "
        "128 positions",
    }
    # Longer than the tiny preset's 128 positions: capped there.
    long_texts = _split([" ".join(["film"] * 300)] * 4)
    resolved = budget.resolve_budget(PipelineConfig(teacher=tiny_preset), long_texts)
    assert resolved.config.sequence_length == 128
    # A given length is kept, and the texts are not tokenized.
    given = budget.resolve_budget(
        PipelineConfig(teacher="not a preset", sequence_length=40), long_texts
    )
    assert given.chosen["sequence_length"] == {"value": 40, "rule": "given"}


@pytest.mark.parametrize(
    "examples, epochs, steps",
    [
        (8454, 1, 265),  # the movie reviews: one epoch, as tuned
        (8000, 1, 250),
        (7968, 2, 498),  # 249 steps an epoch: one short
        (4000, 2, 250),
        (1000, 8, 256),
        (100, 10, 40),  # capped
    ],
)
def test_auto_epochs_give_at_least_250_steps(examples, epochs, steps):
    train = _split(["film"] * examples)
    resolved = budget.resolve_budget(
        PipelineConfig(sequence_length=32), train
    )
    assert resolved.config.epochs == resolved.config.teacher_epochs == epochs
    assert resolved.chosen["epochs"]["steps"] == steps
    assert resolved.chosen["epochs"]["rule"].startswith(
        f"auto: {-(-examples // 32)} steps an epoch ({examples} texts, batch 32)"
    )
    # Given epochs are kept; resolving twice changes nothing.
    given = budget.resolve_budget(
        PipelineConfig(sequence_length=32, epochs=3, teacher_epochs=1), train
    )
    assert (given.config.epochs, given.config.teacher_epochs) == (3, 1)
    assert given.chosen["epochs"]["rule"] == "given"
    assert budget.resolve_budget(resolved.config, train).config == resolved.config


def test_quick_runs_keep_their_explicit_budget():
    quick = PipelineConfig.quick()
    assert (quick.sequence_length, quick.teacher_epochs, quick.epochs) == (32, 1, 1)
    defaults = PipelineConfig()
    assert (defaults.sequence_length, defaults.teacher_epochs, defaults.epochs) == (None,) * 3
    assert defaults.patience == 2


def test_bad_budget_settings_name_the_value_and_the_fix():
    for field, value, expected in (
        ("sequence_length", 2, "`sequence_length` must be None or an int >= 3 (a start token, an end token and at least one of the text), e.g. 48"),
        ("epochs", 0, "`epochs` must be None or an int >= 1, e.g. 3"),
        ("teacher_epochs", "auto", "`teacher_epochs` must be None or an int >= 1"),
        ("patience", 0, "`patience` must be an int >= 1, e.g. 2"),
    ):
        with pytest.raises(ValueError) as error:
            PipelineConfig(**{field: value})
        assert expected in str(error.value)
        assert f"Received: {field}={value!r}" in str(error.value)
    with pytest.raises(ValueError, match=r"sequence_length=1000 .* Pass sequence_length <= 512"):
        check_config(PipelineConfig(sequence_length=1000), teacher=True)
    with pytest.raises(ValueError, match=r"`num_examples` must be an int >= 1.*num_examples=0"):
        budget.resolve_budget(PipelineConfig(sequence_length=32), _split([]))


def test_finetuning_schedule_spans_the_auto_steps(tiny_preset, movie_reviews):
    train = movie_reviews.train.sample(32, seed=0)
    validation = movie_reviews.validation.sample(16, seed=0)
    config = PipelineConfig(
        teacher=tiny_preset, jit_compile=False, verbose=0, patience=1
    )
    teacher, history = finetune_teacher(
        config, train, validation, movie_reviews.class_names
    )
    assert teacher.class_names == list(movie_reviews.class_names)
    # 32 texts of 32: 1 step an epoch, auto 10 epochs, 10 steps planned.
    schedule = teacher.token_id_model.optimizer._learning_rate
    assert schedule.warmup_steps + schedule.decay_steps == 10
    trained = history.budget["trained_epochs"]
    assert history.budget["epochs"] == 10 and 1 <= trained <= 10
    assert int(teacher.token_id_model.optimizer.iterations) == trained
    assert len(history.history["val_accuracy"]) == trained
    best = int(np.argmax(history.history["val_accuracy"]))
    assert history.budget["best_epoch"] == best + 1
    # Early stopping: patience 1, so an early stop came one epoch after the best.
    assert trained == 10 or trained == best + 2
    assert teacher.preprocessor.sequence_length == budget.resolve_budget(
        config, train
    ).config.sequence_length


# --- best epoch and early stopping, on weights set epoch by epoch -----------

BATCH, EXAMPLES = 8, 32


class Scripted(keras.callbacks.Callback):
    """Sets the student's weights at the start of each epoch (with a zero
    learning rate they stay so): the validation accuracy is forced."""

    def __init__(self, student, weights_by_epoch):
        super().__init__()
        self.student, self.weights_by_epoch = student, weights_by_epoch

    def on_epoch_begin(self, epoch, logs=None):
        self.student.set_weights(self.weights_by_epoch[epoch])


class KillAt(keras.callbacks.Callback):
    """Interrupts `fit` after a batch, as a kill would."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.at, self.epoch = (epoch, batch), None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise KeyboardInterrupt("killed")


def _distiller_and_script():
    """A Distiller whose student scores 1.0 on the validation data with its
    first weights (the labels are its predictions) and 0.0 with its logits
    rotated; the script: bad, good, then bad for every later epoch."""
    student, teacher = tiny_mlp(4, seed=1), tiny_mlp(8, seed=2)
    # Distinct biases: an input that no hidden unit passes still has one
    # top class, which the rotation moves.
    student.layers[-1].bias.assign([0.0, 0.1, 0.2])
    x = np.random.default_rng(0).normal(size=(EXAMPLES, 8)).astype("float32")
    y = np.argmax(student.predict(x, verbose=0), axis=-1).astype("int32")
    good = student.get_weights()
    bad = good[:-2] + [np.roll(good[-2], 1, axis=-1), np.roll(good[-1], 1)]
    distiller = Distiller(student=student, teacher=teacher)
    distiller.compile(
        optimizer=keras.optimizers.SGD(0.0), metrics=["accuracy"], alpha=0.5,
        jit_compile=False,
    )
    script = [bad, good] + [bad] * 8
    return distiller, (x, y), script


def _fit(backup_dir=None, kill=None):
    distiller, (x, y), script = _distiller_and_script()
    callbacks = [Scripted(distiller.student, script)] + ([KillAt(*kill)] if kill else [])
    history = budget.fit_best_epoch(
        distiller, x, 10, y=y, batch_size=BATCH, shuffle=False, verbose=0,
        validation_data=(x, y), patience=2, backup_dir=backup_dir, backup_every=2,
        callbacks=callbacks,
    )
    return distiller, script, history


def _assert_best_restored(distiller, script, history):
    for restored, good in zip(distiller.student.get_weights(), script[1]):
        np.testing.assert_array_equal(restored, good)
    # Epoch 2 (1-based) was the best; epochs 3 and 4 did not improve.
    assert history.budget == {"epochs": 10, "trained_epochs": 4, "best_epoch": 2}


def test_early_stopping_restores_the_best_epoch_of_a_distiller():
    distiller, script, history = _fit()
    assert history.history["val_accuracy"] == [0.0, 1.0, 0.0, 0.0]
    _assert_best_restored(distiller, script, history)


def test_killed_fit_resumes_with_its_early_stopping_state(tmp_path):
    backup_dir = str(tmp_path / "backup")
    # Killed in the third epoch, one batch after the backup of its step 2.
    with pytest.raises(KeyboardInterrupt):
        _fit(backup_dir, kill=(2, 2))
    state = json.loads((tmp_path / "backup" / "backup.json").read_text())
    assert (state["epoch"], state["steps"]) == (2, 2)
    # The early stopping as after epochs 1 and 2: the best was the second.
    assert state["early_stopping"] == {
        "best": 1.0, "best_epoch": 1, "wait": 0, "best_weights": "best-epoch1.npz",
    }
    assert sorted(os.listdir(backup_dir)) == [
        "backup.json", "best-epoch1.npz", "epoch2-step2.weights.h5",
    ]
    # A restarted fit that forgot that state would keep the third epoch.
    distiller, script, history = _fit(backup_dir)
    assert history.history["val_accuracy"] == [0.0, 0.0]
    assert history.epoch == [2, 3]
    _assert_best_restored(distiller, script, history)
    assert not os.path.exists(backup_dir)


@pytest.mark.parametrize(
    "examples, epochs, steps",
    [
        (8454, 4, 1060),  # the movie reviews: 265 steps an epoch
        (4000, 8, 1000),
        (1000, 10, 320),  # capped
    ],
)
def test_a_student_with_new_layers_gets_1000_auto_steps(examples, epochs, steps):
    train = _split(["film"] * examples)
    narrow = PipelineConfig(sequence_length=32, student_hidden_dim=128)
    resolved = budget.resolve_budget(narrow, train, teacher_hidden_dim=384)
    assert (resolved.config.epochs, resolved.chosen["epochs"]["steps"]) == (epochs, steps)
    assert resolved.chosen["epochs"]["rule"].endswith(
        "enough epochs for 1000 steps, 1 to 10, the student's layers being new"
    )
    # The teacher's budget, and a student of the teacher's width, keep 250.
    assert resolved.config.teacher_epochs == budget.auto_epochs(examples, 32)
    same = PipelineConfig(sequence_length=32, student_hidden_dim=384)
    assert budget.resolve_budget(same, train, teacher_hidden_dim=384).config.epochs == (
        budget.auto_epochs(examples, 32)
    )


def test_a_dataset_trains_without_keras_shuffle_warning():
    import warnings

    import tensorflow as tf

    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.zeros((8, 8), "float32")
    data = tf.data.Dataset.from_tensor_slices((x, np.zeros(8, "int32"))).batch(4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history = budget.fit_best_epoch(model, data, 2, verbose=0)
    assert history.budget == {"epochs": 2, "trained_epochs": 2, "best_epoch": None}
