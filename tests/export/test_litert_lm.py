"""Tests of keras_kd.export.export_litert_lm on a tiny random Llama 3: the
LiteRT-LM runtime and the plain LiteRT interpreter generate the Keras
model's greedy tokens from raw text; the graph's logits and caches match
Keras; the file has builtin ops only and one embedding table; arguments and
existing files are refused before any work. One float32 export per module."""

import os
import re

import keras
import keras_hub
import numpy as np
import pytest

from keras_kd.export import (
    LiteRTInterpreterGenerator,
    LiteRTLMGenerator,
    export_litert_lm,
)
from keras_kd.export import litert_lm as litert_lm_module
from keras_kd.export.litert_lm import (
    VARIABLE_OPS,
    embedding_copies,
    model_ops,
)
from keras_kd.export.litert_lm_graph import CachedDecoder
from keras_kd.export.litert_lm_runtime import read_bundle
from keras_kd.export.litert_lm_verify import verify_litert_lm
from keras_kd.transfer.causal_lm import prompt_token_ids
from keras_kd.utils.testing import tiny_llama3_tokenizer, tiny_qwen_causal_lm

CONTEXT = 32
PREFILLS = (4, 8)
NEW_TOKENS = 10
PROMPTS = [
    "the tea",
    "a cat sat on the",
    "in the sun, there",
    "a",
    "  two  spaces, then.",
    "re in an on er",
]


def _tiny_llama(num_layers=4, seed=2, vocabulary_size=None):
    """The conftest's tiny Llama 3, with attention kernels scaled up 20x so
    that greedy continuations change tokens instead of repeating one, and
    random norm scales."""
    # The tiny tokenizer of tests/conftest.py (`tiny_causal_lm`).
    tokenizer = tiny_llama3_tokenizer()
    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.Llama3Backbone(
        vocabulary_size=vocabulary_size or tokenizer.vocabulary_size(),
        num_layers=num_layers,
        num_query_heads=4,
        num_key_value_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        tie_word_embeddings=True,
        layer_norm_epsilon=1e-5,
    )
    rng = np.random.default_rng(seed)
    for variable in backbone.weights:
        if "self_attention/" in variable.path and "norm" not in variable.path:
            variable.assign(np.asarray(variable) * 20.0)
        elif "norm" in variable.path:
            # Trained-like scales, not ones: a constant multiply before the
            # output layer must not be folded into a second embedding table.
            variable.assign(rng.uniform(0.5, 1.5, variable.shape))
    preprocessor = keras_hub.models.Llama3CausalLMPreprocessor(
        tokenizer, sequence_length=16, add_start_token=False
    )
    return keras_hub.models.Llama3CausalLM(backbone, preprocessor)


@pytest.fixture(scope="module")
def causal_lm():
    return _tiny_llama()


@pytest.fixture(scope="module")
def exported(causal_lm, tmp_path_factory):
    folder = tmp_path_factory.mktemp("litert_lm")
    return export_litert_lm(
        causal_lm,
        folder / "tiny.litertlm",
        max_sequence_length=CONTEXT,
        prefill_lengths=PREFILLS,
        verification_prompts=PROMPTS,
        max_new_tokens=NEW_TOKENS,
    )


@pytest.fixture(scope="module")
def tflite_bytes(exported):
    with open(exported.tflite_path, "rb") as f:
        return f.read()


def _keras_logits(causal_lm, ids):
    """NumPy reference: the whole sequence through the Keras backbone."""
    ids = np.array([ids], np.int32)
    hidden = causal_lm.backbone({"token_ids": ids, "padding_mask": np.ones_like(ids)})
    return np.asarray(causal_lm.backbone.token_embedding(hidden, reverse=True))[0]


def test_files_written_and_nothing_else(exported):
    folder = os.path.dirname(exported.path)
    assert sorted(os.listdir(folder)) == ["tiny.litertlm", "tiny.tflite"]
    assert exported.size_bytes == os.path.getsize(exported.path)
    assert exported.prefill_lengths == PREFILLS
    assert exported.activation_type == "float32"  # float32 asks for fp32
    assert exported.embedding_copies == 1
    sections = read_bundle(exported.path)
    with open(exported.tflite_path, "rb") as f:
        assert sections["tflite"] == f.read()
    metadata = sections["llm_metadata"]
    assert metadata.max_num_tokens == CONTEXT
    assert not metadata.HasField("start_token")  # SmolLM2-like: no BOS
    assert [list(t.token_ids.ids) for t in metadata.stop_tokens] == [[2]]


