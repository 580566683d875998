"""Transfer learning: fine-tuning models built on keras-hub text backbones.

`build_finetune_model` loads a backbone (a keras-hub preset, a local
keras-hub or HuggingFace folder, or a named offline preset of
`keras_kd.presets`), freezes the requested layers, adds task heads and
returns a `FinetuneModel` that fits, evaluates and predicts on raw strings.
`GradualUnfreezing` and `layerwise_lr_decay` implement the ULMFiT and
ELECTRA fine-tuning schedules; `build_student` and `trim_vocabulary` (from
`keras_kd.student`) shrink a backbone for distillation.
"""

import re

import keras
import keras_hub
import numpy as np
import tensorflow as tf

from keras_kd import heads as kd_heads
from keras_kd._backend import require_tensorflow_backend
from keras_kd.presets import resolve_preset
from keras_kd.student import build_student  # noqa: F401 (public here too)
from keras_kd.student import trim_vocabulary  # noqa: F401 (public here too)

FREEZE_KEYWORDS = ("none", "all", "embeddings")
POOLINGS = ("cls", "mean")


# ---------------------------------------------------------------------------
# Layer groups and freeze specs.


def backbone_layer_groups(backbone):
    """Splits a backbone's layers into embeddings, transformer layers, rest.

    Args:
        backbone: a keras-hub encoder backbone with a `transformer_layers`
            attribute (the BERT family: BERT, RoBERTa, DistilBERT, ...).

    Returns:
        A tuple `(embeddings, transformer_layers, others)` of lists of
        layers: the layers before the first transformer layer, the
        transformer layers from bottom to top, and the layers after them
        (BERT's `pooled_dense`). Input layers are left out.

    Example:

    ```python
    import keras_hub, keras_kd
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=8,
        intermediate_dim=16)
    [len(g) for g in keras_kd.transfer.backbone_layer_groups(backbone)]
    # [6, 2, 1]
    ```
    """
    blocks = list(getattr(backbone, "transformer_layers", None) or [])
    if not blocks:
        raise ValueError(
            "keras-kd fine-tunes keras-hub encoder backbones that list their "
            "blocks in `transformer_layers` (BERT, RoBERTa, DistilBERT, ...). "
            f"Received a {type(backbone).__name__} without them."
        )
    layers = [
        layer
        for layer in backbone.layers
        if not isinstance(layer, keras.layers.InputLayer)
    ]
    block_ids = {id(block) for block in blocks}
    positions = [i for i, layer in enumerate(layers) if id(layer) in block_ids]
    embeddings = layers[: positions[0]]
    others = [
        layer
        for layer in layers[positions[0] :]
        if id(layer) not in block_ids
    ]
    return embeddings, blocks, others


