"""Causal LMs in transfer: decoder students, fine-tuning on raw text, and
keras-hub's Llama config fix."""

import warnings

import keras
import keras_hub
import numpy as np
import pytest

import keras_kd
from keras_kd import transfer
from keras_kd.distillation import evaluate_causal_lm

TEXTS = [
    "the cat sat on the mat.",
    "a dog ran in the rain.",
    "the sun is hot.",
    "an ant ate a seed.",
]


def _kernels(layer):
    return [w for w in layer.get_weights()]


def test_student_like_keeps_chosen_decoder_layers(tiny_causal_lm):
    teacher = tiny_causal_lm(num_layers=6)
    student = transfer.student_like(teacher, num_layers=3)
    assert type(student) is type(teacher)
    assert student.preprocessor is teacher.preprocessor
    assert student.backbone.num_layers == 3
    assert student.backbone.tie_word_embeddings
    assert student.backbone.layer_norm_epsilon == 1e-5
    # A decoder keeps its bottom and top layers: teacher layers 0, 1, 5.
    for i, source in enumerate([0, 1, 5]):
        for a, b in zip(
            _kernels(student.backbone.transformer_layers[i]),
            _kernels(teacher.backbone.transformer_layers[source]),
        ):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(
        student.backbone.token_embedding.get_weights()[0],
        teacher.backbone.token_embedding.get_weights()[0],
    )
    np.testing.assert_array_equal(
        student.backbone.get_layer("sequence_output_layernorm").get_weights()[0],
        teacher.backbone.get_layer("sequence_output_layernorm").get_weights()[0],
    )
    mapped = transfer.student_like(teacher, layer_map=[0, 5])
    np.testing.assert_array_equal(
        _kernels(mapped.backbone.transformer_layers[1])[0],
        _kernels(teacher.backbone.transformer_layers[5])[0],
    )
    # Greedy generation, as the teacher.
    assert student.generate(TEXTS[0], max_length=12) == student.generate(TEXTS[0], max_length=12)


def _decoder(family):
    """A random 3-layer, 8-wide keras-hub causal LM of `family`, without a
    preprocessor."""
    keras.utils.set_random_seed(0)
    common = dict(vocabulary_size=50, num_layers=3, hidden_dim=8, intermediate_dim=16)
    grouped = dict(num_query_heads=2, num_key_value_heads=1, **common)
    backbone = {
        "GPT2": lambda: keras_hub.models.GPT2Backbone(num_heads=2, max_sequence_length=16, **common),
        "Gemma": lambda: keras_hub.models.GemmaBackbone(head_dim=4, **grouped),
        "Qwen": lambda: keras_hub.models.QwenBackbone(**grouped),
        "Mistral": lambda: keras_hub.models.MistralBackbone(**grouped),
    }[family]()
    return getattr(keras_hub.models, f"{family}CausalLM")(backbone=backbone, preprocessor=None)


@pytest.mark.parametrize("family", ["GPT2", "Gemma", "Qwen", "Mistral"])
def test_students_of_other_decoder_families(family):
    teacher = _decoder(family)
    x = {
        "token_ids": np.random.default_rng(0).integers(1, 50, (4, 8)).astype("int32"),
        "padding_mask": np.ones((4, 8), "int32"),
    }
    # Every layer kept: the teacher's function, to the last bit.
    whole = transfer.student_like(teacher, num_layers=3)
    np.testing.assert_array_equal(np.asarray(whole(x)), np.asarray(teacher(x)))
    mapped = transfer.student_like(teacher, layer_map=[0, 2])
    assert type(mapped) is type(teacher) and mapped.backbone.num_layers == 2
    for a, b in zip(
        _kernels(mapped.backbone.transformer_layers[1]),
        _kernels(teacher.backbone.transformer_layers[2]),
    ):
        np.testing.assert_array_equal(a, b)
    narrow = transfer.student_like(teacher, num_layers=2, hidden_dim=4, **(
        {"num_heads": 1, "intermediate_dim": 8} if family == "GPT2" else {}))
    assert narrow.backbone.hidden_dim == 4 and np.asarray(narrow(x)).shape == (4, 8, 50)
    # The Distiller's own checks accept the pair (a vocabulary, an output).
    keras_kd.Distiller(student=mapped, teacher=teacher).compile(optimizer="adam")


