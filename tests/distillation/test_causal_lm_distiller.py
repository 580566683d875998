"""The Distiller on keras-hub causal LMs: token-level losses, padding,
raw-text inputs, the top-k teacher cache and the tokenizer check."""

import warnings

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

import keras_kd
from keras_kd.distillation import lm_metrics
from keras_kd.utils.testing import with_swapped_tokens

TEXTS = [
    "the cat sat on the mat.",
    "a dog ran in the rain.",
    "the sun is hot.",
    "an ant ate a seed.",
    "the rain is on the sea.",
    "a seed is in the sand.",
]


def _log_softmax(z):
    z = z.astype("float64")
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _reference_losses(teacher_logits, student_logits, labels, weight, alpha, temperature):
    weight = weight.astype("float64")
    log_q = _log_softmax(student_logits)
    ce = -np.take_along_axis(log_q, labels[..., None], -1)[..., 0]
    student = (ce * weight).sum() / weight.sum()
    log_pt = _log_softmax(teacher_logits / temperature)
    log_qt = _log_softmax(student_logits / temperature)
    kl = (np.exp(log_pt) * (log_pt - log_qt)).sum(-1) * temperature**2
    distill = (kl * weight).sum() / weight.sum()
    return (1 - alpha) * student + alpha * distill, student, distill


def _distiller(teacher, student, alpha=0.5, temperature=2.0, **kwargs):
    distiller = keras_kd.Distiller(student=student, teacher=teacher)
    distiller.compile(
        optimizer=keras.optimizers.SGD(0.0),
        alpha=alpha,
        temperature=temperature,
        jit_compile=False,
        **kwargs,
    )
    return distiller


@pytest.mark.parametrize("texts", [TEXTS[:1] * 4, TEXTS[:4]], ids=["no_padding", "padding"])
def test_token_level_losses_equal_numpy(tiny_causal_lm, texts):
    teacher, student = tiny_causal_lm(seed=0), tiny_causal_lm(num_layers=2, seed=1)
    distiller = _distiller(teacher, student, alpha=0.3, temperature=2.0)
    x, y, w = student.preprocessor(texts)
    distiller.compile(
        optimizer=keras.optimizers.SGD(0.0), alpha=0.3, temperature=2.0,
        jit_compile=False, evaluate_distillation=True,
    )
    logs = distiller.evaluate(x, y, sample_weight=w, batch_size=4, return_dict=True, verbose=0)
    total, student_loss, distill = _reference_losses(
        np.asarray(teacher(x)), np.asarray(student(x)), np.asarray(y), np.asarray(w), 0.3, 2.0
    )
    if texts[0] == texts[1]:
        assert np.asarray(w).all()
    else:
        assert not np.asarray(w).all()
    assert logs["student_loss"] == pytest.approx(student_loss, rel=1e-5)
    assert logs["distillation_loss"] == pytest.approx(distill, rel=1e-4, abs=1e-7)
    assert logs["loss"] == pytest.approx(total, rel=1e-5)


def test_padded_positions_change_neither_loss_nor_gradients(tiny_causal_lm):
    teacher, student = tiny_causal_lm(seed=0), tiny_causal_lm(num_layers=2, seed=1)
    distiller = _distiller(teacher, student, alpha=0.5)
    x, y, w = student.preprocessor(TEXTS[2:4])
    mask = np.asarray(x["padding_mask"])
    assert not mask.all()
    garbage = {
        "token_ids": np.where(mask, np.asarray(x["token_ids"]), 7).astype("int32"),
        "padding_mask": mask,
    }
    y_garbage = np.where(np.asarray(w), np.asarray(y), 5)

    def loss_and_gradients(x, y):
        teacher = distiller._teacher_outputs(x, y, training=True)
        with tf.GradientTape() as tape:
            pred = student(x, training=False)
            total, _ = distiller._loss_terms(x, y, w, pred, None, teacher, training=True)
        return float(total), tape.gradient(total, student.trainable_weights)

    clean_loss, clean_grads = loss_and_gradients(x, y)
    dirty_loss, dirty_grads = loss_and_gradients(garbage, y_garbage)
    assert dirty_loss == pytest.approx(clean_loss, rel=1e-6)
    for a, b in zip(clean_grads, dirty_grads):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)