def resolve_freeze(freeze, backbone, extra_names=()):
    """Returns the names of the layers that a freeze spec freezes.

    Args:
        freeze: `"none"`; `"all"` (the whole backbone: feature extraction);
            `"embeddings"`; an integer `n` (the embeddings plus the first `n`
            transformer layers); a list of layer names; or a regular
            expression (string or compiled) that must match whole layer
            names.
        backbone: the backbone whose layers the spec refers to.
        extra_names: further layer names (the heads) a list or regular
            expression may name.

    Returns:
        A list of layer names, in the backbone's order.

    Example:

    ```python
    import keras_hub, keras_kd
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=8,
        intermediate_dim=16)
    keras_kd.transfer.resolve_freeze(1, backbone)[-2:]
    # ['embeddings_dropout', 'transformer_layer_0']
    ```
    """
    embeddings, blocks, others = backbone_layer_groups(backbone)
    backbone_names = [layer.name for layer in embeddings + blocks + others]
    all_names = backbone_names + [n for n in extra_names if n not in backbone_names]
    if isinstance(freeze, str) and freeze in FREEZE_KEYWORDS:
        if freeze == "none":
            return []
        if freeze == "all":
            return backbone_names
        return [layer.name for layer in embeddings]
    if isinstance(freeze, int) and not isinstance(freeze, bool):
        if not 0 <= freeze <= len(blocks):
            raise ValueError(
                f"freeze={freeze} asks to freeze the embeddings and the first "
                f"{freeze} transformer layers, but the backbone has "
                f"{len(blocks)}. Pass an integer in [0, {len(blocks)}], or "
                'freeze="all".'
            )
        return [layer.name for layer in embeddings + blocks[:freeze]]
    if isinstance(freeze, (list, tuple)):
        if not freeze:
            raise ValueError(
                "freeze=[] names no layer. Pass freeze=\"none\" to train "
                f"every layer, or some of these layer names: {all_names}"
            )
        unknown = [name for name in freeze if name not in all_names]
        if unknown:
            raise ValueError(
                f"freeze names layers that do not exist: {unknown}. Valid "
                f"layer names: {all_names}"
            )
        return [name for name in all_names if name in set(freeze)]
    if isinstance(freeze, (str, re.Pattern)):
        try:
            pattern = re.compile(freeze)
        except re.error as error:
            raise ValueError(
                f"freeze={freeze!r} is not one of {FREEZE_KEYWORDS}, an "
                f"integer, a list of names, or a valid regular expression "
                f"({error})."
            ) from error
        matched = [name for name in all_names if pattern.fullmatch(name)]
        if not matched:
            raise ValueError(
                f"The regular expression freeze={pattern.pattern!r} matches "
                f"no layer name (it must match whole names). Valid layer "
                f"names: {all_names}"
            )
        return matched
    raise TypeError(
        f"freeze must be one of {FREEZE_KEYWORDS}, an integer, a list of "
        "layer names, or a regular expression. Received: "
        f"freeze={freeze!r} of type {type(freeze).__name__}"
    )


# ---------------------------------------------------------------------------
# The model.


def _head_names(head):
    return list(head) if isinstance(head, dict) else ["logits"]


def _check_head_arguments(head, num_classes, pooling):
    if pooling not in POOLINGS:
        raise ValueError(
            f"Unknown pooling={pooling!r}. Expected one of {POOLINGS}: the "
            "[CLS] token through the backbone's pooler, or the mean of the "
            "non-padding token features."
        )
    # Builds and discards the heads, so that a bad kind or num_classes
    # fails before any weights load.
    _make_heads(head, num_classes, dropout=0.0)


def _make_heads(head, num_classes, dropout):
    specs = head if isinstance(head, dict) else {"logits": head}
    if not specs:
        raise ValueError("head={} names no head. Pass at least one head.")
    made = {}
    for name, spec in specs.items():
        if not isinstance(spec, (str, keras.layers.Layer)):
            raise TypeError(
                f"Head {name!r} must be one of {kd_heads.HEAD_KINDS} or a "
                f"Keras layer. Received: {spec!r} of type {type(spec).__name__}"
            )
        classes = (
            num_classes.get(name) if isinstance(num_classes, dict) else num_classes
        )
        made[name] = kd_heads.get_head(spec, classes, dropout=dropout, name=name)
    return made


def _apply_head(name, head, features, hidden_dim):
    try:
        return head(features)
    except Exception as error:
        raise ValueError(
            f"Head {name!r} ({type(head).__name__}) does not accept the "
            f"backbone's output: it receives features of shape "
            f"{(None,) * (len(features.shape) - 1) + (hidden_dim,)} "
            f"({'one vector per token' if len(features.shape) == 3 else 'one pooled vector per example'}"
            f"), and failed with: {error}. Make its input size "
            f"{hidden_dim}, or set `per_token = True` on a layer that reads "
            "every token."
        ) from error


