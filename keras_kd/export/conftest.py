"""The objects the doctests of `keras_kd.export` share (pytest's
`doctest_namespace`), built once per session so that the examples run in
seconds: `model`, a 1-layer, 8-wide BERT classifier on token ids (2 classes,
random weights); `vocabulary`, its 10 WordPiece tokens; and `tflite_path`,
its float32 `.tflite` from `export_tflite` (labels "negative", "positive",
sequence length 16). The LiteRT-LM modules (`litert_lm*.py`) get instead
`causal_lm`, a 2-layer, 16-wide random keras-hub `Llama3CausalLM` with a
42-token byte-level BPE tokenizer (no start token, as SmolLM2), and
`litertlm_path`, its float32 bundle (context 32, `prefill_8`);
`shared_embedding.py` gets `int8_tflite`, the converter's dynamic-int8
bytes of a 1-layer, 64-wide one, before its tied table is shared."""

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


@pytest.fixture(scope="session")
def _tiny_causal_lm_export(tmp_path_factory):
    from keras_kd.export import export_litert_lm
    from keras_kd.utils.testing import tiny_llama3_causal_lm

    causal_lm = tiny_llama3_causal_lm(num_layers=2)
    path = tmp_path_factory.mktemp("litert_lm_doctests") / "tiny.litertlm"
    export_litert_lm(
        causal_lm, path, max_sequence_length=32, prefill_lengths=(8,), verify=False
    )
    return {"causal_lm": causal_lm, "litertlm_path": str(path)}


@pytest.fixture(scope="session")
def _tiny_int8_conversion(tmp_path_factory):
    from keras_kd.export import litert_lm
    from keras_kd.utils.testing import tiny_llama3_causal_lm

    causal_lm = tiny_llama3_causal_lm(num_layers=1, hidden_dim=64)
    workdir = tmp_path_factory.mktemp("int8_conversion")
    buffer = litert_lm._convert(causal_lm, 16, (4,), "dynamic_int8", str(workdir))
    return {"int8_tflite": buffer}


@pytest.fixture(autouse=True)
def _export_doctest_namespace(request, doctest_namespace):
    if type(request.node).__name__ == "DoctestItem":
        if ".litert_lm" in request.node.name:
            objects = request.getfixturevalue("_tiny_causal_lm_export")
        elif ".shared_embedding" in request.node.name:
            objects = request.getfixturevalue("_tiny_int8_conversion")
        else:
            objects = request.getfixturevalue("_tiny_classifier_export")
        doctest_namespace.update(objects)
