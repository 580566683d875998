import numpy as np
import pytest
from keras import ops

from keras_kd.distillation import AttentionRelationLoss
from keras_kd.distillation.attention_relation_loss import attention_vectors
from keras_kd.distillation.feature_extractor import feature_extractor
from keras_kd.utils.testing import tiny_bert_classifier, tiny_bert_inputs


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _numpy_relations(vectors, heads, mask):
    b, t, w = vectors.shape
    d = w // heads
    v = vectors.reshape(b, t, heads, d).transpose(0, 2, 1, 3).astype("float64")
    scores = v @ v.transpose(0, 1, 3, 2) / np.sqrt(d)
    scores = np.where(mask[:, None, None, :] > 0, scores, -np.inf)
    return _log_softmax(scores)


def _numpy_kl(teacher, student, mask):
    p = np.exp(teacher)
    with np.errstate(invalid="ignore"):  # -inf - -inf on masked keys
        terms = np.where(mask[:, None, None, :] > 0, p * (teacher - student), 0.0)
    return terms.sum(-1).mean(1)


def test_relation_kl_matches_numpy_with_different_head_counts_and_widths():
    teacher_model = tiny_bert_classifier(num_layers=3, hidden_dim=8, num_heads=4, seed=0)
    student_model = tiny_bert_classifier(num_layers=2, hidden_dim=4, num_heads=1, seed=1)
    loss = AttentionRelationLoss(teacher_layer=1, num_relation_heads=2)
    teacher_keys, student_keys = loss.bind(
        teacher_model.backbone.transformer_layers, student_model.backbone.transformer_layers
    )
    assert (teacher_keys, student_keys) == (["input_1"], ["input_1"])
    rng = np.random.default_rng(0)
    t_in = rng.normal(size=(3, 5, 8)).astype("float32")
    s_in = rng.normal(size=(3, 5, 4)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], "float32")
    targets = loss.teacher_targets({"input_1": t_in}, mask)
    value = np.asarray(loss.call(targets, {"input_1": s_in}, mask))
    t_vec = attention_vectors(teacher_model.backbone.transformer_layers[1], t_in)
    s_vec = attention_vectors(student_model.backbone.transformer_layers[1], s_in)
    expected = sum(
        _numpy_kl(
            _numpy_relations(np.asarray(t_vec[r]), 2, mask),
            _numpy_relations(np.asarray(s_vec[r]), 2, mask),
            mask,
        )
        for r in ("query", "key", "value")
    )
    np.testing.assert_allclose(value, expected, rtol=1e-4, atol=1e-6)
    assert value.shape == (3, 5) and np.all(value > 0)


def test_identical_models_give_zero():
    model = tiny_bert_classifier(num_layers=2, hidden_dim=8, num_heads=2)
    blocks = model.backbone.transformer_layers
    loss = AttentionRelationLoss()
    loss.bind(blocks, blocks)
    x = np.random.default_rng(0).normal(size=(2, 4, 8)).astype("float32")
    mask = np.ones((2, 4), "float32")
    value = loss.call(loss.teacher_targets({"input_1": x}, mask), {"input_1": x}, mask)
    np.testing.assert_allclose(np.asarray(value), 0.0, atol=1e-6)


def test_query_key_value_reproduce_keras_hubs_attention_output():
    """softmax(Q K^T / sqrt(d)) V per head, through the attention's output
    projection, is the attention layer's own output on the layer's input."""
    model = tiny_bert_classifier(num_layers=2, hidden_dim=8, num_heads=2)
    block = model.backbone.transformer_layers[1]
    x = tiny_bert_inputs(batch_size=2, length=6, padded=2)
    layer_input = feature_extractor(model, ["input_1"])(x)["features"]["input_1"]
    mask = x["padding_mask"]
    vectors = attention_vectors(block, layer_input)
    attention = block._self_attention_layer
    heads, head_dim = attention.num_heads, attention.key_dim

    def split(v):
        return np.asarray(v).reshape(2, 6, heads, head_dim).transpose(0, 2, 1, 3)

    q, k, v = (split(vectors[r]) for r in ("query", "key", "value"))
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(head_dim)
    scores = np.where(mask[:, None, None, :] > 0, scores, -np.inf)
    context = np.exp(_log_softmax(scores)) @ v  # (batch, heads, query, head_dim)
    ours = attention._output_dense(ops.convert_to_tensor(context.transpose(0, 2, 1, 3)))
    # Keras-hub's encoder masks the padded keys, as the relations do.
    attention_mask = np.broadcast_to(mask[:, None, :], (2, 6, 6)).astype(bool)
    theirs = attention(layer_input, layer_input, attention_mask=attention_mask)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), atol=1e-5)


def test_relation_heads_must_divide_both_widths():
    teacher = tiny_bert_classifier(num_layers=1, hidden_dim=8, num_heads=4).backbone
    student = tiny_bert_classifier(num_layers=1, hidden_dim=6, num_heads=2).backbone
    with pytest.raises(ValueError, match=r"4 relation heads .* Pass `num_relation_heads=` one of \[1, 2\]"):
        AttentionRelationLoss().bind(teacher.transformer_layers, student.transformer_layers)
    with pytest.raises(ValueError, match="teacher_layer=5"):
        AttentionRelationLoss(teacher_layer=5).bind(
            teacher.transformer_layers, teacher.transformer_layers
        )
    with pytest.raises(ValueError, match="teacher_layer=1.5"):
        AttentionRelationLoss(teacher_layer=1.5)
