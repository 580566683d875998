"""Greedy text generation from a `.litertlm` bundle in Python, two ways.

- `LiteRTLMGenerator`: a thin wrapper over Google's LiteRT-LM runtime
  (`litert-lm-api`), the engine phones run: raw text in, the runtime
  tokenizes it with the bundle's `tokenizer.json`, prefills, decodes greedily
  (top-k 1) and detokenizes.
- `LiteRTInterpreterGenerator`: the same loop on the plain LiteRT interpreter
  (`ai-edge-litert`) and the Hugging Face `tokenizers` package, for machines
  without the runtime: it reads the model, tokenizer and start/stop tokens
  from the bundle, runs the `prefill_<T>` signatures on the prompt and
  `decode` step by step, and takes the argmax of the logits.

Both return a `Generation`: the text, the generated token ids, the prompt's
ids and the prefill/decode speeds. `read_bundle` returns a bundle's sections
(the `.tflite`, `tokenizer.json`, LLM metadata).

Prompts are raw text: no chat template is applied (the runtime's session is
created with `apply_prompt_template=False`), as keras-hub's
`CausalLM.generate(prompt)`; a start token is added only if the bundle's
metadata has one.
"""

import dataclasses
import io
import json
import os
import time
import zlib

import numpy as np

from keras_kd.utils.validation import check_int, check_prompts_fit

# The signature and tensor names the runtime uses.
from keras_kd.export.litert_lm_graph import DECODE, INPUT_POS, LOGITS, TOKENS


@dataclasses.dataclass
class Generation:
    """One greedy generation.

    Attributes:
        text: the generated text (the prompt excluded).
        token_ids: the generated token ids, the stop token excluded
            (`LiteRTLMGenerator`: None for a token the runtime streamed as
            U+FFFD, part of a UTF-8 character).
        prompt_token_ids: the prompt's ids as the model saw them (start
            token included when the bundle has one).
        prefill_tokens_per_second, decode_tokens_per_second: speeds of this
            call (the runtime's own benchmark figures for
            `LiteRTLMGenerator`).
    """

    text: str
    token_ids: list
    prompt_token_ids: list
    prefill_tokens_per_second: float = None
    decode_tokens_per_second: float = None


def _check_bundle_path(path):
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"No LiteRT-LM bundle at {path!r}. Pass the `.litertlm` file "
            "written by keras_kd.export.export_litert_lm."
        )
    return path


def _check_generate_args(prompt, max_new_tokens):
    """Refuses what the runtime would fail on with "prefill failed" (an
    empty prompt), with an AttributeError (a list), or silently turn into
    a token anyway (`max_new_tokens` below 1).

    Example:

    >>> _check_generate_args(["the tea"], 4)
    Traceback (most recent call last):
    ...
    ValueError: `prompt` is one raw text (a non-empty string); generate each prompt of a list in turn. Received: prompt=['the tea']
    """
    if not isinstance(prompt, str) or not prompt:
        raise ValueError(
            "`prompt` is one raw text (a non-empty string); generate each "
            f"prompt of a list in turn. Received: prompt={prompt!r:.80}"
        )
    check_int("max_new_tokens", max_new_tokens, example=32)


def _check_prompt_fits(prompt, prompt_ids, context_length):
    """`check_prompts_fit` for one prompt of a bundle's context.

    Example:

    >>> _check_prompt_fits("the tea", [1, 2, 3], 3)
    Traceback (most recent call last):
    ...
    ValueError: The prompts ['the tea'] (3 tokens) do not fit the bundle's context of 3 tokens, which holds the prompt and at least one generated token: prompts of at most 2 tokens. Shorten the prompt, or export with a larger max_sequence_length.
    """
    check_prompts_fit(
        [prompt], [len(prompt_ids)], context_length,
        f"the bundle's context of {context_length} tokens",
        "Shorten the prompt, or export with a larger max_sequence_length.",
    )


