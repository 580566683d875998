"""Learning-rate and unfreezing schedules for fine-tuning.

`warmup_cosine_adamw` (AdamW with linear warm-up then cosine decay, the
optimizer of the pipeline and the benchmarks), `layerwise_lr_decay` (lower
layers learn slower, as in ELECTRA) and `GradualUnfreezing` (ULMFiT's
top-down unfreezing callback).
"""

import keras

from keras_kd.transfer.freezing import backbone_layer_groups
from keras_kd.utils.validation import check_choice
from keras_kd.utils.validation import check_int
from keras_kd.utils.validation import check_number


def warmup_cosine_adamw(learning_rate, total_steps, warmup=0.1, weight_decay=0.01):
    """AdamW with linear warm-up then cosine decay to 0 over `total_steps`.

    The learning rate rises linearly from 0 to `learning_rate` over the
    first `int(total_steps * warmup)` steps, then follows a cosine down to
    0 at `total_steps`, and stays 0 after. With no warm-up step it starts
    at `learning_rate`.

    Args:
        learning_rate: the peak learning rate, > 0.
        total_steps: the number of training steps (optimizer updates).
        warmup: the fraction of `total_steps` spent warming up, in [0, 1).
        weight_decay: AdamW's decoupled weight decay.

    Returns:
        A `keras.optimizers.AdamW` whose learning rate follows the schedule.

    Example:

    >>> from keras_kd.transfer import warmup_cosine_adamw
    >>> optimizer = warmup_cosine_adamw(1e-3, total_steps=100)
    >>> rates = []
    >>> for step in (0, 5, 10, 55, 100):
    ...     _ = optimizer.iterations.assign(step)
    ...     rates.append(round(float(optimizer.learning_rate), 6))
    >>> rates
    [0.0, 0.0005, 0.001, 0.0005, 0.0]
    """
    check_number("learning_rate", learning_rate, 0, low_open=True, example=1e-4)
    check_int("total_steps", total_steps, minimum=0, example=1000)
    check_number("warmup", warmup, 0, 1, high_open=True, example=0.1)
    check_number("weight_decay", weight_decay, 0, example=0.01)
    warmup_steps = int(total_steps * warmup)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0 if warmup_steps else learning_rate,
        decay_steps=max(total_steps - warmup_steps, 1),
        warmup_target=learning_rate if warmup_steps else None,
        warmup_steps=warmup_steps,
    )
    return keras.optimizers.AdamW(schedule, weight_decay=weight_decay)


# ---------------------------------------------------------------------------
# Layer-wise learning-rate decay.


def _layer_depths(model):
    """Maps each backbone layer to its depth: 0 for the embeddings, i + 1
    for transformer layer i, and `num_layers + 1` for the layers above."""
    embeddings, blocks, others = backbone_layer_groups(model.backbone)
    depths = {id(layer): 0 for layer in embeddings}
    depths.update({id(block): i + 1 for i, block in enumerate(blocks)})
    depths.update({id(layer): len(blocks) + 1 for layer in others})
    return depths, len(blocks) + 1


_DECAYED_CLASSES = {}


def _decayed_class(base):
    if base not in _DECAYED_CLASSES:

        class LayerwiseDecayed(base):
            def update_step(self, gradient, variable, learning_rate):
                factor = self._keras_kd_lr_factors.get(self._var_key(variable), 1.0)
                return super().update_step(
                    gradient, variable, learning_rate * factor
                )

        LayerwiseDecayed.__name__ = f"LayerwiseDecayed{base.__name__}"
        LayerwiseDecayed.__qualname__ = LayerwiseDecayed.__name__
        _DECAYED_CLASSES[base] = LayerwiseDecayed
    return _DECAYED_CLASSES[base]


def _undecayed_class(optimizer):
    if isinstance(optimizer, tuple(_DECAYED_CLASSES.values())):
        return type(optimizer).__mro__[1]
    return type(optimizer)


def without_layerwise_decay(optimizer):
    """Returns `optimizer`, or for a `layerwise_lr_decay` copy, a new
    optimizer of the original class with the same config (to save)."""
    if not isinstance(optimizer, tuple(_DECAYED_CLASSES.values())):
        return optimizer
    return _undecayed_class(optimizer).from_config(optimizer.get_config())