def test_runtime_generates_keras_greedy_tokens(exported, causal_lm):
    report = exported.verification
    assert report.all_identical and report.identical_prompts == 1.0
    assert report.token_agreement == 1.0
    assert [c.prompt for c in report.prompts] == PROMPTS
    tokenizer = causal_lm.preprocessor.tokenizer
    for comparison in report.prompts:
        assert comparison.prompt_ids_match
        assert comparison.litert_tokens == comparison.keras_tokens
        assert len(comparison.keras_tokens) == NEW_TOKENS
        # The runtime's text is the Keras tokens' text.
        assert comparison.litert_text == tokenizer.detokenize(
            comparison.keras_tokens
        )
    # The continuations are not one repeated token: the check has teeth.
    assert any(len(set(c.keras_tokens)) > 2 for c in report.prompts)
    assert report.prefill_tokens_per_second > 0
    assert report.decode_tokens_per_second > 0


def test_generator_wrappers_agree_with_keras(exported, causal_lm):
    expected = {c.prompt: c.keras_tokens for c in exported.verification.prompts}
    tokenizer = causal_lm.preprocessor.tokenizer
    interpreter = LiteRTInterpreterGenerator(exported.path)
    with LiteRTLMGenerator(exported.path) as runtime:
        for prompt in PROMPTS[:3]:
            keras_ids = [int(i) for i in np.asarray(tokenizer(prompt))]
            for generator in (runtime, interpreter):
                result = generator.generate(prompt, max_new_tokens=NEW_TOKENS)
                assert result.token_ids == expected[prompt]
                assert result.prompt_token_ids == keras_ids
                assert result.text == tokenizer.detokenize(expected[prompt])
            # Shorter asks stop earlier, with the same first tokens.
            assert runtime.generate(prompt, max_new_tokens=3).token_ids == (
                expected[prompt][:3]
            )
        # The runtime failed on these with "prefill failed" or an
        # AttributeError, or generated a token for max_new_tokens=0.
        for generator in (runtime, interpreter):
            for prompt, tokens, message in (
                ("", 4, "`prompt` is one raw text"),
                (PROMPTS[:2], 4, "generate each prompt of a list in turn"),
                (PROMPTS[0], 0, "max_new_tokens=0"),
            ):
                with pytest.raises(ValueError, match=re.escape(message)):
                    generator.generate(prompt, max_new_tokens=tokens)


def test_verification_stops_where_the_context_ends(exported, causal_lm):
    # Keras generated past the bundle's context, where the runtime stops:
    # the check reported a disagreement and the export refused the bundle.
    report = verify_litert_lm(exported.path, causal_lm, PROMPTS, max_new_tokens=2 * CONTEXT)
    assert report.all_identical and report.token_agreement == 1.0
    totals = [
        len(prompt_token_ids(causal_lm, [c.prompt])[0]) + len(c.keras_tokens) for c in report.prompts
    ]
    assert max(totals) == CONTEXT
    with pytest.raises(ValueError, match=r"\['a a a a a .*'\] \(40 tokens\) do not fit a context of max_sequence_length=32"):
        verify_litert_lm(exported.path, causal_lm, ["the tea", " ".join(["a"] * 40)])


def test_interpreter_stops_where_the_runtime_stops(exported):
    # A prompt over the context returned [] without a word, and the
    # interpreter generated one token more than the runtime's context holds.
    interpreter = LiteRTInterpreterGenerator(exported.path)
    with LiteRTLMGenerator(exported.path) as runtime:
        for length in (CONTEXT - 3, CONTEXT - 1):
            prompt = " ".join(["a"] * length)
            expected = runtime.generate(prompt, max_new_tokens=NEW_TOKENS).token_ids
            assert len(expected) == CONTEXT - length
            assert interpreter.generate(prompt, max_new_tokens=NEW_TOKENS).token_ids == expected
        # The runtime failed with "litert_lm_session_run_prefill failed" alone.
        assert runtime.context_length == CONTEXT
        for length in (CONTEXT, CONTEXT + 8):
            for generator in (interpreter, runtime):
                with pytest.raises(ValueError, match=rf"\({length} tokens\) do not fit the bundle's context of {CONTEXT} tokens"):
                    generator.generate(" ".join(["a"] * length), max_new_tokens=NEW_TOKENS)


def test_runtime_tokenizer_matches_keras(exported, causal_lm):
    tokenizer = causal_lm.preprocessor.tokenizer
    texts = PROMPTS + ["the the the", "sun,rain.", "a\nb", "in  the  end"]
    interpreter = LiteRTInterpreterGenerator(exported.path)
    with LiteRTLMGenerator(exported.path) as runtime:
        for text in texts:
            expected = [int(i) for i in np.asarray(tokenizer(text))]
            assert runtime.tokenize(text) == expected, text
            assert interpreter.tokenize(text) == expected, text


