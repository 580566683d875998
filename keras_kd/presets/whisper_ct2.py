"""Conversion of a Whisper model in CTranslate2's format into a keras-hub
preset folder (`WhisperBackbone`, `WhisperTokenizer`, `WhisperAudioConverter`).

CTranslate2's `model.bin` is a flat binary of named arrays (its
`specs/model_spec.py` writes it): a format version, the spec's name and
revision, then for each variable its name, shape, dtype id and bytes, then
aliases (Whisper's output projection is an alias of the token embedding).
Query/key/value projections are fused (`linear_0` of self-attention holds
all three, `linear_1` of cross-attention keys and values) and are split here
for keras-hub's separate `query`, `key` and `value` layers; Whisper's key
projections have no bias, and CTranslate2 stores zeros for it. float16
weights become float32.
"""

import json
import os
import re
import struct

import numpy as np

# Bumped when the folder this module writes changes, so caches rebuild.
CONVERTER_VERSION = 1

# CTranslate2's `DataType` ids (include/ctranslate2/types.h).
_DTYPES = {
    0: np.float32,
    1: np.int8,
    2: np.int16,
    3: np.int32,
    4: np.float16,
}
_SUPPORTED_VERSIONS = (5, 6)
_MULTILINGUAL_VOCABULARY = 51865
# `<|en|>`, `<|haw|>`, `<|yue|>`: Whisper's language tokens.
_LANGUAGE_TOKEN = re.compile(r"<\|[a-z]{2,3}\|>")


