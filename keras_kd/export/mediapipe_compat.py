"""What keras-kd needs from MediaPipe, and the workarounds it takes.

MediaPipe is optional (`pip install "keras-kd[mediapipe]"`). It writes the
TFLite metadata of exported classifiers (`import_metadata_writers`, with a
pure Python `minimum_parser_version` standing in for a compiled helper that
recent wheels lack) and runs its Tasks `TextClassifier` on an exported file
(`MediaPipeTextClassifier`) for `verify_tflite`.
"""

import importlib
import importlib.util
import os
import sys
import types

import numpy as np

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


def minimum_parser_version(metadata_buffer):
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


def import_metadata_writers():
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
        helper.GetMinimumMetadataParserVersion = minimum_parser_version
        sys.modules[_VERSION_MODULE] = helper
    from mediapipe.tasks.python.metadata import metadata
    from mediapipe.tasks.python.metadata.metadata_writers import (
        metadata_writer,
        text_classifier,
    )

    return metadata, metadata_writer, text_classifier


def mediapipe_available():
    """True if the optional `mediapipe` package is installed."""
    return importlib.util.find_spec("mediapipe") is not None


class MediaPipeTextClassifier:
    """MediaPipe Tasks' `TextClassifier` on a `.tflite`, scores by class."""

    def __init__(self, path):
        from mediapipe.tasks.python import text
        from mediapipe.tasks.python.core import base_options

        options = text.TextClassifierOptions(
            base_options=base_options.BaseOptions(
                model_asset_path=os.fspath(path)
            ),
            max_results=-1,
        )
        self._classifier = text.TextClassifier.create_from_options(options)

    def predict(self, texts):
        rows = []
        for t in texts:
            (head,) = self._classifier.classify(t).classifications
            categories = sorted(head.categories, key=lambda c: c.index)
            rows.append([c.score for c in categories])
        return np.asarray(rows, dtype="float32")

    def close(self):
        self._classifier.close()
