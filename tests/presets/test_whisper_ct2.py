"""keras_kd.presets.whisper_ct2: a tiny Whisper written in CTranslate2's
binary format (by this test, from a keras-hub backbone) converts back into
the same model, and the real tiny.en package converts into the preset."""

import json
import struct

import keras
import keras_hub
import numpy as np
import pytest

from keras_kd.presets import whisper_ct2
from keras_kd.speech import WhisperAudioToText
from keras_kd.utils.testing import (
    LETTERS,
    MERGES,
    WHISPER_SPECIAL_TOKENS,
    tiny_whisper_tokenizer,
)

HEADS = 2


def _write_ct2(path, arrays, aliases):
    """CTranslate2's `model.bin` layout (version 6), float16 weights."""

    def string(value):
        data = value.encode()
        return struct.pack("H", len(data) + 1) + data + b"\0"

    out = struct.pack("I", 6) + string("WhisperSpec") + struct.pack("I", 3)
    out += struct.pack("I", len(arrays))
    for name, value in arrays.items():
        out += string(name) + struct.pack("B", value.ndim)
        out += b"".join(struct.pack("I", d) for d in value.shape)
        dtype_id = {np.float16: 4, np.int16: 2, np.int8: 1}[value.dtype.type]
        out += struct.pack("B", dtype_id) + struct.pack("I", value.nbytes) + value.tobytes()
    out += struct.pack("I", len(aliases))
    for alias, target in aliases.items():
        out += string(alias) + string(target)
    path.write_bytes(out)


def _ct2_arrays(backbone):
    """The backbone's weights under CTranslate2's names and layouts: fused
    query/key/value, `[out, in]` matrices, zero key biases."""
    w = {v.path: np.asarray(v) for v in backbone.weights}
    f16 = lambda a: np.ascontiguousarray(a, dtype=np.float16)  # noqa: E731
    flat = lambda k: k.reshape(k.shape[0], -1).T  # noqa: E731 [in, h, d] -> [h*d, in]
    arrays = {}

    def attention(prefix, source, fused):
        q, k, v = (flat(w[f"{source}/{n}/kernel"]) for n in ("query", "key", "value"))
        bq, bv = w[f"{source}/query/bias"].reshape(-1), w[f"{source}/value/bias"].reshape(-1)
        out = w[f"{source}/attention_output/kernel"].reshape(-1, q.shape[1]).T
        if fused:
            arrays[f"{prefix}/linear_0/weight"] = f16(np.concatenate([q, k, v]))
            arrays[f"{prefix}/linear_0/bias"] = f16(np.concatenate([bq, 0 * bq, bv]))
            last = "linear_1"
        else:
            arrays[f"{prefix}/linear_0/weight"] = f16(q)
            arrays[f"{prefix}/linear_0/bias"] = f16(bq)
            arrays[f"{prefix}/linear_1/weight"] = f16(np.concatenate([k, v]))
            arrays[f"{prefix}/linear_1/bias"] = f16(np.concatenate([0 * bv, bv]))
            last = "linear_2"
        arrays[f"{prefix}/{last}/weight"] = f16(out)
        arrays[f"{prefix}/{last}/bias"] = f16(w[f"{source}/attention_output/bias"])

    def norm(prefix, source):
        arrays[f"{prefix}/gamma"] = f16(w[f"{source}/gamma"])
        arrays[f"{prefix}/beta"] = f16(w[f"{source}/beta"])

    def ffn(prefix, source):
        arrays[f"{prefix}/linear_0/weight"] = f16(w[f"{source}/feedforward_intermediate_dense/kernel"].T)
        arrays[f"{prefix}/linear_0/bias"] = f16(w[f"{source}/feedforward_intermediate_dense/bias"])
        arrays[f"{prefix}/linear_1/weight"] = f16(w[f"{source}/feedforward_output_dense/kernel"].T)
        arrays[f"{prefix}/linear_1/bias"] = f16(w[f"{source}/feedforward_output_dense/bias"])
        norm(f"{prefix}/layer_norm", f"{source}/feedforward_layer_norm")

    for i in (1, 2):
        conv = w[f"encoder_token_embedding_conv_layer_{i}/kernel"]
        arrays[f"encoder/conv{i}/weight"] = f16(conv.transpose(2, 1, 0))
        arrays[f"encoder/conv{i}/bias"] = f16(w[f"encoder_token_embedding_conv_layer_{i}/bias"])
    arrays["encoder/num_heads"] = np.array(HEADS, np.int16)
    arrays["encoder/position_encodings/encodings"] = f16(w["encoder_position_embedding/embeddings"])
    for i in range(backbone.num_layers):
        s = f"transformer_encoder_layer_{i}"
        attention(f"encoder/layer_{i}/self_attention", f"{s}/self_attention_layer", True)
        norm(f"encoder/layer_{i}/self_attention/layer_norm", f"{s}/self_attention_layer_norm")
        ffn(f"encoder/layer_{i}/ffn", s)
        d = f"transformer_decoder_layer_{i}"
        attention(f"decoder/layer_{i}/self_attention", f"{d}/self_attention", True)
        norm(f"decoder/layer_{i}/self_attention/layer_norm", f"{d}/self_attention_layer_norm")
        attention(f"decoder/layer_{i}/attention", f"{d}/cross_attention", False)
        norm(f"decoder/layer_{i}/attention/layer_norm", f"{d}/cross_attention_layer_norm")
        ffn(f"decoder/layer_{i}/ffn", d)
    norm("encoder/layer_norm", "encoder_layer_norm")
    norm("decoder/layer_norm", "decoder_layer_norm")
    embedding = "decoder_token_and_position_embedding"
    arrays["decoder/embeddings/weight"] = f16(w[f"{embedding}/token_embedding/embeddings"])
    arrays["decoder/position_encodings/encodings"] = f16(w[f"{embedding}/position_embedding/embeddings"])
    arrays["decoder/num_heads"] = np.array(HEADS, np.int16)
    return arrays