def read_ct2_model(path):
    """Reads the named arrays of a CTranslate2 `model.bin`.

    Args:
        path: the `model.bin` file.

    Returns:
        `(spec_name, arrays)`: the spec's name (`"WhisperSpec"` for Whisper)
        and a dict from variable name to NumPy array, aliases resolved to
        the array they name.

    Raises:
        ValueError: a binary version or dtype this reader does not know.
    """
    with open(path, "rb") as f:
        data = f.read()
    position = 0

    def unpack(fmt):
        nonlocal position
        (value,) = struct.unpack_from(fmt, data, position)
        position += struct.calcsize(fmt)
        return value

    def string():
        nonlocal position
        length = unpack("H")  # includes the terminating NUL
        value = data[position : position + length - 1].decode("utf-8")
        position += length
        return value

    version = unpack("I")
    if version not in _SUPPORTED_VERSIONS:
        raise ValueError(
            f"{path!r} is CTranslate2 binary version {version}; this reader "
            f"knows versions {_SUPPORTED_VERSIONS}. Convert the model with a "
            "CTranslate2 release of 2023 or later."
        )
    spec_name = string()
    unpack("I")  # the spec's revision
    arrays = {}
    for _ in range(unpack("I")):
        name = string()
        shape = tuple(unpack("I") for _ in range(unpack("B")))
        dtype_id = unpack("B")
        num_bytes = unpack("I")
        if dtype_id not in _DTYPES:
            raise ValueError(
                f"{path!r}: variable {name!r} has CTranslate2 dtype id "
                f"{dtype_id}; this reader knows {sorted(_DTYPES)} (float32, "
                "int8, int16, int32, float16). Convert the model with "
                "--quantization float16 or float32."
            )
        dtype = np.dtype(_DTYPES[dtype_id])
        arrays[name] = np.frombuffer(data, dtype, num_bytes // dtype.itemsize, position).reshape(shape)
        position += num_bytes
    for _ in range(unpack("I")):
        alias, target = string(), string()
        arrays[alias] = arrays[target]
    return spec_name, arrays


def _dense(weight):
    """A `[out, in]` matrix as a Keras Dense kernel `[in, out]`."""
    return np.ascontiguousarray(weight.T, dtype=np.float32)


def _heads(weight, num_heads):
    """A `[heads * head_dim, in]` projection as keras-hub's `[in, heads, head_dim]`."""
    return _dense(weight).reshape(weight.shape[1], num_heads, -1)


def _attention(arrays, prefix, num_heads, fused_first):
    """The query/key/value/output weights of one attention block, split.

    `fused_first`: self-attention fuses query, key and value in `linear_0`;
    cross-attention keeps the query in `linear_0` and fuses key and value in
    `linear_1`.
    """
    if fused_first:
        weight, bias = arrays[f"{prefix}/linear_0/weight"], arrays[f"{prefix}/linear_0/bias"]
        (q, k, v), (bq, _, bv) = np.split(weight, 3), np.split(bias, 3)
        output = "linear_1"
    else:
        q, bq = arrays[f"{prefix}/linear_0/weight"], arrays[f"{prefix}/linear_0/bias"]
        k, v = np.split(arrays[f"{prefix}/linear_1/weight"], 2)
        _, bv = np.split(arrays[f"{prefix}/linear_1/bias"], 2)
        output = "linear_2"
    out_weight = arrays[f"{prefix}/{output}/weight"]
    head_dim = q.shape[0] // num_heads
    return {
        "query/kernel": _heads(q, num_heads),
        "query/bias": bq.astype(np.float32).reshape(num_heads, head_dim),
        "key/kernel": _heads(k, num_heads),
        "value/kernel": _heads(v, num_heads),
        "value/bias": bv.astype(np.float32).reshape(num_heads, head_dim),
        "attention_output/kernel": _dense(out_weight).reshape(num_heads, head_dim, -1),
        "attention_output/bias": arrays[f"{prefix}/{output}/bias"].astype(np.float32),
    }


def _norm(arrays, prefix):
    return {
        "gamma": arrays[f"{prefix}/gamma"].astype(np.float32),
        "beta": arrays[f"{prefix}/beta"].astype(np.float32),
    }


def _ffn(arrays, prefix):
    return {
        "feedforward_intermediate_dense/kernel": _dense(arrays[f"{prefix}/linear_0/weight"]),
        "feedforward_intermediate_dense/bias": arrays[f"{prefix}/linear_0/bias"].astype(np.float32),
        "feedforward_output_dense/kernel": _dense(arrays[f"{prefix}/linear_1/weight"]),
        "feedforward_output_dense/bias": arrays[f"{prefix}/linear_1/bias"].astype(np.float32),
        **{f"feedforward_layer_norm/{k}": v for k, v in _norm(arrays, f"{prefix}/layer_norm").items()},
    }


def _num_layers(arrays, part):
    return len({m.group(1) for m in map(re.compile(rf"{part}/layer_(\d+)/").match, arrays) if m})


def backbone_config(arrays):
    """The `WhisperBackbone` arguments that the arrays' shapes imply."""
    vocabulary_size, hidden_dim = arrays["decoder/embeddings/weight"].shape
    encoder_layers = _num_layers(arrays, "encoder")
    decoder_layers = _num_layers(arrays, "decoder")
    if encoder_layers != decoder_layers:
        raise ValueError(
            f"The model has {encoder_layers} encoder and {decoder_layers} "
            "decoder layers; keras-hub's WhisperBackbone has one `num_layers` "
            "for both."
        )
    return {
        "vocabulary_size": int(vocabulary_size),
        "num_layers": encoder_layers,
        "num_heads": int(arrays["encoder/num_heads"]),
        "hidden_dim": int(hidden_dim),
        "intermediate_dim": int(arrays["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
        "num_mels": int(arrays["encoder/conv1/weight"].shape[1]),
        # The encoder's positions follow the stride-2 convolution.
        "max_encoder_sequence_length": 2 * int(arrays["encoder/position_encodings/encodings"].shape[0]),
        "max_decoder_sequence_length": int(arrays["decoder/position_encodings/encodings"].shape[0]),
    }


def _transformer_layer(arrays, source, target, attentions, num_heads):
    """One transformer layer's weights: `attentions` lists each attention
    block as `(CTranslate2 name, keras-hub name, fused query/key/value)`."""
    weights = {}
    for part, name, fused in attentions:
        for key, value in _attention(arrays, f"{source}/{part}", num_heads, fused).items():
            weights[f"{target}/{name}/{key}"] = value
        # The encoder's attention layer is "self_attention_layer", its norm
        # "self_attention_layer_norm", as the decoder's.
        norm = name.removesuffix("_layer")
        for key, value in _norm(arrays, f"{source}/{part}/layer_norm").items():
            weights[f"{target}/{norm}_layer_norm/{key}"] = value
    for key, value in _ffn(arrays, f"{source}/ffn").items():
        weights[f"{target}/{key}"] = value
    return weights


def backbone_weights(arrays, num_heads):
    """Maps CTranslate2 Whisper arrays to keras-hub `WhisperBackbone`
    variable paths (as `variable.path` names them)."""
    f32 = lambda name: arrays[name].astype(np.float32)  # noqa: E731
    weights = {}
    for i in (1, 2):
        conv = arrays[f"encoder/conv{i}/weight"]
        # CTranslate2 [out, in, width]; Keras Conv1D [width, in, out].
        weights[f"encoder_token_embedding_conv_layer_{i}/kernel"] = np.ascontiguousarray(
            conv.transpose(2, 1, 0), dtype=np.float32
        )
        weights[f"encoder_token_embedding_conv_layer_{i}/bias"] = f32(f"encoder/conv{i}/bias")
    weights["encoder_position_embedding/embeddings"] = f32("encoder/position_encodings/encodings")
    embedding = "decoder_token_and_position_embedding"
    weights[f"{embedding}/token_embedding/embeddings"] = f32("decoder/embeddings/weight")
    weights[f"{embedding}/position_embedding/embeddings"] = f32("decoder/position_encodings/encodings")
    for part, target, attentions in (
        ("encoder", "transformer_encoder_layer", [("self_attention", "self_attention_layer", True)]),
        (
            "decoder",
            "transformer_decoder_layer",
            [("self_attention", "self_attention", True), ("attention", "cross_attention", False)],
        ),
    ):
        for i in range(_num_layers(arrays, part)):
            weights.update(
                _transformer_layer(arrays, f"{part}/layer_{i}", f"{target}_{i}", attentions, num_heads)
            )
        for key, value in _norm(arrays, f"{part}/layer_norm").items():
            weights[f"{part}_layer_norm/{key}"] = value
    return weights


def tokenizer_arguments(tokenizer_json, multilingual):
    """`WhisperTokenizer` arguments from a Hugging Face `tokenizer.json`.

    Args:
        tokenizer_json: path of the file.
        multilingual: whether the model is multilingual (vocabulary 51,865;
            English-only models have 51,864). English-only checkpoints carry
            the language tokens too but never use them, and keras-hub treats
            a tokenizer given any language tokens as multilingual.

    Returns:
        A dict with `vocabulary` (byte-level BPE tokens to ids), `merges`
        (`"a b"` strings), `special_tokens` (the added tokens, such as
        `<|startoftranscript|>`) and `language_tokens` (`<|en|>`, `<|fr|>`,
        ... for a multilingual model, else None).
    """
    with open(tokenizer_json, encoding="utf-8") as f:
        spec = json.load(f)
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    added = {token["content"]: token["id"] for token in spec["added_tokens"]}
    languages = {t: i for t, i in added.items() if _LANGUAGE_TOKEN.fullmatch(t)}
    return {
        "vocabulary": dict(spec["model"]["vocab"]),
        "merges": merges,
        "special_tokens": {t: i for t, i in added.items() if t not in languages},
        "language_tokens": languages if multilingual else None,
    }


def convert_whisper_ct2(model_dir, folder):
    """Writes a keras-hub preset of a `keras_kd.speech.WhisperAudioToText`
    converted from CTranslate2 files.

    The task keeps the token suppression of CTranslate2's `config.json`
    (`suppress_ids`, `suppress_ids_begin`), as faster-whisper applies it.

    Args:
        model_dir: a folder with CTranslate2's `model.bin` and `config.json`
            and a Hugging Face `tokenizer.json`.
        folder: the (existing, empty) folder to write the preset into.
    """
    import keras_hub

    from keras_kd.speech import WhisperAudioToText, WhisperAudioToTextPreprocessor

    spec_name, arrays = read_ct2_model(os.path.join(model_dir, "model.bin"))
    if spec_name != "WhisperSpec":
        raise ValueError(
            f"{model_dir!r} holds a CTranslate2 {spec_name!r}, not a "
            "'WhisperSpec'. Pass the folder of a converted Whisper model."
        )
    config = backbone_config(arrays)
    backbone = keras_hub.models.WhisperBackbone(**config)
    weights = backbone_weights(arrays, config["num_heads"])
    for variable in backbone.weights:
        variable.assign(weights.pop(variable.path))
    if weights:
        raise ValueError(f"CTranslate2 weights left unused: {sorted(weights)[:5]}")
    tokenizer = keras_hub.models.WhisperTokenizer(
        **tokenizer_arguments(
            os.path.join(model_dir, "tokenizer.json"),
            multilingual=config["vocabulary_size"] >= _MULTILINGUAL_VOCABULARY,
        )
    )
    with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
        decoding = json.load(f)
    task = WhisperAudioToText(
        backbone,
        WhisperAudioToTextPreprocessor(
            keras_hub.layers.WhisperAudioConverter(num_mels=config["num_mels"]),
            tokenizer,
        ),
        suppress_token_ids=decoding.get("suppress_ids", ()),
        begin_suppress_token_ids=decoding.get("suppress_ids_begin", ()),
    )
    task.save_to_preset(str(folder))
