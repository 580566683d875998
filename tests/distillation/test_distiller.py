import warnings

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

import keras_kd
from keras_kd.distillation import losses
from keras_kd import transfer
from keras_kd.utils.testing import tiny_bert_text_classifier
from keras_kd.utils.testing import tiny_mlp as mlp
from keras_kd.utils.testing import tiny_token_model

NUM_CLASSES = 3


def data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype("float32")
    y = rng.integers(0, NUM_CLASSES, size=(n,))
    return x, y


def weights(model):
    return [w.numpy().copy() for w in model.weights]


def distiller(alpha=0.5, temperature=2.0, optimizer=None, **compile_kwargs):
    model = keras_kd.Distiller(student=mlp(16, seed=1), teacher=mlp(64, seed=2))
    model.compile(
        optimizer=optimizer or keras.optimizers.SGD(0.1),
        alpha=alpha,
        temperature=temperature,
        **compile_kwargs,
    )
    return model


def test_logged_losses_equal_manual_computation():
    x, y = data(32)
    model = distiller(alpha=0.3, temperature=3.0)
    student_logits = model.student(x).numpy()
    teacher_logits = model.teacher(x).numpy()
    history = model.fit(x, y, batch_size=32, epochs=1, verbose=0).history
    student_loss = float(
        keras.losses.SparseCategoricalCrossentropy(from_logits=True)(
            y, student_logits
        )
    )
    kd = float(losses.KLDivergence(3.0)(teacher_logits, student_logits))
    np.testing.assert_allclose(history["student_loss"][0], student_loss, rtol=1e-5)
    np.testing.assert_allclose(history["distillation_loss"][0], kd, rtol=1e-5)
    np.testing.assert_allclose(
        history["loss"][0], 0.7 * student_loss + 0.3 * kd, rtol=1e-5
    )


def test_teacher_unchanged_and_student_trained():
    x, y = data()
    model = distiller(optimizer=keras.optimizers.Adam(1e-2))
    teacher_before = weights(model.teacher)
    student_before = weights(model.student)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    for before, after in zip(teacher_before, weights(model.teacher)):
        np.testing.assert_array_equal(before, after)
    assert all(
        not np.array_equal(b, a)
        for b, a in zip(student_before, weights(model.student))
    )
    assert not model.teacher.trainable
    assert len(model.trainable_weights) == len(model.student.trainable_weights)


def test_xla_is_on_by_default_on_cpu():
    x, y = data(16)
    model = distiller()
    model.fit(x, y, batch_size=16, verbose=0)
    assert model.jit_compile is True


def test_alpha_zero_trains_exactly_like_student_fit():
    x, y = data()
    reference = mlp(16, seed=1)
    reference.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )
    reference.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    model = distiller(alpha=0.0, optimizer=keras.optimizers.Adam(1e-2))
    model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    for expected, actual in zip(weights(reference), weights(model.student)):
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-6)


def test_alpha_one_ignores_labels():
    x, y = data()
    trained = []
    for labels in (y, (y + 1) % NUM_CLASSES):
        model = distiller(alpha=1.0)
        model.fit(x, labels, batch_size=16, epochs=2, shuffle=False, verbose=0)
        trained.append(weights(model.student))
    for a, b in zip(*trained):
        np.testing.assert_array_equal(a, b)
    # Without labels at all.
    model = distiller(alpha=1.0)
    model.fit(tf.data.Dataset.from_tensor_slices(x).batch(16), epochs=2, verbose=0)
    for a, b in zip(trained[0], weights(model.student)):
        np.testing.assert_allclose(a, b, atol=1e-6)


class RaisingTeacher(keras.Model):
    """A teacher that fails loudly when it is run, after it is built."""

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(NUM_CLASSES)
        self.armed = False

    def call(self, x):
        if self.armed:
            raise AssertionError("the teacher was called")
        return self.dense(x)


def test_evaluate_does_not_run_the_teacher_unless_asked():
    x, y = data(32)
    teacher = RaisingTeacher()
    teacher(x)
    teacher.armed = True
    model = keras_kd.Distiller(student=mlp(16, seed=1), teacher=teacher)
    model.compile(optimizer="sgd", metrics=["accuracy"])
    logs = model.evaluate(x, y, return_dict=True, verbose=0)
    assert set(logs) == {"loss", "student_loss", "accuracy"}
    expected = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(
        y, model.student(x)
    )
    np.testing.assert_allclose(logs["loss"], float(expected), rtol=1e-5)

    model = distiller(alpha=0.5, evaluate_distillation=True)
    logs = model.evaluate(x, y, return_dict=True, verbose=0)
    kd = losses.KLDivergence(2.0)(model.teacher(x), model.student(x))
    np.testing.assert_allclose(logs["distillation_loss"], float(kd), rtol=1e-5)
    np.testing.assert_allclose(
        logs["loss"], 0.5 * logs["student_loss"] + 0.5 * float(kd), rtol=1e-5
    )