def test_decode_logits_match_keras_and_cache_layout(exported, causal_lm):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=exported.tflite_path)
    assert sorted(interpreter.get_signature_list()) == ["decode", "prefill_4", "prefill_8"]
    decode = interpreter.get_signature_runner("decode")
    prefill = interpreter.get_signature_runner("prefill_8")
    details = decode.get_input_details()
    names = sorted(n for n in details if n.startswith("kv_cache_"))
    assert len(names) == 2 * causal_lm.backbone.num_layers
    for name in names:  # [1, kv_heads, context, head_dim]
        assert details[name]["shape"].tolist() == [1, 2, CONTEXT, 4]
    assert details["tokens"]["shape"].tolist() == [1, 1]
    assert decode.get_output_details()["logits"]["shape"].tolist() == [1, 1, 42]

    rng = np.random.default_rng(0)
    ids = rng.integers(3, 42, size=CONTEXT).tolist()
    reference = _keras_logits(causal_lm, ids)
    caches = {n: np.zeros((1, 2, CONTEXT, 4), np.float32) for n in names}

    def run_prefill(start, block):
        tokens = np.zeros((1, 8), np.int32)
        positions = np.zeros(8, np.int32)  # the runtime pads at position 0
        tokens[0, : len(block)] = block
        positions[: len(block)] = np.arange(start, start + len(block))
        out = prefill(tokens=tokens, input_pos=positions, **caches)
        caches.update({n: out[n] for n in names})

    def run_decode(position):
        out = decode(
            tokens=np.array([[ids[position]]], np.int32),
            input_pos=np.array([position], np.int32),
            **caches,
        )
        caches.update({n: out[n] for n in names})
        return out["logits"][0, 0]

    # A padded prefill block, then decode steps, each against Keras.
    run_prefill(0, ids[:5])
    for position in range(5, 12):
        np.testing.assert_allclose(
            run_decode(position), reference[position], atol=1e-4, rtol=1e-4
        )
    # A block that runs past the end of the cache (28 + 8 > 32): written
    # where it belongs, not shifted back by the op's index clamping.
    run_prefill(12, ids[12:20])
    run_prefill(20, ids[20:28])
    run_prefill(28, ids[28:31])
    np.testing.assert_allclose(
        run_decode(31), reference[31], atol=1e-4, rtol=1e-4
    )


def test_builtin_ops_only_and_one_embedding_table(tflite_bytes, causal_lm):
    ops = model_ops(tflite_bytes)
    assert {"FULLY_CONNECTED", "GATHER", "DYNAMIC_UPDATE_SLICE"} <= ops
    assert not ops & set(VARIABLE_OPS)
    assert not [op for op in ops if op.startswith("CUSTOM:")]
    backbone = causal_lm.backbone
    assert embedding_copies(tflite_bytes, backbone.vocabulary_size, 16) == 1


def test_tied_embedding_stored_once_by_size(tmp_path):
    # A wide table (4096 x 16 floats: 256 KiB) dominates the file, so its
    # size shows one copy, not two.
    model = _tiny_llama(num_layers=1, vocabulary_size=4096)
    buffer = litert_lm_module._convert(model, 16, (4,), "none", str(tmp_path))
    table_bytes = 4096 * 16 * 4
    assert table_bytes < len(buffer) < 1.4 * table_bytes
    assert embedding_copies(buffer, 4096, 16) == 1


@pytest.fixture
def no_conversion(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("conversion started before the arguments were checked")

    monkeypatch.setattr(litert_lm_module, "_convert", fail)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"quantization": "int4"}, "quantization='int4'"),
        ({"max_sequence_length": 0}, "max_sequence_length=0"),
        ({"prefill_lengths": ()}, "prefill_lengths=()"),
        ({"prefill_lengths": (64,), "max_sequence_length": 32}, "exceed"),
        ({"prefill_lengths": (8, "16")}, "prefill_lengths="),
        ({"verification_prompts": "the tea"}, "verification_prompts='the tea'"),
        ({"verification_prompts": ["ok", ""]}, "non-empty strings"),
        ({"max_new_tokens": 0}, "max_new_tokens=0"),
        ({"min_token_agreement": 2}, "min_token_agreement=2"),
        ({"tokenizer_json_path": "missing.json"}, "missing.json"),
        ({"activation_type": "int8"}, "activation_type='int8'"),
        # It failed with "bad argument type for built-in operation" after
        # the conversion.
        ({"chat_template": True}, "chat_template=True"),
        # The runtime's prefill failed on it, after the conversion.
        ({"verification_prompts": ["a " * 20], "max_sequence_length": 16, "prefill_lengths": (8,)},
         "(21 tokens) do not fit a context of max_sequence_length=16 tokens"),
        # The default prompts too.
        ({"max_sequence_length": 4, "prefill_lengths": (4,)},
         "'The capital of France is', "),
    ],
)
def test_bad_arguments_raise_before_work(
    causal_lm, tmp_path, no_conversion, kwargs, message
):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        export_litert_lm(causal_lm, tmp_path / "m.litertlm", **kwargs)
    assert os.listdir(tmp_path) == []


