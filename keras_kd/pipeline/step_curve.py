"""`StepCurve`: a Keras callback that records a learning curve by training
step, for runs of one or two epochs."""

import keras

from keras_kd import _backend  # noqa: F401 (fails early on another backend)


class StepCurve(keras.callbacks.Callback):
    """Records a learning curve by training step.

    Every `every` steps it stores the running training accuracy (Keras's mean
    over the epoch so far), and at each epoch's end the validation accuracy,
    both against the global step: with one or two epochs, a per-epoch curve
    would be one or two points.

    Args:
        every: steps between two training points.

    Attributes:
        curve: dict of lists `steps`, `accuracy`, `val_steps`, `val_accuracy`.

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

    def __init__(self, every=10):
        super().__init__()
        self.every = every
        self.step = 0
        self.curve = {"steps": [], "accuracy": [], "val_steps": [], "val_accuracy": []}

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.step % self.every == 0 and "accuracy" in (logs or {}):
            self.curve["steps"].append(self.step)
            self.curve["accuracy"].append(float(logs["accuracy"]))

    def on_epoch_end(self, epoch, logs=None):
        if "val_accuracy" in (logs or {}):
            self.curve["val_steps"].append(self.step)
            self.curve["val_accuracy"].append(float(logs["val_accuracy"]))
