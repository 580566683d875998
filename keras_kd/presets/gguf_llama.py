"""Conversion of a llama-architecture GGUF file (llama.cpp's format) into a
Hugging Face model folder that keras-hub loads.

The folder holds `config.json` (a `LlamaForCausalLM` config), float32
weights in `model.safetensors`, and the byte-level BPE tokenizer rebuilt from
the GGUF vocabulary and merges as `tokenizer.json` and `tokenizer_config.json`
(with the chat template). `keras_hub.models.CausalLM.from_preset(folder)`
loads it as a `Llama3CausalLM`; the `tokenizer.json` is also what LiteRT-LM
bundles embed.

Quantized GGUF tensors (Q4_1, Q8_0, ...) are dequantized with the `gguf`
package: the result is the quantized model in float32, slightly below the
original float weights.
"""

import numpy as np

from keras_kd.utils.io import atomic_write_json

# Bumped when the folder this module writes changes, so caches rebuild.
CONVERTER_VERSION = 2

_LAYER_TENSORS = {
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
_CONTROL_TOKEN = 3


def _import_gguf():
    try:
        import gguf
    except ImportError as error:
        raise ImportError(
            "Reading GGUF files needs the `gguf` package: `pip install gguf`."
        ) from error
    return gguf


def _field(reader, key, default=None):
    field = reader.fields.get(key)
    return default if field is None else field.contents()


def unpermute_rows(weight, num_heads):
    """Undoes llama.cpp's permutation of query/key projection rows.

    llama.cpp's converter reorders each head's rows from the rotary halves
    layout (`[x0..x_{d/2-1}, y0..]`) to interleaved pairs; this restores the
    Hugging Face order, which keras-hub's rotary embedding expects.

    Args:
        weight: `(num_heads * head_dim, in_features)` array, as stored.
        num_heads: heads of this projection (key-value heads for keys).

    Returns:
        The array in Hugging Face row order.

    Example:

    >>> rows = np.arange(4).reshape(4, 1)   # one head of dimension 4
    >>> unpermute_rows(rows, 1).ravel().tolist()
    [0, 2, 1, 3]
    """
    head_dim = weight.shape[0] // num_heads
    return (
        weight.reshape(num_heads, head_dim // 2, 2, *weight.shape[1:])
        .swapaxes(1, 2)
        .reshape(weight.shape)
    )


def _config(reader):
    arch = _field(reader, "general.architecture")
    if arch != "llama":
        raise ValueError(
            "Only llama-architecture GGUF files convert to keras-hub "
            f"(Llama3CausalLM). Received: general.architecture={arch!r}"
        )
    tokens = _field(reader, "tokenizer.ggml.tokens")
    names = {t.name for t in reader.tensors}
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": len(tokens),
        "hidden_size": int(_field(reader, "llama.embedding_length")),
        "intermediate_size": int(_field(reader, "llama.feed_forward_length")),
        "num_hidden_layers": int(_field(reader, "llama.block_count")),
        "num_attention_heads": int(_field(reader, "llama.attention.head_count")),
        "num_key_value_heads": int(
            _field(reader, "llama.attention.head_count_kv")
        ),
        # GGUF stores float32: 1e-5 reads back as 9.9999997e-06.
        "rms_norm_eps": float(
            str(np.float32(_field(reader, "llama.attention.layer_norm_rms_epsilon")))
        ),
        "rope_theta": float(_field(reader, "llama.rope.freq_base", 10000.0)),
        "max_position_embeddings": int(_field(reader, "llama.context_length")),
        "tie_word_embeddings": "output.weight" not in names,
        "bos_token_id": int(_field(reader, "tokenizer.ggml.bos_token_id")),
        "eos_token_id": int(_field(reader, "tokenizer.ggml.eos_token_id")),
        "hidden_act": "silu",
        "torch_dtype": "float32",
    }


def _weights(reader, config):
    gguf = _import_gguf()
    heads = config["num_attention_heads"]
    kv_heads = config["num_key_value_heads"]
    weights = {}
    for tensor in reader.tensors:
        array = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
        array = np.ascontiguousarray(array, dtype=np.float32)
        name = tensor.name.removesuffix(".weight")
        if name == "token_embd":
            weights["model.embed_tokens.weight"] = array
        elif name == "output_norm":
            weights["model.norm.weight"] = array
        elif name == "output":
            weights["lm_head.weight"] = array
        elif name.startswith("blk."):
            _, index, kind = name.split(".", 2)
            if kind not in _LAYER_TENSORS:
                continue
            if kind == "attn_q":
                array = unpermute_rows(array, heads)
            elif kind == "attn_k":
                array = unpermute_rows(array, kv_heads)
            key = f"model.layers.{index}.{_LAYER_TENSORS[kind]}.weight"
            weights[key] = np.ascontiguousarray(array)
    return weights


def byte_level_bpe_tokenizer_json(
    vocabulary, merges, special_tokens=(), split_digits=False
):
    """A Hugging Face `tokenizer.json` (a dict) for a byte-level BPE
    tokenizer (GPT-2 style, as SmolLM2's and keras-hub's Llama3 tokenizers).

    Shared by the GGUF converter and `keras_kd.export.export_litert_lm`,
    whose LiteRT-LM bundles embed it.

    Args:
        vocabulary: the tokens in id order (a list), or a dict of token to id.
        merges: the BPE merges, `"a b"` strings in rank order.
        special_tokens: tokens matched whole before any splitting (control
            tokens such as `"<|im_end|>"`); each must be in `vocabulary`.
        split_digits: split digits one by one before the byte-level split
            (llama.cpp's "smollm" pre-tokenizer).

    Returns:
        The `tokenizer.json` content, ready for `json.dump`.

    Example:

    >>> spec = byte_level_bpe_tokenizer_json(["a", "b", "ab", "<s>"], ["a b"], ["<s>"])
    >>> spec["model"]["vocab"]["ab"], spec["added_tokens"][0]["id"]
    (2, 3)
    """
    if isinstance(vocabulary, dict):
        ids = {token: int(i) for token, i in vocabulary.items()}
    else:
        ids = {token: i for i, token in enumerate(vocabulary)}
    missing = [token for token in special_tokens if token not in ids]
    if missing:
        raise ValueError(
            f"Special tokens {missing!r} are not in the vocabulary. Pass "
            "special_tokens from the vocabulary, or add them to it."
        )
    added = [
        {
            "id": ids[token],
            "content": token,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for token in sorted(set(special_tokens), key=ids.get)
    ]
    byte_level = {
        "type": "ByteLevel",
        "add_prefix_space": False,
        "trim_offsets": True,
        "use_regex": True,
    }
    pre_tokenizer = byte_level
    if split_digits:
        pre_tokenizer = {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Digits", "individual_digits": True},
                byte_level,
            ],
        }
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": byte_level,
        "decoder": byte_level,
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": ids,
            "merges": list(merges),
        },
    }