def test_narrow_decoder_student_is_random_and_grouped(tiny_causal_lm):
    teacher = tiny_causal_lm(num_layers=4)
    student = transfer.student_like(
        teacher, num_layers=2, hidden_dim=8, num_heads=2, num_key_value_heads=1,
        intermediate_dim=16,
    )
    backbone = student.backbone
    assert (backbone.hidden_dim, backbone.num_query_heads, backbone.num_key_value_heads) == (8, 2, 1)
    assert backbone.token_embedding.get_weights()[0].shape == (42, 8)
    with pytest.raises(ValueError, match="num_key_value_heads=2 needs a backbone with grouped-query"):
        bert = keras_hub.models.BertBackbone(
            vocabulary_size=10, num_layers=2, num_heads=2, hidden_dim=8,
            intermediate_dim=16, max_sequence_length=8,
        )
        transfer.build_student(bert, num_layers=1, num_key_value_heads=2)


def test_a_layer_map_that_is_not_a_list_is_refused(tiny_causal_lm):
    # An int failed with "object of type 'int' has no len()".
    with pytest.raises(ValueError, match=r"`layer_map` is a list .* pass num_layers=. Received: layer_map=3"):
        transfer.student_like(tiny_causal_lm(num_layers=2), layer_map=3)


@pytest.mark.parametrize(
    "widths, message",
    [
        (dict(num_heads=3), r"hidden_dim=16 is not a multiple of num_heads=3 .* e.g. num_heads=2 \(heads of 8\)"),
        (dict(num_key_value_heads=3), r"num_heads=4 is not a multiple of num_key_value_heads=3"),
        (dict(hidden_dim=12, num_heads=4), r"Heads of 3 dimensions .* rotary position embeddings"),
    ],
    ids=["heads", "key_value_heads", "odd_rotary_head"],
)
def test_widths_a_decoder_cannot_run_are_refused_when_built(tiny_causal_lm, widths, message):
    # keras-hub built these and failed only at the first call, after a
    # teacher cache was built.
    with pytest.raises(ValueError, match=message):
        transfer.student_like(tiny_causal_lm(num_layers=2), num_layers=1, **widths)


def test_a_teacher_frozen_by_a_distiller_gives_a_trainable_student(tiny_causal_lm):
    teacher = tiny_causal_lm(num_layers=4)
    keras_kd.Distiller(student=tiny_causal_lm(num_layers=2), teacher=teacher)
    assert not teacher.trainable
    student = transfer.student_like(teacher, num_layers=2)
    assert student.trainable and len(student.trainable_weights) == len(student.weights)
    frozen = transfer.student_like(teacher, num_layers=2, freeze="embeddings")
    assert not frozen.backbone.get_layer("token_embedding").trainable
    assert frozen.backbone.transformer_layers[0].trainable


def test_tied_llama_saves_and_loads(tiny_causal_lm, tmp_path):
    model = tiny_causal_lm(num_layers=2)
    assert model.backbone.get_config()["tie_word_embeddings"] is True
    bare = keras_hub.models.Llama3CausalLM(backbone=model.backbone, preprocessor=None)
    bare.save(tmp_path / "lm.keras")
    # keras-hub's CausalLM overrides `compile()`: without `keras_hub_fixes`
    # Keras warns that it left the saved compile settings unused.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = keras.models.load_model(tmp_path / "lm.keras")
    assert loaded.backbone.tie_word_embeddings
    x, _, _ = model.preprocessor(TEXTS)
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-6)


