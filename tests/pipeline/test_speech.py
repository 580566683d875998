"""The speech main job (`run_speech`) end to end on a tiny random Whisper
saved as a keras-hub preset, killed once its student is distilled and
resumed:
synthesis, pseudo-labels, distillation, scoring, verified `.tflite` files
and the report."""

import dataclasses
import importlib
import json
import os
import shutil

import keras
import numpy as np
import pytest

import keras_kd.speech.recordings as recordings
from keras_kd.cli.entry_point import main
from keras_kd.pipeline import SpeechConfig, run_speech
from keras_kd.pipeline.speech_runner import speech_sentences
from keras_kd.speech import join_sentences
from keras_kd.speech.recordings import speech_windows
from keras_kd.utils.testing import tiny_whisper_audio_to_text

# The module: `keras_kd.speech.distil_whisper` names the function.
distil_whisper = importlib.import_module("keras_kd.speech.distil_whisper")

SENTENCES = [f"{w} film number {i} was fine" for i, w in enumerate(["a", "the", "one"] * 20)]


@pytest.fixture(scope="module")
def tiny_teacher_preset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_whisper_preset") / "teacher"
    tiny_whisper_audio_to_text(num_layers=3, decoder_sequence_length=16).save_to_preset(str(folder))
    return str(folder)


def _config(preset, output_dir, **overrides):
    settings = dict(
        data=SENTENCES, teacher=preset, train_sentences=8, test_utterances=4,
        # The random teacher's transcripts are far from any sentence.
        max_wer=100.0, epochs=1, batch_size=4, max_length=12, label_length=16,
        # Budgets of 1 to 18 words join one to three 6-word sentences.
        passage_words=18,
        output_dir=str(output_dir), jit_compile=False, verbose=0,
    )
    settings.update(overrides)
    return SpeechConfig(**settings)


@pytest.fixture(scope="module")
def interrupted_run(tiny_teacher_preset, tmp_path_factory):
    """A run killed as it starts scoring, its student distilled: its config
    and recorded progress."""
    config = _config(tiny_teacher_preset, tmp_path_factory.mktemp("runs"))

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed as the scoring starts")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(recordings, "speech_windows", killed)
        with pytest.raises(KeyboardInterrupt):
            run_speech(config)
    partial = os.path.join(config.output_dir, ".speech.partial")
    return config, json.loads(open(os.path.join(partial, "progress.json")).read())


@pytest.fixture(scope="module")
def finished_run(interrupted_run):
    config, _ = interrupted_run

    def distilled_again(*args, **kwargs):
        raise AssertionError("the resumed run distilled the student again")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(distil_whisper, "distil_whisper", distilled_again)
        report = run_speech(dataclasses.replace(config, resume=True))
    return config, report


@pytest.mark.large
def test_the_killed_run_kept_its_student(interrupted_run, finished_run):
    config, progress = interrupted_run
    assert list(progress["steps"]) == ["student"]
    labels = progress["steps"]["student"]["pseudo_labels"]
    passages = join_sentences(speech_sentences(config)[0], config.passage_words, seed=config.seed)
    assert 4 <= len(passages) < 8
    assert (labels["utterances"], labels["kept"]) == (len(passages), len(passages))
    config, _ = finished_run
    assert sorted(os.listdir(config.output_dir)) == ["speech"]


@pytest.mark.large
def test_the_report_counts_and_scores(finished_run):
    config, report = finished_run
    passages = join_sentences(speech_sentences(config)[0], config.passage_words, seed=config.seed)
    assert (report["train_sentences"], report["train_utterances"], report["test_utterances"]) == (
        8, len(passages), 4)
    assert report["test_sentences"] == speech_sentences(config)[1]
    assert not set(report["held_out_voices"]) & set(report["training_voices"])
    for name in ("teacher", "student"):
        scores = report["scores"][name]
        assert len(scores["test_texts"]) == 4
        assert scores["synthetic_wer"] > 0.5  # random models
        assert scores["decode_ms_per_token"] > 0 and scores["real_time_factor"] > 0
    real = report["scores"]["teacher"]["real_texts"]
    assert list(real) == [label for label, _ in speech_windows()]
    assert report["wer_gap_points"] == pytest.approx(
        100 * (report["scores"]["student"]["synthetic_wer"] - report["scores"]["teacher"]["synthetic_wer"])
    )


