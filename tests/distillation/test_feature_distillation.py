"""The Distiller with feature losses, on tiny keras-hub BERT classifiers."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_kd
from keras_kd.distillation import AttentionRelationLoss, HiddenStateLoss
from keras_kd.distillation.feature_extractor import feature_extractor
from keras_kd.utils.testing import tiny_bert_classifier, tiny_bert_inputs, tiny_mlp


def _models():
    teacher = tiny_bert_classifier(num_layers=4, hidden_dim=8, num_heads=2, seed=0)
    student = tiny_bert_classifier(num_layers=2, hidden_dim=4, num_heads=1, seed=1)
    # A random tiny teacher attends almost uniformly, as a random student
    # does; larger projections give it relations worth learning.
    for block in teacher.backbone.transformer_layers:
        attention = block._self_attention_layer
        for dense in (attention._query_dense, attention._key_dense, attention._value_dense):
            dense.kernel.assign(dense.kernel * 10.0)
    return teacher, student


def _distiller(alpha=0.5, **compile_kwargs):
    teacher, student = _models()
    distiller = keras_kd.Distiller(student=student, teacher=teacher)
    compile_kwargs.setdefault("jit_compile", False)
    distiller.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        alpha=alpha,
        feature_losses=[
            HiddenStateLoss(weight=0.5),
            AttentionRelationLoss(num_relation_heads=2, weight=2.0),
        ],
        **compile_kwargs,
    )
    return distiller


def _data(n=8):
    x = tiny_bert_inputs(batch_size=n, length=8, padded=3)
    y = np.arange(n) % 2
    return x, y


def test_extractor_shares_the_models_weights_and_outputs():
    teacher, _ = _models()
    extractor = feature_extractor(teacher, ["output_3", "input_0"])
    x, _ = _data()
    out = extractor(x)
    np.testing.assert_allclose(out["logits"], teacher(x), atol=1e-6)
    assert {id(w) for w in extractor.weights} == {id(w) for w in teacher.weights}
    assert tuple(out["features"]["output_3"].shape) == (8, 8, 8)


def test_logged_terms_equal_the_losses_computed_by_hand():
    distiller = _distiller(alpha=0.3)
    x, y = _data()
    teacher_logits, targets = distiller._teacher_outputs(x, y, training=True)
    student_out = distiller._features.matching.student(x)
    mask = x["padding_mask"].astype("float32")
    expected = {}
    for loss in distiller.feature_losses:
        per_token = np.asarray(loss.call(targets[loss.name], student_out["features"], mask))
        expected[loss.name] = np.mean((per_token * mask).sum(1) / mask.sum(1))
    _, logs = distiller._loss_terms(
        x, y, None, student_out["logits"], student_out["features"],
        (teacher_logits, targets), training=True,
    )
    for name, value in expected.items():
        assert float(logs[name]) == pytest.approx(value, rel=1e-5)
    total = 0.7 * float(logs["student_loss"]) + 0.3 * float(logs["distillation_loss"])
    total += 0.5 * expected["hidden_state_loss"] + 2.0 * expected["attention_relation_loss"]
    assert float(logs["loss"]) == pytest.approx(total, rel=1e-5)


def test_gradients_reach_the_projections_and_the_student():
    distiller = _distiller()
    x, y = _data()
    teacher = distiller._teacher_outputs(x, y, training=True)
    weights = distiller.step_weights()
    with tf.GradientTape() as tape:
        _, loss, _ = distiller._forward(x, y, None, teacher, training=True)
    gradients = dict(zip([id(w) for w in weights], tape.gradient(loss, weights)))
    projections = distiller.feature_losses[0].trainable_weights
    assert len(projections) == 4  # kernel and bias of 2 projections (4 -> 8)
    for weight in projections:
        assert np.abs(gradients[id(weight)]).sum() > 0
    # The relation loss reaches the student's last attention projections.
    query = distiller.student.backbone.transformer_layers[1]._self_attention_layer._query_dense
    assert all(np.abs(gradients[id(w)]).sum() > 0 for w in query.trainable_weights)
    assert all(id(w) not in gradients for w in distiller.teacher.weights)


def test_the_teacher_runs_once_per_step(monkeypatch):
    distiller = _distiller(run_eagerly=True)
    layer = distiller.teacher.backbone.transformer_layers[0]
    calls = []
    real_call = layer.call

    def counting_call(*args, **kwargs):
        calls.append(1)
        return real_call(*args, **kwargs)

    object.__setattr__(layer, "call", counting_call)
    x, y = _data()
    history = distiller.fit(x, y, batch_size=4, validation_data=(x, y), verbose=0).history
    first_batch_checks = 1  # the first-batch check runs the losses once
    # Validation scores the student alone (no `evaluate_distillation`).
    assert len(calls) == 2 + first_batch_checks
    assert {"val_loss", "val_student_loss"} <= set(history)
    assert "val_hidden_state_loss" not in history


def test_fit_lowers_the_feature_losses_and_logs_them():
    distiller = _distiller(alpha=0.5, jit_compile="auto")
    x, y = _data(16)
    history = distiller.fit(x, y, batch_size=4, epochs=8, verbose=0).history
    assert distiller.jit_compile is True
    assert {"hidden_state_loss", "attention_relation_loss", "distillation_loss"} <= set(history)
    for name in ("hidden_state_loss", "attention_relation_loss"):
        assert history[name][-1] < 0.8 * history[name][0], (name, history[name])


def test_save_and_load_keep_the_projections_and_the_student_unchanged(tmp_path):
    distiller = _distiller(run_eagerly=True)
    x, y = _data()
    distiller.fit(x, y, batch_size=4, epochs=1, verbose=0)
    student_weights = len(distiller.student.weights)
    distiller.save(tmp_path / "d.keras")
    # The optimizer's state loads back (Keras warns and skips it when the
    # loaded model's trainable variables differ from the saved ones').
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = keras.models.load_model(tmp_path / "d.keras")
    assert int(loaded.optimizer.iterations.numpy()) == 2
    for a, b in zip(loaded.optimizer.variables, distiller.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # The loaded teacher is frozen to its last variable.
    assert not any(v.trainable for v in loaded.teacher.variables)
    assert len(loaded.trainable_variables) == len(loaded.step_weights())
    assert [type(loss).__name__ for loss in loaded.feature_losses] == [
        "HiddenStateLoss", "AttentionRelationLoss"
    ]
    for a, b in zip(distiller.feature_losses[0].weights, loaded.feature_losses[0].weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert loaded.feature_losses[1].weight == 2.0
    np.testing.assert_allclose(loaded.predict(x, verbose=0), distiller.predict(x, verbose=0), atol=1e-6)
    # The projections belong to the distiller: the student is unchanged.
    assert len(loaded.student.weights) == student_weights
    loaded.fit(x, y, batch_size=4, epochs=1, verbose=0)


def test_a_teacher_cache_with_feature_losses_is_refused_before_training(tmp_path):
    distiller = _distiller()
    x, y = _data()
    data = tf.data.Dataset.from_tensor_slices((x, y))
    cache = keras_kd.TeacherCache.build(
        distiller.teacher, data, tmp_path / "cache", jit_compile=False, verbose=0
    )
    before = [w.numpy().copy() for w in distiller.student.weights]
    with pytest.raises(ValueError, match="compile without `feature_losses`"):
        distiller.fit(cache.dataset(batch_size=4), verbose=0)
    for a, b in zip(before, distiller.student.weights):
        np.testing.assert_array_equal(a, b.numpy())


def test_bad_feature_losses_are_refused_at_compile():
    teacher, student = _models()
    distiller = keras_kd.Distiller(student=student, teacher=teacher)
    with pytest.raises(TypeError, match="Received: 'mse'"):
        distiller.compile(feature_losses=["mse"])
    with pytest.raises(ValueError, match=r"\['same'\] is used twice"):
        distiller.compile(
            feature_losses=[HiddenStateLoss(name="same"), HiddenStateLoss(name="same")]
        )
    with pytest.raises(ValueError, match="teacher layer 9"):
        distiller.compile(feature_losses=[HiddenStateLoss(layer_map={0: 9})])
    assert not distiller.compiled
    mlp = keras_kd.Distiller(student=tiny_mlp(4, seed=0), teacher=tiny_mlp(8, seed=1))
    with pytest.raises(ValueError, match="keras-hub backbone"):
        mlp.compile(feature_losses=[HiddenStateLoss()])


def test_a_non_finite_feature_loss_stops_training_naming_it():
    distiller = _distiller(run_eagerly=True)
    projection = distiller.feature_losses[0].projections["output_0"]
    projection.set_weights([np.full_like(w, np.nan) for w in projection.get_weights()])
    x, y = _data()
    with pytest.raises(FloatingPointError, match="the feature loss 'hidden_state_loss'"):
        distiller.fit(x, y, batch_size=4, verbose=0)
