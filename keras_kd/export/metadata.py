"""TFLite metadata of an on-device text classifier: write it, read it back.

The metadata follows what MediaPipe Tasks' `TextClassifier` reads: the three
BERT input tensors with a BERT tokenizer process unit whose WordPiece
vocabulary is an associated file, and the output tensor with its label file.
keras-kd adds one model-level associated file, `keras_kd_text_classifier.json`,
with the tokenizer's settings (lowercasing, special tokens, sequence length)
so that `TFLiteTextClassifier` can classify raw strings without MediaPipe.

Writing needs the optional `mediapipe` package (`pip install
"keras-kd[mediapipe]"`); reading needs only `zipfile`, because the associated
files are packed into the `.tflite` as a zip archive.
"""

import gc
import importlib
import io
import json
import sys
import types
import zipfile

import flatbuffers

SETTINGS_FILE = "keras_kd_text_classifier.json"
VOCABULARY_FILE = "vocab.txt"
LABELS_FILE = "labels.txt"
SETTINGS_FORMAT = "keras_kd.text_classifier/1"
# MediaPipe's `BertPreprocessorCalculator` finds the three inputs by these
# tensor names (the Model Maker convention); `model.export` produces them from
# the signature argument names.
INPUT_NAMES = ("input_word_ids", "input_mask", "input_type_ids")
TENSOR_NAMES = tuple(f"serving_default_{name}:0" for name in INPUT_NAMES)
SPECIAL_TOKENS = {
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "unk_token": "[UNK]",
}

_VERSION_MODULE = "mediapipe.tasks.cc.metadata.python._pywrap_metadata_version"
# Metadata schema members added after version 1.0.0, with the parser version
# that introduced them (from MediaPipe's `metadata_version.cc`).
_VOCABULARY_FILE_VERSION = (1, 0, 1)
_PROCESS_UNITS_VERSION = (1, 1, 0)
_TOKENIZER_VERSIONS = {
    "BertTokenizerOptions": (1, 1, 0),
    "SentencePieceTokenizerOptions": (1, 1, 0),
    "RegexTokenizerOptions": (1, 2, 1),
}
_TENSOR_GROUPS_VERSION = (1, 2, 0)
_AUDIO_PROPERTIES_VERSION = (1, 3, 0)
_SCANN_INDEX_FILE_VERSION = (1, 4, 0)
_FILE_VERSION_VERSION = (1, 4, 1)
_CUSTOM_METADATA_VERSION = (1, 5, 0)


def _minimum_parser_version(metadata_buffer):
    """Python port of MediaPipe's `GetMinimumMetadataParserVersion`.

    The version is the highest schema version among the metadata fields in
    use, starting from 1.0.0.
    """
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb

    root = fb.ModelMetadata.GetRootAsModelMetadata(bytes(metadata_buffer), 0)
    metadata = fb.ModelMetadataT.InitFromObj(root)
    versions = [(1, 0, 0)]
    option_names = {
        value: name
        for name, value in vars(fb.ProcessUnitOptions).items()
        if not name.startswith("_")
    }

    def files(associated_files):
        for f in associated_files or ():
            if f.type == fb.AssociatedFileType.VOCABULARY:
                versions.append(_VOCABULARY_FILE_VERSION)
            if f.type == fb.AssociatedFileType.SCANN_INDEX_FILE:
                versions.append(_SCANN_INDEX_FILE_VERSION)
            if f.version is not None:
                versions.append(_FILE_VERSION_VERSION)

    def process_units(units):
        for unit in units or ():
            name = option_names.get(unit.optionsType)
            if name in _TOKENIZER_VERSIONS:
                versions.append(_TOKENIZER_VERSIONS[name])

    def tensors(tensor_metadata):
        for tensor in tensor_metadata or ():
            files(tensor.associatedFiles)
            process_units(tensor.processUnits)
            content = tensor.content
            if (
                content is not None
                and content.contentPropertiesType
                == fb.ContentProperties.AudioProperties
            ):
                versions.append(_AUDIO_PROPERTIES_VERSION)

    for subgraph in metadata.subgraphMetadata or ():
        tensors(subgraph.inputTensorMetadata)
        tensors(subgraph.outputTensorMetadata)
        files(subgraph.associatedFiles)
        for units in (subgraph.inputProcessUnits, subgraph.outputProcessUnits):
            if units is not None:
                versions.append(_PROCESS_UNITS_VERSION)
                process_units(units)
        if (
            subgraph.inputTensorGroups is not None
            or subgraph.outputTensorGroups is not None
        ):
            versions.append(_TENSOR_GROUPS_VERSION)
        if subgraph.customMetadata is not None:
            versions.append(_CUSTOM_METADATA_VERSION)
    files(metadata.associatedFiles)
    return ".".join(str(part) for part in max(versions))


