"""`AttentionRelationLoss`: MiniLM-v2's multi-head self-attention relation
transfer (Wang et al., 2021), between one teacher layer and the student's
last layer."""

import math
import types

import keras
from keras import ops

from keras_kd.distillation.feature_loss import FeatureLoss
from keras_kd.utils.validation import check_int

RELATIONS = ("query", "key", "value")
# A finite stand-in for -inf on padded keys: exp() of it is exactly 0 in
# float32, and no `inf - inf` can give a NaN.
_MASKED = -1e9


def _attention(block):
    """The `keras.layers.MultiHeadAttention` of a keras-hub
    `TransformerEncoder` (BERT's family), or a ValueError."""
    attention = getattr(block, "_self_attention_layer", None)
    if not all(
        hasattr(attention, name) for name in ("_query_dense", "_key_dense", "_value_dense")
    ) or not hasattr(block, "normalize_first"):
        raise ValueError(
            "AttentionRelationLoss reads the query, key and value projections "
            "of keras-hub `TransformerEncoder` layers (BERT, RoBERTa, "
            f"DistilBERT, ...). Received a {type(block).__name__} "
            f"({block.name!r}). Use HiddenStateLoss for this model."
        )
    return attention


def attention_vectors(block, inputs):
    """The query, key and value vectors of a keras-hub `TransformerEncoder`'s
    self-attention for the layer's `inputs`, each `(batch, sequence,
    heads * head_dim)`: its attention's own projections, applied to its
    input (after the attention layer norm when `normalize_first`; BERT
    normalizes after, so the attention sees the layer's input).

    Returns:
        A dict `{"query", "key", "value"}`.
    """
    attention = _attention(block)
    if block.normalize_first:
        inputs = block._self_attention_layer_norm(inputs)
    vectors = {}
    for relation, dense in zip(
        RELATIONS,
        (attention._query_dense, attention._key_dense, attention._value_dense),
    ):
        projected = dense(inputs)  # (batch, sequence, heads, head_dim)
        shape = ops.shape(projected)
        vectors[relation] = ops.reshape(
            projected, (shape[0], shape[1], shape[2] * shape[3])
        )
    return vectors


def relation_log_probs(vectors, num_heads, padding_mask):
    """Log self-relations of `vectors` split into `num_heads` relation heads:
    `log_softmax(v_h v_h^T / sqrt(d))` over the keys the padding mask keeps,
    `d = width / num_heads`, in float32.

    Args:
        vectors: `(batch, sequence, width)`.
        num_heads: int dividing `width`.
        padding_mask: `(batch, sequence)`, nonzero for kept tokens.

    Returns:
        `(batch, num_heads, sequence, sequence)`: queries by keys.

    Example:

    >>> import numpy as np
    >>> log_p = relation_log_probs(np.ones((1, 3, 4), "float32"), 2,
    ...                            np.array([[1, 1, 0]]))
    >>> np.exp(log_p[0, 0, 0]).round(3).tolist()
    [0.5, 0.5, 0.0]
    """
    vectors = ops.cast(vectors, "float32")
    shape = ops.shape(vectors)
    head_dim = vectors.shape[-1] // num_heads
    heads = ops.reshape(vectors, (shape[0], shape[1], num_heads, head_dim))
    heads = ops.transpose(heads, (0, 2, 1, 3))
    scores = ops.einsum("bhqd,bhkd->bhqk", heads, heads) / math.sqrt(head_dim)
    keys = ops.cast(padding_mask, "bool")[:, None, None, :]
    return ops.log_softmax(ops.where(keys, scores, _MASKED), axis=-1)


def relation_kl(teacher_log_probs, student_log_probs, padding_mask):
    """`KL(teacher relation || student relation)` per query token, summed
    over the kept keys and averaged over the relation heads: `(batch,
    sequence)` float32."""
    keys = ops.cast(padding_mask, "bool")[:, None, None, :]
    terms = ops.exp(teacher_log_probs) * (teacher_log_probs - student_log_probs)
    return ops.mean(ops.sum(ops.where(keys, terms, 0.0), axis=-1), axis=1)


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


