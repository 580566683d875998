"""`export_litert_lm`: a keras-hub causal LM to a LiteRT-LM bundle
(`.litertlm`) that Google's LiteRT-LM runtime runs from raw text on
Android, iOS, the web and desktops, and the `.tflite` inside it.

The bundle holds one TFLite model with `prefill_<T>` and `decode` signatures
and per-layer key-value caches (`litert_lm_graph.CachedDecoder`), the Hugging
Face `tokenizer.json` of the model's byte-level BPE tokenizer, and the LLM
metadata (start and stop tokens, context length, optional chat template).
`model_ops` and `embedding_copies` inspect a converted model.
"""

import contextlib
import dataclasses
import io
import os
import shutil
import tempfile
from pathlib import Path

from keras_kd.datasets.prompt_responses import start_token_ids
from keras_kd.export import litert_lm_graph as graph
from keras_kd.export.litert_lm_verify import (
    DEFAULT_VERIFICATION_PROMPTS,
    check_prompt_lengths,
    check_prompts,
    stop_token_ids,
    verify_litert_lm,
)
from keras_kd.export.shared_embedding import share_int8_embedding
from keras_kd.utils.io import atomic_write, atomic_write_bytes, atomic_write_json
from keras_kd.utils.validation import check_choice, check_int, check_not_a_distiller

QUANTIZATIONS = ("none", "float16", "dynamic_int8")
# The bundle's preferred activation type (the runtime's default for a text
# decoder is float16 where the hardware has it).
ACTIVATION_TYPES = {"float32": "fp32", "float16": "fp16"}
# Ops of TF resource variables: weights not frozen into constants, which
# the runtime runs as zeros (empty text, no error).
VARIABLE_OPS = ("VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE")


@dataclasses.dataclass
class LiteRTLMExport:
    """What `export_litert_lm` wrote.

    Attributes:
        path: the `.litertlm` bundle.
        tflite_path: the `.tflite` model beside it (the bundle's model).
        size_bytes: the bundle's size.
        tflite_size_bytes: the `.tflite`'s size.
        quantization: the quantization applied.
        max_sequence_length: the context length (prompt and generated
            tokens).
        prefill_lengths: the `prefill_<T>` signatures' lengths.
        activation_type: the activation precision the bundle asks for
            (None: the runtime's default).
        embedding_copies: stored copies of a tied embedding table (1:
            with `"dynamic_int8"` the lookup reads the output layer's int8
            table, `shared_embedding.share_int8_embedding`); None when
            untied.
        verification: the `LiteRTLMVerification`, or None with
            `verify=False`.
    """

    path: str
    tflite_path: str
    size_bytes: int
    tflite_size_bytes: int
    quantization: str
    max_sequence_length: int
    prefill_lengths: tuple
    activation_type: str = None
    embedding_copies: int = None
    verification: object = None


def _check_prefill_lengths(prefill_lengths, max_sequence_length):
    if isinstance(prefill_lengths, int) and not isinstance(prefill_lengths, bool):
        prefill_lengths = (prefill_lengths,)
    try:
        lengths = tuple(prefill_lengths)
    except TypeError:
        lengths = None
    if not lengths or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 1
        for n in lengths
    ):
        raise ValueError(
            "`prefill_lengths` must be a non-empty list of ints >= 1, e.g. "
            f"(32,) or (8, 128). Received: prefill_lengths={prefill_lengths!r}"
        )
    too_long = [n for n in lengths if n > max_sequence_length]
    if too_long:
        raise ValueError(
            f"prefill_lengths {too_long} exceed max_sequence_length="
            f"{max_sequence_length}, the context length. Pass prefill lengths "
            f"<= {max_sequence_length}. Received: "
            f"prefill_lengths={prefill_lengths!r}"
        )
    return tuple(sorted(set(lengths)))


