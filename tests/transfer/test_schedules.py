"""Schedules: warm-up + cosine AdamW, gradual unfreezing, layer-wise
learning-rate decay."""

import keras
import numpy as np
import pytest

from keras_kd import transfer


def learning_rates(optimizer, steps):
    rates = []
    for step in steps:
        optimizer.iterations.assign(step)
        rates.append(float(optimizer.learning_rate))
    return rates


def test_warmup_cosine_adamw_learning_rate_per_step():
    optimizer = transfer.warmup_cosine_adamw(2e-4, total_steps=200, warmup=0.1)
    assert isinstance(optimizer, keras.optimizers.AdamW)
    assert optimizer.weight_decay == pytest.approx(0.01)
    # Step 0, mid warm-up, end of warm-up (step 20), mid cosine, the end, past it.
    np.testing.assert_allclose(
        learning_rates(optimizer, [0, 10, 20, 110, 200, 250]),
        [0.0, 1e-4, 2e-4, 1e-4, 0.0, 0.0],
        rtol=1e-5,
        atol=1e-12,
    )


def test_warmup_cosine_adamw_without_warmup_starts_at_the_peak():
    # int(7 * 0.1) == 0 warm-up steps: the cosine starts at the peak.
    optimizer = transfer.warmup_cosine_adamw(1e-3, total_steps=7, weight_decay=0.05)
    assert optimizer.weight_decay == pytest.approx(0.05)
    rates = learning_rates(optimizer, [0, 7])
    np.testing.assert_allclose(rates, [1e-3, 0.0], rtol=1e-5, atol=1e-12)
    rates = learning_rates(transfer.warmup_cosine_adamw(1e-3, 100, warmup=0.0), [0, 50, 100])
    np.testing.assert_allclose(rates, [1e-3, 5e-4, 0.0], rtol=1e-5, atol=1e-12)


def test_warmup_cosine_adamw_bad_arguments():
    with pytest.raises(ValueError, match=r"`warmup` must be a finite number >= 0 and < 1.*warmup=1.0"):
        transfer.warmup_cosine_adamw(1e-3, 100, warmup=1.0)
    with pytest.raises(ValueError, match=r"`total_steps` must be an int >= 0.*total_steps=-1"):
        transfer.warmup_cosine_adamw(1e-3, -1)
    with pytest.raises(ValueError, match=r"`learning_rate` must be a finite number > 0.*learning_rate=0"):
        transfer.warmup_cosine_adamw(0, 100)


def test_gradual_unfreezing_changes_the_trainable_set_on_schedule(tiny_backbone, token_batch):
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


def test_gradual_unfreezing_bad_arguments():
    with pytest.raises(ValueError, match=r"`epochs_per_layer` must be an int >= 1.*epochs_per_layer=0"):
        transfer.GradualUnfreezing(epochs_per_layer=0)
    with pytest.raises(ValueError, match=r"`stop_at` must be an int >= 0.*\"embeddings\".*stop_at=-1"):
        transfer.GradualUnfreezing(stop_at=-1)
    with pytest.raises(ValueError, match=r"`stop_at` must be one of 'embeddings'.*stop_at='embedding'"):
        transfer.GradualUnfreezing(stop_at="embedding")
    assert transfer.GradualUnfreezing(2, stop_at=0).get_config() == {"epochs_per_layer": 2, "stop_at": 0, "verbose": False}


def test_layerwise_lr_decay_scales_each_layers_step(tiny_backbone, token_batch):
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


def test_layerwise_lr_decay_is_saved_as_the_plain_optimizer(tmp_path, tiny_backbone):
    model = transfer.build_finetune_model(tiny_backbone(), num_classes=2, layerwise_lr_decay=0.5)
    assert type(model.optimizer).__name__ == "LayerwiseDecayedAdam"
    assert model.get_compile_config()["optimizer"]["class_name"] == "Adam"
    path = str(tmp_path / "decayed.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.optimizer).__name__ == "LayerwiseDecayedAdam"
    assert loaded.optimizer.lr_factors == model.optimizer.lr_factors
    with pytest.raises(ValueError, match=r"`decay` must be a finite number > 0 and <= 1.*decay=0"):
        transfer.layerwise_lr_decay(keras.optimizers.Adam(), model, 0)
