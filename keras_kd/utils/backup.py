"""`BackupAndRestore`: Keras's fault-tolerance callback, made exact.

A `fit` killed at any moment and started again with the same models, data
and callback continues where the last backup left off and ends with the
weights of a run that was never interrupted. Keras 3's own
`keras.callbacks.BackupAndRestore` falls short of that in three ways, each
fixed here:

- with `save_freq=<int>` it restores a mid-epoch backup but then trains
  the interrupted epoch from its first batch again, so the steps done
  before the kill are applied twice (it records the batch, and never reads
  it back). Here the steps already done are skipped: their batches are
  read from the data, not trained on.
- it writes the weights, then the epoch and batch, in place: a kill in
  between leaves one file newer than the other, and a kill during a write
  leaves a truncated file. Here each backup is a new weights file, written
  atomically (`keras_kd.utils.io.atomic_write`), and then a small
  `backup.json` names it, also atomically: the pair is always consistent.
- it does not save the layers' random seed state, so dropout draws other
  masks after a restart; here `backup.json` carries it.

An `EarlyStopping` given as `early_stopping` is backed up with the rest:
its best value, best epoch, epochs without improvement and best weights
(a `.npz` beside the weights) as they stood when the backup was taken,
which is after the epochs that ended before it; so a restarted `fit`
stops, and restores the best weights, as the uninterrupted one would.
Without this, a restarted `EarlyStopping` starts from nothing: it would
take the first epoch after the restart as the best.

The model must be built before `fit` (Keras's condition), and the data must
give the same batches in the same order on the restart: unshuffled data, or
data shuffled with a seed (the first epoch of a restarted process then has
the same order as the first epoch of the killed one; a dataset reshuffled
every epoch gives a resumed later epoch its first epoch's order, so that
epoch sees every example once, in another order).
"""

import json
import os

import keras
import numpy as np

from keras_kd.utils.io import atomic_write, atomic_write_json

STATE_FILE = "backup.json"