def _tokenizer_json(path):
    vocabulary = LETTERS + ["Ġ"] + [m.replace(" ", "") for m in MERGES]
    added = [
        {"id": len(vocabulary) + i, "content": token, "special": True}
        for i, token in enumerate(WHISPER_SPECIAL_TOKENS)
    ]
    path.write_text(
        json.dumps(
            {
                "model": {
                    "type": "BPE",
                    "vocab": {t: i for i, t in enumerate(vocabulary)},
                    "merges": MERGES,
                },
                "added_tokens": added,
            }
        )
    )


@pytest.fixture(scope="module")
def tiny_ct2(tmp_path_factory):
    keras.utils.set_random_seed(3)
    backbone = keras_hub.models.WhisperBackbone(
        vocabulary_size=46, num_layers=2, num_heads=HEADS, hidden_dim=8,
        intermediate_dim=16, max_encoder_sequence_length=40, max_decoder_sequence_length=12,
    )
    # Round through float16 first: the file stores float16.
    for variable in backbone.weights:
        variable.assign(np.asarray(variable).astype(np.float16).astype(np.float32))
    folder = tmp_path_factory.mktemp("ct2")
    _write_ct2(
        folder / "model.bin",
        _ct2_arrays(backbone),
        {"decoder/projection/weight": "decoder/embeddings/weight"},
    )
    _tokenizer_json(folder / "tokenizer.json")
    (folder / "config.json").write_text(json.dumps({"suppress_ids": [4, 9], "suppress_ids_begin": [39]}))
    return backbone, folder


def test_converted_model_computes_what_the_original_does(tiny_ct2, tmp_path):
    backbone, source = tiny_ct2
    whisper_ct2.convert_whisper_ct2(str(source), tmp_path)
    task = WhisperAudioToText.from_preset(str(tmp_path))
    assert task.backbone.get_config()["num_layers"] == 2
    assert task.backbone.max_encoder_sequence_length == 40
    assert (task.suppress_token_ids, task.begin_suppress_token_ids) == ([4, 9], [39])
    inputs = {
        "encoder_features": np.random.default_rng(0).normal(size=(2, 40, 80)).astype("float32"),
        "decoder_token_ids": np.array([[40, 43, 1, 2, 3], [40, 43, 5, 6, 7]]),
        "decoder_padding_mask": np.ones((2, 5), "int32"),
    }
    hidden = np.asarray(backbone(inputs)["decoder_sequence_output"])
    expected = hidden @ np.asarray(backbone.token_embedding.embeddings).T
    np.testing.assert_allclose(np.asarray(task(inputs)), expected, atol=1e-5)
    tokenizer = task.preprocessor.tokenizer
    assert tokenizer.eos_token_id == 39 and tokenizer.no_timestamps_token_id == 43
    text = "the rain, in an ore"
    assert np.asarray(tokenizer(text)).tolist() == np.asarray(tiny_whisper_tokenizer()(text)).tolist()


def test_reader_refuses_unknown_versions_and_dtypes(tiny_ct2, tmp_path):
    _, source = tiny_ct2
    data = bytearray((source / "model.bin").read_bytes())
    data[:4] = struct.pack("I", 99)
    (tmp_path / "model.bin").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="binary version 99"):
        whisper_ct2.read_ct2_model(str(tmp_path / "model.bin"))


def test_real_tiny_en_package_converts_to_whisper_tiny_en():
    from keras_kd.presets import preset_dimensions, resolve_preset

    folder = resolve_preset("whisper_tiny_en")
    config = json.loads(open(f"{folder}/config.json").read())["config"]
    assert (config["num_layers"], config["hidden_dim"], config["num_heads"]) == (4, 384, 6)
    assert config["vocabulary_size"] == 51864
    assert preset_dimensions("whisper_tiny_en")["num_layers"] == 4
    task = json.loads(open(f"{folder}/task.json").read())["config"]
    # faster-whisper's suppression lists: 90 ids always, and the blank and
    # the end token on the first step.
    assert task["begin_suppress_token_ids"] == [220, 50256]
    assert len(task["suppress_token_ids"]) == 90