def _tokenizer(reader):
    """A Hugging Face `tokenizer.json` for GGUF's byte-level BPE ("gpt2")."""
    model = _field(reader, "tokenizer.ggml.model")
    if model != "gpt2":
        raise ValueError(
            "Only byte-level BPE tokenizers (tokenizer.ggml.model='gpt2') "
            f"are converted. Received: tokenizer.ggml.model={model!r}"
        )
    tokens = _field(reader, "tokenizer.ggml.tokens")
    types = _field(reader, "tokenizer.ggml.token_type")
    return byte_level_bpe_tokenizer_json(
        tokens,
        _field(reader, "tokenizer.ggml.merges"),
        special_tokens=[
            token for token, kind in zip(tokens, types) if kind == _CONTROL_TOKEN
        ],
        # llama.cpp's "smollm" pre-tokenizer splits digits one by one first.
        split_digits=_field(reader, "tokenizer.ggml.pre") == "smollm",
    )


def _tokenizer_config(reader, config):
    tokens = _field(reader, "tokenizer.ggml.tokens")
    pad_id = _field(reader, "tokenizer.ggml.padding_token_id")
    return {
        "tokenizer_class": "GPT2Tokenizer",
        "bos_token": tokens[config["bos_token_id"]],
        "eos_token": tokens[config["eos_token_id"]],
        "pad_token": None if pad_id is None else tokens[int(pad_id)],
        "unk_token": tokens[int(_field(reader, "tokenizer.ggml.unknown_token_id", 0))],
        "add_bos_token": bool(_field(reader, "tokenizer.ggml.add_bos_token", False)),
        "add_prefix_space": bool(
            _field(reader, "tokenizer.ggml.add_space_prefix", False)
        ),
        "chat_template": _field(reader, "tokenizer.chat_template"),
        "model_max_length": config["max_position_embeddings"],
    }


def convert_gguf(gguf_path, folder):
    """Writes the Hugging Face folder of a llama-architecture GGUF file.

    Args:
        gguf_path: the `.gguf` file.
        folder: an existing, empty folder to write into (callers stage it
            with `keras_kd.utils.io.atomic_folder`).

    Returns:
        The Hugging Face config (a dict) written to `config.json`.
    """
    from safetensors.numpy import save_file

    reader = _import_gguf().GGUFReader(str(gguf_path))
    config = _config(reader)
    save_file(
        _weights(reader, config),
        str(folder / "model.safetensors"),
        metadata={"format": "pt"},
    )
    atomic_write_json(folder / "tokenizer.json", _tokenizer(reader))
    atomic_write_json(folder / "tokenizer_config.json", _tokenizer_config(reader, config))
    atomic_write_json(folder / "config.json", config)
    return config