class BackupAndRestore(keras.callbacks.BackupAndRestore):
    """Backs up the training state and restores it exactly after a kill.

    A drop-in for `keras.callbacks.BackupAndRestore` (see this module's
    docstring for what differs) that works with any Keras model on the
    TensorFlow backend, the `keras_kd.Distiller` (live teacher or a
    `TeacherCache` dataset) and `keras_kd.transfer` fine-tuning models
    included. The backup holds the model's weights with the optimizer's
    state (a Distiller's include its frozen teacher) and is deleted when
    `fit` completes (`delete_checkpoint`).

    Args:
        backup_dir: a folder for this run's backup only.
        save_freq: `"epoch"` (at the end of every epoch) or an int n (every
            n training batches): how much work a kill can lose, against
            the time spent writing backups.
        delete_checkpoint: delete the backup when `fit` completes.
        early_stopping: a `keras.callbacks.EarlyStopping` of the same
            `fit` whose state is backed up and restored with the model's.
            It must come before this callback in `fit`'s callbacks: its
            state, reset when training begins, is restored after that.

    Example:

    >>> import os, signal, tempfile, keras, numpy as np
    >>> from keras_kd.utils.backup import BackupAndRestore
    >>> def model():
    ...     keras.utils.set_random_seed(0)
    ...     m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    ...     m.compile(optimizer="adam", loss="mse")
    ...     return m
    >>> x, y = np.ones((8, 4)), np.ones((8, 1))
    >>> class Interrupt(keras.callbacks.Callback):  # a kill after batch 2
    ...     def on_train_batch_end(self, batch, logs=None):
    ...         if batch == 2:
    ...             raise KeyboardInterrupt
    >>> folder = tempfile.mkdtemp()
    >>> try:
    ...     model().fit(x, y, batch_size=2, epochs=2, shuffle=False, verbose=0,
    ...                 callbacks=[BackupAndRestore(folder, save_freq=1), Interrupt()])
    ... except KeyboardInterrupt:
    ...     pass
    >>> resumed = model()
    >>> _ = resumed.fit(x, y, batch_size=2, epochs=2, shuffle=False, verbose=0,
    ...                 callbacks=[BackupAndRestore(folder, save_freq=1)])
    >>> int(resumed.optimizer.iterations)  # 3 steps before, 5 after the kill
    8
    >>> os.path.exists(folder)
    False
    """

    def __init__(
        self, backup_dir, save_freq="epoch", delete_checkpoint=True, early_stopping=None
    ):
        super().__init__(
            backup_dir, save_freq=save_freq, delete_checkpoint=delete_checkpoint
        )
        self.early_stopping = early_stopping
        self._state_path = os.path.join(backup_dir, STATE_FILE)
        self._epoch = 0
        self._steps_done = 0
        self._unsaved_steps = 0
        self._resume_epoch = None
        self._steps_to_skip = 0
        self._train_function = None

    def on_train_begin(self, logs=None):
        self._resume_epoch, self._steps_to_skip = None, 0
        if os.path.exists(self._state_path):
            self._restore()

    def _restore(self):
        if not self.model.built:
            raise ValueError(
                f"BackupAndRestore({self.backup_dir!r}) restores into a built "
                f"model, but {self.model.name!r} is not built. Build it first, "
                "for example by calling it on a batch of data."
            )
        with open(self._state_path) as f:
            state = json.load(f)
        if self.model.optimizer is not None and not self.model.optimizer.built:
            # The saved optimizer variables need their slots to load into.
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(os.path.join(self.backup_dir, state["weights"]))
        for variable, value in zip(_seed_states(self.model), state["seed_states"]):
            variable.assign(value)
        if self.early_stopping is not None and state.get("early_stopping"):
            self._restore_early_stopping(state["early_stopping"])
        self.model._initial_epoch = state["epoch"]
        self._resume_epoch, self._steps_to_skip = state["epoch"], state["steps"]

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._steps_done = epoch, 0

    def on_train_batch_begin(self, batch, logs=None):
        if self._epoch == self._resume_epoch and batch < self._steps_to_skip:
            if self._train_function is None:
                self._train_function = self.model.train_function
                self.model.train_function = self._skip_step
        else:
            self._stop_skipping()

    def _skip_step(self, iterator):
        """Reads the batches of one training call without training on them:
        they were trained on before the backup."""
        for _ in range(self.model.steps_per_execution):
            next(iterator)
        return {}

    def _stop_skipping(self):
        if self._train_function is not None:
            self.model.train_function = self._train_function
            self._train_function = None

    def on_train_batch_end(self, batch, logs=None):
        new_steps = batch + 1 - self._steps_done
        self._steps_done = batch + 1
        if self._train_function is not None:
            return
        self._unsaved_steps += new_steps
        if self.save_freq != "epoch" and self._unsaved_steps >= self.save_freq:
            self._save(self._epoch, self._steps_done)

    def on_epoch_end(self, epoch, logs=None):
        self._stop_skipping()
        self._resume_epoch = None
        if self.save_freq == "epoch":
            self._save(epoch + 1, 0)

    def _save(self, epoch, steps):
        """Writes the weights as a new file, then points `backup.json` at it
        (and at the early stopping's best weights, written when new)."""
        self._unsaved_steps = 0
        previous = self._saved_files()
        name = f"epoch{epoch}-step{steps}.weights.h5"
        atomic_write(
            os.path.join(self.backup_dir, name),
            self.model.save_weights,
            overwrite=True,
        )
        state = {
            "epoch": epoch,
            "steps": steps,
            "weights": name,
            "seed_states": [v.numpy().tolist() for v in _seed_states(self.model)],
        }
        if self.early_stopping is not None:
            state["early_stopping"] = self._early_stopping_state(previous)
        atomic_write_json(self._state_path, state, overwrite=True)
        for file in previous - self._saved_files():
            os.remove(os.path.join(self.backup_dir, file))

    def _saved_files(self):
        """The files `backup.json` names (none before the first backup)."""
        if not os.path.exists(self._state_path):
            return set()
        with open(self._state_path) as f:
            state = json.load(f)
        best = (state.get("early_stopping") or {}).get("best_weights")
        return {state["weights"]} | ({best} if best else set())

    def _early_stopping_state(self, saved_files):
        """The early stopping's state, its best weights written to a file
        unless the current backup already has them."""
        stopping = self.early_stopping
        best_weights = None
        if stopping.best_weights is not None:
            best_weights = f"best-epoch{stopping.best_epoch}.npz"
            if best_weights not in saved_files:
                atomic_write(
                    os.path.join(self.backup_dir, best_weights),
                    lambda tmp: np.savez(tmp, *stopping.best_weights),
                    overwrite=True,
                )
        return {
            "best": None if stopping.best is None else float(stopping.best),
            "best_epoch": stopping.best_epoch,
            "wait": stopping.wait,
            "best_weights": best_weights,
        }

    def _restore_early_stopping(self, state):
        stopping = self.early_stopping
        stopping.best, stopping.best_epoch, stopping.wait = (
            state["best"], state["best_epoch"], state["wait"]
        )
        stopping.best_weights = None
        if state["best_weights"]:
            with np.load(os.path.join(self.backup_dir, state["best_weights"])) as saved:
                stopping.best_weights = [saved[f"arr_{i}"] for i in range(len(saved.files))]

    def on_train_end(self, logs=None):
        self._stop_skipping()
        # Keras reads the restored epoch at the start of every later `fit`
        # of this model: clear it, so the next `fit` starts at its own
        # `initial_epoch`.
        self.model._initial_epoch = None
        super().on_train_end(logs)


def _seed_states(model):
    """The state variables of the model's random seed generators (dropout),
    which `save_weights` leaves out, in a fixed order."""
    weights = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weights]
