"""`build_finetune_model`: a `FinetuneModel` from a preset or a backbone.

It resolves the preset (a named offline preset, a keras-hub preset, a local
keras-hub or HuggingFace folder, or a `Backbone` object), checks every
argument before any weights load, loads the backbone and its preprocessor,
and makes the heads.
"""

import keras_hub

from keras_kd.presets import check_preset_task, preset_dimensions, resolve_preset
from keras_kd.presets.registry import subclasses_for
from keras_kd.transfer.finetune_model import FinetuneModel
from keras_kd.transfer.finetune_model import check_arguments
from keras_kd.transfer.finetune_model import check_class_names
from keras_kd.transfer.freezing import check_freeze, resolve_freeze
from keras_kd.transfer.heads import head_names
from keras_kd.transfer.heads import make_heads
from keras_kd.utils.validation import check_sequence_length


def _check_positions(sequence_length, limit, owner):
    if None not in (limit, sequence_length) and sequence_length > limit:
        raise ValueError(
            f"sequence_length={sequence_length} is longer than the {limit} "
            f"positions of {owner}. Pass sequence_length <= {limit}."
        )


def check_finetune_preset(
    preset, freeze="none", sequence_length=128, head="classification", download=False
):
    """Checks a preset and the settings that depend on its architecture.

    The preset's name or folder, its architecture (a text encoder keras-hub
    has a classifier for: `keras_kd.presets.check_preset_task`), its position count (`sequence_length` may
    not exceed it) and its depth (an integer `freeze`) are read from its
    config file (`keras_kd.presets.preset_dimensions`), without loading
    weights. A list or regular expression `freeze` needs the layer names:
    the architecture is then built with random weights, about a second for
    MiniLM.

    Args:
        preset: as for `build_finetune_model` (not a `Backbone` object).
        freeze, sequence_length, head: as for `build_finetune_model`; a
            None `sequence_length` is a length chosen later within the
            positions (the pipeline's from the data), not checked here.
        download: also check presets whose config is remote (a keras-hub
            name, a URI) by fetching it; otherwise their name is checked,
            the rest is left to `build_finetune_model`.

    Raises:
        ValueError, TypeError, FileNotFoundError, ImportError: the message
            names the bad value and what to pass instead.

    Example:

    >>> check_finetune_preset("minilm_l6", freeze=2, sequence_length=256)
    >>> check_finetune_preset("minilm_l6", sequence_length=1000)
    Traceback (most recent call last):
    ...
    ValueError: sequence_length=1000 is longer than the 512 positions of preset 'minilm_l6'. Pass sequence_length <= 512.
    """
    check_sequence_length(sequence_length, allow_none=True)
    check_preset_task(preset, "classification")
    dimensions = preset_dimensions(preset)
    _check_positions(sequence_length, dimensions.get("max_sequence_length"), f"preset {preset!r}")
    needs_layer_names = check_freeze(freeze, dimensions.get("num_layers"))
    if needs_layer_names and (dimensions or download):
        # Layer names need the architecture alone: a random init costs far
        # less than reading and converting the weights.
        skeleton = keras_hub.models.Backbone.from_preset(
            resolve_preset(preset), load_weights=False
        )
        resolve_freeze(freeze, skeleton, extra_names=head_names(head))


def _preprocessor_class(backbone):
    found = subclasses_for(keras_hub.models.TextClassifierPreprocessor, type(backbone))
    if found:
        return found[0]
    raise ValueError(
        f"keras-hub has no TextClassifierPreprocessor for "
        f"{type(backbone).__name__}. Pass `preprocessor=` explicitly."
    )


