"""Task heads that sit on a text backbone: `Head` and `get_head`."""

import keras

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
class Head(keras.layers.Layer):
    """A dropout plus dense head for one task.

    `"classification"` and `"token_classification"` give logits (one row per
    example or per token), `"multilabel"` gives independent sigmoid
    probabilities, `"regression"` gives `num_classes` real outputs.

    Args:
        kind: one of `"classification"`, `"multilabel"`, `"regression"`,
            `"token_classification"`.
        num_classes: number of classes (labels, or outputs for regression).
        dropout: dropout rate applied to the features before the dense layer.
        **kwargs: standard `keras.layers.Layer` arguments such as `name`.

    Example:

    ```python
    import numpy as np
    import keras_kd
    head = keras_kd.heads.Head("classification", num_classes=3)
    head(np.zeros((2, 8), "float32")).shape
    # TensorShape([2, 3])
    ```
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
        _check_num_classes(kind, num_classes)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(
                f"`dropout` must lie in [0, 1). Received: dropout={dropout!r}"
            )
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


def _check_num_classes(kind, num_classes):
    if (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, int)
        or num_classes < 1
    ):
        raise ValueError(
            f"A {kind!r} head needs `num_classes`, an integer >= 1 (the "
            f"number of {'outputs' if kind == 'regression' else 'classes'}). "
            f"Received: num_classes={num_classes!r}. For example: "
            f"build_finetune_model(preset, head={kind!r}, num_classes=2)."
        )


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
        A `keras.layers.Layer`.

    Example:

    ```python
    import keras_kd
    keras_kd.heads.get_head("multilabel", num_classes=4).kind
    # 'multilabel'
    ```
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
    """Whether `head` reads every token rather than the pooled features."""
    return bool(getattr(head, "per_token", False))