@keras.saving.register_keras_serializable(package="keras_kd")
class AttentionRelationLoss(FeatureLoss):
    """MiniLM-v2 attention-relation transfer: the student's last layer learns
    the self-attention relations of one teacher layer.

    For each of the query, key and value vectors of a layer's self-attention
    (its attention's projections applied to the layer's input), the
    relation is `softmax(v_h v_h^T / sqrt(d))` over the keys, after the
    vectors (all attention heads, concatenated) are re-split into
    `num_relation_heads` heads of width `d`: teacher and student may have
    different head counts and widths, as long as the relation head count
    divides both widths. The loss per query token is `KL(teacher relation
    || student relation)` over the keys the padding mask keeps, from
    `log_softmax` in float32, averaged over the relation heads and summed
    over the three relations (MiniLM-v2's query-query, key-key and
    value-value); the distiller averages it over the kept query tokens. It
    has no weights. It reads keras-hub `TransformerEncoder` layers (BERT's
    family).

    Args:
        teacher_layer: the teacher's transformer layer (0-based; negative:
            from the top). Defaults to the last (MiniLM-v2 takes an upper
            middle layer of large teachers).
        num_relation_heads: int, or None for the teacher's attention head
            count.
        weight: float >= 0, the term's weight in the distiller's loss.
        name: the name the term is logged under.
        **kwargs: other `keras.layers.Layer` arguments.

    Example:

    >>> import keras_hub, numpy as np
    >>> def bert(layers, width, heads):
    ...     return keras_hub.models.BertBackbone(
    ...         vocabulary_size=10, num_layers=layers, num_heads=heads,
    ...         hidden_dim=width, intermediate_dim=16, max_sequence_length=8)
    >>> teacher, student = bert(4, 8, 4), bert(2, 4, 1)
    >>> loss = AttentionRelationLoss(teacher_layer=2, num_relation_heads=2)
    >>> loss.bind(teacher.transformer_layers, student.transformer_layers)
    (['input_2'], ['input_1'])
    >>> mask = np.ones((1, 3), "float32")
    >>> targets = loss.teacher_targets({"input_2": np.ones((1, 3, 8), "float32")}, mask)
    >>> value = loss.call(targets, {"input_1": np.ones((1, 3, 4), "float32")}, mask)
    >>> tuple(value.shape)
    (1, 3)
    """

    def __init__(
        self,
        teacher_layer=-1,
        num_relation_heads=None,
        weight=1.0,
        name="attention_relation_loss",
        **kwargs,
    ):
        super().__init__(weight=weight, name=name, **kwargs)
        if isinstance(teacher_layer, bool) or not isinstance(teacher_layer, int):
            raise ValueError(
                "`teacher_layer` must be an int, a 0-based transformer layer "
                f"index (negative: from the top), e.g. -1. Received: "
                f"teacher_layer={teacher_layer!r}"
            )
        self.teacher_layer = teacher_layer
        self.num_relation_heads = check_int(
            "num_relation_heads", num_relation_heads, allow_none=True, example=12
        )
        self.heads = None
        # Not attributes of their own: the layer would track the blocks'
        # weights as its own, and the distiller would save them twice.
        self._bound = types.SimpleNamespace(blocks=None, keys=None)

    def bind(self, teacher_blocks, student_blocks):
        depth = len(teacher_blocks)
        if not -depth <= self.teacher_layer < depth:
            raise ValueError(
                f"teacher_layer={self.teacher_layer}, but the teacher has "
                f"{depth} transformer layers (indices 0 to {depth - 1}, or "
                f"-{depth} to -1). Pass an index in that range."
            )
        teacher_index = self.teacher_layer % depth
        student_index = len(student_blocks) - 1
        blocks = (teacher_blocks[teacher_index], student_blocks[student_index])
        teacher_attention, student_attention = (_attention(b) for b in blocks)
        widths = [a.num_heads * a.key_dim for a in (teacher_attention, student_attention)]
        heads = self.num_relation_heads or teacher_attention.num_heads
        if any(width % heads for width in widths):
            common = _divisors(math.gcd(*widths))
            raise ValueError(
                f"{heads} relation heads must divide the query/key/value "
                f"widths of the teacher ({widths[0]}) and of the student "
                f"({widths[1]}). Pass `num_relation_heads=` one of {common}."
            )
        self.heads = heads
        keys = (f"input_{teacher_index}", f"input_{student_index}")
        self._bound = types.SimpleNamespace(blocks=blocks, keys=keys)
        self.built = True
        return [keys[0]], [keys[1]]

    def _log_probs(self, block, inputs, padding_mask):
        return {
            relation: relation_log_probs(vectors, self.heads, padding_mask)
            for relation, vectors in attention_vectors(block, inputs).items()
        }

    def teacher_targets(self, features, padding_mask):
        block, key = self._bound.blocks[0], self._bound.keys[0]
        return self._log_probs(block, features[key], padding_mask)

    def call(self, teacher_targets, student_features, padding_mask):
        block, key = self._bound.blocks[1], self._bound.keys[1]
        student = self._log_probs(block, student_features[key], padding_mask)
        return sum(
            relation_kl(teacher_targets[r], student[r], padding_mask) for r in RELATIONS
        )

    def get_config(self):
        return {
            **super().get_config(),
            "teacher_layer": self.teacher_layer,
            "num_relation_heads": self.num_relation_heads,
        }
