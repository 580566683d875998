"""TFLite metadata of an on-device text classifier: write it, read it back.

The metadata follows what MediaPipe Tasks' `TextClassifier` reads: the three
BERT input tensors with a BERT tokenizer process unit whose WordPiece
vocabulary is an associated file, and the output tensor with its label file.
keras-kd adds one model-level associated file, `keras_kd_text_classifier.json`,
with the tokenizer's settings (lowercasing, accent stripping, special tokens,
sequence length)
so that `TFLiteTextClassifier` can classify raw strings without MediaPipe.

Writing needs the optional `mediapipe` package (`pip install
"keras-kd[mediapipe]"`, imported through `mediapipe_compat`); reading needs
only `zipfile`, because the associated files are packed into the `.tflite` as
a zip archive.
"""

import gc
import io
import json
import zipfile

import flatbuffers

from keras_kd.export.mediapipe_compat import import_metadata_writers
from keras_kd.utils.io import atomic_write_text

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
    metadata, metadata_writer, text_classifier = import_metadata_writers()
    vocab_path = f"{workdir}/{VOCABULARY_FILE}"
    atomic_write_text(vocab_path, "\n".join(vocabulary) + "\n", overwrite=True)
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