def test_bad_path_and_model_raise_before_work(causal_lm, tmp_path, no_conversion):
    with pytest.raises(ValueError, match=r"\.litertlm"):
        export_litert_lm(causal_lm, tmp_path / "m.tflite")
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=10, num_layers=1, num_heads=1, hidden_dim=4,
        intermediate_dim=8, max_sequence_length=8,
    )
    with pytest.raises(ValueError, match="the Llama, Qwen 2 and Mistral families.*Received: BertBackbone"):
        export_litert_lm(backbone, tmp_path / "m.litertlm")
    assert os.listdir(tmp_path) == []


def test_a_template_file_or_a_folder_path_is_refused_before_work(causal_lm, tmp_path, no_conversion):
    template = tmp_path / "template.jinja"
    template.write_text("{{ messages }}")
    # The path itself was stored as the template.
    with pytest.raises(ValueError, match=r"is the path of a file \(.*\), not a template: .*read_text"):
        export_litert_lm(causal_lm, tmp_path / "m.litertlm", chat_template=str(template))
    # A folder there failed after the conversion and left the .tflite.
    (tmp_path / "out.litertlm").mkdir()
    with pytest.raises(IsADirectoryError, match=r"out.litertlm' is a folder"):
        export_litert_lm(causal_lm, tmp_path / "out.litertlm", overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["out.litertlm", "template.jinja"]


@pytest.mark.parametrize("existing", ["m.litertlm", "m.tflite"])
def test_existing_files_refused_without_overwrite(
    causal_lm, tmp_path, no_conversion, existing
):
    (tmp_path / existing).write_bytes(b"user data")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_litert_lm(causal_lm, tmp_path / "m.litertlm")
    assert os.listdir(tmp_path) == [existing]
    assert (tmp_path / existing).read_bytes() == b"user data"


def _tiny_decoder(family, seed=2):
    """A tiny random Qwen 2 (`tiny_qwen_causal_lm`: query, key and value
    biases, tied embeddings) or Mistral (untied, a 512-token sliding window,
    no preprocessor), attention kernels scaled up 20x and random norm
    scales and biases, as `_tiny_llama`'s."""
    if family == "Qwen":
        causal_lm = tiny_qwen_causal_lm(seed=seed)
    else:
        keras.utils.set_random_seed(seed)
        backbone = keras_hub.models.MistralBackbone(
            vocabulary_size=42, num_layers=3, hidden_dim=16, intermediate_dim=32,
            num_query_heads=4, num_key_value_heads=2,
        )
        causal_lm = keras_hub.models.MistralCausalLM(backbone, None)
    rng = np.random.default_rng(seed)
    for variable in causal_lm.backbone.weights:
        if "self_attention/" in variable.path and "norm" not in variable.path:
            noise = rng.normal(size=variable.shape) if "bias" in variable.path else 0.0
            variable.assign(np.asarray(variable) * 20.0 + noise)
        elif "norm" in variable.path:
            variable.assign(rng.uniform(0.5, 1.5, variable.shape))
    return causal_lm


@pytest.mark.parametrize("family", ["Llama3", "Qwen", "Mistral"])
def test_graph_matches_keras_cached_call(causal_lm, family):
    """The exported graph's arithmetic, in Keras: prefill then decode equals
    keras-hub's own `call_with_cache`, logits for logits."""
    if family != "Llama3":
        causal_lm = _tiny_decoder(family)
    decoder = CachedDecoder(causal_lm.backbone, 16)
    ids = np.array([[5, 9, 12, 30, 7, 3, 8, 20]], np.int32)
    _, caches = decoder.forward(ids[:, :5], np.arange(5, dtype=np.int32), decoder.empty_caches())
    cache = causal_lm._build_cache(np.pad(ids[:, :5], ((0, 0), (0, 11))))[1]
    for step in range(5, 8):
        ours, caches = decoder.forward(
            ids[:, step : step + 1], np.array([step], np.int32), caches
        )
        theirs, _, cache = causal_lm.call_with_cache(ids[:, step : step + 1], cache, step)
        np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), atol=1e-5)


