"""Task heads that sit on a text backbone.

`Head` (dropout plus dense, for classification, multilabel, regression and
token classification), `get_head` (a head from a kind or a Keras layer),
`make_heads` (the named heads of a model from a `head=` argument),
`head_is_per_token` and `MaskedSparseCategoricalAccuracy` (the token
classification head's accuracy, over labelled tokens only).
"""

import keras

from keras_kd.utils.validation import check_int
from keras_kd.utils.validation import check_number

HEAD_KINDS = ("classification", "multilabel", "regression", "token_classification")

# Per kind: output activation, whether it reads every token, and whether
# `num_classes` is required (regression defaults to one output).
_KIND_SPECS = {
    "classification": (None, False, True),
    "multilabel": ("sigmoid", False, True),
    "regression": (None, False, False),
    "token_classification": (None, True, True),
}

# Token labels use the HuggingFace convention: -100 marks tokens (padding,
# sub-word continuations) that carry no label.
TOKEN_IGNORE_INDEX = -100


@keras.saving.register_keras_serializable(package="keras_kd")
class MaskedSparseCategoricalAccuracy(keras.metrics.Mean):
    """The share of labelled positions whose top class is the label.

    Positions labelled `ignore_class` (padding and sub-word continuations,
    `-100` by the HuggingFace convention) are left out of both counts, as
    the token classification loss leaves them out; Keras's
    `SparseCategoricalAccuracy` counts them as wrong, so a batch of short
    sentences scored low however good the model. The result is the
    accuracy over every labelled token seen since the last reset (not a
    mean of per-batch accuracies). It takes labels of shape `(batch,
    length)` (or with a trailing 1) and logits of shape `(batch, length,
    classes)`; a `sample_weight` per example or per token weighs the
    labelled tokens.

    Args:
        ignore_class: the label of positions that are not counted.
        name: the metric's name in the logs.
        dtype: dtype of the counts.

    Example:

    >>> import numpy as np
    >>> metric = MaskedSparseCategoricalAccuracy()
    >>> logits = np.array([[[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]]])
    >>> metric.update_state(np.array([[0, 1, -100]]), logits)
    >>> float(metric.result())
    1.0
    """

    def __init__(self, ignore_class=TOKEN_IGNORE_INDEX, name="accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.ignore_class = ignore_class

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = keras.ops.convert_to_tensor(y_pred)
        positions = keras.ops.shape(y_pred)[:-1]
        labels = keras.ops.reshape(keras.ops.cast(y_true, "int32"), positions)
        predicted = keras.ops.cast(keras.ops.argmax(y_pred, axis=-1), "int32")
        correct = keras.ops.cast(keras.ops.equal(labels, predicted), self.dtype)
        weight = keras.ops.cast(
            keras.ops.not_equal(labels, self.ignore_class), self.dtype
        )
        if sample_weight is not None:
            sample_weight = keras.ops.cast(sample_weight, self.dtype)
            # Per-example weights spread over the example's positions.
            while len(sample_weight.shape) < len(weight.shape):
                sample_weight = keras.ops.expand_dims(sample_weight, -1)
            weight = weight * keras.ops.broadcast_to(sample_weight, positions)
        # Flat, so that Mean sums over positions rather than averaging
        # each example first.
        super().update_state(
            keras.ops.reshape(correct, (-1,)),
            sample_weight=keras.ops.reshape(weight, (-1,)),
        )

    def get_config(self):
        config = super().get_config()
        config["ignore_class"] = self.ignore_class
        return config


@keras.saving.register_keras_serializable(package="keras_kd")
class Head(keras.layers.Layer):
    """A dropout plus dense head for one task.

    `"classification"` and `"token_classification"` give logits (one row per
    example or per token), `"multilabel"` gives independent sigmoid
    probabilities, `"regression"` gives `num_classes` real outputs.

    Args:
        kind: one of `"classification"`, `"multilabel"`, `"regression"`,
            `"token_classification"`.
        num_classes: number of classes (labels, or outputs for regression,
            where it defaults to 1).
        dropout: dropout rate applied to the features before the dense
            layer, in [0, 1).
        **kwargs: standard `keras.layers.Layer` arguments such as `name`.

    Example:

    >>> import numpy as np
    >>> from keras_kd.transfer import Head
    >>> head = Head("classification", num_classes=3)
    >>> tuple(head(np.zeros((2, 8), "float32")).shape)
    (2, 3)
    >>> Head("multilabel")
    Traceback (most recent call last):
    ...
    ValueError: `num_classes` must be an int >= 1, e.g. build_finetune_model(preset, head='multilabel', num_classes=2). Received: num_classes=None
    """

    def __init__(self, kind, num_classes=None, dropout=0.1, **kwargs):
        if kind not in _KIND_SPECS:
            raise ValueError(
                f"Unknown head kind={kind!r}. Expected one of {HEAD_KINDS} or "
                "a Keras layer."
            )
        activation, per_token, needs_classes = _KIND_SPECS[kind]
        if num_classes is None and not needs_classes:
            num_classes = 1
        check_int(
            "num_classes",
            num_classes,
            example=f"build_finetune_model(preset, head={kind!r}, num_classes=2)",
        )
        if kind in ("classification", "token_classification") and num_classes == 1:
            raise ValueError(
                f"head={kind!r} with num_classes=1 always predicts its one class "
                "(a softmax over one logit). Pass num_classes=2 for two classes, "
                "or head='multilabel' for independent yes/no outputs."
            )
        check_number("dropout", dropout, 0, 1, high_open=True, example=0.1)
        super().__init__(**kwargs)
        self.kind = kind
        self.num_classes = num_classes
        self.dropout = dropout
        self.per_token = per_token
        self.dropout_layer = keras.layers.Dropout(dropout, name="dropout")
        self.dense = keras.layers.Dense(
            num_classes,
            activation=activation,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            # Losses are computed from these outputs, so keep them float32
            # even under a mixed-precision policy.
            dtype="float32",
            name="dense",
        )

    def build(self, input_shape):
        self.dense.build(input_shape)
        self.built = True

    def call(self, inputs, training=None):
        return self.dense(self.dropout_layer(inputs, training=training))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.num_classes,)

    def default_loss(self):
        """The loss that matches this head's outputs."""
        if self.kind == "multilabel":
            return keras.losses.BinaryCrossentropy()
        if self.kind == "regression":
            return keras.losses.MeanSquaredError()
        ignore = TOKEN_IGNORE_INDEX if self.per_token else None
        return keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, ignore_class=ignore
        )

    def default_metrics(self):
        """The metrics reported by default for this head."""
        if self.kind == "multilabel":
            return [keras.metrics.BinaryAccuracy()]
        if self.kind == "regression":
            return [keras.metrics.MeanAbsoluteError()]
        if self.per_token:
            return [MaskedSparseCategoricalAccuracy(TOKEN_IGNORE_INDEX)]
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "kind": self.kind,
                "num_classes": self.num_classes,
                "dropout": self.dropout,
            }
        )
        return config


