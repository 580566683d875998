"""`keras_kd.export.shared_embedding.share_int8_embedding` on tiny random
Llama 3 models with tied embeddings: one int8 table instead of two, the
lookup dequantized row by row (NumPy reference), logits close to Keras,
constant data aligned, and a dynamic-int8 bundle that the LiteRT-LM
runtime runs."""

import keras
import keras_hub
import numpy as np
import pytest

from keras_kd.export import export_litert_lm
from keras_kd.export import litert_lm as litert_lm_module
from keras_kd.export.litert_lm import embedding_copies
from keras_kd.export.shared_embedding import share_int8_embedding
from keras_kd.utils.testing import tiny_llama3_causal_lm

VOCABULARY, HIDDEN, CONTEXT = 42, 64, 16


@pytest.fixture(scope="module")
def causal_lm():
    return tiny_llama3_causal_lm(num_layers=1, hidden_dim=HIDDEN, seed=3)


@pytest.fixture(scope="module")
def converted(causal_lm, tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("int8"))
    raw = litert_lm_module._convert(causal_lm, CONTEXT, (4,), "dynamic_int8", workdir)
    return raw, share_int8_embedding(raw, VOCABULARY, HIDDEN)


def _interpreter(buffer):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=buffer, experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    return interpreter


def _decode(interpreter, token, position=0):
    decode = interpreter.get_signature_runner("decode")
    caches = {
        name: np.zeros(detail["shape"], np.float32)
        for name, detail in decode.get_input_details().items()
        if name.startswith("kv_cache_")
    }
    return decode(
        tokens=np.array([[token]], np.int32),
        input_pos=np.array([position], np.int32),
        **caches,
    )["logits"][0, 0]


def test_one_table_instead_of_two(converted, tmp_path):
    raw, shared = converted
    assert embedding_copies(raw, VOCABULARY, HIDDEN) == 2
    assert embedding_copies(shared, VOCABULARY, HIDDEN) == 1
    # A wide table (4096 x 64: 256 KiB in int8) shows in the size: one int8
    # copy fewer, a float32 scale per row more (and under 4 KiB of added
    # ops, tensors and alignment).
    keras.utils.set_random_seed(0)
    wide = keras_hub.models.Llama3CausalLM(keras_hub.models.Llama3Backbone(
        vocabulary_size=4096, num_layers=1, num_query_heads=4, num_key_value_heads=2,
        hidden_dim=HIDDEN, intermediate_dim=32, tie_word_embeddings=True,
    ))
    wide_raw = litert_lm_module._convert(wide, CONTEXT, (4,), "dynamic_int8", str(tmp_path))
    table_bytes = 4096 * HIDDEN
    saved = len(wide_raw) - len(share_int8_embedding(wide_raw, 4096, HIDDEN))
    assert table_bytes - 4 * 4096 - 4096 < saved <= table_bytes - 4 * 4096
    # Nothing left to share: the bytes come back as they were.
    assert share_int8_embedding(shared, VOCABULARY, HIDDEN) is shared


def test_lookup_is_the_rows_times_their_scales(converted, causal_lm):
    _, shared = converted
    interpreter = _interpreter(shared)
    token = 17
    _decode(interpreter, token)
    tensors = {d["name"]: d for d in interpreter.get_tensor_details()}
    table = interpreter.get_tensor(tensors["shared_embedding"]["index"])
    scales = interpreter.get_tensor(tensors["shared_embedding_row_scales"]["index"])[:, 0]
    assert table.dtype == np.int8 and table.shape == (VOCABULARY, HIDDEN)
    # The int8 rows times their own scales are the Keras table, to half a
    # step of each row's scale.
    embeddings = keras.ops.convert_to_numpy(causal_lm.backbone.token_embedding.embeddings)
    assert np.all(np.abs(table * scales[:, None] - embeddings) <= scales[:, None] / 2 + 1e-7)
    # The lookup's output (the tensor the MUL writes, named after the
    # DEQUANTIZE it replaced) is the token's row times the row's scale.
    lookups = [name[: -len("/rows")] for name in tensors if name.endswith("/rows")]
    assert len(lookups) == 1
    looked_up = interpreter.get_tensor(tensors[lookups[0]]["index"])
    np.testing.assert_allclose(
        looked_up.reshape(-1), table[token] * scales[token], rtol=1e-6
    )


def test_logits_close_to_keras_and_data_aligned(converted, causal_lm):
    from tensorflow.lite.python import schema_py_generated as schema

    _, shared = converted
    token = 9
    logits = _decode(_interpreter(shared), token)
    x = {"token_ids": np.array([[token]]), "padding_mask": np.array([[1]])}
    expected = keras.ops.convert_to_numpy(causal_lm(x))[0, 0]
    np.testing.assert_allclose(logits, expected, atol=0.02 * np.abs(expected).max())
    model = schema.Model.GetRootAsModel(shared, 0)
    start = np.frombuffer(shared, np.uint8).ctypes.data
    for i in range(model.BuffersLength()):
        if model.Buffers(i).DataLength():
            assert (model.Buffers(i).DataAsNumpy().ctypes.data - start) % 16 == 0, i


def test_dynamic_int8_bundle_runs_in_the_runtime(causal_lm, tmp_path):
    exported = export_litert_lm(
        causal_lm, tmp_path / "int8.litertlm", max_sequence_length=CONTEXT,
        prefill_lengths=(4,), quantization="dynamic_int8",
        verification_prompts=["the tea", "a cat sat on the", "in the sun"], max_new_tokens=6,
    )
    assert exported.embedding_copies == 1
    verification = exported.verification
    # Greedy tokens from raw text, next to Keras's: int8 rounding may flip
    # a close call, but most positions agree.
    assert all(p.prompt_ids_match for p in verification.prompts)
    assert verification.token_agreement >= 0.5