def test_dataset_numpy_and_generator_inputs_train_identically():
    x, y = data(48)
    batches = [(x[i : i + 16], y[i : i + 16]) for i in range(0, 48, 16)]
    inputs = {
        "numpy": dict(x=x, y=y, batch_size=16, shuffle=False),
        "dataset": dict(x=tf.data.Dataset.from_tensor_slices((x, y)).batch(16)),
        "generator": dict(x=(batch for batch in batches)),
    }
    trained = {}
    for kind, kwargs in inputs.items():
        model = distiller()
        model.fit(verbose=0, **kwargs)
        trained[kind] = weights(model.student)
    for kind in ("dataset", "generator"):
        for a, b in zip(trained["numpy"], trained[kind]):
            np.testing.assert_allclose(b, a, atol=1e-6)


def test_a_second_fit_with_labels_of_another_rank_trains_as_with_the_same():
    # Keras retraced its step for both ranks at once, with labels of
    # unknown rank: "Cannot iterate over a shape with unknown rank".
    x, y = data(48)
    column = y[:, None]
    trained, evaluated = [], []
    for second in (y, column):
        model = distiller()
        model.fit(x, y, batch_size=16, shuffle=False, verbose=0)
        model.fit(x, second, batch_size=16, shuffle=False, verbose=0,
                  validation_data=(x, second))
        evaluated.append(model.evaluate(x, y, verbose=0, return_dict=True))
        evaluated.append(model.evaluate(x, second, verbose=0, return_dict=True))
        trained.append(weights(model.student))
    for a, b in zip(*trained):
        np.testing.assert_allclose(b, a, atol=1e-6)
    for logs in evaluated[1:]:
        assert logs["loss"] == pytest.approx(evaluated[0]["loss"], rel=1e-6)


def test_labels_keyed_by_the_students_output_name():
    # Keras keys a multi-output model's labels by output name; for one
    # output, fit failed ("Attempt to convert a value ({'dense_1': ...})").
    x, y = data(48)
    trained = []
    for keyed in (False, True):
        model = distiller()
        name = model.student.layers[-1].name  # a Sequential's output
        labels = {name: y} if keyed else y
        history = model.fit(
            tf.data.Dataset.from_tensor_slices((x, labels)).batch(16),
            validation_data=(x, labels), verbose=0,
        ).history
        trained.append((weights(model.student), history, model.evaluate(x, labels, verbose=0)))
        model.fit(x, labels, batch_size=16, shuffle=False, verbose=0)
        trained[-1] += (weights(model.student),)
    (plain_w, plain_h, plain_e, plain_w2), (keyed_w, keyed_h, keyed_e, keyed_w2) = trained
    for a, b in zip(plain_w + plain_w2, keyed_w + keyed_w2):
        np.testing.assert_allclose(b, a, atol=1e-6)
    assert set(keyed_h) == set(plain_h) and "val_loss" in plain_h
    for key in plain_h:
        assert keyed_h[key] == pytest.approx(plain_h[key])
    assert keyed_e == pytest.approx(plain_e)
    model = distiller()
    before, name = weights(model.student), model.student.layers[-1].name
    with pytest.raises(ValueError, match=rf"dict keyed \['label'\], but this model has one output, '{name}'"):
        model.fit(x, {"label": y}, verbose=0)
    for a, b in zip(before, weights(model.student)):
        np.testing.assert_array_equal(a, b)
    # A FinetuneModel student's labels are keyed by its head's name, as in
    # its own fit, not by Keras's name of the head layer ('head' here).
    x, y, _ = bert_batches_and_distiller()
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=100, num_layers=1, num_heads=2, hidden_dim=16,
        intermediate_dim=32, max_sequence_length=12,
    )
    teacher = transfer.FinetuneModel(backbone, {"sentiment": transfer.Head("classification", 2)})
    bert = keras_kd.Distiller(student=transfer.student_like(teacher, num_layers=1), teacher=teacher)
    bert.compile(optimizer="sgd")
    assert bert.student.output_names == ["head"]
    assert bert.evaluate(x, {"sentiment": y}, verbose=0) == pytest.approx(bert.evaluate(x, y, verbose=0))
    with pytest.raises(ValueError, match=r"dict keyed \['head'\], but this model has one output, 'sentiment'"):
        bert.fit(x, {"head": y}, verbose=0)