def layerwise_lr_decay(optimizer, model, decay):
    """Returns a copy of `optimizer` in which lower layers learn slower.

    The learning rate of a variable at depth `d` (embeddings 0, transformer
    layer `i` at `i + 1`, heads and pooler at `num_layers + 1`, where
    `num_layers` is the number of transformer layers) is multiplied by
    `decay ** (num_layers + 1 - d)`, as in ELECTRA and BEiT fine-tuning.
    Variables outside the backbone (the heads) keep factor 1. Keras has no
    per-variable learning rate, so the copy is an instance of a subclass of
    the optimizer's class that scales the rate in `update_step`.

    Args:
        optimizer: an unbuilt Keras optimizer (its config is copied).
        model: a `FinetuneModel` (or a model with a `backbone` attribute).
        decay: the factor per layer, in (0, 1].

    Returns:
        The new optimizer; `optimizer.lr_factors` maps variable paths to
        their factors.

    Example:

    >>> import keras, keras_hub
    >>> from keras_kd.transfer import build_finetune_model, layerwise_lr_decay
    >>> backbone = keras_hub.models.BertBackbone(
    ...     vocabulary_size=10, num_layers=2, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=8)
    >>> model = build_finetune_model(backbone, num_classes=2, compile=False)
    >>> optimizer = layerwise_lr_decay(keras.optimizers.Adam(1e-4), model, 0.5)
    >>> factors = optimizer.lr_factors
    >>> [factors["token_embedding/embeddings"],
    ...  factors["transformer_layer_0/self_attention_layer/query/kernel"],
    ...  factors["transformer_layer_1/self_attention_layer/query/kernel"],
    ...  factors["pooled_dense/kernel"]]
    [0.125, 0.25, 0.5, 1.0]
    """
    check_number("decay", decay, 0, 1, low_open=True, example=0.9)
    depths, top = _layer_depths(model)
    decayed = _decayed_class(_undecayed_class(optimizer)).from_config(
        optimizer.get_config()
    )
    factors, paths = {}, {}
    for layer in model.backbone.layers:
        depth = depths.get(id(layer))
        if depth is None:
            continue
        factor = float(decay) ** (top - depth)
        for variable in layer.weights:
            factors[decayed._var_key(variable)] = factor
            paths[variable.path] = factor
    decayed._keras_kd_lr_factors = factors
    decayed.lr_factors = paths
    return decayed


# ---------------------------------------------------------------------------
# Gradual unfreezing.