def build_finetune_model(
    preset,
    head="classification",
    num_classes=None,
    *,
    freeze="none",
    pooling="mean",
    dropout=0.1,
    sequence_length=128,
    preprocessor=None,
    tokenizer=None,
    lora_rank=None,
    layerwise_lr_decay=None,
    class_names=None,
    load_weights=True,
    compile=True,
    name=None,
):
    """Builds a fine-tunable model from a pre-trained text backbone.

    Every argument is checked before any weights load: a bad preset, head,
    `num_classes` or freeze spec fails in about a second.

    Args:
        preset: a named offline preset (`"minilm_l6"`, see
            `keras_kd.presets.list_presets()`), a keras-hub preset name, a
            local keras-hub preset folder, a local HuggingFace-format folder,
            or a keras-hub `Backbone` object (then pass `tokenizer` or
            `preprocessor` for string inputs).
        head: `"classification"` (logits), `"multilabel"` (sigmoid),
            `"regression"`, `"token_classification"` (logits per token), a
            Keras layer, or a dict of these for a multi-task model.
        num_classes: the number of classes (an int, or a dict keyed like
            `head`). Regression defaults to one output; with `class_names`,
            their number.
        freeze: `"none"`, `"all"` (feature extraction), `"embeddings"`, an
            integer `n` (embeddings plus the first `n` transformer layers),
            a list of layer names, or a regular expression matching whole
            layer names.
        pooling: `"mean"` (mean of the non-padding token features, as
            sentence-transformers checkpoints such as MiniLM were trained)
            or `"cls"` (the backbone's pooled [CLS] output, as BERT; the
            first token's features for backbones without a pooler, such
            as RoBERTa and DistilBERT, as their keras-hub classifiers).
        dropout: dropout rate of the heads made from a kind.
        sequence_length: tokens per example for string inputs.
        preprocessor: a keras-hub `TextClassifierPreprocessor` to use
            instead of the preset's.
        tokenizer: a keras-hub tokenizer to build the preprocessor from
            (for example a trimmed one from `trim_vocabulary`).
        lora_rank: LoRA rank; only the adapters and heads then train.
        layerwise_lr_decay: per-layer learning-rate factor, see
            `layerwise_lr_decay`.
        class_names: the names of the classes, in the order of the outputs,
            saved with the model (see `FinetuneModel`).
        load_weights: load the pre-trained weights (`False`: random init).
        compile: compile with defaults (`jit_compile=True`).
        name: the model name.

    Returns:
        A compiled `FinetuneModel`.

    Example:

    A named preset loads its weights, e.g. `build_finetune_model(
    "minilm_l6", num_classes=2, freeze="embeddings")`. Here, a tiny
    backbone object with its tokenizer:

    >>> import keras_hub
    >>> from keras_kd.transfer import build_finetune_model
    >>> tokenizer = keras_hub.models.BertTokenizer(vocabulary=[
    ...     "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "fine", "film"])
    >>> backbone = keras_hub.models.BertBackbone(
    ...     vocabulary_size=8, num_layers=2, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=8)
    >>> model = build_finetune_model(
    ...     backbone, num_classes=2, freeze="embeddings", tokenizer=tokenizer,
    ...     sequence_length=8)
    >>> model.predict(["a fine film", "a film"], verbose=0).shape
    (2, 2)
    >>> build_finetune_model(backbone, num_classes=2, freeze=3)
    Traceback (most recent call last):
    ...
    ValueError: freeze=3 asks to freeze the embeddings and the first 3 transformer layers, but the backbone has 2. Pass an integer in [0, 2], or freeze="all".
    """
    check_class_names(class_names, num_classes)
    if num_classes is None and class_names is not None:
        num_classes = len(class_names)
    check_arguments(
        head, num_classes, pooling, freeze, lora_rank, layerwise_lr_decay, dropout
    )
    check_sequence_length(sequence_length)
    if isinstance(preset, keras_hub.models.Backbone):
        backbone = preset
        resolve_freeze(freeze, backbone, extra_names=head_names(head))
        if preprocessor is None and tokenizer is not None:
            _check_positions(
                sequence_length, getattr(backbone, "max_sequence_length", None),
                f"the {type(backbone).__name__}",
            )
            preprocessor = _preprocessor_class(backbone)(
                tokenizer, sequence_length=sequence_length
            )
    else:
        check_finetune_preset(preset, freeze, sequence_length, head, download=True)
        preset = resolve_preset(preset)
        backbone = keras_hub.models.Backbone.from_preset(
            preset, load_weights=load_weights
        )
        if preprocessor is None:
            if tokenizer is not None:
                preprocessor = _preprocessor_class(backbone)(
                    tokenizer, sequence_length=sequence_length
                )
            else:
                preprocessor = keras_hub.models.TextClassifierPreprocessor.from_preset(
                    preset, sequence_length=sequence_length
                )
    kwargs = {} if name is None else {"name": name}
    return FinetuneModel(
        backbone,
        make_heads(head, num_classes, dropout),
        preprocessor=preprocessor,
        pooling=pooling,
        freeze=freeze,
        lora_rank=lora_rank,
        layerwise_lr_decay=layerwise_lr_decay,
        class_names=class_names,
        compile=compile,
        **kwargs,
    )
