"""Tests of the TFLite metadata keras-kd writes (keras_kd.export.metadata and
the MediaPipe stand-in of keras_kd.export.mediapipe_compat), on the tiny
model's file."""

import json

import pytest

from keras_kd.export import metadata as md
from keras_kd.export.mediapipe_compat import minimum_parser_version


def test_metadata_round_trip_and_parser_version(tiny_tflite):
    from mediapipe.tasks.python.metadata import metadata

    with open(tiny_tflite.path, "rb") as f:
        buffer = f.read()
    content = json.loads(
        metadata.MetadataDisplayer.with_model_buffer(buffer).get_metadata_json()
    )
    # BERT tokenizer process units appeared in schema 1.1.0.
    assert content["min_parser_version"] == "1.1.0"
    assert minimum_parser_version(metadata.get_metadata_buffer(buffer)) == "1.1.0"
    settings, vocabulary, labels = md.read_metadata(buffer)
    assert labels == tiny_tflite.labels
    with open(tiny_tflite.vocabulary, encoding="utf-8") as f:
        assert vocabulary == f.read().splitlines()
    assert settings["lowercase"] is True
    assert settings["sequence_length"] == tiny_tflite.sequence_length
    assert settings["dynamic_sequence"] is False
    assert settings["quantization"] == "none"


def test_read_metadata_of_a_file_without_it():
    with pytest.raises(ValueError, match="no keras-kd text-classifier metadata"):
        md.read_metadata(b"TFL3 not a zip archive")