def test_sample_weight_is_applied():
    x, y = data(32)
    sample_weight = np.zeros(32, "float32")
    sample_weight[:8] = 1.0
    model = distiller(alpha=0.5)
    student_logits = model.student(x).numpy()
    teacher_logits = model.teacher(x).numpy()
    history = model.fit(
        tf.data.Dataset.from_tensor_slices((x, y, sample_weight)).batch(32),
        verbose=0,
    ).history
    kd = losses.KLDivergence(2.0)(teacher_logits[:8], student_logits[:8])
    np.testing.assert_allclose(history["distillation_loss"][0], float(kd), rtol=1e-5)


def tiny_bert_classifier(num_layers, seed):
    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=100,
        num_layers=num_layers,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=12,
    )
    logits = keras.layers.Dense(2)(backbone.output["pooled_output"])
    return keras.Model(backbone.input, logits)


def bert_batches_and_distiller():
    """32 random BERT inputs (vocabulary 100), binary labels and a compiled
    Distiller of two tiny BERT classifiers."""
    rng = np.random.default_rng(0)
    x = {
        "token_ids": rng.integers(1, 100, size=(32, 12)).astype("int32"),
        "padding_mask": np.ones((32, 12), "int32"),
        "segment_ids": np.zeros((32, 12), "int32"),
    }
    y = rng.integers(0, 2, size=(32,))
    model = keras_kd.Distiller(
        student=tiny_bert_classifier(1, seed=1),
        teacher=tiny_bert_classifier(2, seed=2),
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return x, y, model


def test_keras_hub_dict_inputs():
    x, y, model = bert_batches_and_distiller()
    history = model.fit(
        tf.data.Dataset.from_tensor_slices((x, y)).batch(8), epochs=2, verbose=0
    ).history
    assert model.jit_compile is True
    assert np.isfinite(history["loss"]).all()
    assert model.predict(x, verbose=0).shape == (32, 2)


def test_token_ids_outside_the_vocabulary_are_refused_in_any_batch():
    # Under XLA the embedding lookup clamped id 100 to row 99 and the
    # distiller trained on without a word (the first batch alone was checked
    # by TF's eager gather).
    x, y, model = bert_batches_and_distiller()
    x["token_ids"][29, 5] = 100
    before = weights(model.student)
    message = "Token id 100 is out of range: the vocabulary of the models has 100 tokens, ids 0 to 99"
    with pytest.raises(ValueError, match=message):
        model.fit(x, y, batch_size=8, shuffle=False, verbose=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(8), verbose=0)
    with pytest.raises(ValueError, match=message):
        model.evaluate(x, y, batch_size=8, verbose=0)
    # The dataset's three good batches trained; nothing past the bad one.
    assert int(model.optimizer.iterations) == 3
    assert not all(np.array_equal(a, b) for a, b in zip(before, weights(model.student)))


def test_sequence_outputs_with_padding_mask_as_sample_weight():
    rng = np.random.default_rng(0)

    x = rng.integers(0, 30, size=(8, 6)).astype("int32")
    y = rng.integers(0, 30, size=(8, 6))
    mask = np.ones((8, 6), "float32")
    mask[:, 4:] = 0
    model = keras_kd.Distiller(
        student=tiny_token_model(8, 1), teacher=tiny_token_model(32, 2)
    )
    model.compile(optimizer="sgd", alpha=1.0)
    s, t = model.student(x).numpy(), model.teacher(x).numpy()
    history = model.fit(x, y, sample_weight=mask, batch_size=8, verbose=0).history
    expected = losses.KLDivergence(2.0)(t[:, :4], s[:, :4])
    # Summation order differs from the reference: float32 rounding only.
    np.testing.assert_allclose(
        history["distillation_loss"][0], float(expected), rtol=1e-4
    )


def test_mixed_precision_uses_loss_scaling():
    keras.config.set_dtype_policy("mixed_float16")
    x, y = data()
    model = distiller(optimizer=keras.optimizers.Adam(1e-2))
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    before = weights(model.student)
    history = model.fit(x, y, batch_size=16, epochs=2, verbose=0).history
    assert np.isfinite(history["loss"]).all()
    assert model.student(x).dtype == "float16"
    assert not np.array_equal(before[0], weights(model.student)[0])


class NumpyFunctionLayer(keras.layers.Layer):
    """A layer XLA cannot compile: it calls back into Python."""

    def call(self, x):
        y = tf.numpy_function(lambda a: a * 1.0, [x], tf.float32)
        return tf.ensure_shape(y, x.shape)


def test_xla_falls_back_cleanly():
    x, y = data(32)
    student = keras.Sequential(
        [keras.Input((8,)), NumpyFunctionLayer(), keras.layers.Dense(NUM_CLASSES)]
    )
    model = keras_kd.Distiller(student=student, teacher=mlp(16, seed=2))
    model.compile(optimizer="sgd")
    with pytest.warns(UserWarning, match="does not compile with XLA"):
        history = model.fit(x, y, batch_size=16, epochs=2, verbose=0).history
    assert model.jit_compile is False
    assert len(history["loss"]) == 2 and np.isfinite(history["loss"]).all()


def test_save_and_load_round_trip(tmp_path):
    x, y = data()
    model = distiller(
        alpha=0.7,
        temperature=None,
        optimizer=keras.optimizers.Adam(1e-2),
        distillation_loss_fn=losses.JensenShannonDivergence(beta=0.3, temperature=1.5),
        metrics=["accuracy"],
    )
    model.fit(x, y, batch_size=16, verbose=0)
    path = tmp_path / "distiller.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, keras_kd.Distiller)
    for expected, actual in zip(weights(model), weights(loaded)):
        np.testing.assert_array_equal(actual, expected)
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())
    assert loaded.alpha == 0.7
    assert isinstance(loaded.distillation_loss_fn, losses.JensenShannonDivergence)
    assert loaded.distillation_loss_fn.beta == 0.3
    assert isinstance(loaded.optimizer, keras.optimizers.Adam)
    np.testing.assert_allclose(float(loaded.optimizer.learning_rate), 1e-2)
    assert not loaded.teacher.trainable
    # Training goes on from the restored optimizer state.
    loaded.fit(x, y, batch_size=16, verbose=0)

    # Loading keeps what was frozen: the teacher, and a student's own
    # frozen layer.
    frozen = keras_kd.Distiller(student=mlp(16, seed=1), teacher=mlp(64, seed=2))
    frozen.student.layers[0].trainable = False
    # Compiled, never trained: no optimizer state to save, none expected.
    frozen.compile(optimizer="adam")
    frozen.save(tmp_path / "frozen.keras")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reloaded = keras.models.load_model(tmp_path / "frozen.keras")
    assert not reloaded.optimizer.built
    assert not reloaded.student.layers[0].trainable
    assert reloaded.student.layers[-1].trainable
    assert not any(v.trainable for v in reloaded.teacher.variables)

    # A keras-hub classifier and its `student_like` student, which shares
    # its preprocessor, on raw texts.
    text_teacher = tiny_bert_text_classifier()
    texts = ["a fine film", "a dull plot", "a film", "dull"] * 2
    text_distiller = keras_kd.Distiller(
        student=transfer.student_like(text_teacher, num_layers=1), teacher=text_teacher
    )
    text_distiller.compile(optimizer="adam", jit_compile=False)
    text_distiller.fit(texts, np.array([1, 0, 1, 0] * 2), batch_size=4, verbose=0)
    text_distiller.save(tmp_path / "texts.keras")
    loaded_texts = keras.models.load_model(tmp_path / "texts.keras")
    assert loaded_texts.student.preprocessor is loaded_texts.teacher.preprocessor
    np.testing.assert_allclose(
        loaded_texts.predict(texts, verbose=0), text_distiller.predict(texts, verbose=0), atol=1e-6
    )

    student_path = tmp_path / "student.keras"
    model.student.save(student_path)
    student = keras.models.load_model(student_path)
    assert not isinstance(student, keras_kd.Distiller)
    np.testing.assert_array_equal(student(x).numpy(), model(x).numpy())


