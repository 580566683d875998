"""keras_kd.speech.distil_whisper and whisper_decoder_model: the encoder
runs once, the teacher's transcripts are filtered against the truth, and
only the student's decoder trains."""

import json

import keras
import numpy as np
import pytest

from keras_kd.speech.audio import batch_waveforms
from keras_kd.speech.distil_whisper import (
    PseudoLabels,
    distil_whisper,
    encode,
    pseudo_label,
    transcribe_encoded,
    trimmed_batches,
)
from keras_kd.distillation import Distiller
from keras_kd.speech.whisper_student import whisper_student
from keras_kd.speech.whisper_decoder_model import whisper_decoder_model
from keras_kd.utils.testing import tiny_whisper_audio_to_text


@pytest.fixture(scope="module")
def teacher():
    model = tiny_whisper_audio_to_text(num_layers=3, decoder_sequence_length=8)
    model.jit_compile = False  # tiny: compiling costs more than it saves
    return model


@pytest.fixture(scope="module")
def audio():
    rng = np.random.default_rng(0)
    return [rng.uniform(-0.5, 0.5, n).astype("float32") for n in (8000, 12000, 4000, 9000)]


@pytest.fixture(scope="module")
def states(teacher, audio):
    return encode(teacher, audio, batch_size=3)


def test_encode_is_the_encoder_of_each_waveform_alone(teacher, audio, states):
    assert states.dtype == np.float16 and states.shape == (4, 1500, 16)
    for i, waveform in enumerate(audio):
        features = teacher.preprocessor.generate_preprocess(waveform[None])["encoder_features"]
        expected = np.asarray(teacher.call_encoder(features))[0]
        np.testing.assert_allclose(states[i].astype("float32"), expected, atol=2e-2, rtol=1e-2)


def test_generation_from_encoder_outputs_equals_generation_from_audio(teacher, audio):
    # float32 encoder outputs: exactly what `generate(audio)` computes inside.
    batch, _ = batch_waveforms(audio)
    features = teacher.preprocessor.generate_preprocess(batch)["encoder_features"]
    exact = np.asarray(teacher.call_encoder(features))
    from_states = teacher.generate({"encoder_hidden_states": exact})
    assert from_states == teacher.generate(audio)
    # A list of waveforms of different lengths: each as if alone.
    assert from_states == [teacher.generate(a) for a in audio]


def test_decoder_model_matches_the_task_and_shares_its_weights(teacher, audio):
    x, _, _ = teacher.preprocessor({"audio": batch_waveforms(audio)[0], "text": ["re", "an", "in", "a"]})
    decoder = whisper_decoder_model(teacher)
    logits = decoder({
        "encoder_hidden_states": teacher.call_encoder(x["encoder_features"]),
        "decoder_token_ids": x["decoder_token_ids"],
        "decoder_padding_mask": x["decoder_padding_mask"],
    })
    np.testing.assert_allclose(np.asarray(logits), np.asarray(teacher(x)), atol=1e-5)
    assert {id(v) for v in decoder.weights} <= {id(v) for v in teacher.weights}


def test_pseudo_labels_keep_transcripts_near_the_truth(teacher, states):
    said = transcribe_encoded(teacher, states)
    assert all(said)  # the tiny teacher says something for each
    truths = [said[0], "zzz " + said[1], said[2], "qq"]
    labels = pseudo_label(teacher, states, truths, max_wer=0.0)
    assert labels.texts == said
    assert labels.kept.tolist() == [0, 2]
    assert labels.error_rates[[0, 2]].tolist() == [0.0, 0.0]
    summary = labels.summary()
    assert (summary["utterances"], summary["kept"], summary["kept_teacher_wer"]) == (4, 2, 0.0)


