"""keras_kd.speech.whisper_student and DistilWhisperBackbone: the student
computes what the teacher's chosen layers compute, and distills."""

import keras
import numpy as np
import pytest

import keras_kd
from keras_kd.speech import DistilWhisperBackbone, whisper_student
from keras_kd.utils.testing import tiny_whisper_audio_to_text


@pytest.fixture(scope="module")
def teacher():
    return tiny_whisper_audio_to_text(num_layers=3)


@pytest.fixture(scope="module")
def batch(teacher):
    rng = np.random.default_rng(0)
    x, y, w = teacher.preprocessor(
        {
            "audio": rng.uniform(-0.5, 0.5, (4, 8000)).astype("float32"),
            "text": ["the rain", "an ore", "in a", "re on"],
        }
    )
    return {k: np.asarray(v) for k, v in x.items()}, np.asarray(y), np.asarray(w)


def test_keeping_every_layer_reproduces_the_teacher(teacher, batch):
    student = whisper_student(teacher, decoder_layers=[0, 1, 2])
    np.testing.assert_array_equal(np.asarray(student(batch[0])), np.asarray(teacher(batch[0])))


def test_student_decoder_is_the_chosen_teacher_layers(teacher, batch):
    student = whisper_student(teacher)  # first and last
    assert student.backbone.num_decoder_layers == 2
    for mine, theirs in zip(
        student.backbone.decoder_transformer_layers,
        [teacher.backbone.decoder_transformer_layers[i] for i in (0, 2)],
    ):
        for a, b in zip(mine.weights, theirs.weights):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    encoder = {v.path for v in student.backbone.weights if "decoder" not in v.path}
    trainable = {v.path for v in student.trainable_weights}
    assert not encoder & trainable  # the encoder is frozen by default


def test_distillation_moves_only_the_decoder_and_lowers_the_kl(teacher, batch):
    student = whisper_student(teacher, decoder_layers=[2])
    # Away from the teacher's layer, so that there is something to learn.
    rng = np.random.default_rng(1)
    for variable in student.backbone.decoder_transformer_layers[0].weights:
        variable.assign(np.asarray(variable) + rng.normal(0, 0.3, variable.shape))
    frozen = [np.asarray(v) for v in student.backbone.encoder_transformer_layers[0].weights]
    distiller = keras_kd.Distiller(student=student, teacher=teacher)
    distiller.compile(optimizer=keras.optimizers.Adam(3e-3), alpha=1.0, jit_compile=False)
    x, y, w = batch
    history = distiller.fit(x, y, sample_weight=w, epochs=8, batch_size=4, verbose=0)
    losses = history.history["distillation_loss"]
    assert losses[-1] < 0.7 * losses[0]
    for before, after in zip(frozen, student.backbone.encoder_transformer_layers[0].weights):
        np.testing.assert_array_equal(before, np.asarray(after))


def test_saved_student_round_trips(teacher, batch, tmp_path):
    student = whisper_student(teacher)
    student.save(tmp_path / "student.keras")
    loaded = keras.saving.load_model(tmp_path / "student.keras")
    assert isinstance(loaded.backbone, DistilWhisperBackbone)
    np.testing.assert_allclose(np.asarray(loaded(batch[0])), np.asarray(student(batch[0])), atol=1e-6)


@pytest.mark.parametrize("layers", [[3], [1, 0], [0, 0], [], "0", [True]])
def test_bad_decoder_layers_are_named(teacher, layers):
    with pytest.raises(ValueError, match=r"teacher has 3.*Received: decoder_layers="):
        whisper_student(teacher, decoder_layers=layers)


def test_teacher_must_be_a_whisper_task():
    with pytest.raises(TypeError, match="WhisperAudioToText"):
        whisper_student(keras.Sequential([keras.layers.Dense(2)]))