def test_distillation_on_raw_texts_lowers_the_kl_to_the_teacher(tiny_causal_lm):
    teacher, student = tiny_causal_lm(seed=0), tiny_causal_lm(num_layers=2, seed=1)
    distiller = keras_kd.Distiller(student=student, teacher=teacher)
    distiller.compile(
        optimizer=keras.optimizers.Adam(1e-2), alpha=1.0, temperature=1.0,
        evaluate_distillation=True, jit_compile=False,
    )
    before = distiller.evaluate(TEXTS, batch_size=6, return_dict=True, verbose=0)
    history = distiller.fit(TEXTS, batch_size=3, epochs=8, verbose=0)
    after = distiller.evaluate(TEXTS, batch_size=6, return_dict=True, verbose=0)
    assert after["distillation_loss"] < 0.7 * before["distillation_loss"]
    assert len(history.history["loss"]) == 8
    agreement = lm_metrics.evaluate_causal_lm(student, TEXTS, teacher=teacher)
    assert agreement["top1_agreement"] > 0.5


def test_a_saved_distiller_of_student_like_loads_and_trains_on(tiny_causal_lm, tmp_path):
    # `student_like` shares the teacher's preprocessor, which the file
    # holds once: the loaded pair shares it again, with its vocabulary.
    teacher = tiny_causal_lm(seed=0)
    distiller = keras_kd.Distiller(
        student=keras_kd.transfer.student_like(teacher, num_layers=2), teacher=teacher
    )
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    distiller.fit(TEXTS, batch_size=3, epochs=1, verbose=0)
    distiller.save(tmp_path / "d.keras")
    # keras-hub's CausalLM overrides `compile()`: `keras_hub_fixes` compiles
    # each model as saved, greedy sampler included, where Keras would warn
    # that it left the settings unused.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = keras.models.load_model(tmp_path / "d.keras")
    for role in ("student", "teacher"):
        assert isinstance(getattr(loaded, role).sampler, keras_hub.samplers.GreedySampler)
    assert loaded.student.preprocessor is loaded.teacher.preprocessor
    tokenizer = loaded.student.preprocessor.tokenizer
    assert tokenizer.get_vocabulary() == teacher.preprocessor.tokenizer.get_vocabulary()
    x, _, _ = teacher.preprocessor(TEXTS)
    for role in ("student", "teacher"):
        np.testing.assert_allclose(
            getattr(loaded, role)(x), getattr(distiller, role)(x), atol=1e-6
        )
    assert int(loaded.optimizer.iterations.numpy()) == 2
    assert not any(v.trainable for v in loaded.teacher.variables)
    loaded.fit(TEXTS, batch_size=3, epochs=1, verbose=0)
    assert int(loaded.optimizer.iterations.numpy()) == 4


def test_top_k_cache_with_the_whole_vocabulary_equals_the_dense_loss(tiny_causal_lm, tmp_path):
    teacher, student = tiny_causal_lm(seed=0), tiny_causal_lm(num_layers=2, seed=1)
    vocabulary = teacher.backbone.vocabulary_size
    data = tf.data.Dataset.from_tensor_slices(TEXTS)
    sparse = keras_kd.TeacherCache.build(
        teacher, data, tmp_path / "sparse", preprocessor=teacher.preprocessor,
        top_k=vocabulary, verbose=0, jit_compile=False,
    )
    dense = keras_kd.TeacherCache.build(
        teacher, data, tmp_path / "dense", preprocessor=teacher.preprocessor,
        verbose=0, jit_compile=False,
    )
    # A list of texts is the same data as their dataset.
    listed = keras_kd.TeacherCache.build(
        teacher, TEXTS, tmp_path / "listed", preprocessor=teacher.preprocessor,
        verbose=0, jit_compile=False,
    )
    assert listed.manifest["data_fingerprint"] == dense.manifest["data_fingerprint"]
    results = []
    for cache in (sparse, dense):
        distiller = _distiller(teacher, student, alpha=0.5, temperature=2.0)
        distiller.compile(
            optimizer=keras.optimizers.SGD(0.0), alpha=0.5, temperature=2.0,
            jit_compile=False, evaluate_distillation=True,
        )
        results.append(distiller.evaluate(cache.dataset(batch_size=6), return_dict=True, verbose=0))
    x, y, w = student.preprocessor(TEXTS)
    total, _, distill = _reference_losses(
        np.asarray(teacher(x)), np.asarray(student(x)), np.asarray(y), np.asarray(w), 0.5, 2.0
    )
    for logs in results:
        assert logs["distillation_loss"] == pytest.approx(distill, rel=1e-3)
        assert logs["loss"] == pytest.approx(total, rel=1e-3)


