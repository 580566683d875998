"""`HiddenStateLoss`: the student's hidden states after chosen transformer
layers (and its embeddings) pulled towards the teacher's, through a learned
projection when the widths differ (TinyBERT's hidden-state and embedding
losses)."""

import keras
from keras import ops

from keras_kd.distillation.feature_extractor import feature_tensor
from keras_kd.distillation.feature_loss import FeatureLoss
from keras_kd.transfer.student import evenly_spaced_layers
from keras_kd.utils.validation import check_choice

LOSSES = ("mse", "cosine")


def _is_index(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_layer_map(layer_map):
    """`layer_map` as a dict of ints (a config's list of pairs included)."""
    pairs = list(layer_map.items()) if isinstance(layer_map, dict) else layer_map
    try:
        pairs = [(s, t) for s, t in pairs]
    except (TypeError, ValueError):
        pairs = None
    if not pairs or not all(_is_index(s) and _is_index(t) for s, t in pairs):
        raise ValueError(
            "`layer_map` must be a non-empty dict {student_layer: "
            "teacher_layer} of transformer layer indices (0-based, negative "
            f"from the top), e.g. {{0: 2, 1: 5}}, or None. Received: "
            f"layer_map={layer_map!r}"
        )
    return dict(pairs)


def _resolve(index, depth, role, layer_map):
    if not -depth <= index < depth:
        raise ValueError(
            f"layer_map={layer_map} names {role} layer {index}, but the "
            f"{role} has {depth} transformer layers (indices 0 to "
            f"{depth - 1}, or -{depth} to -1). Pass indices in that range."
        )
    return index % depth


@keras.saving.register_keras_serializable(package="keras_kd")
class HiddenStateLoss(FeatureLoss):
    """Loss between the hidden states of mapped student and teacher layers.

    For each pair `(s, t)` of `layer_map`, the output of the student's
    transformer layer `s` is compared with the output of the teacher's
    layer `t` at every token; with `embeddings=True`, the embeddings (the
    input of the first transformer layer) as well. When the widths differ,
    the student's states first go through a learned linear projection
    (`keras.layers.Dense` to the teacher's width, one per pair), which
    trains with the student and is held by this loss, and so by the
    distiller, not by the student: the exported student is unchanged. The
    value per token is the mean over the pairs; the distiller averages it
    over the tokens the padding mask keeps.

    The default `layer_map` maps student layer `i` of `S` to teacher layer
    `round((i + 1) * T / S) - 1` of `T` (evenly spaced, the student's last
    layer on the teacher's last; `transfer.build_student`'s default copy):
    2 of 6 layers give `{0: 2, 1: 5}`. It needs `S <= T`.

    Args:
        layer_map: dict `{student_layer: teacher_layer}` of 0-based
            transformer layer indices (negative: from the top), or None for
            the default.
        loss: `"mse"` (mean squared error over the hidden dimension) or
            `"cosine"` (1 - cosine similarity).
        embeddings: also compare the embeddings.
        weight: float >= 0, the term's weight in the distiller's loss.
        name: the name the term is logged under.
        **kwargs: other `keras.layers.Layer` arguments.

    Example:

    >>> import keras_hub, numpy as np
    >>> def bert(layers, width):
    ...     return keras_hub.models.BertBackbone(
    ...         vocabulary_size=10, num_layers=layers, num_heads=2,
    ...         hidden_dim=width, intermediate_dim=16, max_sequence_length=8)
    >>> teacher, student = bert(6, 8), bert(2, 4)
    >>> loss = HiddenStateLoss(loss="mse")
    >>> loss.bind(teacher.transformer_layers, student.transformer_layers)
    (['output_2', 'output_5'], ['output_0', 'output_1'])
    >>> loss.resolved_map, sorted(loss.projections)
    ({0: 2, 1: 5}, ['output_0', 'output_1'])
    >>> features = {k: np.ones((1, 3, 8), "float32") for k in ["output_2", "output_5"]}
    >>> student_features = {k: np.ones((1, 3, 4), "float32") for k in ["output_0", "output_1"]}
    >>> tuple(loss.call(features, student_features, np.ones((1, 3))).shape)
    (1, 3)
    """

    def __init__(
        self,
        layer_map=None,
        loss="mse",
        embeddings=False,
        weight=1.0,
        name="hidden_state_loss",
        **kwargs,
    ):
        super().__init__(weight=weight, name=name, **kwargs)
        self.layer_map = None if layer_map is None else _check_layer_map(layer_map)
        self.loss = check_choice("loss", loss, LOSSES)
        if not isinstance(embeddings, bool):
            raise ValueError(
                "`embeddings` must be True or False. Received: "
                f"embeddings={embeddings!r}"
            )
        self.embeddings = embeddings
        self.resolved_map = None
        self.pairs = []
        self.projections = {}

    def bind(self, teacher_blocks, student_blocks):
        t_depth, s_depth = len(teacher_blocks), len(student_blocks)
        if self.layer_map is None:
            if s_depth > t_depth:
                raise ValueError(
                    f"The default layer_map maps each of the student's "
                    f"{s_depth} layers to a distinct teacher layer, but the "
                    f"teacher has {t_depth}. Pass `layer_map=` explicitly."
                )
            layer_map = dict(enumerate(evenly_spaced_layers(t_depth, s_depth)))
        else:
            layer_map = self.layer_map
        self.resolved_map = {
            _resolve(s, s_depth, "student", layer_map): _resolve(
                t, t_depth, "teacher", layer_map
            )
            for s, t in layer_map.items()
        }
        self.pairs = [("input_0", "input_0")] if self.embeddings else []
        self.pairs += [
            (f"output_{s}", f"output_{t}") for s, t in sorted(self.resolved_map.items())
        ]
        self.projections = {}
        for s_key, t_key in self.pairs:
            s_width = feature_tensor(student_blocks, s_key).shape[-1]
            t_width = feature_tensor(teacher_blocks, t_key).shape[-1]
            if s_width != t_width:
                projection = keras.layers.Dense(
                    t_width, dtype="float32", name=f"{self.name}_projection_{s_key}"
                )
                projection.build((None, None, s_width))
                self.projections[s_key] = projection
        self.built = True
        return [t for _, t in self.pairs], [s for s, _ in self.pairs]

    def teacher_targets(self, features, padding_mask):
        return {t: ops.cast(features[t], "float32") for _, t in self.pairs}

    def call(self, teacher_targets, student_features, padding_mask):
        values = []
        for s_key, t_key in self.pairs:
            student = ops.cast(student_features[s_key], "float32")
            if s_key in self.projections:
                student = self.projections[s_key](student)
            teacher = ops.cast(teacher_targets[t_key], "float32")
            if self.loss == "mse":
                values.append(ops.mean(ops.square(student - teacher), axis=-1))
            else:
                cosine = ops.sum(_unit(student) * _unit(teacher), axis=-1)
                values.append(1.0 - cosine)
        return ops.mean(ops.stack(values), axis=0)

    def get_config(self):
        layer_map = None if self.layer_map is None else sorted(self.layer_map.items())
        return {
            **super().get_config(),
            "layer_map": layer_map,
            "loss": self.loss,
            "embeddings": self.embeddings,
        }


def _unit(vectors):
    """`vectors` scaled to unit length on the last axis."""
    # The epsilon keeps the gradient finite at a zero vector.
    return vectors / ops.sqrt(
        ops.sum(ops.square(vectors), axis=-1, keepdims=True) + 1e-12
    )
