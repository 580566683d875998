"""Trains three tiny models with `keras_kd.utils.backup.BackupAndRestore`,
one after the other, and can be killed with SIGKILL in the middle of one of
them; tests/utils/test_backup.py runs it again and again until all three
are done, then compares with runs that were never interrupted:

    python backup_run.py OUT PRESET CASE       # killed in CASE
    python backup_run.py OUT PRESET reference  # finishes, then the references

The cases: a `Distiller` with its live teacher (XLA as by default), a
`Distiller` on `TeacherCache` batches, and a `build_finetune_model` model
on raw texts (dropout 0.1: its random state must be restored too). Each
trains 2 epochs of 4 batches, unshuffled, backing up every 2 batches; KILL
kills the process after the third batch of the second epoch, one batch
after its last backup, so the resumed run skips 2 batches and trains the
killed one again. A finished case writes `OUT/<case>.npz` (its weights)
and `OUT/<case>.json` (the optimizer's steps and the batches this process
trained); a case already finished is not run again.
"""

import os
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CASES = ("live", "cache", "finetune")
EPOCHS, BATCH, EXAMPLES = 2, 8, 32
KILL_EPOCH, KILL_BATCH = 1, 2
SAVE_FREQ = 2


def case_data(case, preset):
    """`(model, fit_model, dataset)` of a case, built from seeds."""
    import keras
    import numpy as np
    import tensorflow as tf

    import keras_kd
    from keras_kd.utils.testing import tiny_mlp

    keras.utils.set_random_seed(0)
    if case == "finetune":
        model = keras_kd.transfer.build_finetune_model(
            preset, num_classes=2, sequence_length=8, compile=False
        )
        model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
        texts = [f"a {'good' if i % 2 else 'bad'} film number {i}" for i in range(EXAMPLES)]
        labels = np.arange(EXAMPLES) % 2
        return model, tf.data.Dataset.from_tensor_slices((texts, labels)).batch(BATCH)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(EXAMPLES, 8)).astype("float32")
    y = rng.integers(0, 3, size=EXAMPLES).astype("int32")
    student, teacher = tiny_mlp(16, 1), tiny_mlp(32, 2)
    distiller = keras_kd.Distiller(student=student, teacher=teacher)
    distiller.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        alpha=0.5,
        jit_compile="auto" if case == "live" else False,
    )
    data = tf.data.Dataset.from_tensor_slices((x, y))
    if case == "live":
        return distiller, data.batch(BATCH)
    cache = keras_kd.TeacherCache.build(
        teacher, data, os.path.join(OUT, "teacher_cache"), jit_compile=False, verbose=0
    )
    return distiller, cache.dataset(BATCH)


def train(case, preset, backup, kill=False):
    import keras
    import numpy as np

    from keras_kd.utils.backup import BackupAndRestore
    from keras_kd.utils.io import atomic_write, atomic_write_json

    class Trained(keras.callbacks.Callback):
        """Counts the batches trained here (skipped ones log nothing) and
        kills the process after batch KILL_BATCH of epoch KILL_EPOCH."""

        batches = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            self.batches += bool(logs)
            if kill and (self.epoch, batch) == (KILL_EPOCH, KILL_BATCH):
                os.kill(os.getpid(), signal.SIGKILL)

    model, dataset = case_data(case, preset)
    trained = Trained()
    callbacks = [trained]
    if backup:
        # First: the backup of a batch is written before the kill.
        callbacks.insert(
            0, BackupAndRestore(os.path.join(OUT, f"backup_{case}"), save_freq=SAVE_FREQ)
        )
    model.fit(dataset, epochs=EPOCHS, shuffle=False, verbose=0, callbacks=callbacks)
    name = case if backup else f"{case}.reference"
    weights = {str(i): w for i, w in enumerate(model.get_weights())}
    atomic_write(os.path.join(OUT, f"{name}.npz"), lambda tmp: np.savez(tmp, **weights))
    atomic_write_json(
        os.path.join(OUT, f"{name}.json"),
        {"iterations": int(model.optimizer.iterations), "trained_batches": trained.batches},
    )


if __name__ == "__main__":
    OUT, preset, mode = sys.argv[1:4]
    for case in CASES:
        if not os.path.exists(os.path.join(OUT, f"{case}.npz")):
            train(case, preset, backup=True, kill=case == mode)
    if mode == "reference":
        for case in CASES:
            train(case, preset, backup=False)
