"""Greedy decoding against Whisper's temperature fallback, side by side,
for the teacher and the student of a `bench/speech.py --run-dir` run.

The run's test sentences are spoken again by its held-out voices (its
settings and seed; eSpeak NG's audio differs by a few samples from call to
call) and encoded once; each model then transcribes them and the real
recording windows (moonshine-voice's) twice: greedily (`generate`, what
`bench/speech.py` scores) and with `transcribe`'s fallback (greedy, then
sampling at 0.2, 0.4, ..., 1.0 for a transcript whose compression ratio is
above 2.4 or whose mean token log-probability is below -1, as Whisper's
`transcribe`), the sampling seeded by `--seeds` on the real windows and by
the first seed on the test sentences. The run's `.tflite` files transcribe
the real windows with the fallback too (NumPy's draws, not Keras's).

Reported: WER against what was said on held-out voices, the student's WER
against the teacher on the real windows (each decoding against the
teacher's under the same decoding), how many transcripts fell back and to
which temperature, and the seconds each decoding took.

    python bench/speech_decoding.py --run-dir DIR [--seeds 0,1,2]
        [--out bench/results/speech_decoding.json]
"""

import argparse
import collections
import dataclasses
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402

from keras_kd.export.whisper_tflite import WhisperTFLiteTranscriber  # noqa: E402
from keras_kd.pipeline import SpeechConfig  # noqa: E402
from keras_kd.pipeline.speech_runner import speech_sentences  # noqa: E402
from keras_kd.presets import resolve_preset  # noqa: E402
from keras_kd.speech import (  # noqa: E402
    WhisperAudioToText,
    encode,
    speech_windows,
    synthesize,
    transcribe_encoded,
    word_error_rate,
)
from keras_kd.utils.io import atomic_write_json  # noqa: E402
from _machine import machine_info  # noqa: E402


