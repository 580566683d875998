"""`FinetuneModel`: a text backbone with task heads, fine-tuned end to end.

The keras-hub `Task` that `build_finetune_model` returns: it applies a
freeze spec, optional LoRA and layer-wise learning-rate decay, compiles
with defaults that fit its heads, fits on raw strings, and saves and loads
as a `.keras` file. `check_arguments` holds the checks it shares with
`build_finetune_model`.
"""

import keras
import keras_hub
import numpy as np
import tensorflow as tf

from keras_kd._backend import require_tensorflow_backend
from keras_kd.transfer.freezing import model_layers
from keras_kd.transfer.freezing import resolve_freeze
from keras_kd.transfer.heads import head_is_per_token
from keras_kd.transfer.heads import make_heads
from keras_kd.transfer.schedules import layerwise_lr_decay
from keras_kd.transfer.schedules import without_layerwise_decay
from keras_kd.transfer.vocabulary import trim_vocabulary
from keras_kd.utils.validation import check_choice
from keras_kd.utils.validation import check_int
from keras_kd.utils.compile_config import compile_saved, with_optimizer_state
from keras_kd.utils.multi_worker import MultiWorkerFit
from keras_kd.utils.multi_worker import MultiWorkerModel
from keras_kd.utils.validation import check_number

POOLINGS = ("cls", "mean")


def check_class_names(class_names, num_classes=None):
    """Checks `class_names` (None, or distinct non-empty strings, one per
    class) against `num_classes` when that is an int.

    Example:

    >>> check_class_names(["negative", "positive"], 3)
    Traceback (most recent call last):
    ...
    ValueError: class_names=['negative', 'positive'] names 2 classes, but num_classes=3. Pass one name per class, in the order of the model's outputs.
    """
    if class_names is None:
        return
    if not isinstance(class_names, (list, tuple)) or not all(
        isinstance(n, str) and n for n in class_names
    ):
        raise TypeError(
            f"class_names={class_names!r} must be a list of non-empty strings, "
            'one per class, e.g. ["negative", "positive"].'
        )
    names = list(class_names)
    if len(set(names)) != len(names):
        raise ValueError(
            f"class_names={names!r} repeats a name. Pass distinct names, one "
            "per class."
        )
    if isinstance(num_classes, int) and num_classes != len(names):
        raise ValueError(
            f"class_names={names!r} names {len(names)} classes, but "
            f"num_classes={num_classes}. Pass one name per class, in the order "
            "of the model's outputs."
        )


