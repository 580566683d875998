"""`trainable_summary`: which layers of a model train, and how many
parameters train and stay frozen."""

import numpy as np

from keras_kd.transfer.freezing import model_layers


def trainable_summary(model, print_fn=print):
    """Shows which layers train and how many parameters each side has.

    Args:
        model: a `FinetuneModel` or any Keras model.
        print_fn: where the table goes (`None`: nowhere).

    Returns:
        A dict with `"trainable"`, `"frozen"` and `"partial"` (layers with
        both, such as LoRA-adapted blocks) lists of layer names, and
        `"trainable_params"` and `"frozen_params"` counts.

    Example:

    >>> import keras_hub
    >>> from keras_kd.transfer import build_finetune_model, trainable_summary
    >>> backbone = keras_hub.models.BertBackbone(
    ...     vocabulary_size=10, num_layers=2, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=8)
    >>> model = build_finetune_model(backbone, num_classes=2, freeze=1,
    ...                              compile=False)
    >>> summary = trainable_summary(model)
    layer                       status        trainable      frozen
    token_embedding             frozen                0          80
    position_embedding          frozen                0          64
    segment_embedding           frozen                0          16
    embeddings_add              frozen                0           0
    embeddings_layer_norm       frozen                0          16
    embeddings_dropout          frozen                0           0
    transformer_layer_0         frozen                0         600
    transformer_layer_1         trainable           600           0
    pooled_dense                frozen                0          72
    logits                      trainable            18           0
    total                                           618         848
    >>> summary["trainable"], summary["trainable_params"]
    (['transformer_layer_1', 'logits'], 618)
    """
    summary = {"trainable": [], "frozen": [], "partial": []}
    lines = [f"{'layer':<28}{'status':<11}{'trainable':>12}{'frozen':>12}"]
    total_trainable = total_frozen = 0
    for name, layer in model_layers(model):
        # Variables carry their own flag: LoRA trains some variables of
        # layers whose `trainable` is False.
        trainable = sum(int(np.prod(w.shape)) for w in layer.weights if w.trainable)
        frozen = sum(int(np.prod(w.shape)) for w in layer.weights if not w.trainable)
        if trainable and frozen:
            status = "partial"
        elif trainable or (layer.trainable and not frozen):
            status = "trainable"
        else:
            status = "frozen"
        summary[status].append(name)
        total_trainable += trainable
        total_frozen += frozen
        lines.append(f"{name:<28}{status:<11}{trainable:>12,}{frozen:>12,}")
    lines.append(f"{'total':<39}{total_trainable:>12,}{total_frozen:>12,}")
    summary["trainable_params"] = total_trainable
    summary["frozen_params"] = total_frozen
    if print_fn is not None:
        print_fn("\n".join(lines))
    return summary