@keras.saving.register_keras_serializable(package="keras_kd")
class FinetuneModel(keras_hub.models.Task):
    """A text backbone with one or more task heads, fine-tuned end to end.

    `fit`, `evaluate` and `predict` take raw strings when a `preprocessor`
    is attached (like `keras_hub.models.TextClassifier`); calling the model
    takes the backbone's token-id inputs (`token_ids`, `padding_mask`,
    `segment_ids` for BERT). `token_id_model` is the same network without
    the preprocessor, for the `Distiller` and TFLite export.

    Use `build_finetune_model` to create one from a preset.

    Args:
        backbone: a keras-hub encoder backbone.
        heads: a dict mapping output names to head layers; with one head
            the model has one output, with several a dict of outputs.
        preprocessor: a keras-hub `TextClassifierPreprocessor`, or `None`.
        pooling: `"cls"` (the backbone's pooled [CLS] output, as
            keras-hub's `BertTextClassifier`) or `"mean"` (the mean of the
            token features over non-padding tokens).
        freeze: a freeze spec, see `resolve_freeze`.
        lora_rank: if set, LoRA adapters of this rank on the attention
            query and value projections train while the backbone is frozen.
        layerwise_lr_decay: if set (in (0, 1]), `compile` scales each
            layer's learning rate so that lower layers learn slower, see
            `layerwise_lr_decay`.
        compile: whether to compile with the defaults at construction.
        **kwargs: standard `keras.Model` arguments such as `name`.

    Example:

    ```python
    import keras_hub, keras_kd
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=8,
        intermediate_dim=16)
    model = keras_kd.transfer.FinetuneModel(
        backbone, {"logits": keras_kd.heads.Head("classification", 3)})
    model.output.shape
    # (None, 3)
    ```
    """

    backbone_cls = keras_hub.models.Backbone

    def __init__(
        self,
        backbone,
        heads,
        preprocessor=None,
        pooling="mean",
        freeze="none",
        lora_rank=None,
        layerwise_lr_decay=None,
        compile=True,
        **kwargs,
    ):
        require_tensorflow_backend()
        _check_head_arguments(heads, None, pooling)
        _check_lora(lora_rank, freeze)
        _check_decay(layerwise_lr_decay)
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.heads = dict(heads)
        self.pooling = pooling
        self.freeze_spec = freeze
        self.lora_rank = lora_rank
        self.layerwise_lr_decay = layerwise_lr_decay
        frozen = resolve_freeze(freeze, backbone, extra_names=list(self.heads))
        inputs = backbone.input
        features = backbone(inputs)
        sequence = features["sequence_output"]
        uses_pooler = False
        outputs = {}
        for name, head in self.heads.items():
            if kd_heads.head_is_per_token(head):
                head_input = sequence
            elif pooling == "mean":
                head_input = keras.layers.GlobalAveragePooling1D(
                    name=f"{name}_mean_pooling"
                )(sequence, mask=keras.ops.cast(inputs["padding_mask"], "bool"))
            else:
                uses_pooler = uses_pooler or "pooled_output" in features
                head_input = features.get("pooled_output", sequence[:, 0, :])
            outputs[name] = _apply_head(
                name, head, head_input, backbone.hidden_dim
            )
        if len(outputs) == 1:
            outputs = next(iter(outputs.values()))
        super().__init__(inputs=inputs, outputs=outputs, compile=False, **kwargs)
        # An unused pooler gets no gradient; freezing it keeps it out of the
        # optimizer and out of the trainable parameter count.
        self.unused_layers = [
            layer.name
            for layer in backbone.layers
            if layer.name == "pooled_dense" and not uses_pooler
        ]
        # Every layer is set, not only the frozen ones, so that a backbone
        # shared with an earlier model gets exactly this spec.
        for name, layer in _model_layers(self):
            layer.trainable = name not in frozen and name not in self.unused_layers
        if lora_rank is not None:
            backbone.enable_lora(lora_rank)
            for name in self.unused_layers:
                backbone.get_layer(name).trainable = False
        self.frozen_layers = frozen
        self._token_id_model = None
        if compile:
            self.compile()

    @property
    def token_id_model(self):
        """The network on token ids, sharing weights, with no preprocessor."""
        if self._token_id_model is None:
            self._token_id_model = keras.Model(
                inputs=self.input, outputs=self.output, name=f"{self.name}_token_ids"
            )
        return self._token_id_model

    def fit(
        self,
        x=None,
        y=None,
        batch_size=None,
        epochs=1,
        verbose="auto",
        callbacks=None,
        validation_split=0.0,
        validation_data=None,
        shuffle=True,
        class_weight=None,
        sample_weight=None,
        **kwargs,
    ):
        """`keras.Model.fit`, shuffling in-memory data every epoch.

        keras-hub batches in-memory inputs (a list of strings, arrays, a dict
        of token arrays) into a dataset and then ignores `shuffle`; here they
        are shuffled each epoch, as Keras does for a plain model. Datasets,
        generators and paired-segment tuples pass through unchanged.
        """
        size = _num_examples(x)
        if size and shuffle and not validation_split:
            data = tuple(v for v in (x, y, sample_weight) if v is not None)
            x = (
                tf.data.Dataset.from_tensor_slices(data)
                .shuffle(size, reshuffle_each_iteration=True)
                .batch(batch_size or 32)
            )
            y = sample_weight = batch_size = None
        return super().fit(
            x,
            y,
            batch_size=batch_size,
            epochs=epochs,
            verbose=verbose,
            callbacks=callbacks,
            validation_split=validation_split,
            validation_data=validation_data,
            shuffle=shuffle,
            class_weight=class_weight,
            sample_weight=sample_weight,
            **kwargs,
        )

    def trim_vocabulary(self, corpus, keep_tokens=(), keep_characters=True):
        """Returns a copy whose vocabulary keeps only what `corpus` uses.

        See `keras_kd.student.trim_vocabulary`; the heads are copied with
        their weights, so predictions on `corpus` do not change.

        Args:
            corpus: an iterable of strings.
            keep_tokens: further tokens to keep.
            keep_characters: keep the single-character pieces, so words
                absent from `corpus` do not become `[UNK]`.

        Returns:
            A new, compiled `FinetuneModel` with a trimmed backbone and a
            preprocessor using the trimmed tokenizer.
        """
        if self.preprocessor is None:
            raise ValueError(
                "trim_vocabulary needs the model's tokenizer, but this model "
                "has no preprocessor. Call keras_kd.transfer.trim_vocabulary("
                "backbone, tokenizer, corpus) instead."
            )
        if self.lora_rank is not None:
            raise ValueError(
                "trim_vocabulary copies plain backbone weights; merge or drop "
                "the LoRA adapters first (this model has lora_rank="
                f"{self.lora_rank})."
            )
        backbone, tokenizer = trim_vocabulary(
            self.backbone, self.preprocessor.tokenizer, corpus, keep_tokens,
            keep_characters,
        )
        preprocessor = type(self.preprocessor).from_config(
            {**self.preprocessor.get_config(), "tokenizer": tokenizer}
        )
        return self._with_backbone(
            backbone, preprocessor, freeze=self.freeze_spec, name=self.name
        )

    def _with_backbone(self, backbone, preprocessor, freeze, name):
        """A model like this one on `backbone`, heads copied with weights."""
        heads = {
            head_name: type(head).from_config(head.get_config())
            for head_name, head in self.heads.items()
        }
        model = FinetuneModel(
            backbone,
            heads,
            preprocessor=preprocessor,
            pooling=self.pooling,
            freeze=freeze,
            layerwise_lr_decay=self.layerwise_lr_decay,
            name=name,
        )
        for head_name, head in self.heads.items():
            model.heads[head_name].set_weights(head.get_weights())
        return model

    def _default_learning_rate(self):
        # Training only heads or adapters needs a larger step than moving a
        # whole pre-trained backbone, which 5e-5 (BERT's recipe) suits.
        backbone_trains = any(
            w.trainable for w in self.backbone.weights
        ) and self.lora_rank is None
        return 5e-5 if backbone_trains else 1e-3

    def compile(
        self,
        optimizer="auto",
        loss="auto",
        *,
        metrics="auto",
        jit_compile=True,
        **kwargs,
    ):
        """Configures training, with defaults that fit the heads.

        Args:
            optimizer: `"auto"` (Adam, learning rate 5e-5 when backbone
                weights train, 1e-3 when only heads or LoRA adapters do), or
                any Keras optimizer. With `layerwise_lr_decay` set, it is
                wrapped by `layerwise_lr_decay`.
            loss: `"auto"` (cross-entropy from logits for classification,
                binary cross-entropy for multilabel, mean squared error for
                regression; a dict for several heads), or any Keras loss.
            metrics: `"auto"` (accuracy, binary accuracy or mean absolute
                error per head), or any Keras metrics.
            jit_compile: XLA-compile training. Defaults to `True`, unlike
                Keras's `"auto"`, which turns XLA off on CPU where it trains
                BERT about 3x faster.
            **kwargs: further `keras.Model.compile` arguments.
        """
        if optimizer == "auto":
            optimizer = keras.optimizers.Adam(self._default_learning_rate())
        else:
            optimizer = keras.optimizers.get(optimizer)
        if self.layerwise_lr_decay is not None:
            optimizer = layerwise_lr_decay(optimizer, self, self.layerwise_lr_decay)
        single = len(self.heads) == 1
        if loss == "auto":
            # A custom head has no known loss; Keras then asks for `loss=`
            # when training starts, while predict() still works.
            loss = {
                n: h.default_loss() if hasattr(h, "default_loss") else None
                for n, h in self.heads.items()
            }
            loss = next(iter(loss.values())) if single else loss
        if metrics == "auto":
            metrics = {
                n: h.default_metrics() if hasattr(h, "default_metrics") else []
                for n, h in self.heads.items()
            }
            metrics = next(iter(metrics.values())) if single else metrics
        super().compile(
            optimizer=optimizer,
            loss=loss,
            metrics=metrics,
            jit_compile=jit_compile,
            **kwargs,
        )

    def get_compile_config(self):
        config = super().get_compile_config()
        if config and isinstance(self.optimizer, tuple(_DECAYED_CLASSES.values())):
            # Saved as the plain optimizer; compile() re-applies the decay.
            plain = _undecayed_class(self.optimizer).from_config(
                self.optimizer.get_config()
            )
            config["optimizer"] = keras.saving.serialize_keras_object(plain)
        return config

    def compile_from_config(self, config):
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "heads": {
                    name: keras.saving.serialize_keras_object(head)
                    for name, head in self.heads.items()
                },
                "pooling": self.pooling,
                "freeze": self.freeze_spec,
                "lora_rank": self.lora_rank,
                "layerwise_lr_decay": self.layerwise_lr_decay,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["heads"] = {
            name: keras.saving.deserialize_keras_object(head)
            for name, head in config["heads"].items()
        }
        return super().from_config(config)