@pytest.mark.parametrize("save", ["keras_file", "preset"])
def test_a_saved_causal_lm_reloads_with_its_sampler(tiny_causal_lm, tmp_path, save):
    # keras-hub saves no sampler: a greedy student came back with keras-hub's
    # default, top-k sampling, and generated other tokens on every call.
    student = transfer.student_like(tiny_causal_lm(num_layers=4), num_layers=2)
    sampled = transfer.student_like(tiny_causal_lm(num_layers=4), num_layers=2)
    transfer.set_sampler(sampled, keras_hub.samplers.TopKSampler(k=7, seed=3))

    def reload(model, name):
        if save == "preset":
            model.save_to_preset(str(tmp_path / name))
            return keras_hub.models.CausalLM.from_preset(str(tmp_path / name))
        model.save(tmp_path / f"{name}.keras")
        return keras.saving.load_model(tmp_path / f"{name}.keras")

    loaded = reload(student, "greedy")
    assert isinstance(loaded.sampler, keras_hub.samplers.GreedySampler)
    prompts = {"token_ids": np.array([[9, 10, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0]]),
               "padding_mask": np.array([[1, 1, 1] + [0] * 9])}
    for model in (student, loaded):
        model.preprocessor = None
    np.testing.assert_array_equal(
        loaded.generate(prompts, stop_token_ids=None)["token_ids"],
        student.generate(prompts, stop_token_ids=None)["token_ids"],
    )
    sampler = reload(sampled, "top_k").sampler
    assert isinstance(sampler, keras_hub.samplers.TopKSampler)
    assert (sampler.k, sampler.seed) == (7, 3)
    if save == "preset":
        # keras-kd's loader keeps the saved sampler unless told another.
        assert isinstance(transfer.load_causal_lm(str(tmp_path / "top_k")).sampler, keras_hub.samplers.TopKSampler)
        assert isinstance(
            transfer.load_causal_lm(str(tmp_path / "top_k"), sampler="greedy").sampler,
            keras_hub.samplers.GreedySampler,
        )


def test_finetune_causal_lm_lowers_perplexity_and_respects_freezing(tiny_causal_lm):
    model = tiny_causal_lm(num_layers=2)
    before = evaluate_causal_lm(model, TEXTS, jit_compile=False)["perplexity"]
    frozen = [w.copy() for w in model.backbone.transformer_layers[0].get_weights()]
    history = transfer.finetune_causal_lm(
        model, TEXTS * 8, steps=30, batch_size=4, sequence_length=16,
        learning_rate=1e-2, freeze=["transformer_layer_0"], jit_compile=False, verbose=0,
    )
    after = evaluate_causal_lm(model, TEXTS, jit_compile=False)["perplexity"]
    assert after < 0.5 * before
    # Keras averages the loss per batch, the metric per token: close, not equal.
    assert np.exp(history.history["loss"][0]) == pytest.approx(history.history["perplexity"][0], rel=0.02)
    for a, b in zip(model.backbone.transformer_layers[0].get_weights(), frozen):
        np.testing.assert_array_equal(a, b)


def test_finetune_causal_lm_with_lora_trains_only_adapters(tiny_causal_lm):
    model = tiny_causal_lm(num_layers=2)
    query = model.backbone.transformer_layers[0]._self_attention_layer._query_dense
    # `kernel` is the effective (base + LoRA) kernel; `_kernel` the base.
    kernel = query._kernel.numpy().copy()
    transfer.finetune_causal_lm(
        model, TEXTS * 4, steps=3, batch_size=4, sequence_length=16, lora_rank=2,
        learning_rate=1e-2, jit_compile=False, verbose=0,
    )
    names = [w.path for w in model.trainable_weights]
    assert names and all("lora" in n for n in names)
    np.testing.assert_array_equal(query._kernel.numpy(), kernel)
    assert not np.array_equal(query.kernel.numpy(), kernel)