# Bad input.


def test_output_shape_mismatch_at_construction():
    with pytest.raises(ValueError, match=r"same shape.*\(None, 3\).*\(None, 5\)"):
        keras_kd.Distiller(student=mlp(8, 1, num_classes=5), teacher=mlp(8, 2))


def test_output_shape_mismatch_before_training_for_subclassed_models():
    teacher = RaisingTeacher()
    student = keras.Sequential([keras.layers.Dense(5)])
    model = keras_kd.Distiller(student=student, teacher=teacher)
    model.compile(optimizer="sgd", alpha=1.0)
    x, y = data(16)
    with pytest.raises(ValueError, match=r"same shape.*\(16, 3\).*\(16, 5\)"):
        model.fit(x, y, verbose=0)


@pytest.mark.parametrize("role", ["teacher", "student"])
def test_probabilities_instead_of_logits_are_refused_before_training(role):
    models = {"teacher": mlp(64, seed=2), "student": mlp(16, seed=1)}
    models[role].layers[-1].activation = keras.activations.softmax
    model = keras_kd.Distiller(**models)
    model.compile(optimizer=keras.optimizers.SGD(0.1), alpha=0.5)
    before = weights(models["student"])
    x, y = data(16)
    with pytest.raises(ValueError, match=rf"The {role}'s outputs are probabilities, not logits.*activations\.linear"):
        model.fit(x, y, verbose=0)
    for a, b in zip(before, weights(models["student"])):
        np.testing.assert_array_equal(a, b)
    # The fix the message gives: the trained weights kept, logits out.
    models[role].layers[-1].activation = keras.activations.linear
    model = keras_kd.Distiller(**models)
    model.compile(optimizer=keras.optimizers.SGD(0.1), alpha=0.5)
    assert np.isfinite(model.fit(x, y, verbose=0).history["loss"][0])