def test_a_token_streamed_as_a_replacement_character_matches_its_byte_fragment(exported):
    # A byte-level token such as 'âĢ' (the first two bytes of '…') reaches
    # the runtime's stream as U+FFFD: its id cannot be read back, and the
    # vocabulary's own U+FFFD token ('ï¿½') is another id. Read back as that
    # id, one such token failed a float32 bundle that generated exactly
    # Keras's tokens (token agreement 0.727 in `keras-kd demo --task
    # generation --quick` on tweets).
    from keras_kd.export import litert_lm_verify
    from keras_kd.export.litert_lm_runtime import Generation

    pieces = ["<|im_start|>", "<|im_end|>", "a", "Ġ", "â", "Ģ", "ï", "¿", "½", "¦", "âĢ", "ï¿", "ï¿½",
              "<|endoftext|>"]
    tokenizer = keras_hub.models.Llama3Tokenizer(
        vocabulary={piece: i for i, piece in enumerate(pieces)},
        merges=["â Ģ", "ï ¿", "ï¿ ½"], bos_token="<|im_start|>", eos_token="<|im_end|>",
        misc_special_tokens={"<|endoftext|>"},
    )
    model = type("LM", (), {"preprocessor": type("P", (), {"tokenizer": tokenizer})})()
    is_fragment = litert_lm_verify._byte_fragments(model)
    # 'a' is a character; 'âĢ', a lone '¦' (a continuation byte) and the
    # U+FFFD token itself are shown as U+FFFD.
    assert [is_fragment(pieces.index(p)) for p in ("a", "âĢ", "¦", "ï¿½")] == [False, True, True, True]
    streamed = Generation(text="\ufffda", token_ids=[None, 2], prompt_token_ids=[])
    same = litert_lm_verify._compare("p", [], [pieces.index("âĢ"), 2], streamed, is_fragment)
    assert same.identical and same.first_difference is None
    other = litert_lm_verify._compare("p", [], [2, 2], streamed, is_fragment)
    assert not other.identical and other.first_difference == 0
    with LiteRTLMGenerator(exported.path) as runtime:
        assert runtime._token_id("\ufffd") == [None]
        assert runtime._token_id("a") == [runtime.tokenize("a")[0]]


def test_a_qwen_bundle_generates_keras_greedy_tokens(tmp_path):
    # Qwen 2's layers are Llama's with query, key and value biases; its
    # byte-level BPE tokenizer writes the same tokenizer.json.
    causal_lm = _tiny_decoder("Qwen")
    result = export_litert_lm(
        causal_lm, tmp_path / "qwen.litertlm", max_sequence_length=CONTEXT,
        prefill_lengths=(8,), verification_prompts=PROMPTS, max_new_tokens=NEW_TOKENS,
    )
    report = result.verification
    assert report.all_identical and report.token_agreement == 1.0
    for comparison in report.prompts:
        assert comparison.litert_tokens == comparison.keras_tokens
        assert len(comparison.keras_tokens) == NEW_TOKENS
    # The continuations are not one repeated token: the check has teeth.
    assert any(len(set(c.keras_tokens)) > 2 for c in report.prompts)
    with LiteRTLMGenerator(result.path) as generator:
        result = generator.generate(PROMPTS[1], max_new_tokens=NEW_TOKENS)
    assert result.token_ids == report.prompts[1].keras_tokens


def test_mistral_context_past_its_sliding_window_is_refused(tmp_path, no_conversion):
    causal_lm = _tiny_decoder("Mistral")
    with pytest.raises(ValueError, match=(
            r"max_sequence_length=1024 exceeds the 512-token sliding attention window of "
            r"this MistralBackbone.*Pass max_sequence_length <= 512")):
        export_litert_lm(causal_lm, tmp_path / "m.litertlm", max_sequence_length=1024)
    # Within the window the graph is the model (test_graph_matches_keras_cached_call);
    # its SentencePiece tokenizer needs a tokenizer.json of its own.
    with pytest.raises(ValueError, match=r"tokenizer=NoneType.*tokenizer_json_path='path/to/tokenizer.json'"):
        export_litert_lm(causal_lm, tmp_path / "m.litertlm", max_sequence_length=256)
    assert os.listdir(tmp_path) == []