@keras.saving.register_keras_serializable(package="keras_kd")
class GradualUnfreezing(keras.callbacks.Callback):
    """Unfreezes a backbone from the top, one layer group at a time (ULMFiT).

    At the start of training the whole backbone is frozen and only the heads
    train; every `epochs_per_layer` epochs the next group down unfreezes:
    the top transformer layer, the one below, ..., and last the embeddings.
    Keras bakes the trainable variables into the compiled train function,
    so on each change the callback rebuilds that function; the optimizer is
    kept, so layers that were already training keep their moments. Before
    the first step, the optimizer is built for every variable that will
    ever train (Keras optimizers cannot add variables later).

    Args:
        epochs_per_layer: epochs between two unfreezing steps.
        stop_at: the lowest group to unfreeze: `"embeddings"` (all), or an
            integer `k` to stop after transformer layer `k` unfreezes.
        verbose: print the layers that unfreeze.

    Attributes:
        history: `{epoch: [names of the backbone layers training]}` for the
            epochs at which the trainable set changed.

    Example:

    >>> import numpy as np, keras_hub
    >>> from keras_kd.transfer import GradualUnfreezing, build_finetune_model
    >>> backbone = keras_hub.models.BertBackbone(
    ...     vocabulary_size=10, num_layers=2, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=8)
    >>> model = build_finetune_model(backbone, num_classes=2, compile=False)
    >>> model.compile(jit_compile=False)
    >>> x = {"token_ids": np.ones((4, 6), "int32"),
    ...      "padding_mask": np.ones((4, 6), "int32"),
    ...      "segment_ids": np.zeros((4, 6), "int32")}
    >>> callback = GradualUnfreezing(stop_at=1)
    >>> _ = model.fit(x, np.array([0, 1, 0, 1]), epochs=3, verbose=0,
    ...               callbacks=[callback])
    >>> callback.history
    {0: [], 1: ['transformer_layer_1']}
    """

    def __init__(self, epochs_per_layer=1, stop_at="embeddings", verbose=False):
        super().__init__()
        check_int("epochs_per_layer", epochs_per_layer, example=1)
        if isinstance(stop_at, str):
            check_choice("stop_at", stop_at, ("embeddings",))
        else:
            check_int(
                "stop_at",
                stop_at,
                minimum=0,
                example='0 (the bottom transformer layer), or "embeddings"',
            )
        self.epochs_per_layer = epochs_per_layer
        self.stop_at = stop_at
        self.verbose = verbose
        self.history = {}
        self._unfrozen = None

    def _groups(self):
        model = self.model
        if getattr(model, "lora_rank", None) is not None:
            raise ValueError(
                "GradualUnfreezing unfreezes backbone layers, but this model "
                "trains LoRA adapters with a frozen backbone. Use one or the "
                "other."
            )
        embeddings, blocks, _ = backbone_layer_groups(model.backbone)
        if self.stop_at != "embeddings" and self.stop_at >= len(blocks):
            raise ValueError(
                f"stop_at={self.stop_at} is out of range: the backbone has "
                f"{len(blocks)} transformer layers (valid: 0 to "
                f"{len(blocks) - 1}, or \"embeddings\")."
            )
        groups = [[block] for block in reversed(blocks)]
        if self.stop_at == "embeddings":
            groups.append(embeddings)
        else:
            groups = groups[: len(blocks) - self.stop_at]
        return groups

    def _set_unfrozen(self, count, epoch):
        if count == self._unfrozen:
            return
        for i, group in enumerate(self._groups_cache):
            for layer in group:
                layer.trainable = i < count
        self._unfrozen = count
        self.history[epoch] = [
            layer.name for group in self._groups_cache[:count] for layer in group
        ]
        # The compiled train function captured the old trainable set.
        self.model.make_train_function(force=True)
        if self.verbose:
            print(f"GradualUnfreezing: epoch {epoch}: training {self.history[epoch] or 'heads only'}")

    def on_train_begin(self, logs=None):
        self._groups_cache = self._groups()
        for group in self._groups_cache:
            for layer in group:
                layer.trainable = True
        final_variables = list(self.model.trainable_variables)
        self._ensure_optimizer_covers(final_variables)
        self._unfrozen = None

    def _ensure_optimizer_covers(self, variables):
        model = self.model
        optimizer = model.optimizer
        if optimizer.built:
            # Keras optimizers know only the variables they were built with.
            known = getattr(optimizer, "_trainable_variables_indices", {})
            if all(optimizer._var_key(v) in known for v in variables):
                return
            if int(optimizer.iterations.numpy()) > 0:
                raise ValueError(
                    "GradualUnfreezing needs an optimizer built for every "
                    "layer it will unfreeze, but this one has already taken "
                    f"{int(optimizer.iterations.numpy())} steps on fewer "
                    "variables. Call model.compile() again before fit()."
                )
            fresh = type(optimizer).from_config(optimizer.get_config())
            for attribute in ("_keras_kd_lr_factors", "lr_factors"):
                if hasattr(optimizer, attribute):
                    setattr(fresh, attribute, getattr(optimizer, attribute))
            model.optimizer = fresh
            optimizer = fresh
        optimizer.build(variables)

    def on_epoch_begin(self, epoch, logs=None):
        count = min(len(self._groups_cache), epoch // self.epochs_per_layer)
        self._set_unfrozen(count, epoch)

    def get_config(self):
        return {
            "epochs_per_layer": self.epochs_per_layer,
            "stop_at": self.stop_at,
            "verbose": self.verbose,
        }