def _multilabel_bert(seed):
    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=30, num_layers=1, num_heads=2, hidden_dim=8,
        intermediate_dim=16, max_sequence_length=8,
    )
    return transfer.build_finetune_model(backbone, head="multilabel", num_classes=NUM_CLASSES)


def _sigmoid_op_mlp():
    inputs = keras.Input((8,))
    return keras.Model(inputs, keras.ops.sigmoid(keras.layers.Dense(NUM_CLASSES)(inputs)))


def _binary_crossentropy_mlp():
    model = mlp(16, seed=3)
    model.compile(loss=keras.losses.BinaryCrossentropy(from_logits=True))
    return model


def _sigmoid_layer_mlp():
    model = mlp(16, seed=3)
    model.layers[-1].activation = keras.activations.sigmoid
    return model


@pytest.mark.parametrize(
    "role, make, found",
    [
        ("student", lambda: _multilabel_bert(1), r"its output layer 'logits' is Head\('multilabel'\)"),
        ("teacher", _sigmoid_layer_mlp, "has a sigmoid activation"),
        ("student", _sigmoid_op_mlp, "its output is a sigmoid"),
        ("teacher", _binary_crossentropy_mlp, "compiled with the loss binary_crossentropy"),
    ],
    ids=["multilabel-head", "sigmoid-layer", "sigmoid-op", "binary-crossentropy"],
)
def test_multilabel_models_are_refused_for_a_softmax_loss(role, make, found):
    if role == "student":
        models = {"student": make(), "teacher": _multilabel_bert(2) if "Head" in found else mlp(64, seed=2)}
    else:
        models = {"student": mlp(16, seed=1), "teacher": make()}
    model = keras_kd.Distiller(**models)
    who = "student" if role == "student" else "teacher '"
    for loss in (None, losses.JensenShannonDivergence(), "reverse_kl_divergence"):
        with pytest.raises(ValueError, match=rf"The {who}.*{found}.*mutually exclusive.*LogitsMSE\(\)"):
            model.compile(optimizer="sgd", alpha=0.5, distillation_loss_fn=loss)
    assert not model.compiled
    # What the message offers, and the student alone, are accepted.
    model.compile(optimizer="sgd", alpha=1.0, distillation_loss_fn=losses.LogitsMSE())
    model.compile(optimizer="sgd", alpha=0.0)