def test_repeated_finetune_calls_train_what_each_call_asks(tiny_causal_lm):
    # The first call's freeze stayed: layer 0 never trained again.
    model = tiny_causal_lm(num_layers=2)
    layer = model.backbone.transformer_layers[0]
    kwargs = dict(steps=2, batch_size=4, sequence_length=16, learning_rate=1e-2,
                  jit_compile=False, verbose=0)
    before = [w.copy() for w in layer.get_weights()]
    transfer.finetune_causal_lm(model, TEXTS, freeze=["transformer_layer_0"], **kwargs)
    for a, b in zip(layer.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    transfer.finetune_causal_lm(model, TEXTS, freeze="none", **kwargs)
    for a, b in zip(layer.get_weights(), before):
        assert not np.array_equal(a, b)
    assert len(model.trainable_weights) == len(model.weights)
    # A teacher a Distiller froze trains too.
    model.trainable = False
    transfer.finetune_causal_lm(model, TEXTS, freeze="embeddings", **kwargs)
    assert len(model.trainable_weights) == len(model.weights) - 1


def test_a_second_lora_call_trains_the_same_adapters(tiny_causal_lm):
    # keras-hub enables LoRA once: the second call raised "lora is already
    # enabled".
    model = tiny_causal_lm(num_layers=2)
    kwargs = dict(steps=2, batch_size=4, sequence_length=16, learning_rate=1e-2,
                  jit_compile=False, verbose=0)
    frozen, query = (
        layer._self_attention_layer._query_dense for layer in model.backbone.transformer_layers
    )
    kernel = query._kernel.numpy().copy()
    transfer.finetune_causal_lm(model, TEXTS, lora_rank=2, **kwargs)
    trained = len(model.trainable_weights)
    adapters = [frozen.lora_kernel_a.numpy().copy(), query.lora_kernel_a.numpy().copy()]
    # Layer 0 frozen: only layer 1's adapters train.
    transfer.finetune_causal_lm(model, TEXTS, lora_rank=2, freeze=["transformer_layer_0"], **kwargs)
    names = [w.path for w in model.trainable_weights]
    assert len(names) == trained // 2
    assert all("lora" in n and "transformer_layer_1" in n for n in names)
    np.testing.assert_array_equal(frozen.lora_kernel_a.numpy(), adapters[0])
    assert not np.array_equal(query.lora_kernel_a.numpy(), adapters[1])
    np.testing.assert_array_equal(query._kernel.numpy(), kernel)
    for rank in (None, 4):
        with pytest.raises(ValueError, match=rf"lora_rank={rank}, but the model already has LoRA adapters of rank 2.*Pass lora_rank=2"):
            transfer.finetune_causal_lm(model, TEXTS, lora_rank=rank, **kwargs)


def test_a_lora_tuned_teacher_gives_students_and_trims_with_its_adapters_merged(tiny_causal_lm):
    # Copying layer weights failed on the adapters' extra variables
    # ("weight shapes differ"): LoRA fine-tuning, then distilling, the
    # order the README recommends, could not build a student.
    teacher = tiny_causal_lm(num_layers=2)
    transfer.finetune_causal_lm(
        teacher, TEXTS * 4, steps=3, batch_size=4, sequence_length=16, lora_rank=2,
        learning_rate=1e-2, jit_compile=False, verbose=0,
    )
    x, _, _ = teacher.preprocessor(TEXTS[:3])
    expected = np.asarray(teacher(x))
    # Every layer kept: the adapted teacher's logits, without LoRA weights.
    whole = transfer.student_like(teacher, num_layers=2)
    assert not any("lora" in w.path for w in whole.weights)
    np.testing.assert_allclose(np.asarray(whole(x)), expected, atol=1e-5)
    # Trimmed to the texts: the same logits over the kept tokens.
    trimmed = transfer.trim_lm_vocabulary(teacher, TEXTS)
    ids, _, _ = trimmed.preprocessor(TEXTS[:3])
    np.testing.assert_allclose(
        np.asarray(trimmed(ids)), expected[..., trimmed.kept_token_ids], atol=1e-5
    )


def test_finetune_causal_lm_refuses_bad_input(tiny_causal_lm):
    model = tiny_causal_lm()
    with pytest.raises(ValueError, match="batch_size=0"):
        transfer.finetune_causal_lm(model, TEXTS, batch_size=0)
    with pytest.raises(ValueError, match="`texts` is empty"):
        transfer.finetune_causal_lm(model, [])
    # One string is not a corpus of its characters.
    with pytest.raises(ValueError, match=r"not one string. Wrap it in a list: texts=\['the cat'\]"):
        transfer.finetune_causal_lm(model, "the cat", steps=1)