def _num_examples(x):
    """The number of examples of in-memory inputs, else None."""
    if isinstance(x, list) and x and all(isinstance(t, str) for t in x):
        return len(x)
    if isinstance(x, np.ndarray):
        return len(x)
    if isinstance(x, dict) and x and all(isinstance(v, np.ndarray) for v in x.values()):
        return len(next(iter(x.values())))
    return None


def _check_lora(lora_rank, freeze):
    if lora_rank is None:
        return
    if isinstance(lora_rank, bool) or not isinstance(lora_rank, int) or lora_rank < 1:
        raise ValueError(
            "`lora_rank` must be a positive integer (typical: 4 to 16), or "
            f"None for no LoRA. Received: lora_rank={lora_rank!r}"
        )
    if freeze not in ("none", "all"):
        raise ValueError(
            "With `lora_rank`, the backbone is frozen except its LoRA "
            f"adapters, so freeze={freeze!r} has no effect. Pass "
            'freeze="none" (or "all").'
        )


def _check_decay(decay):
    if decay is None:
        return
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 < decay <= 1:
        raise ValueError(
            "`layerwise_lr_decay` must be a number in (0, 1] (typical: 0.8 "
            f"to 0.95), or None. Received: layerwise_lr_decay={decay!r}"
        )


def _preprocessor_class(backbone):
    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    for cls in subclasses(keras_hub.models.TextClassifierPreprocessor):
        if getattr(cls, "backbone_cls", None) is type(backbone):
            return cls
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
            `head`). Regression defaults to one output.
        freeze: `"none"`, `"all"` (feature extraction), `"embeddings"`, an
            integer `n` (embeddings plus the first `n` transformer layers),
            a list of layer names, or a regular expression matching whole
            layer names.
        pooling: `"mean"` (mean of the non-padding token features, as
            sentence-transformers checkpoints such as MiniLM were trained)
            or `"cls"` (the backbone's pooled [CLS] output, as BERT).
        dropout: dropout rate of the heads made from a kind.
        sequence_length: tokens per example for string inputs.
        preprocessor: a keras-hub `TextClassifierPreprocessor` to use
            instead of the preset's.
        tokenizer: a keras-hub tokenizer to build the preprocessor from
            (for example a trimmed one from `trim_vocabulary`).
        lora_rank: LoRA rank; only the adapters and heads then train.
        layerwise_lr_decay: per-layer learning-rate factor, see
            `layerwise_lr_decay`.
        load_weights: load the pre-trained weights (`False`: random init).
        compile: compile with defaults (`jit_compile=True`).
        name: the model name.

    Returns:
        A compiled `FinetuneModel`.

    Example:

    ```python
    import keras_kd
    model = keras_kd.transfer.build_finetune_model(
        "minilm_l6", num_classes=2, freeze="embeddings", sequence_length=32)
    model.predict(["a gripping, funny film", "dull and far too long"],
                  verbose=0).shape
    # (2, 2)
    ```
    """
    _check_head_arguments(head, num_classes, pooling)
    _check_lora(lora_rank, freeze)
    _check_decay(layerwise_lr_decay)
    if isinstance(preset, keras_hub.models.Backbone):
        backbone = preset
        resolve_freeze(freeze, backbone, extra_names=_head_names(head))
        if preprocessor is None and tokenizer is not None:
            preprocessor = _preprocessor_class(backbone)(
                tokenizer, sequence_length=sequence_length
            )
    else:
        preset = resolve_preset(preset)
        # Checking the freeze spec against the architecture alone costs a
        # random init, far less than reading and converting the weights.
        skeleton = keras_hub.models.Backbone.from_preset(preset, load_weights=False)
        resolve_freeze(freeze, skeleton, extra_names=_head_names(head))
        del skeleton
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
        _make_heads(head, num_classes, dropout),
        preprocessor=preprocessor,
        pooling=pooling,
        freeze=freeze,
        lora_rank=lora_rank,
        layerwise_lr_decay=layerwise_lr_decay,
        compile=compile,
        **kwargs,
    )


def student_like(teacher, num_layers=None, *, freeze="none", name=None, **kwargs):
    """Returns a smaller `FinetuneModel` made from a fine-tuned teacher.

    The student's backbone comes from `build_student(teacher.backbone,
    num_layers, **kwargs)` (by default every other teacher layer, ending at
    the top one); it keeps the teacher's preprocessor, pooling and heads,
    with the heads' weights copied as a starting point.

    Args:
        teacher: a `FinetuneModel`.
        num_layers: transformer layers of the student (default: half).
        freeze: the student's freeze spec.
        name: the student's name (default: `"<teacher name>_student"`).
        **kwargs: further `build_student` arguments (`layer_map`,
            `hidden_dim`, `num_heads`, `intermediate_dim`, `init`).

    Returns:
        A compiled `FinetuneModel`.

    Example:

    ```python
    import keras_hub, keras_kd
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=100, num_layers=4, num_heads=2, hidden_dim=8,
        intermediate_dim=16)
    teacher = keras_kd.transfer.build_finetune_model(backbone, num_classes=2)
    keras_kd.transfer.student_like(teacher).backbone.num_layers
    # 2
    ```
    """
    if not isinstance(teacher, FinetuneModel):
        raise TypeError(
            "student_like needs a FinetuneModel teacher (from "
            "build_finetune_model); for a bare backbone use build_student. "
            f"Received: {type(teacher).__name__}"
        )
    backbone = build_student(teacher.backbone, num_layers, **kwargs)
    return teacher._with_backbone(
        backbone,
        teacher.preprocessor,
        freeze=freeze,
        name=name or f"{teacher.name}_student",
    )


# ---------------------------------------------------------------------------
# Inspection.


def _model_layers(model):
    """`(name, layer)` rows: backbone layers, then everything else."""
    backbone = getattr(model, "backbone", None)
    rows = []
    if backbone is not None:
        rows += [
            (layer.name, layer)
            for layer in backbone.layers
            if not isinstance(layer, keras.layers.InputLayer)
        ]
    rows += [
        (layer.name, layer)
        for layer in model.layers
        if layer is not backbone
        and layer is not getattr(model, "preprocessor", None)
        and not isinstance(layer, keras.layers.InputLayer)
        and layer.weights
    ]
    return rows


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

    ```python
    import keras_hub, keras_kd
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=8,
        intermediate_dim=16)
    model = keras_kd.transfer.build_finetune_model(
        backbone, num_classes=2, freeze="all")
    keras_kd.transfer.trainable_summary(model, print_fn=None)["trainable"]
    # ['logits']
    ```
    """
    summary = {"trainable": [], "frozen": [], "partial": []}
    lines = [f"{'layer':<28}{'status':<11}{'trainable':>12}{'frozen':>12}"]
    total_trainable = total_frozen = 0
    for name, layer in _model_layers(model):
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


# ---------------------------------------------------------------------------
# Schedules.


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


def layerwise_lr_decay(optimizer, model, decay):
    """Returns a copy of `optimizer` in which lower layers learn slower.

    The learning rate of a variable at depth `d` (embeddings 0, transformer
    layer `i` at `i + 1`, heads and pooler at `num_layers + 1`) is multiplied
    by `decay ** (num_layers + 1 - d)`, as in ELECTRA and BEiT fine-tuning.
    Keras has no per-variable learning rate, so the copy is an instance of a
    subclass of the optimizer's class that scales the rate in `update_step`.

    Args:
        optimizer: an unbuilt Keras optimizer (its config is copied).
        model: a `FinetuneModel` (or a model with a `backbone` attribute).
        decay: the factor per layer, in (0, 1].

    Returns:
        The new optimizer; `optimizer.lr_factors` maps variable paths to
        their factors.

    Example:

    ```python
    import keras, keras_hub, keras_kd
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=8,
        intermediate_dim=16)
    model = keras_kd.transfer.build_finetune_model(backbone, num_classes=2)
    opt = keras_kd.transfer.layerwise_lr_decay(
        keras.optimizers.Adam(1e-4), model, 0.5)
    opt.lr_factors["transformer_layer_0/self_attention_layer/query/kernel"]
    # 0.25
    ```
    """
    _check_decay(decay)
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

    ```python
    import numpy as np, keras_hub, keras_kd
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=8,
        intermediate_dim=16)
    model = keras_kd.transfer.build_finetune_model(backbone, num_classes=2)
    x = {"token_ids": np.ones((4, 6), "int32"),
         "padding_mask": np.ones((4, 6), "int32"),
         "segment_ids": np.zeros((4, 6), "int32")}
    callback = keras_kd.transfer.GradualUnfreezing()
    model.fit(x, np.array([0, 1, 0, 1]), epochs=2, verbose=0,
              callbacks=[callback])
    callback.history[1]
    # ['transformer_layer_1']
    ```
    """

    def __init__(self, epochs_per_layer=1, stop_at="embeddings", verbose=False):
        super().__init__()
        if isinstance(epochs_per_layer, bool) or not isinstance(epochs_per_layer, int) or epochs_per_layer < 1:
            raise ValueError(
                "`epochs_per_layer` must be a positive integer. Received: "
                f"epochs_per_layer={epochs_per_layer!r}"
            )
        if stop_at != "embeddings" and (
            isinstance(stop_at, bool) or not isinstance(stop_at, int) or stop_at < 0
        ):
            raise ValueError(
                '`stop_at` must be "embeddings" or the index of a transformer '
                f"layer (an integer >= 0). Received: stop_at={stop_at!r}"
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