def test_a_dataset_or_generator_trains_without_keras_shuffle_warning():
    import warnings

    x, y = data(16)
    for batches in (
        tf.data.Dataset.from_tensor_slices((x, y)).batch(8),
        ((x[i : i + 8], y[i : i + 8]) for i in (0, 8)),
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            # A generator's length is unknown to Keras: given here.
            history = distiller().fit(batches, steps_per_epoch=2, verbose=0)
        assert np.isfinite(history.history["loss"][0])


def test_a_distiller_where_its_student_belongs_is_refused(tmp_path):
    from keras_kd import export

    distiller = keras_kd.Distiller(student=mlp(16, seed=1), teacher=mlp(64, seed=2))
    other = mlp(8, seed=3)
    calls = {
        "export_tflite": lambda: export.export_tflite(distiller, tmp_path / "a.tflite"),
        "export_bundle": lambda: export.export_bundle(distiller, tmp_path / "b", labels=["a", "b"]),
        "export_litert_lm": lambda: export.export_litert_lm(distiller, tmp_path / "c.litertlm"),
        "export_whisper_tflite": lambda: export.export_whisper_tflite(distiller, tmp_path / "d.tflite"),
        "student_like": lambda: keras_kd.transfer.student_like(distiller),
        "TeacherCache.build": lambda: keras_kd.TeacherCache.build(distiller, np.zeros((2, 4)), tmp_path / "e"),
        "Distiller": lambda: keras_kd.Distiller(student=other, teacher=distiller),
    }
    for taker, call in calls.items():
        with pytest.raises(TypeError, match=rf"is a Distiller, the training wrapper .*; {taker} takes a model itself. Pass `distiller.student`"):
            call()
    with pytest.raises(TypeError, match="`student` is a Distiller"):
        keras_kd.Distiller(student=distiller, teacher=other)
    # Nothing was written.
    assert list(tmp_path.iterdir()) == []


def test_weights_the_student_shares_with_the_teacher_are_named():
    inputs = keras.Input((4,))
    shared = keras.layers.Dense(16, activation="relu", name="shared")
    hidden = shared(inputs)
    teacher = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dense(16)(hidden)))
    student = keras.Model(inputs, keras.layers.Dense(2)(hidden))
    assert len(student.trainable_weights) == 4
    with pytest.warns(UserWarning, match=r"shares 2 trainable weights with the teacher \(e.g. \['shared/kernel', 'shared/bias'\]\)"):
        keras_kd.Distiller(student=student, teacher=teacher)
    # Frozen with the teacher: only the student's head trains.
    assert len(student.trainable_weights) == 2
    # Frozen on purpose first: no warning.
    shared.trainable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        keras_kd.Distiller(student=student, teacher=teacher)


def test_empty_data_is_refused_with_what_was_empty():
    x, y = data(16)
    for empty, what in [
        (tf.data.Dataset.from_tensor_slices((x, y)).take(0), "the dataset"),
        ((x[:0], y[:0]), "`x`"),
        ((item for item in []), "the generator"),
    ]:
        args = empty if isinstance(empty, tuple) else (empty,)
        with pytest.raises(ValueError, match=f"No examples to train or evaluate on: {what} is empty"):
            distiller().fit(*args, verbose=0)


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan"), "0.5"])
def test_bad_alpha(alpha):
    with pytest.raises(ValueError, match="alpha"):
        distiller(alpha=alpha)


@pytest.mark.parametrize("temperature", [0.0, -2.0, float("inf")])
def test_bad_temperature(temperature):
    with pytest.raises(ValueError, match="temperature"):
        distiller(temperature=temperature)


def test_bad_label_shape():
    x, _ = data(16)
    model = distiller()
    with pytest.raises(ValueError, match=r"labels do not fit.*\(16, 4\)"):
        model.fit(x, np.zeros((16, 4)), verbose=0)


def test_missing_labels_with_alpha_below_one():
    x, _ = data(16)
    model = distiller(alpha=0.5)
    with pytest.raises(ValueError, match="no labels"):
        model.fit(tf.data.Dataset.from_tensor_slices(x).batch(8), verbose=0)


@pytest.mark.parametrize("role", ["student", "teacher"])
def test_not_a_keras_model(role):
    models = {"student": mlp(8, 1), "teacher": mlp(8, 2)}
    models[role] = lambda x: x
    with pytest.raises(TypeError, match=f"`{role}` must be a `keras.Model`"):
        keras_kd.Distiller(**models)


def test_fit_before_compile():
    model = keras_kd.Distiller(student=mlp(8, 1), teacher=mlp(8, 2))
    x, y = data(8)
    with pytest.raises(RuntimeError, match=r"compile\("):
        model.fit(x, y, verbose=0)


def test_loss_argument_is_rejected():
    model = keras_kd.Distiller(student=mlp(8, 1), teacher=mlp(8, 2))
    with pytest.raises(ValueError, match="student_loss_fn"):
        model.compile(optimizer="sgd", loss="mse")


def test_other_backend_fails_with_instructions(monkeypatch):
    import importlib

    from keras_kd import _backend

    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(ImportError, match=r"backend='jax'.*KERAS_BACKEND=tensorflow"):
        importlib.reload(_backend)
    with pytest.raises(ImportError, match="KERAS_BACKEND=tensorflow"):
        keras_kd.Distiller(student=mlp(8, 1), teacher=mlp(8, 2))