def _check_path(path, overwrite):
    path = Path(path)
    if path.suffix != ".litertlm":
        raise ValueError(
            "`path` is the bundle and must end in `.litertlm`, e.g. "
            f"'model.litertlm' (the .tflite is written beside it). "
            f"Received: path={os.fspath(path)!r}"
        )
    tflite_path = path.with_suffix(".tflite")
    for p in (path, tflite_path):
        # overwrite=True replaces files; a folder there failed only after
        # the conversion, with the .tflite already moved in beside it.
        if os.path.isdir(p):
            raise IsADirectoryError(
                f"{os.fspath(p)!r} is a folder; the bundle and its .tflite are "
                "files. Choose another path, e.g. "
                f"{os.fspath(Path(p) / 'model.litertlm')!r}."
            )
    if not overwrite:
        for p in (path, tflite_path):
            if os.path.lexists(p):
                raise FileExistsError(
                    f"{os.fspath(p)!r} already exists. Pass overwrite=True to "
                    "replace it, or choose another path."
                )
    return path, tflite_path


def _check_chat_template(chat_template):
    """Refuses a chat template that is not Jinja text: `True` failed after
    the conversion, and a file's path was stored as the template itself."""
    if chat_template is None:
        return
    if not isinstance(chat_template, str) or not chat_template.strip():
        raise ValueError(
            "`chat_template` must be the text of a Jinja chat template, e.g. "
            "tokenizer_config['chat_template']. Received: "
            f"chat_template={chat_template!r:.80}"
        )
    if "{" not in chat_template and os.path.isfile(chat_template):
        raise ValueError(
            f"`chat_template` is the path of a file ({chat_template!r}), "
            "not a template: pass its text, "
            "`Path(path).read_text(encoding='utf-8')`."
        )


def _tokenizer(causal_lm):
    from keras_hub.tokenizers import BytePairTokenizer

    preprocessor = getattr(causal_lm, "preprocessor", None)
    tokenizer = getattr(preprocessor, "tokenizer", None)
    if not isinstance(tokenizer, BytePairTokenizer):
        raise ValueError(
            "export_litert_lm writes the Hugging Face tokenizer.json of the "
            "model's byte-level BPE tokenizer (as Llama 3, SmolLM2 and Qwen use), "
            "read from `causal_lm.preprocessor.tokenizer`. Received: "
            f"tokenizer={type(tokenizer).__name__}. Attach the preset's "
            "preprocessor, or pass tokenizer_json_path='path/to/tokenizer.json'."
        )
    return tokenizer


def tokenizer_json(causal_lm):
    """The Hugging Face `tokenizer.json` (a dict) of `causal_lm`'s byte-level
    BPE tokenizer: its vocabulary, merges and special tokens, pre-tokenized
    as GPT-2 (which keras-hub's byte-pair tokenizer reproduces)."""
    from keras_kd.presets.gguf_llama import byte_level_bpe_tokenizer_json

    tokenizer = _tokenizer(causal_lm)
    return byte_level_bpe_tokenizer_json(
        tokenizer.vocabulary,
        [m for m in tokenizer.merges if not m.lstrip().startswith("#version:")],
        special_tokens=list(tokenizer.special_tokens or ()),
    )


def llm_metadata(causal_lm, max_sequence_length, chat_template=None):
    """The bundle's `LlmMetadata` message: stop tokens (those keras-hub's
    `generate` stops at), the start token only when the preprocessor adds
    one, the context length and a generic model type."""
    from litert_lm_builder.runtime.proto import llm_metadata_pb2

    metadata = llm_metadata_pb2.LlmMetadata()
    preprocessor = causal_lm.preprocessor
    # Touched only with a token: an empty start-token message (as extending
    # by nothing leaves) aborts the runtime's session.
    for token in start_token_ids(preprocessor):
        metadata.start_token.token_ids.ids.append(token)
    for token in stop_token_ids(causal_lm):
        metadata.stop_tokens.add().token_ids.ids.append(int(token))
    metadata.max_num_tokens = int(max_sequence_length)
    metadata.llm_model_type.generic_model.SetInParent()
    if chat_template:
        metadata.jinja_prompt_template = chat_template
    return metadata


def _model(buffer):
    from tensorflow.lite.python import schema_py_generated as schema

    return schema, schema.Model.GetRootAs(buffer, 0)


