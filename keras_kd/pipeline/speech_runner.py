"""The speech main job: from Whisper tiny.en and sentences to a distilled
Distil-Whisper student running from a `.tflite` file, with a report.

`run_speech(SpeechConfig(...))` (or `keras-kd demo --task speech` on the
command line):

1. joins the training sentences into passages of up to `passage_words`
   words (`keras_kd.speech.join_sentences`) and speaks them with eSpeak
   NG's voices less the held-out ones, and the test sentences one by one
   with the held-out voices only, with noise and telephone-band
   augmentation (`keras_kd.speech.synthesize`);
2. encodes every utterance once with the teacher's encoder, which the
   student shares frozen, and pseudo-labels the training utterances with
   the teacher, dropping those whose transcript strays from what was said;
3. distills a student with the teacher's encoder and two of its decoder
   layers (`keras_kd.speech.distil_whisper`);
4. scores teacher and student: word and character error rates against
   what was said on the test utterances, agreement with the teacher on
   real recordings, Keras decoding speed;
5. exports the teacher (float32) and the student (quantized) to `.tflite`,
   checked against Keras on the real recordings, and times their decoding;
6. writes `report.json` and `report.md` in the run folder, beside the
   `.tflite` files and `student.keras`.
"""

import random
import time

from keras_kd.datasets.texts import load_texts
from keras_kd.pipeline.generation_report import bundle_label
from keras_kd.pipeline.speech_config import SpeechConfig
from keras_kd.pipeline.speech_report import speech_markdown
from keras_kd.pipeline.steps import check_run_dir
from keras_kd.presets import check_preset_task
from keras_kd.utils.io import atomic_write, atomic_write_json, atomic_write_text, resumable_folder
from keras_kd.utils.timing import Laps
from keras_kd.utils.units import megabytes
from keras_kd.utils.validation import check_int

# Test utterances timed for speed (batch 1, as on a phone).
SPEED_UTTERANCES = 8


def _say(step, text):
    print(f"[{step}/6] {text}", flush=True)


def training_voices(config):
    """The voices of the training utterances: every English voice of eSpeak
    NG (`keras_kd.speech.ENGLISH_VOICES`) and the config's `extra_voices`,
    but the held-out ones.

    >>> len(training_voices(SpeechConfig())), training_voices(SpeechConfig())[:3]
    (11, ('en-us', 'en-us+f3', 'en-us+m3'))
    >>> training_voices(SpeechConfig(extra_voices=("flite:slt",)))[-2:]
    ('en-us+klatt2', 'flite:slt')
    """
    from keras_kd.speech import ENGLISH_VOICES

    voices = dict.fromkeys(ENGLISH_VOICES + config.extra_voices)
    return tuple(v for v in voices if v not in config.held_out_voices)


def speech_sentences(config):
    """The sentences a speech run speaks, checked before any model loads.

    Args:
        config: a `SpeechConfig`.

    Returns:
        `(train, test)`: up to `train_sentences` training sentences and up
        to `test_utterances` held-out ones, each a seeded sample. The two
        draws are independent, so runs that train on more or fewer
        sentences are scored on the same test sentences.

    Example:

    >>> texts = [f"sentence number {i}" for i in range(100)]
    >>> train, test = speech_sentences(SpeechConfig(data=texts, train_sentences=20, test_utterances=5))
    >>> len(train), len(test)
    (20, 5)
    >>> test == speech_sentences(SpeechConfig(data=texts, train_sentences=30, test_utterances=5))[1]
    True
    """
    train, test = load_texts(config.data, text_column=config.text_column, seed=config.seed)
    return (
        random.Random(f"train-{config.seed}").sample(train, min(len(train), config.train_sentences)),
        random.Random(f"test-{config.seed}").sample(test, min(len(test), config.test_utterances)),
    )


def check_speech_config(config):
    """Checks a speech run before any model loads: the run folder, the
    teacher's preset, the held-out and extra voices (each speaks a word)
    and the sentences.

    Returns:
        `speech_sentences(config)`.

    Example:

    >>> import tempfile
    >>> check_speech_config(SpeechConfig(held_out_voices=("en-xx",), output_dir=tempfile.mkdtemp()))
    Traceback (most recent call last):
    ...
    ValueError: eSpeak NG has no voice 'en-xx'. Use a language code with an optional variant, such as 'en-us' or 'en-us+f3' (keras_kd.speech.ENGLISH_VOICES lists 14).
    """
    from keras_kd.speech import speak

    check_run_dir(config)
    check_preset_task(config.teacher, "speech")
    for voice in config.held_out_voices + config.extra_voices:
        speak("test", voice)
    if not training_voices(config):
        raise ValueError(
            f"held_out_voices={config.held_out_voices!r} leaves no voice for "
            "training. Hold out fewer."
        )
    return speech_sentences(config)