def test_top_k_cache_stores_at_most_4k_bytes_per_token(tiny_causal_lm, tmp_path):
    teacher = tiny_causal_lm(seed=0)
    cache = keras_kd.TeacherCache.build(
        teacher, tf.data.Dataset.from_tensor_slices(TEXTS), tmp_path / "c",
        preprocessor=teacher.preprocessor, top_k=8, verbose=0, jit_compile=False,
    )
    assert cache.bytes_per_position() == 4 * 8
    _, target, _ = next(iter(cache.dataset(batch_size=2)))
    logits = target["teacher_logits"]
    # Batches keep the stored dtypes (4 bytes a position in memory too);
    # the losses widen them.
    assert logits["values"].dtype == tf.float16 and logits["indices"].dtype == tf.uint16
    x, _, _ = teacher.preprocessor(TEXTS[:2])
    top = tf.math.top_k(teacher(x), 8)
    np.testing.assert_array_equal(logits["indices"].numpy().astype(np.int32), top.indices.numpy())
    shifted = top.values.numpy() - top.values.numpy()[..., :1]
    np.testing.assert_allclose(logits["values"].numpy(), shifted, atol=2e-3)


def test_raw_text_that_is_not_a_list_of_texts_is_refused(tiny_causal_lm):
    teacher = tiny_causal_lm(seed=0)
    distiller = keras_kd.Distiller(student=keras_kd.transfer.student_like(teacher, num_layers=1), teacher=teacher)
    distiller.compile(optimizer="adam")
    with pytest.raises(ValueError, match=r"not one string. Wrap it in a list: x=\['the cat sat'\]"):
        distiller.fit("the cat sat", epochs=1, verbose=0)
    with pytest.raises(ValueError, match="`x` must hold strings; item 6 is NoneType"):
        distiller.fit(TEXTS + [None], batch_size=2, epochs=1, verbose=0)
    # Trained with a loss of exactly 0: no text held a token.
    with pytest.raises(ValueError, match="`x` holds 3 texts, all empty"):
        distiller.fit(np.array(["", "", ""]), batch_size=2, epochs=1, verbose=0)
    assert int(distiller.optimizer.iterations) == 0


def test_a_different_vocabulary_is_refused(tiny_causal_lm):
    import keras_hub

    teacher = tiny_causal_lm(seed=0)
    other = keras_hub.models.Llama3Backbone(
        vocabulary_size=teacher.backbone.vocabulary_size + 3, num_layers=1,
        num_query_heads=4, num_key_value_heads=2, hidden_dim=16, intermediate_dim=32,
    )
    student = keras_hub.models.Llama3CausalLM(backbone=other, preprocessor=None)
    with pytest.raises(ValueError, match="share the tokenizer.*42 tokens.*45"):
        keras_kd.Distiller(student=student, teacher=teacher)
    # As many tokens, two of them swapped: the teacher would read other words.
    student, (a, b) = with_swapped_tokens(
        teacher, keras_kd.transfer.student_like(teacher, num_layers=1).backbone
    )
    with pytest.raises(ValueError, match=rf"The teacher's tokenizer differs from the student's \(token id 5 is {a!r} for the teacher, {b!r}"):
        keras_kd.Distiller(student=student, teacher=teacher)


def test_validation_texts_go_in_a_tuple(tiny_causal_lm):
    teacher = tiny_causal_lm(seed=0)
    distiller = _distiller(teacher, keras_kd.transfer.student_like(teacher, num_layers=2))
    # A bare list of texts would be read as (x, y): refused, with the fix.
    with pytest.raises(ValueError, match=r"validation_data is 2 texts in a list.*\(texts,\)"):
        distiller.fit(TEXTS, validation_data=TEXTS[:2], batch_size=3, verbose=0)
    logs = distiller.fit(TEXTS, validation_data=(TEXTS[:2],), batch_size=3, verbose=0).history
    scored = distiller.evaluate(TEXTS[:2], batch_size=3, return_dict=True, verbose=0)
    assert logs["val_student_loss"][0] == pytest.approx(scored["student_loss"], rel=1e-5)