@pytest.mark.large
def test_the_run_folder_holds_verified_files_and_the_student(finished_run):
    config, report = finished_run
    assert sorted(os.listdir(config.run_dir)) == [
        "report.json", "report.md", "student.keras", "student_dynamic_int8.tflite",
        "teacher_float32.tflite",
    ]
    assert report["exports"]["teacher_float32"]["token_agreement_with_keras"] == 1.0
    for name, export in report["exports"].items():
        assert export["size_mb"] == os.path.getsize(os.path.join(config.run_dir, f"{name}.tflite")) / 1e6
    student = keras.saving.load_model(os.path.join(config.run_dir, "student.keras"))
    assert student.backbone.num_decoder_layers == 2
    texts = student.generate([audio for _, audio in speech_windows()], max_length=config.max_length)
    assert texts == list(report["scores"]["student"]["real_texts"].values())
    markdown = open(os.path.join(config.run_dir, "report.md")).read()
    assert "| student |" in markdown and "beckett.wav" in markdown
    assert json.load(open(os.path.join(config.run_dir, "report.json")))["seconds"] == report["seconds"]


def test_an_existing_run_folder_is_refused_before_any_work(tiny_teacher_preset, tmp_path):
    config = _config(tiny_teacher_preset, tmp_path)
    os.mkdir(config.run_dir)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        run_speech(config)


def test_the_cli_refuses_classification_options_and_bad_voices(tmp_path, capsys):
    assert main(["demo", "--task", "speech", "--seeds", "0", "1", "--output-dir", str(tmp_path)]) == 2
    assert "--seeds applies to --task classification only; remove it for --task speech" in capsys.readouterr().err
    assert main(["demo", "--task", "speech", "--data", "reviews.csv", "--output-dir", str(tmp_path)]) == 2
    assert "'reviews.csv'" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "settings, match",
    [
        ({"held_out_voices": ("en-us", "")}, r"`held_out_voices` must be a tuple.*Received: held_out_voices=\('en-us', ''\)"),
        ({"held_out_voices": ()}, r"at least one voice name.*Received: held_out_voices=\(\)"),
        ({"extra_voices": ("flite:slt", 3)}, r"Received: extra_voices=\('flite:slt', 3\)"),
        ({"noise_snr_db": (40, 20)}, r"noise_snr_db\[1\]"),
        ({"noise_snr_db": 30}, r"\(low, high\) pair"),
        ({"max_wer": -0.1}, "max_wer=-0.1"),
        ({"quantization": "float16"}, "quantization"),
        ({"max_length": 2}, "max_length=2"),
        ({"label_length": 0}, "label_length=0"),
        ({"passage_words": 0}, "passage_words=0"),
        ({"extra_voices": "flite:slt"}, r"`extra_voices` must be a tuple.*Received: extra_voices='flite:slt'"),
    ],
)
def test_bad_settings_are_refused_on_creation(settings, match):
    with pytest.raises(ValueError, match=match):
        SpeechConfig(**settings)


def test_a_label_length_past_the_teachers_positions_is_refused_before_encoding(tiny_teacher_preset, tmp_path):
    config = _config(tiny_teacher_preset, tmp_path, label_length=33)

    def encoded(*args, **kwargs):
        raise AssertionError("encoded before checking label_length")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(distil_whisper, "encode", encoded)
        with pytest.raises(ValueError, match=r"`label_length` must be an int in \[1, 32\] \(the 32 decoder.*Received: label_length=33"):
            run_speech(config)
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed (apt-get install flite)")
def test_an_extra_voice_that_cannot_speak_is_refused_before_any_model_loads(tmp_path):
    from keras_kd.pipeline import check_speech_config

    with pytest.raises(ValueError, match=r"flite has no voice 'nobody'"):
        check_speech_config(SpeechConfig(extra_voices=("flite:nobody",), output_dir=str(tmp_path)))
    assert os.listdir(tmp_path) == []


def test_every_voice_held_out_leaves_none_to_train_on(tmp_path):
    from keras_kd.pipeline import check_speech_config
    from keras_kd.speech import ENGLISH_VOICES

    with pytest.raises(ValueError, match="leaves no voice for training"):
        check_speech_config(SpeechConfig(held_out_voices=ENGLISH_VOICES, output_dir=str(tmp_path)))
    assert np.all([os.listdir(tmp_path) == []])
