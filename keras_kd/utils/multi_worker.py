"""Work-arounds that let keras-kd's models train under
`tf.distribute.MultiWorkerMirroredStrategy` with Keras 3.15's `fit` and
`evaluate`, which fail there in two places (keras-team/keras#20585); both
keep Keras's and TensorFlow's own machinery and change only what reaches
them. The `Distiller` and `FinetuneModel` take them from the
`MultiWorkerFit` mix-in; `MultiWorkerModel` is a functional `keras.Model`
with it (`FinetuneModel.token_id_model`)."""

import keras
import tensorflow as tf
from keras import ops


def in_multi_worker_mode(strategy):
    """Whether Keras reduces a step's logs across workers: its own test
    (`_collective_all_reduce_multi_worker` in
    `keras/src/backend/tensorflow/trainer.py`)."""
    return isinstance(
        strategy, tf.distribute.MultiWorkerMirroredStrategy
    ) and strategy.extended._in_multi_worker_mode()


def reducible_logs(logs):
    """Each log as a vector of one.

    Keras 3.15 reduces each replica's logs across workers with
    `strategy.reduce("MEAN", value, axis=0)`
    (`keras/src/backend/tensorflow/trainer.py:842`, `reduce_per_replica`),
    which fails on a scalar ("Invalid reduction dimension 0 for input with 0
    dimensions"). As a vector of one, each log's reduction is the scalar
    mean over the replicas, what Keras takes on one machine
    (`tf.reduce_mean` of the replicas' values).
    """
    return {name: ops.reshape(value, (1,)) for name, value in logs.items()}


def first_replica_batch(strategy, iterator, data_batch=None):
    """The first batch of `fit`'s or `evaluate`'s distributed `iterator`,
    each part this worker's first replica's: what Keras's symbolic build
    reads (shapes and dtypes), with no collective.

    Keras 3.15 (`keras/src/backend/tensorflow/trainer.py:731`, in `fit` and
    `evaluate` before the first step) passes the whole per-replica batch, a
    tuple, to `strategy.reduce("MEAN", batch, axis=None)`, which takes one
    distributed value, not a tuple. `MirroredStrategy` hands the tuple back
    unchanged (the MEAN of a value it does not see as distributed), but
    `MultiWorkerMirroredStrategy` with several workers converts it to a
    tensor for a collective and fails ("Attempt to convert a value
    (PerReplica...)"). `data_batch` is returned if the iterator is empty.
    """
    for _, _, it in iterator:
        return keras.tree.map_structure(
            lambda v: strategy.experimental_local_results(v)[0], next(it)
        )
    return data_batch


class MultiWorkerFit:
    """A `keras.Model` mix-in: Keras's symbolic build from
    `first_replica_batch`, and Keras's `train_step` and `test_step` with
    their logs passed through `worker_logs` (a model with its own steps
    calls `worker_logs` on what they return)."""

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if strategy is None or iterator is None:
            return super()._maybe_symbolic_build(iterator, data_batch)
        with strategy.scope():
            self._symbolic_build(data_batch=first_replica_batch(strategy, iterator, data_batch))

    def worker_logs(self, logs):
        """`logs`, reducible across workers (`reducible_logs`) when Keras
        will reduce them so."""
        if in_multi_worker_mode(self.distribute_strategy):
            return reducible_logs(logs)
        return logs

    def train_step(self, data):
        return self.worker_logs(super().train_step(data))

    def test_step(self, data):
        return self.worker_logs(super().test_step(data))


@keras.saving.register_keras_serializable(package="keras_kd")
class MultiWorkerModel(MultiWorkerFit, keras.Model):
    """A functional `keras.Model` whose `fit` and `evaluate` also work under
    `MultiWorkerMirroredStrategy` with several workers.

    Example:

    >>> import keras
    >>> inputs = keras.Input((4,))
    >>> model = MultiWorkerModel(inputs, keras.layers.Dense(2)(inputs))
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> history = model.fit(keras.ops.ones((8, 4)), keras.ops.zeros((8, 2)),
    ...                     epochs=1, verbose=0)
    >>> sorted(history.history)
    ['loss']
    """