def test_a_non_finite_student_loss_stops_training_at_its_step():
    import re

    from keras_kd.distillation.non_finite import StopOnNonFiniteLoss

    def linear(seed):
        # No ReLU: oneDNN's fused matmul-and-ReLU (in the compiled step on
        # some CPUs) turns NaN into 0, which would hide the infinite input.
        init = keras.initializers.GlorotUniform(seed=seed)
        return keras.Sequential([keras.Input((8,)), keras.layers.Dense(3, kernel_initializer=init)])

    teacher, student = linear(0), linear(1)
    x = np.ones((12, 8), "float32")
    labels = np.zeros(12, "int32")
    # Finite for two steps, then an infinite input reaches the student
    # through the labels' loss first (the check order names it).
    x[8:] = np.inf
    distiller = keras_kd.Distiller(student=student, teacher=teacher)
    distiller.compile(optimizer="sgd", alpha=0.5, jit_compile=False)
    guard = StopOnNonFiniteLoss()
    with pytest.raises(FloatingPointError, match=re.escape(
        "Training stopped at step 3: the student loss (labels vs student) is nan."
    )):
        distiller.fit(x, labels, batch_size=4, shuffle=False, verbose=0, callbacks=[guard])
    # The user's own guard is used, not a second one.
    assert guard.step == 3


def test_raw_texts_take_label_lists_and_validation_split_as_arrays_do():
    # As keras-hub tasks: labels as a list train as the array does, and
    # `validation_split` holds out texts drawn at random (`hold_out`; Keras's
    # last ones are all of one class in a file sorted by label) before
    # tokenizing.
    from keras_kd.datasets.splitting import hold_out

    texts = ["a fine film", "a dull plot", "a film", "dull", "fine", "a plot", "film", "a dull film"]
    labels = [1, 0, 1, 0, 1, 0, 1, 0]

    def trained(x, y, **kwargs):
        teacher = tiny_bert_text_classifier(seed=0)
        keras.utils.set_random_seed(1)
        model = keras_kd.Distiller(
            student=transfer.student_like(teacher, num_layers=1), teacher=teacher
        )
        model.compile(optimizer="adam", jit_compile=False)
        history = model.fit(x, y, batch_size=2, epochs=2, shuffle=False, verbose=0, **kwargs)
        return [w.numpy() for w in model.student.weights], history.history

    # List labels split and train as the array labels given below.
    split, split_logs = trained(texts, labels, validation_split=0.25)
    (kept, kept_labels, _), (held_out, held_out_labels) = hold_out((texts, labels, None), 0.25)
    assert len(held_out) == 2 and held_out.tolist() != texts[6:]
    given, given_logs = trained(
        # Validation labels as a list: np.concatenate of the chunks failed.
        kept.tolist(), np.asarray(kept_labels), validation_data=(held_out.tolist(), held_out_labels.tolist())
    )
    for a, b in zip(split, given):
        np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(split_logs["val_loss"], given_logs["val_loss"], atol=1e-6)


def test_string_labels_and_a_split_dataset_are_refused_with_the_fix():
    teacher = tiny_bert_text_classifier(seed=0)
    distiller = keras_kd.Distiller(student=transfer.student_like(teacher, num_layers=1), teacher=teacher)
    distiller.compile(optimizer="adam", jit_compile=False)
    texts = ["a fine film", "a dull plot"] * 4
    # TensorFlow: "Cast string to int64 is not supported", from its iterator.
    for data in (
        (texts, ["pos", "neg"] * 4),
        (tf.data.Dataset.from_tensor_slices((texts, ["pos", "neg"] * 4)).batch(4), None),
    ):
        with pytest.raises(ValueError, match=r"^Labels are strings.*integers 0 to 1.*class_names\.index\(name\)"):
            distiller.fit(*data, verbose=0)
    # A generator of texts reached the student untokenized (an error deep
    # in its graph).
    with pytest.raises(ValueError, match=r"The first batch holds raw texts.*not in a generator.*from_generator"):
        distiller.fit(((np.array(texts[:4]), np.array([1, 0, 1, 0])) for _ in range(2)), verbose=0)
    # validation_split was dropped without a word for a dataset of texts.
    dataset = tf.data.Dataset.from_tensor_slices((texts, [1, 0] * 4)).batch(4)
    with pytest.raises(ValueError, match=r"validation_split=0\.25 splits in-memory texts, not a tf\.data\.Dataset.*validation_data="):
        distiller.fit(dataset, validation_split=0.25, verbose=0)