def _import_metadata_writers():
    """Imports MediaPipe's metadata writers, filling in a missing helper.

    Recent `mediapipe` wheels ship the Python metadata writers without their
    compiled `_pywrap_metadata_version` extension, so importing them fails
    with `ModuleNotFoundError: mediapipe.tasks.cc`. The extension only
    computes the minimum metadata parser version; when it is missing, a pure
    Python port is registered under its module name in `sys.modules` (the
    installed package is left untouched).
    """
    try:
        importlib.import_module("mediapipe")
    except ImportError as error:
        raise ImportError(
            "Writing TFLite metadata for MediaPipe needs the optional "
            "`mediapipe` package. Install it with "
            '`pip install "keras-kd[mediapipe]"` (or `pip install mediapipe`), '
            "or pass `metadata=False`."
        ) from error
    try:
        importlib.import_module(_VERSION_MODULE)
    except ModuleNotFoundError:
        parts = _VERSION_MODULE.split(".")
        for depth in range(3, len(parts)):
            name = ".".join(parts[:depth])
            if name not in sys.modules:
                package = types.ModuleType(name)
                package.__path__ = []
                sys.modules[name] = package
        helper = types.ModuleType(_VERSION_MODULE)
        helper.GetMinimumMetadataParserVersion = _minimum_parser_version
        sys.modules[_VERSION_MODULE] = helper
    from mediapipe.tasks.python.metadata import metadata
    from mediapipe.tasks.python.metadata.metadata_writers import (
        metadata_writer,
        text_classifier,
    )

    return metadata, metadata_writer, text_classifier


def write_metadata(model_buffer, vocabulary, labels, settings, workdir):
    """Returns `model_buffer` with text-classifier metadata packed in.

    Args:
        model_buffer: `bytes` of a `.tflite` model with the three inputs
            named as in `TENSOR_NAMES`.
        vocabulary: list of WordPiece tokens, index = token id.
        labels: list of class names, index = output position.
        settings: JSON-serializable dict stored as `SETTINGS_FILE`.
        workdir: an existing folder for the associated files.

    Returns:
        `bytes` of the model with metadata and associated files.
    """
    metadata, metadata_writer, text_classifier = _import_metadata_writers()
    vocab_path = f"{workdir}/{VOCABULARY_FILE}"
    with open(vocab_path, "w", encoding="utf-8") as f:
        f.write("\n".join(vocabulary) + "\n")
    writer = text_classifier.MetadataWriter.create_for_bert_model(
        bytearray(model_buffer),
        tokenizer=metadata_writer.BertTokenizer(vocab_path),
        labels=metadata_writer.Labels().add(
            list(labels), exported_filename=LABELS_FILE
        ),
        ids_name=TENSOR_NAMES[0],
        mask_name=TENSOR_NAMES[1],
        segment_name=TENSOR_NAMES[2],
    )
    with_metadata, _ = writer.populate()

    # The writers have no model-level associated file, so the settings file
    # is added by populating the original model again with the extended
    # metadata and every file packed in the first pass.
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb

    root = fb.ModelMetadata.GetRootAsModelMetadata(
        metadata.get_metadata_buffer(with_metadata), 0
    )
    model_metadata = fb.ModelMetadataT.InitFromObj(root)
    settings_file = fb.AssociatedFileT()
    settings_file.name = SETTINGS_FILE
    settings_file.description = (
        "keras-kd tokenizer settings for TFLiteTextClassifier."
    )
    settings_file.type = fb.AssociatedFileType.DESCRIPTIONS
    model_metadata.associatedFiles = list(
        model_metadata.associatedFiles or []
    ) + [settings_file]
    builder = flatbuffers.Builder(0)
    builder.Finish(
        model_metadata.Pack(builder),
        metadata.MetadataPopulator.METADATA_FILE_IDENTIFIER,
    )
    with zipfile.ZipFile(io.BytesIO(bytes(with_metadata))) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    files[SETTINGS_FILE] = json.dumps(settings, indent=1).encode("utf-8")
    populator = metadata.MetadataPopulator.with_model_buffer(
        bytearray(model_buffer)
    )
    populator.load_metadata_buffer(builder.Output())
    populator.load_associated_file_buffers(files)
    populator.populate()
    result = bytes(populator.get_model_buffer())
    # MediaPipe's writer and populator delete their temporary copies of the
    # model in `__del__`; collect them now rather than at interpreter exit,
    # when `os` may already be gone and the copies would be left behind.
    del writer, populator
    gc.collect()
    return result


def read_metadata(model_buffer):
    """Reads what `write_metadata` packed into a `.tflite` model.

    Args:
        model_buffer: `bytes` of the model.

    Returns:
        `(settings, vocabulary, labels)`: the settings dict, the list of
        WordPiece tokens and the list of class names.

    Raises:
        ValueError: the model carries no keras-kd text-classifier metadata.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(model_buffer))
        names = set(archive.namelist())
    except zipfile.BadZipFile:
        names = set()
    if SETTINGS_FILE not in names:
        raise ValueError(
            "This .tflite model has no keras-kd text-classifier metadata "
            f"(associated file {SETTINGS_FILE!r}; found "
            f"{sorted(names) or 'no associated files'}). Export it with "
            "`keras_kd.export.export_tflite(...)`, which embeds the "
            "vocabulary, labels and tokenizer settings."
        )
    settings = json.loads(archive.read(SETTINGS_FILE).decode("utf-8"))
    if settings.get("format") != SETTINGS_FORMAT:
        raise ValueError(
            f"Unsupported {SETTINGS_FILE!r} format "
            f"{settings.get('format')!r}; expected {SETTINGS_FORMAT!r}. "
            "Re-export the model with this version of keras-kd."
        )
    vocabulary = archive.read(settings["vocabulary_file"]).decode("utf-8")
    labels = archive.read(settings["labels_file"]).decode("utf-8")
    return settings, vocabulary.splitlines(), labels.splitlines()