def run_speech(config=None):
    """Runs the speech pipeline and returns the report dict.

    The run's folder is built in a sibling `.<run name>.partial` and
    swapped in at the end (`keras_kd.utils.io.resumable_folder`); with
    `resume=True` a run that was killed after distilling reuses its
    student.

    Args:
        config: a `SpeechConfig`; defaults to the embedded demo.

    Returns:
        The report dict, also written to `report.json` and `report.md` in
        the run folder beside `teacher_float32.tflite`,
        `student_<quantization>.tflite` and `student.keras`.

    Raises:
        FileExistsError: the run folder exists and `config.overwrite` is
            False (before any work; `check_speech_config` lists the other
            checks).
        ValueError: the teacher has fewer decoder positions than
            `label_length` or `max_length` (`_load_teacher`, before the
            run folder is made).
    """
    config = config or SpeechConfig()
    train_texts, test_texts = check_speech_config(config)
    started = time.perf_counter()
    teacher = _load_teacher(config)
    with resumable_folder(
        config.run_dir, config.settings(), resume=config.resume, overwrite=config.overwrite
    ) as progress:
        report = _run_steps(config, progress, teacher, train_texts, test_texts)
        report["seconds"] = time.perf_counter() - started
        _say(6, f"Writing the report to {config.run_dir}")
        atomic_write_json(progress.path / "report.json", report, overwrite=True)
        atomic_write_text(progress.path / "report.md", speech_markdown(report), overwrite=True)
    return report


def _load_teacher(config):
    """The run's teacher, its decoder lengths checked against the
    config's.

    Raises:
        ValueError: `label_length` or `max_length` is more than the
            teacher's decoder positions.
    """
    from keras_kd.presets import resolve_preset
    from keras_kd.speech import WhisperAudioToText

    teacher = WhisperAudioToText.from_preset(resolve_preset(config.teacher))
    teacher.jit_compile = config.jit_compile
    positions = teacher.backbone.max_decoder_sequence_length
    for name in ("label_length", "max_length"):
        check_int(
            name, getattr(config, name), maximum=positions,
            why=f"the {positions} decoder positions of {config.teacher!r}",
        )
    return teacher


def _keras_speed(model, states, audio, max_length):
    """Batch-1 decoding milliseconds per token (from encoder outputs: the
    decoder alone) and the real-time factor (from audio: encoder and
    decoder) of `model` over the given utterances."""
    from keras_kd.speech.distil_whisper import transcribe_encoded

    transcribe_encoded(model, states[:1], 1, max_length)  # compiles
    start = time.perf_counter()
    texts = transcribe_encoded(model, states, 1, max_length)
    seconds = time.perf_counter() - start
    tokens = sum(len(ids) + 1 for ids in model.preprocessor.tokenizer(texts))  # + <|endoftext|>
    model.generate(audio[0], max_length=max_length)  # compiles
    start = time.perf_counter()
    for waveform in audio:
        model.generate(waveform, max_length=max_length)
    heard = sum(len(a) for a in audio) / 16000
    return {
        "decode_ms_per_token": 1000 * seconds / tokens,
        "real_time_factor": (time.perf_counter() - start) / heard,
    }


def _tflite_speed(transcriber, windows):
    """Decoding milliseconds per token of a `.tflite` over the windows."""
    seconds, tokens = 0.0, 0
    for _, audio in windows:
        ids, spent = transcriber.token_ids(audio)
        seconds, tokens = seconds + spent, tokens + len(ids) + 1
    return 1000 * seconds / tokens


