"""The objects the doctests of `keras_kd.export` share (pytest's
`doctest_namespace`), built once per session so that the examples run in
seconds: `model`, a 1-layer, 8-wide BERT classifier on token ids (2 classes,
random weights); `vocabulary`, its 10 WordPiece tokens; and `tflite_path`,
its float32 `.tflite` from `export_tflite` (labels "negative", "positive",
sequence length 16)."""

import pytest

VOCABULARY = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    "a", "fine", "film", "dull", "one",
]


@pytest.fixture(scope="session")
def _tiny_classifier_export(tmp_path_factory):
    import keras
    import keras_hub

    from keras_kd.export import export_tflite

    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(VOCABULARY),
        num_layers=1,
        num_heads=1,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=16,
    )
    logits = keras.layers.Dense(2)(backbone.output["pooled_output"])
    model = keras.Model(backbone.input, logits, name="tiny_classifier")
    path = tmp_path_factory.mktemp("export_doctests") / "tiny_classifier.tflite"
    export_tflite(
        model,
        path,
        labels=["negative", "positive"],
        vocabulary=VOCABULARY,
        sequence_length=16,
        verify=False,
    )
    return {"model": model, "vocabulary": list(VOCABULARY), "tflite_path": str(path)}


@pytest.fixture(autouse=True)
def _export_doctest_namespace(request, doctest_namespace):
    if type(request.node).__name__ == "DoctestItem":
        doctest_namespace.update(request.getfixturevalue("_tiny_classifier_export"))
