"""`FeatureLoss`: the base class of the losses between a teacher's and a
student's intermediate layers, and `FeatureMatching`, which the `Distiller`
uses to run them.

A feature loss is a `keras.layers.Layer`: it holds what it learns with the
student (`HiddenStateLoss`'s projections), which the distiller trains and
saves, and not the student, so the exported student is unchanged. It is
configured with layer indices only; `Distiller.compile` binds it to the
teacher's and the student's transformer layers (`bind`), which resolves
the indices and builds the projections.
"""

import keras
from keras import ops

from keras_kd.distillation.feature_extractor import feature_extractor
from keras_kd.distillation.feature_extractor import find_backbone
from keras_kd.utils.validation import check_number


class FeatureLoss(keras.layers.Layer):
    """Base class of the losses between teacher and student intermediate
    layers.

    Subclasses implement `bind`, which returns the feature keys (see
    `keras_kd.distillation.feature_extractor`) they read from each model,
    and `call`, which returns one value per token in float32;
    `teacher_targets` may prepare the teacher's side before the gradient
    tape opens.

    Args:
        weight: float >= 0, the weight of the term in the distiller's loss
            (not scaled by `alpha`).
        name: the name the term is logged under.
        **kwargs: other `keras.layers.Layer` arguments.
    """

    def __init__(self, weight=1.0, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.weight = check_number(
            "weight", weight, 0,
            example="1.0; the weight of this feature loss in the total loss",
        )

    def bind(self, teacher_blocks, student_blocks):
        """Resolves the layers against the two models' transformer layers
        and builds what the loss learns.

        Args:
            teacher_blocks: the teacher backbone's transformer layers.
            student_blocks: the student backbone's transformer layers.

        Returns:
            `(teacher_keys, student_keys)`: the feature keys read.
        """
        raise NotImplementedError

    def teacher_targets(self, features, padding_mask):
        """What `call` compares the student with, from the teacher's
        features (run before the gradient tape). Defaults to the features."""
        return features

    def call(self, teacher_targets, student_features, padding_mask):
        """Returns the loss per token, `(batch, sequence)` float32."""
        raise NotImplementedError

    def get_config(self):
        return {**super().get_config(), "weight": self.weight}


def check_feature_losses(feature_losses, num_teachers):
    """`Distiller.compile`'s `feature_losses` as a list, checked.

    Example:

    >>> check_feature_losses(None, num_teachers=2)
    []
    >>> check_feature_losses(["mse"], num_teachers=1)
    Traceback (most recent call last):
    ...
    TypeError: `feature_losses` must be a list of `keras_kd.distillation.FeatureLoss` (HiddenStateLoss, AttentionRelationLoss). Received: 'mse'
    >>> from keras_kd.distillation import HiddenStateLoss
    >>> check_feature_losses(HiddenStateLoss(), num_teachers=1)
    Traceback (most recent call last):
    ...
    TypeError: `feature_losses` is a list: pass feature_losses=[loss]. Received one HiddenStateLoss.
    """
    if isinstance(feature_losses, FeatureLoss):
        # One loss was iterated: "'HiddenStateLoss' object is not iterable".
        raise TypeError(
            "`feature_losses` is a list: pass feature_losses=[loss]. "
            f"Received one {type(feature_losses).__name__}."
        )
    feature_losses = list(feature_losses or [])
    for loss in feature_losses:
        if not isinstance(loss, FeatureLoss):
            raise TypeError(
                "`feature_losses` must be a list of "
                "`keras_kd.distillation.FeatureLoss` (HiddenStateLoss, "
                f"AttentionRelationLoss). Received: {loss!r}"
            )
    if feature_losses and num_teachers > 1:
        raise ValueError(
            "Feature losses compare one teacher's layers with the student's, "
            f"but this distiller has {num_teachers} teachers. Distill from "
            "several teachers' logits alone, or from one teacher with "
            "feature losses."
        )
    return feature_losses


def cached_teacher_error(feature_losses):
    """The error of a `TeacherCache` batch met with feature losses."""
    return ValueError(
        "The batches carry cached teacher logits (a `TeacherCache`), but "
        f"the feature losses {[loss.name for loss in feature_losses]} compare "
        "the teacher's intermediate layers, which the cache does not hold. "
        "Train on the uncached `(x, y)` data with the live teacher, or "
        "compile without `feature_losses`."
    )


def _padding_mask(x, like):
    """The inputs' `padding_mask` as float32 `(batch, sequence)`, or ones."""
    mask = x.get("padding_mask") if isinstance(x, dict) else None
    if mask is None:
        return ops.ones(ops.shape(like)[:2], dtype="float32")
    return ops.cast(mask, "float32")


def _per_position(values, mask, position_rank):
    """Per-token values at the positions of the distiller's other terms: per
    example (the mean over the tokens the mask keeps) for a classifier,
    per token for a sequence model."""
    if position_rank == 2:
        return values
    return ops.divide_no_nan(ops.sum(values * mask, axis=1), ops.sum(mask, axis=1))


class FeatureMatching:
    """The feature losses of a `Distiller`, bound to its teacher and student:
    one extractor per model (built once, the teacher's run before the
    gradient tape, the student's in place of the student), and the loss
    terms they give.

    Args:
        losses: a list of `FeatureLoss`, bound here.
        teacher: the teacher model.
        student: the student model.

    Raises:
        ValueError: two losses share a name, or a model is not on a
            keras-hub backbone.
    """

    def __init__(self, losses, teacher, student):
        names = [loss.name for loss in losses]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(
                f"Feature losses are logged by name, and {repeated} is used "
                "twice. Pass a distinct `name=` to each feature loss."
            )
        teacher_blocks = find_backbone(teacher).transformer_layers
        student_blocks = find_backbone(student).transformer_layers
        teacher_keys, student_keys = set(), set()
        for loss in losses:
            t_keys, s_keys = loss.bind(teacher_blocks, student_blocks)
            teacher_keys.update(t_keys)
            student_keys.update(s_keys)
        self.losses = list(losses)
        self.teacher = feature_extractor(teacher, sorted(teacher_keys))
        self.student = feature_extractor(student, sorted(student_keys))

    def teacher_outputs(self, x):
        """`(teacher_logits, targets)`: the teacher's logits and each loss's
        targets, from one teacher forward pass, without gradients."""
        out = self.teacher(x, training=False)
        features = keras.tree.map_structure(ops.stop_gradient, out["features"])
        some = next(iter(features.values()))
        mask = _padding_mask(x, some)
        targets = {
            loss.name: keras.tree.map_structure(
                ops.stop_gradient, loss.teacher_targets(features, mask)
            )
            for loss in self.losses
        }
        return ops.stop_gradient(out["logits"]), targets

    def terms(self, x, targets, student_features, position_rank):
        """`{name: per-position values}` of each loss, at the positions of
        the distiller's other terms (`position_rank` 1: examples, 2: tokens),
        and `{name: weight}`."""
        some = next(iter(student_features.values()))
        mask = _padding_mask(x, some)
        terms = {
            loss.name: _per_position(
                ops.cast(loss.call(targets[loss.name], student_features, mask), "float32"),
                mask,
                position_rank,
            )
            for loss in self.losses
        }
        return terms, {loss.name: loss.weight for loss in self.losses}
