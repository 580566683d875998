"""`whisper_student`: a Distil-Whisper student made from a Whisper teacher,
its encoder whole and a few of its decoder layers."""

import numpy as np

from keras_kd.speech.distil_whisper_backbone import DistilWhisperBackbone
from keras_kd.speech.whisper_audio_to_text import WhisperAudioToText


def check_decoder_layers(decoder_layers, depth):
    """Validates the teacher decoder layers a student keeps; returns them as
    a list (default: the first and the last, as Distil-Whisper)."""
    if decoder_layers is None:
        return [0, depth - 1] if depth > 1 else [0]
    layers = list(decoder_layers) if not isinstance(decoder_layers, (int, str)) else None
    if (
        not layers
        or any(isinstance(i, bool) or not isinstance(i, (int, np.integer)) for i in layers)
        or sorted(set(layers)) != layers
        or layers[0] < 0
        or layers[-1] >= depth
    ):
        raise ValueError(
            "`decoder_layers` must list distinct teacher decoder layers in "
            f"increasing order, each in [0, {depth - 1}] (the teacher has "
            f"{depth}), for example [0, {depth - 1}]. Received: "
            f"decoder_layers={decoder_layers!r}"
        )
    return layers


def whisper_student(teacher, decoder_layers=None, train_encoder=False):
    """A student of `teacher`: the teacher's encoder, embeddings and final
    norms, and the decoder layers `decoder_layers` of it, weights copied.

    Distil-Whisper's recipe: decoding runs the decoder once per token, so a
    2-layer decoder (the first and last of the teacher's) makes decoding
    several times faster while the encoder, run once per utterance, keeps
    what the teacher hears.

    Args:
        teacher: a `WhisperAudioToText`.
        decoder_layers: the teacher decoder layers to keep, in order
            (default: the first and the last).
        train_encoder: whether the student's encoder trains (default: frozen,
            as Distil-Whisper; its weights then stay the teacher's).

    Returns:
        A `WhisperAudioToText` on a `DistilWhisperBackbone`, with the
        teacher's preprocessor and token suppression.

    Example:

    >>> from keras_kd.utils.testing import tiny_whisper_audio_to_text
    >>> teacher = tiny_whisper_audio_to_text(num_layers=3)
    >>> student = whisper_student(teacher)
    >>> student.backbone.num_layers, student.backbone.num_decoder_layers
    (3, 2)
    """
    if not isinstance(teacher, WhisperAudioToText):
        raise TypeError(
            "`teacher` must be a keras_kd.speech.WhisperAudioToText, for "
            "example `WhisperAudioToText.from_preset(resolve_preset("
            f"'whisper_tiny_en'))`. Received: {type(teacher).__name__}"
        )
    source = teacher.backbone
    layers = check_decoder_layers(decoder_layers, len(source.decoder_transformer_layers))
    config = source.get_config()
    config.update(num_decoder_layers=len(layers), name="distil_whisper_backbone")
    backbone = DistilWhisperBackbone(**config)
    teacher_weights = {v.path: v for v in source.weights}
    renamed = {
        f"transformer_decoder_layer_{i}/": f"transformer_decoder_layer_{j}/"
        for i, j in enumerate(layers)
    }
    for variable in backbone.weights:
        path = variable.path
        for student_prefix, teacher_prefix in renamed.items():
            if path.startswith(student_prefix):
                path = teacher_prefix + path[len(student_prefix) :]
        variable.assign(teacher_weights[path])
    if not train_encoder:
        for layer in (
            backbone.encoder_conv_layer_1,
            backbone.encoder_conv_layer_2,
            backbone.encoder_position_embedding,
            *backbone.encoder_transformer_layers,
            backbone.encoder_layer_norm,
        ):
            layer.trainable = False
    student = WhisperAudioToText(
        backbone,
        teacher.preprocessor,
        suppress_token_ids=teacher.suppress_token_ids,
        begin_suppress_token_ids=teacher.begin_suppress_token_ids,
    )
    return student
