"""`StopOnNonFiniteLoss`: the `Distiller`'s guard against a loss that has
become NaN or infinite, which would otherwise train on silently."""

import math

import keras

# The logged terms, checked in this order: the first non-finite one is named.
_TERMS = {
    "student_loss": (
        "the student loss (labels vs student)",
        "check the labels and the student's outputs, or lower the learning rate",
    ),
    "distillation_loss": (
        "the distillation loss (teacher vs student)",
        "check the teacher's logits (a NaN, or +inf) or the cache they come "
        "from, or lower the learning rate",
    ),
    "loss": (
        "the total loss",
        "check the student's regularization losses, or lower the learning rate",
    ),
}


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training at the first step whose logged loss is not finite.

    `Distiller.fit` adds it unless the callbacks hold one. The logged values
    are running means over the epoch, so the first non-finite step makes
    them non-finite at once.

    Raises:
        FloatingPointError: naming the term (student, distillation, a
            feature loss or the total loss), its value, the training step (counted over the `fit`
            call) and what to check.

    Example:

    >>> import numpy as np, keras, keras_kd
    >>> from keras_kd.utils.testing import tiny_mlp
    >>> teacher, student = tiny_mlp(4, seed=0), tiny_mlp(4, seed=1)
    >>> teacher.set_weights([np.full_like(w, np.nan) for w in teacher.get_weights()])
    >>> distiller = keras_kd.Distiller(student=student, teacher=teacher)
    >>> distiller.compile(optimizer="sgd", jit_compile=False)
    >>> distiller.fit(np.ones((8, 8)), np.zeros(8, "int32"), batch_size=4, verbose=0)
    Traceback (most recent call last):
    ...
    FloatingPointError: Training stopped at step 1: the distillation loss (teacher vs student) is nan. Check the teacher's logits (a NaN, or +inf) or the cache they come from, or lower the learning rate.
    """

    def __init__(self):
        super().__init__()
        self.step = 0

    def on_train_begin(self, logs=None):
        self.step = 0

    def _terms(self):
        """The logged terms in the order checked: the logits terms, each
        feature loss (by its name), then the total."""
        terms = dict(_TERMS)
        total = terms.pop("loss")
        for loss in getattr(self.model, "feature_losses", None) or []:
            terms[loss.name] = (
                f"the feature loss {loss.name!r} (teacher vs student "
                "intermediate layers)",
                "check the layer map and the teacher's features, lower the "
                "loss's weight or the learning rate",
            )
        terms["loss"] = total
        return terms

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        for key, (term, advice) in self._terms().items():
            value = (logs or {}).get(key)
            if value is not None and not math.isfinite(float(value)):
                self.model.stop_training = True
                raise FloatingPointError(
                    f"Training stopped at step {self.step}: {term} is "
                    f"{float(value)}. {advice[0].upper()}{advice[1:]}."
                )