def test_transcripts_come_back_in_the_order_of_the_states(teacher, states):
    alone = [transcribe_encoded(teacher, states[i : i + 1])[0] for i in range(4)]
    assert transcribe_encoded(teacher, states, batch_size=2, order=[3, 1, 0, 2]) == alone
    with pytest.raises(ValueError, match=r"permutation of the indices of the 4 utterances.*\[0, 0, 1, 2\]"):
        transcribe_encoded(teacher, states, order=[0, 0, 1, 2])


def _rows(lengths, full=32, seed=0):
    """Training arrays whose row i holds the token i + 1 up to its length."""
    n = len(lengths)
    mask = (np.arange(full)[None] < np.array(lengths)[:, None]).astype("int32")
    ids = mask * (np.arange(n)[:, None] + 1)
    states = np.random.default_rng(seed).normal(size=(n, 1500, 16)).astype("float16")
    x = {"encoder_hidden_states": states, "decoder_token_ids": ids, "decoder_padding_mask": mask}
    return x, ids.copy(), mask.astype("float32")


def test_trimmed_batches_hold_every_row_once_cut_to_their_longest():
    lengths = np.random.default_rng(1).integers(1, 33, 37)
    x, y, weight = _rows(lengths)
    data = trimmed_batches(x, y, weight, batch_size=4, seed=3)
    assert data.cardinality() == 10
    epochs = []
    for _ in range(2):
        seen, batches = [], []
        for inputs, labels, w in data.as_numpy_iterator():
            rows = labels[:, 0] - 1
            assert labels.shape[1] == min(32, 16 * -(-lengths[rows].max() // 16))
            np.testing.assert_array_equal(labels, y[rows, : labels.shape[1]])
            np.testing.assert_array_equal(inputs["decoder_padding_mask"], x["decoder_padding_mask"][rows, : labels.shape[1]])
            np.testing.assert_array_equal(inputs["encoder_hidden_states"], x["encoder_hidden_states"][rows])
            np.testing.assert_array_equal(w, weight[rows, : labels.shape[1]])
            seen += rows.tolist()
            batches.append(tuple(rows))
        assert sorted(seen) == list(range(37))
        epochs.append(batches)
    assert epochs[0] != epochs[1]  # drawn again every epoch
    assert {b[1].shape[1] for b in data.as_numpy_iterator()} <= {16, 32}
    with pytest.raises(ValueError, match=r"multiple=0"):
        trimmed_batches(x, y, weight, batch_size=4, multiple=0)
    with pytest.raises(ValueError, match=r"batch_size=0"):
        trimmed_batches(x, y, weight, batch_size=0)


def test_trimmed_batches_cut_a_teacher_caches_targets_alike():
    lengths = np.array([3, 20, 7, 30, 12])
    x, y, weight = _rows(lengths)
    values = np.random.default_rng(0).normal(size=(5, 32, 4)).astype("float32")
    indices = np.random.default_rng(1).integers(0, 40, (5, 32, 4)).astype("int32")
    target = {"labels": y, "teacher_logits": {"values": values, "indices": indices}}
    seen = []
    for _, cut, w in trimmed_batches(x, target, weight, batch_size=2, seed=0).as_numpy_iterator():
        rows = cut["labels"][:, 0] - 1
        length = cut["labels"].shape[1]
        assert length == min(32, 16 * -(-lengths[rows].max() // 16))
        np.testing.assert_array_equal(cut["labels"], y[rows, :length])
        np.testing.assert_array_equal(cut["teacher_logits"]["values"], values[rows, :length])
        np.testing.assert_array_equal(cut["teacher_logits"]["indices"], indices[rows, :length])
        np.testing.assert_array_equal(w, weight[rows, :length])
        seen += rows.tolist()
    assert sorted(seen) == [0, 1, 2, 3, 4]


def test_cutting_a_batch_to_its_longest_row_changes_no_training_step():
    teacher = tiny_whisper_audio_to_text(num_layers=2, decoder_sequence_length=32)
    teacher.jit_compile = False
    x, y, weight = _rows([5, 12, 9])
    cut = ({k: v[:, :16] if v.ndim == 2 else v for k, v in x.items()}, y[:, :16], weight[:, :16])
    students = []
    for inputs, labels, w in ((x, y, weight), cut):
        keras.utils.set_random_seed(0)
        student = whisper_student(teacher, decoder_layers=[1])
        before = [np.asarray(v) for v in student.trainable_weights]
        distiller = Distiller(student=whisper_decoder_model(student), teacher=whisper_decoder_model(teacher))
        distiller.compile(optimizer=keras.optimizers.SGD(0.5), alpha=0.5, temperature=2.0, jit_compile=False)
        loss = distiller.train_on_batch(inputs, labels, sample_weight=w)
        students.append((loss, [np.asarray(v) for v in student.trainable_weights]))
    (full_loss, full), (cut_loss, cut_weights) = students
    np.testing.assert_allclose(cut_loss, full_loss, rtol=1e-5)
    assert any(not np.allclose(a, b, atol=1e-3) for a, b in zip(full, before))  # the step moved it
    for a, b in zip(full, cut_weights):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_pseudo_label_checks_its_arguments(teacher, states):
    with pytest.raises(ValueError, match=r"3 truths for 4 encoded utterances"):
        pseudo_label(teacher, states, ["a", "b", "c"])
    with pytest.raises(ValueError, match=r"max_wer=-1"):
        pseudo_label(teacher, states, ["a"] * 4, max_wer=-1)
    with pytest.raises(ValueError, match=r"`truths` must hold strings; item 0 is dict"):
        pseudo_label(teacher, states, [{"text": "a"}] * 4)
    with pytest.raises(TypeError, match=r"`states` must be the array `encode` returns.*list"):
        pseudo_label(teacher, list(states), ["a"] * 4)


def test_encode_refuses_one_waveform_and_no_waveform(teacher, audio):
    # One waveform's samples were taken for utterances, 8 at a time.
    with pytest.raises(ValueError, match=r"`audio` is one waveform \(8000 samples\).*encode\(model, \[audio\]\)"):
        encode(teacher, audio[0])
    with pytest.raises(ValueError, match=r"`audio` is empty"):
        encode(teacher, [])
    with pytest.raises(TypeError, match=r"not file paths.*load_wav"):
        encode(teacher, "speech.wav")


def test_distillation_refuses_states_and_labels_that_do_not_match(teacher, states):
    labels = PseudoLabels(["a"] * 4, ["a"] * 4, np.zeros(4), np.arange(4))
    # A slice of the states would pair audio 0 to 1 with transcripts 2 to 3.
    with pytest.raises(ValueError, match=r"The states hold 2 utterances but their labels 4"):
        distil_whisper(teacher, states[2:], labels, verbose=0)
    with pytest.raises(ValueError, match=r"The validation states hold 4 utterances but their labels 3"):
        distil_whisper(teacher, states, labels, validation=(states, PseudoLabels(
            ["a"] * 3, ["a"] * 3, np.zeros(3), np.arange(3))), verbose=0)
    with pytest.raises(TypeError, match=r"labels must be the `PseudoLabels`.*list"):
        distil_whisper(teacher, states, ["a"] * 4, verbose=0)
    with pytest.raises(TypeError, match=r"`validation` must be a pair"):
        distil_whisper(teacher, states, labels, validation=labels, verbose=0)
    with pytest.raises(ValueError, match=r"learning_rate=5"):
        distil_whisper(teacher, states, labels, learning_rate=5, verbose=0)


def test_distillation_trains_only_the_student_decoder(teacher, states):
    labels = pseudo_label(teacher, states, transcribe_encoded(teacher, states), max_wer=0.0)
    encoder_before = [np.asarray(v) for v in teacher.backbone.encoder_transformer_layers[0].weights]
    teacher_before = [np.asarray(v) for v in teacher.backbone.decoder_transformer_layers[1].weights]
    student, history = distil_whisper(
        teacher, states, labels, decoder_layers=[2], epochs=12, batch_size=2,
        learning_rate=5e-3, alpha=0.5, train_embeddings=True, verbose=0,
    )
    losses = history.history["loss"]
    assert losses[-1] < 0.8 * losses[0]
    assert student.backbone.num_decoder_layers == 1
    for before, after in zip(encoder_before, student.backbone.encoder_transformer_layers[0].weights):
        np.testing.assert_array_equal(before, np.asarray(after))
    for before, after in zip(teacher_before, teacher.backbone.decoder_transformer_layers[1].weights):
        np.testing.assert_array_equal(before, np.asarray(after))
    moved = [
        not np.array_equal(np.asarray(a), np.asarray(b))
        for a, b in zip(student.backbone.decoder_transformer_layers[0].weights,
                        teacher.backbone.decoder_transformer_layers[2].weights)
    ]
    assert any(moved)


def test_token_embeddings_stay_frozen_by_default(teacher, states):
    labels = pseudo_label(teacher, states, transcribe_encoded(teacher, states), max_wer=0.0)
    student, _ = distil_whisper(teacher, states, labels, epochs=1, batch_size=2, learning_rate=5e-3, verbose=0)
    np.testing.assert_array_equal(
        np.asarray(student.backbone.token_embedding.embeddings),
        np.asarray(teacher.backbone.token_embedding.embeddings),
    )
    layer = student.backbone.decoder_transformer_layers[0]
    assert any(
        not np.array_equal(np.asarray(a), np.asarray(b))
        for a, b in zip(layer.weights, teacher.backbone.decoder_transformer_layers[0].weights)
    )


@pytest.mark.large  # several trainings: 30-50 s on 2 cores
def test_a_teacher_cache_gives_the_live_teachers_losses(teacher, states, tmp_path):
    labels = pseudo_label(teacher, states, transcribe_encoded(teacher, states), max_wer=0.0)
    # One batch of all four: the order of the examples cannot matter.
    settings = dict(decoder_layers=[0, 2], epochs=3, batch_size=4, learning_rate=5e-3, verbose=0)
    live, live_history = distil_whisper(teacher, states, labels, **settings)
    cached, history = distil_whisper(teacher, states, labels, teacher_cache=tmp_path / "cache", **settings)
    np.testing.assert_allclose(history.history["loss"], live_history.history["loss"], rtol=1e-4)
    assert history.history["loss"][-1] < history.history["loss"][0]
    for a, b in zip(cached.weights, live.weights):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)
    manifest = json.loads((tmp_path / "cache" / "manifest.json").read_text())
    assert (manifest["num_examples"], manifest["top_k"]) == (4, None)
    _, top = distil_whisper(teacher, states, labels, teacher_cache=tmp_path / "top", top_k=8, **settings)
    assert np.isfinite(top.history["loss"]).all()
    assert json.loads((tmp_path / "top" / "manifest.json").read_text())["top_k"] == 8
    with pytest.raises(ValueError, match=r"top_k=8 sets what a teacher cache keeps"):
        distil_whisper(teacher, states, labels, top_k=8, verbose=0)


def test_distillation_refuses_when_no_pseudo_label_is_kept(teacher, states):
    labels = PseudoLabels(["a"] * 4, ["b"] * 4, np.ones(4), np.array([], int))
    with pytest.raises(ValueError, match=r"No pseudo-label is kept: all 4 transcripts"):
        distil_whisper(teacher, states, labels, verbose=0)
    with pytest.raises(TypeError, match="WhisperAudioToText"):
        distil_whisper(keras.Sequential(), states, labels)


@pytest.mark.parametrize("bad", [[], [np.zeros((2, 2))], np.zeros((1, 2, 3)), np.zeros(16000 * 31)])
def test_batch_waveforms_names_bad_audio(bad):
    with pytest.raises(ValueError, match=r"waveform|window"):
        batch_waveforms(bad)