def read_bundle(path, include_model=True):
    """The sections of a `.litertlm` bundle.

    Args:
        path: the `.litertlm` file.
        include_model: read the model's bytes (False: `"tflite"` is None).

    Returns:
        A dict with `"tflite"` (the model's bytes), `"tokenizer_json"` (the
        Hugging Face `tokenizer.json` text, or None) and `"llm_metadata"`
        (a `LlmMetadata` protobuf message, or None).
    """
    from litert_lm_builder import litertlm_peek
    from litert_lm_builder.litertlm_header_schema_py_generated import (
        AnySectionDataType,
    )
    from litert_lm_builder.runtime.proto import llm_metadata_pb2

    path = _check_bundle_path(path)
    header = litertlm_peek.read_litertlm_header(path, io.StringIO())
    sections = header.SectionMetadata()
    result = {"tflite": None, "tokenizer_json": None, "llm_metadata": None}
    with open(path, "rb") as f:
        for i in range(sections.ObjectsLength() if sections else 0):
            section = sections.Objects(i)
            kind = section.DataType()
            if kind == AnySectionDataType.TFLiteModel and (
                result["tflite"] is not None or not include_model
            ):
                continue
            f.seek(section.BeginOffset())
            data = f.read(section.EndOffset() - section.BeginOffset())
            if kind == AnySectionDataType.TFLiteModel:
                result["tflite"] = data
            elif kind == AnySectionDataType.HF_Tokenizer_Zlib:
                # 8 bytes of uncompressed size, then the zlib stream.
                result["tokenizer_json"] = zlib.decompress(data[8:]).decode("utf-8")
            elif kind == AnySectionDataType.LlmMetadataProto:
                metadata = llm_metadata_pb2.LlmMetadata()
                metadata.ParseFromString(data)
                result["llm_metadata"] = metadata
    if include_model and result["tflite"] is None:
        raise ValueError(f"{path!r} holds no TFLite model section.")
    return result


# What the runtime streams for bytes that are not (yet) a UTF-8 character.
UNDECODED = "\ufffd"


def _token_union_ids(union):
    if union.HasField("token_ids"):
        return list(union.token_ids.ids)
    return []


