"""Distilling Whisper tiny.en into a 2-decoder-layer student on synthetic
speech, and running both from `.tflite`.

One `keras_kd.pipeline.run_speech` run (the recipe of `keras-kd demo --task
speech`, with more training sentences and test utterances):

1. eSpeak NG speaks movie-review training sentences, joined into passages
   of up to `--passage-words` words, with 11 of its 14 English voices
   (and flite's four with `--flite`), and
   held-out sentences one by one with the other 3, with noise and
   telephone-band augmentation;
2. the teacher's encoder encodes every utterance once (the student shares
   it, frozen); the teacher pseudo-labels the training utterances, and
   those whose word error rate against what was said is above `--max-wer`
   are dropped;
3. the student (the teacher's encoder, its first and last decoder layers)
   is distilled on the rest;
4. teacher and student are scored side by side: WER against the spoken
   text on held-out voices, WER of the student against the teacher on
   real recordings (moonshine-voice's), decoding speed in Keras and in
   TFLite (batch 1), file sizes.

Targets (issue 16): student WER within 1.5 points of the teacher's on the
held-out synthetic audio; TFLite decoding at least 1.5x the teacher's speed;
student transcripts of the real recordings within 10% WER of the teacher's;
under 45 minutes on the 2-core machine.

    python bench/speech.py [--out bench/results/speech.json] [--run-dir DIR] [--flite]
"""

import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_kd.pipeline import SpeechConfig, run_speech  # noqa: E402
from keras_kd.speech import FLITE_VOICES  # noqa: E402
from keras_kd.utils.io import atomic_write_json  # noqa: E402
from _machine import machine_info  # noqa: E402


def main(argv=None):
    defaults = SpeechConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-sentences", type=int, default=3000)
    parser.add_argument("--passage-words", type=int, default=defaults.passage_words)
    parser.add_argument("--test-utterances", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--max-wer", type=float, default=defaults.max_wer)
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument(
        "--flite", action="store_true",
        help="train on flite's voices (keras_kd.speech.FLITE_VOICES) beside eSpeak NG's",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=2)
    parser.add_argument("--out", default="bench/results/speech.json")
    parser.add_argument(
        "--run-dir",
        help="keep the run's folder (student.keras, the .tflite files, report) "
        "here instead of a temporary folder; it must not exist yet",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    result = {"machine": machine_info(), "settings": vars(args)}
    with tempfile.TemporaryDirectory() as scratch:
        output_dir, run_name = (
            os.path.split(os.path.abspath(args.run_dir)) if args.run_dir else (scratch, "speech")
        )
        report = run_speech(SpeechConfig(
            train_sentences=args.train_sentences, passage_words=args.passage_words,
            test_utterances=args.test_utterances,
            epochs=args.epochs, max_wer=args.max_wer, learning_rate=args.learning_rate,
            extra_voices=FLITE_VOICES if args.flite else (),
            seed=args.seed, verbose=args.verbose, output_dir=output_dir, run_name=run_name,
        ))
    result["report"] = report
    scores = report["scores"]
    minutes = (time.perf_counter() - started) / 60
    result["summary"] = {
        "teacher WER, held-out voices (%)": 100 * scores["teacher"]["synthetic_wer"],
        "student WER, held-out voices (%)": 100 * scores["student"]["synthetic_wer"],
        "student - teacher WER (points)": report["wer_gap_points"],
        "target: <= 1.5": report["wer_gap_points"] <= 1.5,
        "student WER against the teacher, real recordings (%)":
            100 * scores["student"]["real_wer_against_teacher"],
        "target: <= 10": scores["student"]["real_wer_against_teacher"] <= 0.10,
        "TFLite decoding speed, student / teacher": report["tflite_decode_speedup"],
        "target: >= 1.5": report["tflite_decode_speedup"] >= 1.5,
        "Keras decoding speed, student / teacher": report["keras_decode_speedup"],
        "file sizes (MB)": {n: e["size_mb"] for n, e in report["exports"].items()},
        "pseudo-labels kept": report["distillation"]["pseudo_labels"]["kept"],
        "minutes": minutes,
        "target: < 45": minutes < 45,
    }
    atomic_write_json(args.out, result, overwrite=True)
    print(json.dumps(result["summary"], indent=2))
    print(f"wrote {args.out} in {minutes:.1f} min")
    return result


if __name__ == "__main__":
    main()