def get_head(spec, num_classes=None, dropout=0.1, name="logits"):
    """Returns the head layer described by `spec`.

    Args:
        spec: a head kind (see `HEAD_KINDS`), a `Head`, or any Keras layer
            or model; a layer receives the pooled features `(batch,
            hidden_dim)`, or the token features `(batch, length,
            hidden_dim)` if it has the attribute `per_token = True`.
        num_classes: the number of classes for a head kind.
        dropout: dropout rate for a head kind.
        name: the layer name for a head kind.

    Returns:
        A `keras.layers.Layer`: `spec` itself if it is one, else a new
        `Head`.

    Example:

    >>> from keras_kd.transfer import get_head
    >>> head = get_head("multilabel", num_classes=4)
    >>> head.kind, head.num_classes, head.name
    ('multilabel', 4, 'logits')
    """
    if isinstance(spec, keras.layers.Layer):
        return spec
    if isinstance(spec, str):
        return Head(spec, num_classes=num_classes, dropout=dropout, name=name)
    raise TypeError(
        f"A head must be one of {HEAD_KINDS} or a Keras layer. Received: "
        f"{spec!r} of type {type(spec).__name__}"
    )


def head_is_per_token(head):
    """Whether `head` reads every token rather than the pooled features.

    Example:

    >>> head_is_per_token(Head("token_classification", 5)), head_is_per_token(Head("classification", 2))
    (True, False)
    """
    return bool(getattr(head, "per_token", False))


def head_names(head):
    """The output names of a `head=` argument: its keys, or `["logits"]`.

    Example:

    >>> head_names({"topic": Head("classification", 4), "tags": Head("multilabel", 3)})
    ['topic', 'tags']
    >>> head_names(Head("classification", 2))
    ['logits']
    """
    return list(head) if isinstance(head, dict) else ["logits"]


def make_heads(head, num_classes, dropout):
    """Returns `{name: layer}` for a `head=` argument of `build_finetune_model`.

    Args:
        head: a head kind or Keras layer (one head named `"logits"`), or a
            dict of them keyed by output name.
        num_classes: an int, or a dict keyed like `head`.
        dropout: dropout rate of the heads made from a kind.

    Example:

    >>> from keras_kd.transfer.heads import make_heads
    >>> heads = make_heads({"topic": "classification", "score": "regression"},
    ...                    {"topic": 5}, dropout=0.1)
    >>> {name: head.num_classes for name, head in heads.items()}
    {'topic': 5, 'score': 1}
    """
    specs = head if isinstance(head, dict) else {"logits": head}
    if not specs:
        raise ValueError("head={} names no head. Pass at least one head.")
    made = {}
    for name, spec in specs.items():
        if not isinstance(spec, (str, keras.layers.Layer)):
            raise TypeError(
                f"Head {name!r} must be one of {HEAD_KINDS} or a "
                f"Keras layer. Received: {spec!r} of type {type(spec).__name__}"
            )
        classes = (
            num_classes.get(name) if isinstance(num_classes, dict) else num_classes
        )
        made[name] = get_head(spec, classes, dropout=dropout, name=name)
    return made
