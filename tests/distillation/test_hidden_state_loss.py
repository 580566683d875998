import keras
import numpy as np
import pytest

from keras_kd.distillation import HiddenStateLoss
from keras_kd.utils.testing import tiny_bert_classifier


def _blocks(num_layers, hidden_dim):
    return tiny_bert_classifier(num_layers, hidden_dim).backbone.transformer_layers


@pytest.mark.parametrize(
    "student_depth, teacher_depth, expected",
    [(2, 6, {0: 2, 1: 5}), (3, 6, {0: 1, 1: 3, 2: 5}), (1, 4, {0: 3}), (4, 4, {0: 0, 1: 1, 2: 2, 3: 3})],
)
def test_default_layer_map_is_evenly_spaced_ending_on_the_last_layer(
    student_depth, teacher_depth, expected
):
    loss = HiddenStateLoss()
    loss.bind(_blocks(teacher_depth, 8), _blocks(student_depth, 8))
    assert loss.resolved_map == expected
    reference = {
        i: round((i + 1) * teacher_depth / student_depth) - 1 for i in range(student_depth)
    }
    assert loss.resolved_map == reference


def _numpy_loss(kind, student, teacher, kernel, bias):
    projected = student @ kernel + bias
    if kind == "mse":
        return ((projected - teacher) ** 2).mean(-1)
    unit = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)  # noqa: E731
    return 1.0 - (unit(projected) * unit(teacher)).sum(-1)


@pytest.mark.parametrize("kind", ["mse", "cosine"])
def test_values_with_projection_match_numpy(kind):
    loss = HiddenStateLoss(layer_map={0: 1, -1: -1}, loss=kind, embeddings=True)
    teacher_keys, student_keys = loss.bind(_blocks(3, 8), _blocks(2, 4))
    assert teacher_keys == ["input_0", "output_1", "output_2"]
    assert student_keys == ["input_0", "output_0", "output_1"]
    rng = np.random.default_rng(0)
    teacher = {k: rng.normal(size=(2, 5, 8)).astype("float32") for k in teacher_keys}
    student = {k: rng.normal(size=(2, 5, 4)).astype("float32") for k in student_keys}
    for projection in loss.projections.values():
        projection.set_weights(
            [rng.normal(size=(4, 8)).astype("float32"), rng.normal(size=8).astype("float32")]
        )
    value = loss.call(loss.teacher_targets(teacher, None), student, None)
    expected = np.mean(
        [
            _numpy_loss(kind, student[s], teacher[t], *loss.projections[s].get_weights())
            for s, t in zip(student_keys, teacher_keys)
        ],
        axis=0,
    )
    np.testing.assert_allclose(np.asarray(value), expected, rtol=1e-5, atol=1e-6)


def test_equal_widths_need_no_projection():
    loss = HiddenStateLoss()
    loss.bind(_blocks(2, 8), _blocks(1, 8))
    assert loss.projections == {} and loss.trainable_weights == []
    same = {"output_0": np.ones((1, 2, 8), "float32"), "output_1": np.ones((1, 2, 8), "float32")}
    assert np.allclose(loss.call(same, same, None), 0.0)


def test_config_round_trip_keeps_the_layer_map():
    loss = HiddenStateLoss(layer_map={0: 2, 1: 5}, loss="cosine", embeddings=True, weight=0.3, name="hs")
    config = keras.saving.serialize_keras_object(loss)
    restored = keras.saving.deserialize_keras_object(
        __import__("json").loads(__import__("json").dumps(config))
    )
    assert isinstance(restored, HiddenStateLoss)
    assert (restored.layer_map, restored.loss, restored.embeddings, restored.weight, restored.name) == (
        {0: 2, 1: 5}, "cosine", True, 0.3, "hs"
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"layer_map": {0: "2"}}, "layer_map={0: '2'}"),
        ({"layer_map": {}}, "layer_map={}"),
        ({"loss": "l1"}, "loss='l1'"),
        ({"weight": -1.0}, "weight=-1.0"),
        ({"embeddings": "yes"}, "embeddings='yes'"),
    ],
)
def test_bad_arguments_name_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("{", r"\{").replace("}", r"\}")):
        HiddenStateLoss(**kwargs)


def test_layer_indices_out_of_range_are_refused_at_bind():
    with pytest.raises(ValueError, match="teacher layer 6, but the teacher has 3"):
        HiddenStateLoss(layer_map={0: 6}).bind(_blocks(3, 8), _blocks(1, 8))
    with pytest.raises(ValueError, match="Pass `layer_map=` explicitly"):
        HiddenStateLoss().bind(_blocks(1, 8), _blocks(2, 8))