def check_arguments(
    head, num_classes, pooling, freeze, lora_rank, layerwise_lr_decay, dropout=0.0
):
    """Checks the arguments that `FinetuneModel` and `build_finetune_model`
    share, before any weights load (the freeze spec needs the backbone and
    is checked by `resolve_freeze`)."""
    check_choice("pooling", pooling, POOLINGS)
    # Builds and discards the heads, so that a bad kind, num_classes or
    # dropout fails before any weights load.
    make_heads(head, num_classes, dropout)
    if lora_rank is not None:
        check_int("lora_rank", lora_rank, allow_none=True, example="8 (typical: 4 to 16)")
        if freeze not in ("none", "all"):
            raise ValueError(
                "With `lora_rank`, the backbone is frozen except its LoRA "
                f"adapters, so freeze={freeze!r} has no effect. Pass "
                'freeze="none" (or "all").'
            )
    if layerwise_lr_decay is not None:
        check_number(
            "layerwise_lr_decay",
            layerwise_lr_decay,
            0,
            1,
            low_open=True,
            example="0.9 (typical: 0.8 to 0.95), or None",
        )


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
class FinetuneModel(MultiWorkerFit, keras_hub.models.Task):
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
        class_names: the names of the classes of the model's one output,
            in its order, or None. Saved with the model: `keras-kd
            evaluate`, `export` and `distill` read the data's labels by
            these names, so data labelled otherwise is refused, not
            miscounted.
        compile: whether to compile with the defaults at construction.
        **kwargs: standard `keras.Model` arguments such as `name`.

    Example:

    >>> import keras_hub
    >>> from keras_kd.transfer import FinetuneModel, Head
    >>> backbone = keras_hub.models.BertBackbone(
    ...     vocabulary_size=10, num_layers=2, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=8)
    >>> model = FinetuneModel(
    ...     backbone, {"logits": Head("classification", 3)}, freeze="embeddings")
    >>> tuple(model.output.shape)
    (None, 3)
    >>> model.frozen_layers[:2], model.unused_layers
    (['token_embedding', 'position_embedding'], ['pooled_dense'])
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
        class_names=None,
        compile=True,
        **kwargs,
    ):
        require_tensorflow_backend()
        check_arguments(heads, None, pooling, freeze, lora_rank, layerwise_lr_decay)
        check_class_names(class_names)
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
        if not isinstance(features, dict):
            # RoBERTa, DistilBERT, DeBERTa and others return their token
            # features alone, without a pooler.
            features = {"sequence_output": features}
        sequence = features["sequence_output"]
        uses_pooler = False
        outputs = {}
        for name, head in self.heads.items():
            if head_is_per_token(head):
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
        if class_names is not None:
            width = None if isinstance(outputs, dict) else outputs.shape[-1]
            if width != len(class_names):
                raise ValueError(
                    f"class_names={list(class_names)!r} names "
                    f"{len(class_names)} classes, but the model's output has "
                    f"{width} (several heads have none). Pass one name per "
                    "class of its one output, or class_names=None."
                )
            class_names = list(class_names)
        self.class_names = class_names
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
        for name, layer in model_layers(self):
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
        """The network on token ids, sharing weights, with no preprocessor
        (a `MultiWorkerModel`: it trains under any `tf.distribute`
        strategy)."""
        if self._token_id_model is None:
            self._token_id_model = MultiWorkerModel(
                inputs=self.input, outputs=self.output, name=f"{self.name}_token_ids"
            )
        # Exports name its outputs by them and refuse labels in another
        # order, as for this model.
        names = getattr(self, "class_names", None)
        self._token_id_model.class_names = None if names is None else tuple(names)
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
        generators and paired-segment tuples pass through unchanged (in
        their own order: Keras cannot shuffle them, and is not asked to).
        In-memory data holds out `validation_split` of its examples drawn at
        random (seed 0: the same ones at every call) rather than Keras's last
        ones, which in a file sorted by label are all of one class; the rest
        are shuffled every epoch. Texts whose tokens are over 10% the
        tokenizer's unknown token (a script its vocabulary lacks) are
        warned of (`keras_kd.datasets.unknown_token_share`). Labels of
        another rank than the last `fit`'s (`(n,)`, then `(n, 1)`) get a
        new step (`new_step_for_new_ranks`), where Keras fails.
        """
        from keras_kd.datasets.tokenization import warn_of_unknown_tokens
        from keras_kd.distillation.inputs import (
            check_same_length,
            new_step_for_new_ranks,
        )

        check_same_length(x, y, sample_weight)
        if self.preprocessor is not None:
            warn_of_unknown_tokens(self.preprocessor.tokenizer, x)
        x, y = self._checked_data(x, y)
        validation_data, _ = self._checked_data(validation_data, None)
        size = _num_examples(x)
        if validation_split and size and validation_data is None:
            from keras_kd.datasets.splitting import hold_out

            (x, y, sample_weight), validation_data = hold_out(
                (x, y, sample_weight), validation_split
            )
            size = _num_examples(x)
            validation_split = 0.0
        if size and shuffle and not validation_split:
            data = tuple(v for v in (x, y, sample_weight) if v is not None)
            x = (
                tf.data.Dataset.from_tensor_slices(data)
                .shuffle(size, reshuffle_each_iteration=True)
                .batch(batch_size or 32)
            )
            # Shuffled above; Keras would warn that it cannot shuffle a dataset.
            y = sample_weight = batch_size = None
            shuffle = False
        else:
            from keras_kd.distillation.inputs import no_keras_shuffle

            # A dataset or generator comes in its maker's order; Keras
            # ignores `shuffle` for it, with a warning on every `fit`.
            settings = {}
            no_keras_shuffle(x, settings)
            shuffle = settings.get("shuffle", shuffle)
        x = new_step_for_new_ranks(self, "train_function", x, y, sample_weight)
        if validation_data is not None:
            validation_data = new_step_for_new_ranks(self, "test_function", validation_data)
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

    def evaluate(self, x=None, y=None, **kwargs):
        """`keras.Model.evaluate`, with the checks of `fit`: texts that are
        strings, and class and token ids in range (in a dataset, batch by
        batch), where Keras would score an out-of-range class id as a NaN
        loss and XLA would read a token id past the vocabulary as its last."""
        from keras_kd.distillation.inputs import new_step_for_new_ranks

        x, y = self._checked_data(x, y)
        x = new_step_for_new_ranks(self, "test_function", x, y, kwargs.get("sample_weight"))
        return super().evaluate(x, y, **kwargs)

    def predict(self, x, **kwargs):
        """`keras.Model.predict`; one string, and an empty list of texts,
        are refused with that said (keras-hub fails deep in its graph on an
        empty one)."""
        if isinstance(x, str) or (isinstance(x, (list, tuple)) and not x):
            from keras_kd.utils.validation import check_texts

            check_texts("x", x)
        return super().predict(x, **kwargs)

    def _checked_data(self, x, y):
        """`(x, y)` with a list of texts checked (`check_texts`), and token
        ids (`x["token_ids"]`) and, for a model with one classification
        head, class ids checked: in-memory ones at once, a dataset's batch
        by batch as read (`with_checked_batches`). A generator or a
        `PyDataset` becomes a `tf.data.Dataset` (`batches_as_dataset`),
        which keras-hub's `fit` takes. A
        one-head model's labels keyed by the head's name, as Keras keys a
        multi-output model's, are taken out of their dict."""
        from keras_kd.distillation.inputs import (
            batches_as_dataset,
            one_output_name,
            single_output_labels,
            vocabulary_size,
            with_checked_batches,
        )
        from keras_kd.utils.validation import check_texts

        if isinstance(x, list) and any(isinstance(text, str) for text in x):
            check_texts("x", x)
        x = batches_as_dataset(x)
        num_classes = self._class_ids_checked()
        output_name = one_output_name(self)
        if output_name is not None:
            y = single_output_labels(y, output_name)
        self._check_label_form(y, num_classes)
        return with_checked_batches(
            x,
            y,
            num_classes=num_classes,
            vocabulary_size=vocabulary_size([self.backbone]),
            output_name=output_name,
        )

    def _class_ids_checked(self):
        """The classes of the model's one classification head, whose labels
        are class ids (Keras would train on an out-of-range id, a NaN loss
        under XLA); None for other heads."""
        heads = list(self.heads.values())
        if len(heads) == 1 and getattr(heads[0], "kind", None) == "classification":
            return heads[0].num_classes
        return None

    def _check_label_form(self, y, num_classes):
        """In-memory labels of a classification head are ids, not names or
        one-hot rows (Keras fails on those deep in the graph); their range
        is `with_checked_batches`'s check."""
        if y is None or isinstance(y, dict) or num_classes is None:
            return
        labels = np.asarray(y)
        if labels.dtype.kind in "USO":
            raise ValueError(
                f"Labels must be class ids 0 to {num_classes - 1} for this "
                f"model's {num_classes} classes; received {str(labels.flat[0])!r} "
                f"({labels.dtype}). Map names to ids in the order of "
                "`class_names` (`keras_kd.datasets.load` does: `data.train.labels`)."
            )
        if labels.ndim == 2 and labels.shape[1] == num_classes:
            raise ValueError(
                f"The labels have shape {labels.shape}, one row of "
                f"{num_classes} values per example (one-hot?); this model's "
                f"classification head trains on class ids, shape "
                f"({labels.shape[0]},). Pass `labels.argmax(axis=-1)`."
            )

    def trim_vocabulary(self, corpus, keep_tokens=(), keep_characters=True):
        """Returns a copy whose vocabulary keeps only what `corpus` uses.

        See `keras_kd.transfer.trim_vocabulary`; the heads are copied with
        their weights, so predictions on `corpus` do not change.

        Args:
            corpus: an iterable of strings.
            keep_tokens: further tokens to keep.
            keep_characters: keep the single-character pieces, so words
                absent from `corpus` do not become `[UNK]`.

        Returns:
            A new, compiled `FinetuneModel` with a trimmed backbone and a
            preprocessor using the trimmed tokenizer; LoRA adapters are
            merged into the kernels they adapt, so it has none.
        """
        if self.preprocessor is None:
            raise ValueError(
                "trim_vocabulary needs the model's tokenizer, but this model "
                "has no preprocessor. Call keras_kd.transfer.trim_vocabulary("
                "backbone, tokenizer, corpus) instead."
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
        """A model like this one on `backbone`, heads copied with their
        weights where the shapes allow (a narrower backbone gets new
        heads)."""
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
            class_names=self.class_names,
            name=name,
        )
        for head_name, head in self.heads.items():
            copy = model.heads[head_name]
            if [w.shape for w in copy.weights] == [w.shape for w in head.weights]:
                copy.set_weights(head.get_weights())
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
                Keras's `"auto"`, which turns XLA off on CPU (where
                `bench/distiller_step.py` measured a BERT student's step
                1.28x faster with XLA on one 2-core machine, 0.94x on
                another).
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
        plain = without_layerwise_decay(self.optimizer) if config else None
        if plain is not None and plain is not self.optimizer:
            # Saved as the plain optimizer; compile() re-applies the decay.
            config["optimizer"] = keras.saving.serialize_keras_object(plain)
        # The pipeline trains the token-id model: this optimizer never steps.
        return with_optimizer_state(self, config)

    def compile_from_config(self, config):
        # Files saved before the flag existed held built optimizers.
        compile_saved(self, config, built_if_unknown=True)

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
                "class_names": self.class_names,
                # Built uncompiled: loading compiles it from its saved
                # compile config, and a model saved uncompiled stays so
                # (compiled, it would expect optimizer state the file lacks).
                "compile": False,
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