def model_ops(buffer):
    """The op names of a `.tflite` (bytes): builtin names such as
    `"FULLY_CONNECTED"`, custom ones as `"CUSTOM:<code>"` (Flex ops are
    `"CUSTOM:Flex..."`)."""
    schema, model = _model(buffer)
    names = {
        value: name
        for name, value in vars(schema.BuiltinOperator).items()
        if not name.startswith("_")
    }
    ops = set()
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema.BuiltinOperator.CUSTOM:
            ops.add(f"CUSTOM:{code.CustomCode().decode()}")
        else:
            ops.add(names.get(builtin, str(builtin)))
    return ops


def embedding_copies(buffer, vocabulary_size, hidden_dim):
    """How many constant buffers of a `.tflite` (bytes) hold a
    `[vocabulary, hidden]` or `[hidden, vocabulary]` table: 1 when tied
    embeddings are stored once."""
    _, model = _model(buffer)
    shapes = {(vocabulary_size, hidden_dim), (hidden_dim, vocabulary_size)}
    buffers = set()
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        for t in range(subgraph.TensorsLength()):
            tensor = subgraph.Tensors(t)
            if tuple(tensor.ShapeAsNumpy().tolist() or ()) not in shapes:
                continue
            data = model.Buffers(tensor.Buffer())
            if data.DataLength() or data.Size():
                buffers.add(tensor.Buffer())
    return len(buffers)


def check_model_ops(buffer):
    """Raises `ValueError` if a converted model has variable or non-builtin
    (Flex, custom) ops, which the LiteRT-LM runtime cannot run correctly."""
    ops = model_ops(buffer)
    bad = sorted(op for op in ops if op in VARIABLE_OPS or op.startswith("CUSTOM:"))
    if bad:
        raise ValueError(
            f"The converted model has ops the LiteRT-LM runtime cannot run "
            f"correctly: {bad}. Variable ops mean weights were not frozen; "
            "custom/Flex ops are not linked on device. Please report this "
            "with the model."
        )


