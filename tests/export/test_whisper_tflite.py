"""keras_kd.export.whisper_tflite: a tiny Whisper exported to TFLite
transcribes token for token as Keras, and bad arguments are refused before
any conversion."""

import os

import numpy as np
import pytest

from keras_kd.export import whisper_tflite
from keras_kd.export.litert_lm import model_ops
from keras_kd.export.whisper_tflite import WhisperTFLiteTranscriber, export_whisper_tflite
from keras_kd.speech import whisper_student
from keras_kd.utils.testing import tiny_whisper_audio_to_text


@pytest.fixture(scope="module")
def student():
    teacher = tiny_whisper_audio_to_text(num_layers=3, decoder_sequence_length=10)
    # Suppression in the file's loop as in Keras's.
    teacher.suppress_token_ids = [2, 7]
    teacher.begin_suppress_token_ids = [39, 0]
    return whisper_student(teacher)


@pytest.fixture(scope="module")
def audio():
    rng = np.random.default_rng(0)
    return [rng.uniform(-0.5, 0.5, n).astype("float32") for n in (8000, 12000, 16000)]


@pytest.fixture(scope="module")
def exported(student, audio, tmp_path_factory):
    path = tmp_path_factory.mktemp("whisper") / "student.tflite"
    return export_whisper_tflite(student, path, max_length=10, verification_audio=audio)


def test_float32_file_generates_keras_tokens(exported, student, audio):
    assert exported.token_agreement == 1.0
    assert [k for k, _ in exported.texts] == [t for _, t in exported.texts]
    transcriber = WhisperTFLiteTranscriber(exported.path, student)
    for waveform in audio:
        ids, _ = transcriber.token_ids(waveform)
        assert ids == whisper_tflite.keras_token_ids(student, waveform, 10)
        assert ids and not set(ids) & {2, 7} and ids[0] not in (0, 39)
    # The file checks its audio as `generate` does, one waveform at a time.
    with pytest.raises(ValueError, match=r"int16 samples.*/ 32768"):
        transcriber.transcribe((audio[0] * 32767).astype("int16"))
    with pytest.raises(ValueError, match=r"one waveform \(samples,\); received a batch of shape \(2, 8000\)"):
        transcriber.transcribe(np.stack([audio[0], audio[0]]))


def test_file_has_two_signatures_and_builtin_ops_only(exported):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=exported.path)
    signatures = interpreter.get_signature_list()
    assert sorted(signatures) == ["decode", "encode"]
    assert sorted(signatures["encode"]["outputs"]) == sorted(
        f"cross_{kv}_{i}" for kv in "kv" for i in range(2)
    )
    with open(exported.path, "rb") as f:
        ops = model_ops(f.read())
    assert not [op for op in ops if op.startswith("CUSTOM")]
    assert exported.size_bytes == os.path.getsize(exported.path)


def test_a_float32_file_that_disagrees_is_not_written(student, audio, tmp_path, monkeypatch):
    monkeypatch.setattr(whisper_tflite, "keras_token_ids", lambda *a: [1, 2, 3])
    with pytest.raises(ValueError, match="transcribes differently from Keras"):
        export_whisper_tflite(student, tmp_path / "w.tflite", max_length=10, verification_audio=audio[:1])
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"max_length": 2}, ValueError, r"max_length=2"),
        ({"max_length": 33}, ValueError, r"\[3, 32\]"),
        ({"quantization": "int4"}, ValueError, "int4"),
    ],
)
def test_bad_arguments_are_refused_before_conversion(student, tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        export_whisper_tflite(student, tmp_path / "w.tflite", **kwargs)


def test_existing_file_is_kept_without_overwrite(student, tmp_path):
    path = tmp_path / "w.tflite"
    path.write_bytes(b"old")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_whisper_tflite(student, path)
    assert path.read_bytes() == b"old"


def test_dynamic_int8_file_stores_the_tied_table_once(audio, tmp_path, monkeypatch):
    from keras_kd.export.litert_lm import embedding_copies

    # 46 tokens x 32 wide: large enough for the converter to quantize.
    model = tiny_whisper_audio_to_text(num_layers=1, hidden_dim=32, decoder_sequence_length=10)
    result = export_whisper_tflite(
        model, tmp_path / "int8.tflite", max_length=10, quantization="dynamic_int8",
        verification_audio=audio,
    )
    with open(result.path, "rb") as f:
        assert embedding_copies(f.read(), 46, 32) == 1
    # The converter's own output has two int8 copies: the rewrite ran.
    monkeypatch.setattr(whisper_tflite, "share_int8_embedding", lambda buffer, *_: buffer)
    assert embedding_copies(whisper_tflite._convert(model, 10, "dynamic_int8"), 46, 32) == 2
    # Its transcripts stay close to Keras's token for token.
    assert result.token_agreement >= 0.5
