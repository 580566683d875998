"""trainable_summary: the table and the counts it returns."""

from keras_kd import transfer


def test_trainable_summary_prints_a_table(minilm, minilm_params):
    p = minilm_params
    lines = []
    model = transfer.build_finetune_model(minilm.backbone, num_classes=2, freeze="all")
    transfer.trainable_summary(model, print_fn=lines.append)
    table = lines[0].splitlines()
    assert table[0].split() == ["layer", "status", "trainable", "frozen"]
    assert table[1].split() == ["token_embedding", "frozen", "0", f"{p.TOKEN_EMB:,}"]
    assert table[-1].split() == ["total", f"{p.HEAD:,}", f"{p.NONE - p.HEAD + p.POOLER:,}"]


def test_trainable_summary_of_a_plain_keras_model():
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="a"), keras.layers.Dense(2, name="b")])
    model.get_layer("a").trainable = False
    summary = transfer.trainable_summary(model, print_fn=None)
    assert summary == {
        "trainable": ["b"],
        "frozen": ["a"],
        "partial": [],
        "trainable_params": 3 * 2 + 2,
        "frozen_params": 4 * 3 + 3,
    }