def _run_steps(config, progress, teacher, train_texts, test_texts):
    """Steps 1 to 5 of `run_speech`, writing into the folder of `progress`."""
    import keras
    import numpy as np

    from keras_kd.export.whisper_tflite import WhisperTFLiteTranscriber, export_whisper_tflite
    from keras_kd.speech import character_error_rate, join_sentences, synthesize, word_error_rate
    from keras_kd.speech.distil_whisper import distil_whisper, encode, pseudo_label, transcribe_encoded
    from keras_kd.speech.recordings import speech_windows

    laps = Laps()
    passages = join_sentences(train_texts, config.passage_words, seed=config.seed)
    _say(1, f"Speaking {len(train_texts)} training sentences (as {len(passages)} passages) "
            f"and {len(test_texts)} test sentences")
    train = synthesize(passages, training_voices(config), seed=config.seed, noise_snr_db=config.noise_snr_db)
    test = synthesize(test_texts, config.held_out_voices, seed=config.seed + 1, noise_snr_db=config.noise_snr_db)
    truths = [u.text for u in test]
    laps.lap("synthesis")

    _say(2, f"Encoding with {config.teacher!r} and pseudo-labelling")
    test_states = encode(teacher, [u.audio for u in test])
    # Saved once, into the run folder it ships in: a resumed run reads it
    # from there.
    student_path = progress.path / "student.keras"
    if progress.done("student"):
        _say(3, "Reusing the distilled student of the partial run")
        student = keras.saving.load_model(student_path)
        distillation = progress.result("student")
        laps.lap("encoding_and_labels")
    else:
        states = encode(teacher, [u.audio for u in train])
        labels = pseudo_label(
            teacher, states, [u.text for u in train], max_wer=config.max_wer,
            batch_size=32, max_length=config.label_length,
        )
        laps.lap("encoding_and_labels")
        _say(3, f"Distilling a student on {len(labels.kept)} of {len(train)} pseudo-labels "
                f"(word error rate <= {config.max_wer})")
        student, history = distil_whisper(
            teacher, states, labels, decoder_layers=config.decoder_layers,
            epochs=config.epochs, batch_size=config.batch_size,
            learning_rate=config.learning_rate, warmup=config.warmup,
            alpha=config.alpha, temperature=config.temperature,
            seed=config.seed, verbose=config.verbose,
        )
        del states
        distillation = {
            "pseudo_labels": labels.summary(),
            "loss": [float(v) for v in history.history["loss"]],
        }
        atomic_write(student_path, student.save, overwrite=True)
        progress.complete("student", distillation)
    student.jit_compile = config.jit_compile
    laps.lap("distillation")

    _say(4, f"Scoring on {len(test)} test utterances of held-out voices and on real recordings")
    windows = speech_windows()
    models = {"teacher": teacher, "student": student}
    by_duration = np.argsort([len(u.audio) for u in test], kind="stable")
    scores = {}
    for name, model in models.items():
        texts = transcribe_encoded(model, test_states, 16, config.max_length, by_duration)
        real = model.generate([audio for _, audio in windows], max_length=config.max_length)
        scores[name] = {
            "synthetic_wer": word_error_rate(truths, texts),
            "synthetic_cer": character_error_rate(truths, texts),
            "test_texts": texts,
            "real_texts": dict(zip([label for label, _ in windows], real)),
            **_keras_speed(
                model, test_states[:SPEED_UTTERANCES],
                [u.audio for u in test[:SPEED_UTTERANCES]], config.max_length,
            ),
        }
    real_teacher = list(scores["teacher"]["real_texts"].values())
    real_student = list(scores["student"]["real_texts"].values())
    scores["student"]["real_wer_against_teacher"] = word_error_rate(real_teacher, real_student)
    scores["student"]["synthetic_wer_against_teacher"] = word_error_rate(
        scores["teacher"]["test_texts"], scores["student"]["test_texts"]
    )
    laps.lap("scoring")

    _say(5, "Exporting to .tflite, each checked against Keras on the real recordings")
    exports = {}
    student_file = f"student_{bundle_label(config.quantization)}"
    for name, model, quantization in (
        ("teacher_float32", teacher, "none"),
        (student_file, student, config.quantization),
    ):
        path = progress.path / f"{name}.tflite"
        result = export_whisper_tflite(
            model, path, max_length=config.max_length, quantization=quantization,
            verification_audio=[audio for _, audio in windows], overwrite=True,
        )
        transcriber = WhisperTFLiteTranscriber(path, model)
        exports[name] = {
            "size_mb": megabytes(result.size_bytes),
            "token_agreement_with_keras": result.token_agreement,
            "decode_ms_per_token": _tflite_speed(transcriber, windows),
        }
        print(f"  {name}: {megabytes(result.size_bytes):.1f} MB, "
              f"{result.token_agreement:.1%} of tokens as Keras", flush=True)
    laps.lap("export")

    teacher_ms = exports["teacher_float32"]["decode_ms_per_token"]
    return {
        "teacher": config.teacher,
        "train_sentences": len(train_texts),
        "train_utterances": len(train),
        "test_utterances": len(test),
        "test_sentences": truths,
        "training_voices": list(training_voices(config)),
        "held_out_voices": list(config.held_out_voices),
        "distillation": distillation,
        "scores": scores,
        "exports": exports,
        "tflite_decode_speedup": teacher_ms / exports[student_file]["decode_ms_per_token"],
        "keras_decode_speedup": (
            scores["teacher"]["decode_ms_per_token"] / scores["student"]["decode_ms_per_token"]
        ),
        "wer_gap_points": 100 * (scores["student"]["synthetic_wer"] - scores["teacher"]["synthetic_wer"]),
        "seconds_by_step": laps.seconds,
        "settings": {
            k: v for k, v in config.settings().items() if k != "data"
        } | {"data": config.data if isinstance(config.data, str) else "a list of texts"},
    }