def test_a_teacher_reading_another_vocabulary_is_refused():
    # Raw texts are tokenized by the student's preprocessor and the same
    # ids go to the teacher: with another vocabulary, the teacher would
    # read "a fine film" where the student reads "a dull plot".
    teacher = tiny_bert_text_classifier(seed=0)
    student = transfer.student_like(teacher, num_layers=1)
    trimmed = student.trim_vocabulary(["a dull plot"], keep_characters=False)
    with pytest.raises(ValueError, match=(
        r"The teacher's tokenizer differs from the student's \(token id 6 is 'fine' for "
        r"the teacher, 'dull' for the student\).*FinetuneModel.trim_vocabulary")):
        keras_kd.Distiller(student=trimmed, teacher=teacher)
    with pytest.raises(ValueError, match=r"The teacher\[1\]'s tokenizer differs"):
        keras_kd.Distiller(student=trimmed, teacher=[trimmed.__class__.from_config(trimmed.get_config()), teacher])
    # The same vocabulary in another object is accepted.
    keras_kd.Distiller(student=student, teacher=teacher)


def test_raw_texts_with_labels_or_weights_of_another_count_are_refused():
    teacher = tiny_bert_text_classifier(seed=0)
    distiller = keras_kd.Distiller(student=transfer.student_like(teacher, num_layers=1), teacher=teacher)
    distiller.compile(optimizer="adam", jit_compile=False)
    texts = ["a fine film", "a dull plot"] * 4
    # Keras: "Dimensions 8 and 2 are not compatible".
    with pytest.raises(ValueError, match="`x` holds 8 examples but `y` holds 2: give one per example"):
        distiller.fit(texts, [1, 0], verbose=0)
    with pytest.raises(ValueError, match="`x` holds 8 examples but `sample_weight` holds 1"):
        distiller.fit(texts, [1, 0] * 4, sample_weight=[1.0], verbose=0)
    with pytest.raises(ValueError, match="`x` holds 2 examples but `y` holds 3"):
        distiller.fit(texts, [1, 0] * 4, validation_data=(texts[:2], [1, 0, 1]), verbose=0)
    # Keras: KeyError 'pop from an empty set'.
    with pytest.raises(ValueError, match="`x` is empty: pass at least one text"):
        distiller.predict([], verbose=0)


def test_labels_and_weights_as_lists_train_as_arrays():
    # A list of labels failed: "'int' object is not subscriptable".
    from keras_kd.utils.testing import tiny_mlp

    x = np.random.default_rng(0).normal(size=(32, 8)).astype("float32")
    y = (x[:, 0] > 0).astype(int)
    weights = np.linspace(0.5, 1.5, 32)

    def loss(labels, sample_weight):
        distiller = keras_kd.Distiller(
            student=tiny_mlp(4, 0, num_classes=2), teacher=tiny_mlp(8, 1, num_classes=2)
        )
        distiller.compile(optimizer="sgd", jit_compile=False)
        return distiller.fit(x, labels, sample_weight=sample_weight, batch_size=8,
                             shuffle=False, verbose=0).history["loss"]

    assert loss(y.tolist(), weights.tolist()) == pytest.approx(loss(y, weights), rel=1e-6)


def test_a_temperature_beside_a_loss_instance_must_agree_with_it():
    distiller = keras_kd.Distiller(student=mlp(16, seed=1), teacher=mlp(64, seed=2))
    loss = losses.KLDivergence(temperature=4.0)
    distiller.compile(optimizer="sgd", distillation_loss_fn=loss, temperature=4.0)
    assert distiller.temperature == 4.0
    distiller.compile(optimizer="sgd", distillation_loss_fn=loss)
    assert distiller.distillation_loss_fn.temperature == 4.0
    assert distiller.get_compile_config()["temperature"] is None
    distiller.compile(optimizer="sgd", distillation_loss_fn="kl_divergence", temperature=3.0)
    assert distiller.distillation_loss_fn.temperature == 3.0
    distiller.compile(optimizer="sgd")
    assert distiller.distillation_loss_fn.temperature == 2.0
    with pytest.raises(ValueError, match="temperature=3.0 contradicts"):
        distiller.compile(optimizer="sgd", distillation_loss_fn=loss, temperature=3.0)
