"""`StepCurve`: a Keras callback that records a learning curve by training
step, for runs of one or two epochs."""

import keras

from keras_kd import _backend  # noqa: F401 (fails early on another backend)


class StepCurve(keras.callbacks.Callback):
    """Records a learning curve by training step.

    Every `every` steps it stores the running training value of `metric`
    (Keras's mean over the epoch so far), and at each epoch's end its
    validation value, both against the global step: with one or two epochs,
    a per-epoch curve would be one or two points.

    Args:
        every: steps between two training points.
        metric: the logged metric to record (`"accuracy"`, `"loss"`, ...).

    Attributes:
        curve: dict of lists `steps`, `<metric>`, `val_steps`,
            `val_<metric>`.

    Example:

    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(40, 3))
    >>> y = (x[:, 0] > 0).astype("int32")
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    >>> model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(
    ...     from_logits=True), metrics=["accuracy"])
    >>> curve = StepCurve(every=2)
    >>> _ = model.fit(x, y, batch_size=10, epochs=2, validation_data=(x, y),
    ...               callbacks=[curve], verbose=0)
    >>> curve.curve["steps"], curve.curve["val_steps"]
    ([2, 4, 6, 8], [4, 8])
    >>> all(0 <= a <= 1 for a in curve.curve["accuracy"])
    True
    """

    def __init__(self, every=10, metric="accuracy"):
        super().__init__()
        self.every = every
        self.metric = metric
        self.step = 0
        self.curve = {"steps": [], metric: [], "val_steps": [], f"val_{metric}": []}

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.step % self.every == 0 and self.metric in (logs or {}):
            self.curve["steps"].append(self.step)
            self.curve[self.metric].append(float(logs[self.metric]))

    def on_epoch_end(self, epoch, logs=None):
        if f"val_{self.metric}" in (logs or {}):
            self.curve["val_steps"].append(self.step)
            self.curve[f"val_{self.metric}"].append(float(logs[f"val_{self.metric}"]))