def _fallbacks(transcriptions):
    """How many transcripts ended at each temperature."""
    counts = collections.Counter(t.temperature for t in transcriptions)
    return {str(k): v for k, v in sorted(counts.items())}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", required=True, help="a bench/speech.py --run-dir folder")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", default="bench/results/speech_decoding.json")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    report = json.load(open(os.path.join(args.run_dir, "report.json")))
    settings = report["settings"]
    fields = {f.name for f in dataclasses.fields(SpeechConfig)}
    config = SpeechConfig(**{
        k: (tuple(v) if isinstance(v, list) else v)
        for k, v in settings.items()
        if k in fields and (k != "data" or isinstance(v, str) and v != "a list of texts")
    })
    started = time.perf_counter()
    result = {"machine": machine_info(), "settings": vars(args), "run_settings": settings}

    _, test_texts = speech_sentences(config)
    test = synthesize(test_texts, config.held_out_voices, seed=config.seed + 1, noise_snr_db=config.noise_snr_db)
    truths = [u.text for u in test]
    windows = speech_windows()
    real_audio = [audio for _, audio in windows]
    teacher = WhisperAudioToText.from_preset(resolve_preset(config.teacher))
    student = keras.saving.load_model(os.path.join(args.run_dir, "student.keras"))
    student.jit_compile = teacher.jit_compile = config.jit_compile
    states = encode(teacher, [u.audio for u in test])
    models = {"teacher": teacher, "student": student}
    texts, seconds, fallbacks = {}, {}, {}
    for name, model in models.items():
        for decoding in ("greedy", "fallback"):
            start = time.perf_counter()
            if decoding == "greedy":
                texts[name, decoding, "test"] = transcribe_encoded(model, states, 16, config.max_length)
                texts[name, decoding, "real"] = model.generate(real_audio, max_length=config.max_length)
            else:
                test_runs = [
                    model.decode_with_fallback(
                        {"encoder_hidden_states": states[i : i + 16].astype("float32")},
                        max_length=config.max_length, seed=seeds[0],
                    )
                    for i in range(0, len(states), 16)
                ]
                test_runs = [t for chunk in test_runs for t in chunk]
                texts[name, decoding, "test"] = [t.text for t in test_runs]
                fallbacks[name, "test"] = _fallbacks(test_runs)
                for seed in seeds:
                    real_runs = model.decode_with_fallback(real_audio, max_length=config.max_length, seed=seed)
                    texts[name, f"fallback seed {seed}", "real"] = [t.text for t in real_runs]
                    fallbacks[name, f"real seed {seed}"] = _fallbacks(real_runs)
            seconds[name, decoding] = time.perf_counter() - start
            print(name, decoding, f"{seconds[name, decoding]:.0f} s", flush=True)

    tflite = {}
    for name, file in (("teacher", "teacher_float32.tflite"), ("student", "student_dynamic_int8.tflite")):
        transcriber = WhisperTFLiteTranscriber(os.path.join(args.run_dir, file), models[name])
        start = time.perf_counter()
        tflite[name] = {
            seed: [transcriber.decode_with_fallback(a, seed=seed) for a in real_audio] for seed in seeds
        }
        seconds[name, "tflite fallback"] = time.perf_counter() - start
        print(name, "tflite", f"{seconds[name, 'tflite fallback']:.0f} s", flush=True)

    rows = {}
    for name in models:
        rows[name] = {
            "greedy WER, held-out voices (%)": 100 * word_error_rate(truths, texts[name, "greedy", "test"]),
            "fallback WER, held-out voices (%)": 100 * word_error_rate(truths, texts[name, "fallback", "test"]),
            "test transcripts ending at each temperature": fallbacks[name, "test"],
            "real windows ending at each temperature, by seed": {
                seed: fallbacks[name, f"real seed {seed}"] for seed in seeds
            },
            "tflite real windows ending at each temperature, by seed": {
                seed: _fallbacks(runs) for seed, runs in tflite[name].items()
            },
            "seconds": {d: seconds[name, d] for d in ("greedy", "fallback", "tflite fallback")},
            "real texts, greedy": texts[name, "greedy", "real"],
            f"real texts, fallback seed {seeds[0]}": texts[name, f"fallback seed {seeds[0]}", "real"],
        }
    greedy_real = 100 * word_error_rate(texts["teacher", "greedy", "real"], texts["student", "greedy", "real"])
    fallback_real = {
        seed: 100 * word_error_rate(
            texts["teacher", f"fallback seed {seed}", "real"], texts["student", f"fallback seed {seed}", "real"]
        )
        for seed in seeds
    }
    tflite_real = {
        seed: 100 * word_error_rate(
            [t.text for t in tflite["teacher"][seed]], [t.text for t in tflite["student"][seed]]
        )
        for seed in seeds
    }
    summary = {
        "teacher WER, held-out voices, greedy / fallback (%)": [
            rows["teacher"]["greedy WER, held-out voices (%)"], rows["teacher"]["fallback WER, held-out voices (%)"]
        ],
        "student WER, held-out voices, greedy / fallback (%)": [
            rows["student"]["greedy WER, held-out voices (%)"], rows["student"]["fallback WER, held-out voices (%)"]
        ],
        "student - teacher WER, greedy / fallback (points)": [
            rows["student"]["greedy WER, held-out voices (%)"] - rows["teacher"]["greedy WER, held-out voices (%)"],
            rows["student"]["fallback WER, held-out voices (%)"] - rows["teacher"]["fallback WER, held-out voices (%)"],
        ],
        "student WER against the teacher, real windows, greedy (%)": greedy_real,
        "student WER against the teacher, real windows, fallback, by seed (%)": fallback_real,
        "the same from the .tflite files, fallback, by seed (%)": tflite_real,
    }
    result.update(rows=rows, summary=summary, minutes=(time.perf_counter() - started) / 60)
    atomic_write_json(args.out, result, overwrite=True)
    print(json.dumps(summary, indent=2))
    print(f"wrote {args.out} in {result['minutes']:.1f} min")
    return result


if __name__ == "__main__":
    main()