def _convert(causal_lm, max_sequence_length, prefill_lengths, quantization, workdir):
    import keras
    import tensorflow as tf

    decoder = graph.CachedDecoder(causal_lm.backbone, max_sequence_length)
    archive = keras.export.ExportArchive()
    archive.track(decoder)
    signatures = [graph.DECODE]
    archive.add_endpoint(
        graph.DECODE, decoder.decode, input_signature=decoder.input_signature(1)
    )
    for length in prefill_lengths:
        name = graph.PREFILL.format(length)
        signatures.append(name)
        archive.add_endpoint(
            name, decoder.prefill, input_signature=decoder.input_signature(length)
        )
    saved_model = os.path.join(workdir, "saved_model")
    archive.write_out(saved_model, verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(
        saved_model, signature_keys=signatures
    )
    # Builtin ops only: phone runtimes do not link Flex (Select TF ops).
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    buffer = converter.convert()
    shutil.rmtree(saved_model, ignore_errors=True)
    return buffer


def _build_into(builder, path):
    with open(path, "wb") as f:
        builder.build(f)


def _move(source, destination, overwrite):
    """Moves a staged file into place atomically (no copy)."""
    atomic_write(destination, lambda tmp: os.replace(source, tmp), overwrite=overwrite)


def export_litert_lm(
    causal_lm,
    path,
    max_sequence_length=256,
    prefill_lengths=(32,),
    quantization="none",
    *,
    overwrite=False,
    verify=True,
    verification_prompts=None,
    max_new_tokens=16,
    min_token_agreement=None,
    tokenizer_json_path=None,
    chat_template=None,
    activation_type=None,
    num_threads=None,
):
    """Exports a keras-hub causal LM to a LiteRT-LM bundle, verified.

    Writes `path` (the `.litertlm` bundle: model, `tokenizer.json`,
    metadata) and the `.tflite` beside it (same name). The model is the
    backbone's cached forward pass (`litert_lm_graph.CachedDecoder`) saved
    through `keras.export.ExportArchive`, one endpoint per signature, and
    converted by `tf.lite.TFLiteConverter.from_saved_model` with builtin ops
    only; the converted graph is checked for variable and Flex ops, and tied
    embeddings for a single stored copy.

    With `verify=True` the staged bundle runs in the LiteRT-LM runtime on
    `verification_prompts` (raw text, greedy) against the Keras model's
    greedy `generate` (`verify_litert_lm`) before anything is moved into
    place: a bundle whose share of identical generated tokens is below
    `min_token_agreement` raises `ValueError` and nothing is written. Both
    files are then moved into place atomically (the `.tflite` first); with
    `overwrite=False` existing files are never replaced.

    Args:
        causal_lm: a keras-hub causal LM of the Llama (Llama, Llama 3,
            SmolLM2), Qwen 2 or Mistral family with its preprocessor
            (byte-level BPE; a SentencePiece model such as Mistral's needs
            `tokenizer_json_path`).
        path: the bundle, ending in `.litertlm`.
        max_sequence_length: the context length (prompt plus generated
            tokens): the caches' axis 2.
        prefill_lengths: lengths of the `prefill_<T>` signatures; the runtime
            prefills a prompt in blocks of these, padded. Each at most
            `max_sequence_length`.
        quantization: `"none"` (float32), `"float16"` (float16 weights) or
            `"dynamic_int8"` (int8 weights, float activations).
        overwrite: replace existing files at `path` and beside it.
        verify: check the bundle in the runtime against Keras first.
        verification_prompts: raw texts for the check (default: 20 built-in
            English openings, `DEFAULT_VERIFICATION_PROMPTS`), each shorter
            than `max_sequence_length` tokens.
        max_new_tokens: tokens generated per verification prompt (fewer
            where the prompt and its continuation fill the context, as the
            runtime stops there).
        min_token_agreement: the share of identical generated tokens (and
            prompt tokenizations) required; default 1.0 for `"none"` (float32
            must match Keras token for token) and 0 (report only) when
            quantized.
        tokenizer_json_path: a Hugging Face `tokenizer.json` to embed instead
            of the one written from the model's tokenizer (e.g. the original
            model's). Verification checks that it tokenizes the prompts as
            the Keras preprocessor does.
        chat_template: a Jinja chat template stored in the metadata for
            conversation APIs; raw-text sessions (and the verification)
            ignore it.
        activation_type: the activation precision the bundle asks the
            runtime for: `"float32"`, `"float16"` or None (the runtime's
            default: float16 for text decoders where the hardware supports
            it). Default: `"float32"` for `quantization="none"` (so phones
            reproduce Keras' tokens too), else None.
        num_threads: the runtime's CPU threads during verification.

    Returns:
        A `LiteRTLMExport` (paths, sizes, verification report).

    Example, with `causal_lm` a tiny random Llama (see `conftest.py`):

    >>> import os, tempfile
    >>> folder = tempfile.TemporaryDirectory()
    >>> result = export_litert_lm(
    ...     causal_lm, os.path.join(folder.name, "tiny.litertlm"),
    ...     max_sequence_length=32, prefill_lengths=(8,),
    ...     verification_prompts=["the tea", "a cat sat"], max_new_tokens=4,
    ... )
    >>> result.verification.all_identical, sorted(os.listdir(folder.name))
    (True, ['tiny.litertlm', 'tiny.tflite'])
    >>> folder.cleanup()
    """
    # Every check before any expensive work.
    check_not_a_distiller(causal_lm, "causal_lm", "export_litert_lm")
    check_int("max_sequence_length", max_sequence_length, minimum=2, example=256)
    graph.check_supported(causal_lm, max_sequence_length)
    prefill_lengths = _check_prefill_lengths(prefill_lengths, max_sequence_length)
    check_choice("quantization", quantization, QUANTIZATIONS)
    check_int("max_new_tokens", max_new_tokens)
    check_int("num_threads", num_threads, allow_none=True)
    if verification_prompts is not None:
        verification_prompts = check_prompts(verification_prompts)
    if min_token_agreement is None:
        min_token_agreement = 1.0 if quantization == "none" else 0.0
    if not (
        isinstance(min_token_agreement, (int, float))
        and not isinstance(min_token_agreement, bool)
        and 0 <= min_token_agreement <= 1
    ):
        raise ValueError(
            "`min_token_agreement` must be a number in [0, 1], e.g. 1.0. "
            f"Received: min_token_agreement={min_token_agreement!r}"
        )
    if tokenizer_json_path is not None and not os.path.isfile(tokenizer_json_path):
        raise ValueError(
            "`tokenizer_json_path` must be an existing tokenizer.json file. "
            f"Received: tokenizer_json_path={tokenizer_json_path!r}"
        )
    if tokenizer_json_path is None:
        _tokenizer(causal_lm)
    if verify:
        # The runtime's prefill would fail on it, after the conversion.
        check_prompt_lengths(
            causal_lm,
            DEFAULT_VERIFICATION_PROMPTS if verification_prompts is None else verification_prompts,
            max_sequence_length,
        )
    if activation_type is None and quantization == "none":
        activation_type = "float32"
    if activation_type is not None:
        check_choice("activation_type", activation_type, tuple(ACTIVATION_TYPES))
    path, tflite_path = _check_path(path, overwrite)
    _check_chat_template(chat_template)

    import litert_lm_builder

    path.parent.mkdir(parents=True, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix=".keras_kd_litert_lm_", dir=path.parent)
    try:
        work = Path(workdir)
        buffer = _convert(
            causal_lm, max_sequence_length, prefill_lengths, quantization, workdir
        )
        check_model_ops(buffer)
        copies = None
        backbone = causal_lm.backbone
        if backbone.token_embedding.tie_weights:
            if quantization == "dynamic_int8":
                buffer = share_int8_embedding(
                    buffer, backbone.vocabulary_size, backbone.hidden_dim
                )
            copies = embedding_copies(
                buffer, backbone.vocabulary_size, backbone.hidden_dim
            )
            if copies != 1:
                raise ValueError(
                    f"The tied embedding table is stored {copies} times in "
                    "the converted model instead of once. Please report "
                    f"this with the model (quantization={quantization!r})."
                )
        staged_tflite = work / "model.tflite"
        atomic_write_bytes(staged_tflite, buffer)
        del buffer
        tokenizer_file = work / "tokenizer.json"
        if tokenizer_json_path is None:
            atomic_write_json(tokenizer_file, tokenizer_json(causal_lm))
        else:
            atomic_write(
                tokenizer_file,
                lambda tmp: shutil.copyfile(tokenizer_json_path, tmp),
            )
        metadata_file = work / "llm_metadata.pb"
        atomic_write_bytes(
            metadata_file,
            llm_metadata(
                causal_lm, max_sequence_length, chat_template
            ).SerializeToString(),
        )
        builder = litert_lm_builder.LitertLmFileBuilder()
        # The builder prints the activation type to stdout; keep it quiet.
        with contextlib.redirect_stdout(io.StringIO()):
            builder.add_tflite_model(
                str(staged_tflite),
                litert_lm_builder.TfLiteModelType.PREFILL_DECODE,
                prefer_activation_type=ACTIVATION_TYPES.get(activation_type),
            )
        builder.add_hf_tokenizer(str(tokenizer_file))
        builder.add_llm_metadata(str(metadata_file))
        staged_bundle = work / "model.litertlm"
        atomic_write(staged_bundle, lambda tmp: _build_into(builder, tmp))

        report = None
        if verify:
            report = verify_litert_lm(
                staged_bundle,
                causal_lm,
                verification_prompts,
                max_new_tokens=max_new_tokens,
                num_threads=num_threads,
            )
            report.path = os.fspath(path)
            bad_prompts = [c.prompt for c in report.prompts if not c.prompt_ids_match]
            if (bad_prompts and min_token_agreement > 0) or (
                report.token_agreement < min_token_agreement
            ):
                raise ValueError(
                    "The bundle's greedy generation disagrees with Keras: "
                    f"token agreement {report.token_agreement:.3f} < "
                    f"min_token_agreement={min_token_agreement:g}; prompts "
                    f"tokenized differently by the bundle: {bad_prompts}. "
                    f"Nothing was written to {os.fspath(path)!r}. Pass "
                    "min_token_agreement=0 to export anyway, and please "
                    "report it with the model."
                )
        _move(staged_tflite, tflite_path, overwrite)
        _move(staged_bundle, path, overwrite)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return LiteRTLMExport(
        path=os.fspath(path),
        tflite_path=os.fspath(tflite_path),
        size_bytes=os.path.getsize(path),
        tflite_size_bytes=os.path.getsize(tflite_path),
        quantization=quantization,
        max_sequence_length=max_sequence_length,
        prefill_lengths=prefill_lengths,
        activation_type=activation_type,
        embedding_copies=copies,
        verification=report,
    )