def test_labels_or_weights_beside_texts_are_refused(tiny_causal_lm):
    # keras-hub's CausalLMPreprocessor ignores `y` and `sample_weight`
    # silently: a user's labels or weights would never reach the loss.
    teacher = tiny_causal_lm(seed=0)
    distiller = _distiller(teacher, keras_kd.transfer.student_like(teacher, num_layers=1))
    weights = np.linspace(0.1, 1.0, len(TEXTS))
    with pytest.raises(ValueError, match="would ignore `y`. Pass the texts alone"):
        distiller.fit(TEXTS, np.zeros(len(TEXTS)), batch_size=3, verbose=0)
    with pytest.raises(ValueError, match="would ignore `sample_weight`"):
        distiller.fit(TEXTS, sample_weight=weights, batch_size=3, verbose=0)
    with pytest.raises(ValueError, match="would ignore `y`"):
        distiller.fit(TEXTS, validation_data=(TEXTS[:2], [0, 1]), batch_size=3, verbose=0)
    with pytest.raises(ValueError, match="would ignore the dataset's elements beyond the texts"):
        distiller.evaluate(tf.data.Dataset.from_tensor_slices((TEXTS, weights)).batch(3), verbose=0)


def test_prompt_response_data_distills_on_the_responses_alone(tiny_causal_lm):
    # keras-hub's {"prompts", "responses"} (TRL's prompt-completion data):
    # both terms count the responses' tokens alone, in memory and as
    # validation data (tests/datasets/test_prompt_responses.py checks that
    # a tf.data pipeline makes the same rows).
    from keras_kd.datasets.prompt_responses import preprocess_prompt_responses

    teacher, student = tiny_causal_lm(seed=0), tiny_causal_lm(num_layers=2, seed=1)
    data = {"prompts": [t[:8] for t in TEXTS], "responses": [t[8:] for t in TEXTS]}
    distiller = _distiller(teacher, student, alpha=0.3, temperature=2.0, evaluate_distillation=True)
    x, y, w = preprocess_prompt_responses(student.preprocessor, data)
    total, student_loss, distill = _reference_losses(
        np.asarray(teacher(x)), np.asarray(student(x)), np.asarray(y), np.asarray(w), 0.3, 2.0
    )
    # The same rows weighted at every unpadded position (prompts included)
    # give other losses: the checks below tell the two apart.
    _, unmasked_student, unmasked_distill = _reference_losses(
        np.asarray(teacher(x)), np.asarray(student(x)), np.asarray(y),
        np.asarray(x["padding_mask"]), 0.3, 2.0,
    )
    assert abs(unmasked_student - student_loss) > 1e-4 * student_loss
    assert abs(unmasked_distill - distill) > 1e-3 * distill
    validation = distiller.fit(
        data, validation_data=(data,), batch_size=6, verbose=0
    ).history
    for logs in (
        distiller.evaluate(data, batch_size=6, return_dict=True, verbose=0),
        {key[4:]: value[0] for key, value in validation.items() if key.startswith("val_")},
    ):
        assert logs["student_loss"] == pytest.approx(student_loss, rel=1e-5)
        assert logs["distillation_loss"] == pytest.approx(distill, rel=1e-4, abs=1e-7)
        assert logs["loss"] == pytest.approx(total, rel=1e-5)
    with pytest.raises(ValueError, match="TRL's \"prompt\" and \"completion\" columns"):
        distiller.fit({"prompt": data["prompts"], "completion": data["responses"]}, verbose=0)


def test_a_cache_refuses_another_tokenizer_and_batched_texts(tiny_causal_lm, tmp_path):
    teacher = tiny_causal_lm(seed=0)
    other, (a, b) = with_swapped_tokens(teacher, teacher.backbone)
    # The teacher would have read other words than the texts hold.
    with pytest.raises(ValueError, match=rf"`preprocessor`'s tokenizer differs from the teacher's \(token id 5 is {a!r} for the teacher, {b!r}.*preprocessor=teacher.preprocessor"):
        keras_kd.TeacherCache.build(teacher, TEXTS, tmp_path / "other", preprocessor=other.preprocessor)
    batched = tf.data.Dataset.from_tensor_slices(TEXTS).batch(2)
    with pytest.raises(ValueError, match=r"`data` looks batched: its texts come in batches of shape \(None,\).*data.unbatch\(\)"):
        keras_kd.TeacherCache.build(teacher, batched, tmp_path / "batched", preprocessor=teacher.preprocessor)
    assert not (tmp_path / "other").exists() and not (tmp_path / "batched").exists()