def _byte_to_char():
    """GPT-2's byte-level alphabet: printable bytes stand for themselves,
    the others for the characters from U+0100 on, in byte order."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def _vocabulary_lookup(tokenizer_json):
    """A function from a decoded piece of text to its token id, if the text
    is exactly one token of the byte-level BPE vocabulary, else None."""
    spec = json.loads(tokenizer_json)
    vocabulary = dict(spec["model"]["vocab"])
    specials = {t["content"]: t["id"] for t in spec.get("added_tokens", [])}
    byte_to_char = _byte_to_char()

    def lookup(text):
        if text in specials:
            return specials[text]
        key = "".join(byte_to_char[b] for b in text.encode("utf-8"))
        return vocabulary.get(key)

    return lookup


class LiteRTLMGenerator:
    """Greedy generation from a `.litertlm` bundle in the LiteRT-LM runtime.

    Args:
        path: the `.litertlm` bundle.
        num_threads: CPU threads (default: the runtime's).
        cache_dir: where the runtime may store its XNNPack weight cache;
            default `":nocache"` (none; the runtime otherwise writes a
            `.xnnpack_cache` file next to the bundle).

    Example (`litertlm_path`: a bundle of a tiny random model, see
    `conftest.py`):

    >>> with LiteRTLMGenerator(litertlm_path) as generator:
    ...     result = generator.generate("the tea", max_new_tokens=4)
    >>> len(result.token_ids), result.prompt_token_ids
    (4, [22, 33, 32, 7, 3])
    """

    def __init__(self, path, num_threads=None, cache_dir=":nocache"):
        import litert_lm

        self.path = _check_bundle_path(path)
        self._litert_lm = litert_lm
        self._lookup = None
        self._context_length = None
        self.engine = litert_lm.Engine(
            self.path,
            backend=litert_lm.Backend.CPU(thread_count=num_threads),
            cache_dir=cache_dir,
            enable_benchmark=True,
        )

    def tokenize(self, text):
        """The runtime's token ids for `text` (no start token)."""
        return list(self.engine.tokenize(text))

    @property
    def context_length(self):
        """The tokens the bundle's context holds, prompt included (its
        `LlmMetadata.max_num_tokens`; 0 when the bundle does not say)."""
        if self._context_length is None:
            metadata = read_bundle(self.path, include_model=False)["llm_metadata"]
            self._context_length = int(metadata.max_num_tokens) if metadata else 0
        return self._context_length

    def _token_id(self, piece):
        if piece and set(piece) == {UNDECODED}:
            # The runtime streams a token that is part of a UTF-8 character
            # (a byte-level piece such as 'âĢ') as U+FFFD: its id cannot
            # be read back, and the vocabulary's own U+FFFD token would be
            # the wrong one.
            return [None]
        if self._lookup is None:
            self._lookup = _vocabulary_lookup(
                read_bundle(self.path, include_model=False)["tokenizer_json"]
            )
        token = self._lookup(piece)
        return [token] if token is not None else self.tokenize(piece)

    def generate(self, prompt, max_new_tokens=32):
        """Greedy continuation of the raw text `prompt`: at most
        `max_new_tokens` tokens, and no more than the context
        (`context_length`) holds after the prompt.

        Token ids are read from the streamed pieces (one per decode step):
        exact, except that a piece the runtime holds back until it completes
        a UTF-8 character covers several tokens, and is re-tokenized, and
        that a token the runtime shows as U+FFFD (part of a character) has
        the id None.

        Raises:
            ValueError: the prompt is empty, or leaves no room for a token
                in the context (checked before the runtime's prefill, which
                fails on it with "prefill failed" alone).
        """
        _check_generate_args(prompt, max_new_tokens)
        start = self.engine.bos_token_id
        prompt_ids = ([start] if start is not None else []) + self.tokenize(prompt)
        if self.context_length:
            _check_prompt_fits(prompt, prompt_ids, self.context_length)
        litert_lm = self._litert_lm
        session = self.engine.create_session(
            apply_prompt_template=False,
            sampler_config=litert_lm.SamplerConfig(top_k=1),
            max_output_tokens=int(max_new_tokens),
        )
        try:
            session.run_prefill([prompt])
            pieces = [
                text
                for response in session.run_decode_async()
                for text in response.texts
            ]
            info = session.get_benchmark_info()
        finally:
            session.close()
        return Generation(
            text="".join(pieces),
            token_ids=[i for piece in pieces for i in self._token_id(piece)],
            prompt_token_ids=prompt_ids,
            prefill_tokens_per_second=info.last_prefill_tokens_per_second,
            decode_tokens_per_second=info.last_decode_tokens_per_second,
        )

    def close(self):
        self.engine.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class LiteRTInterpreterGenerator:
    """Greedy generation from a `.litertlm` bundle on the plain LiteRT
    interpreter, for machines without the LiteRT-LM runtime.

    Runs the loop the runtime runs: the prompt but its last token through
    `prefill_<T>` (in blocks, padded with token 0 at position 0), then
    `decode` one token at a time from the last prompt token, until a stop
    token or `max_new_tokens`.

    Args:
        path: the `.litertlm` bundle.
        num_threads: interpreter threads (default: LiteRT's).

    Example:

    >>> generator = LiteRTInterpreterGenerator(litertlm_path)
    >>> result = generator.generate("the tea", max_new_tokens=4)
    >>> len(result.token_ids)
    4
    """

    def __init__(self, path, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter
        from tokenizers import Tokenizer

        sections = read_bundle(path)
        self.path = os.fspath(path)
        if sections["tokenizer_json"] is None:
            raise ValueError(
                f"{self.path!r} has no Hugging Face tokenizer section; "
                "LiteRTInterpreterGenerator reads tokenizer.json bundles."
            )
        self.tokenizer = Tokenizer.from_str(sections["tokenizer_json"])
        metadata = sections["llm_metadata"]
        self.start_ids = []
        self.stop_ids = set()
        if metadata is not None:
            self.start_ids = _token_union_ids(metadata.start_token)
            for union in metadata.stop_tokens:
                self.stop_ids.update(_token_union_ids(union))
        self.interpreter = Interpreter(
            model_content=sections["tflite"], num_threads=num_threads
        )
        signatures = self.interpreter.get_signature_list()
        self.prefill_lengths = sorted(
            int(name.split("_")[-1])
            for name in signatures
            if name.startswith("prefill_")
        )
        self._decode = self.interpreter.get_signature_runner(DECODE)
        self._prefill = {
            n: self.interpreter.get_signature_runner(f"prefill_{n}")
            for n in self.prefill_lengths
        }
        details = self._decode.get_input_details()
        self.cache_names = sorted(n for n in details if n.startswith("kv_cache_"))
        self._cache_shapes = {n: details[n]["shape"] for n in self.cache_names}
        self.cache_length = int(details[self.cache_names[0]]["shape"][2])

    def tokenize(self, text):
        """The bundle tokenizer's ids for `text` (no start token)."""
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def _block_length(self, remaining):
        fitting = [n for n in self.prefill_lengths if n >= remaining]
        return fitting[0] if fitting else self.prefill_lengths[-1]

    def generate(self, prompt, max_new_tokens=32):
        """Greedy continuation of the raw text `prompt`: at most
        `max_new_tokens` tokens, and, as the runtime, no more than the
        context (`cache_length`) holds after the prompt.

        Raises:
            ValueError: the prompt is empty, or leaves no room for a token
                in the context (the runtime's prefill fails on it).
        """
        _check_generate_args(prompt, max_new_tokens)
        ids = self.start_ids + self.tokenize(prompt)
        if not ids:
            raise ValueError("The prompt is empty: give at least one token.")
        _check_prompt_fits(prompt, ids, self.cache_length)
        max_new_tokens = min(max_new_tokens, self.cache_length - len(ids))
        caches = {
            name: np.zeros(shape, np.float32)
            for name, shape in self._cache_shapes.items()
        }
        start = time.perf_counter()
        step = 0
        pending = ids[:-1]
        while pending:
            length = self._block_length(len(pending))
            block = pending[:length]
            tokens = np.zeros((1, length), np.int32)
            positions = np.zeros((length,), np.int32)
            tokens[0, : len(block)] = block
            positions[: len(block)] = np.arange(step, step + len(block))
            outputs = self._prefill[length](
                **{TOKENS: tokens, INPUT_POS: positions}, **caches
            )
            caches = {name: outputs[name] for name in self.cache_names}
            step += len(block)
            pending = pending[length:]
        prefill_seconds = time.perf_counter() - start

        start = time.perf_counter()
        generated = []
        token = ids[-1]
        while len(generated) < max_new_tokens:
            outputs = self._decode(
                **{
                    TOKENS: np.array([[token]], np.int32),
                    INPUT_POS: np.array([step], np.int32),
                },
                **caches,
            )
            caches = {name: outputs[name] for name in self.cache_names}
            step += 1
            token = int(np.argmax(outputs[LOGITS][0, -1]))
            if token in self.stop_ids:
                break
            generated.append(token)
        decode_seconds = time.perf_counter() - start
        return Generation(
            text=self.tokenizer.decode(generated, skip_special_tokens=False),
            token_ids=generated,
            prompt_token_ids=ids,
            prefill_tokens_per_second=(
                (len(ids) - 1) / prefill_seconds if len(ids) > 1 else None
            ),
            decode_tokens_per_second=(
                len(generated) / decode_seconds if generated else None
            ),
        )
