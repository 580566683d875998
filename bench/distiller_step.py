"""Training throughput of keras_kd.Distiller against Keras's own Distiller.

One run, side by side, on the same models and data: a 6-layer teacher and a
2-layer student (keras-hub `BertBackbone`, MiniLM's widths, random init,
sequence length 64, batch 32, 2 classes). It measures training examples per
second of

  (a) `keras_kd.Distiller` with its defaults,
  (b) `keras.distillation.Distiller` + `LogitsDistillation` with their defaults,
  (c) the student alone with `model.fit` (XLA on, as keras-kd uses it, and
      Keras's CPU default, XLA off),

and the teacher's `predict`, then prints the KL divergence each library
computes on the same logits next to the exact value.

    python bench/distiller_step.py [--steps 20] [--out bench/results/distiller_step.json]
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_kd  # noqa: E402
from _machine import machine_info  # noqa: E402

SEQUENCE_LENGTH = 64
BATCH_SIZE = 32
VOCABULARY_SIZE = 30522


def classifier(num_layers, seed):
    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=VOCABULARY_SIZE,
        num_layers=num_layers,
        num_heads=12,
        hidden_dim=384,
        intermediate_dim=1536,
        max_sequence_length=512,
    )
    logits = keras.layers.Dense(2)(backbone.output["pooled_output"])
    return keras.Model(backbone.input, logits, name=f"bert_{num_layers}_layers")


def dataset(num_batches):
    rng = np.random.default_rng(0)
    n = num_batches * BATCH_SIZE
    x = {
        "token_ids": rng.integers(1000, VOCABULARY_SIZE, (n, SEQUENCE_LENGTH)),
        "padding_mask": np.ones((n, SEQUENCE_LENGTH), "int32"),
        "segment_ids": np.zeros((n, SEQUENCE_LENGTH), "int32"),
    }
    x["token_ids"] = x["token_ids"].astype("int32")
    y = rng.integers(0, 2, n)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH_SIZE).cache()


class StepTimer(keras.callbacks.Callback):
    """Wall time of each epoch; the first epoch holds tracing and compiling."""

    def __init__(self):
        super().__init__()
        self.epoch_seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_seconds.append(time.perf_counter() - self._start)


def train_throughput(model, data, steps):
    timer = StepTimer()
    # Epoch 1 warms up (trace + compile); the timed epochs follow.
    model.fit(data, epochs=3, steps_per_epoch=steps, callbacks=[timer], verbose=0)
    seconds = min(timer.epoch_seconds[1:]) / steps
    return {
        "seconds_per_step": seconds,
        "examples_per_second": BATCH_SIZE / seconds,
        "warmup_seconds": timer.epoch_seconds[0],
        "jit_compile": bool(model.jit_compile),
    }


def predict_throughput(model, data, steps, jit_compile):
    model.compile(jit_compile=jit_compile)
    x = data.map(lambda x, y: x).take(steps)
    model.predict(x, verbose=0)
    timings = []
    for _ in range(2):
        start = time.perf_counter()
        model.predict(x, verbose=0)
        timings.append(time.perf_counter() - start)
    seconds = min(timings) / steps
    return {
        "seconds_per_step": seconds,
        "examples_per_second": BATCH_SIZE / seconds,
        "jit_compile": bool(model.jit_compile),
    }


def _log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def kl_comparison():
    """KL(teacher || student) at T=2 on fixed logits, by each library."""
    cases = {
        "mild (logits ~ N(0, 1))": np.random.default_rng(1).normal(
            size=(2, 4, 5)
        ),
        "confident teacher (logits ~ N(0, 10))": np.random.default_rng(2).normal(
            size=(2, 4, 5)
        )
        * [[[10.0]], [[1.0]]],
    }
    rows = []
    temperature = 2.0
    for name, (teacher, student) in (
        (name, (logits[0], logits[1])) for name, logits in cases.items()
    ):
        log_p = _log_softmax(teacher / temperature)
        log_q = _log_softmax(student / temperature)
        exact = temperature**2 * (np.exp(log_p) * (log_p - log_q)).sum(-1).mean()
        ours = float(
            keras_kd.losses.KLDivergence(temperature)(teacher, student)
        )
        keras_loss = keras.distillation.LogitsDistillation(temperature=temperature)
        theirs = float(
            keras_loss.compute_loss(
                keras.ops.convert_to_tensor(teacher, "float32"),
                keras.ops.convert_to_tensor(student, "float32"),
            )
        )
        rows.append(
            {"case": name, "exact": exact, "keras_kd": ours, "keras": theirs}
        )
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument(
        "--out", default=os.path.join("bench", "results", "distiller_step.json")
    )
    args = parser.parse_args()
    data = dataset(args.steps).repeat()

    results = {}
    teacher, student = classifier(6, seed=1), classifier(2, seed=2)
    ours = keras_kd.Distiller(student=student, teacher=teacher)
    ours.compile(optimizer=keras.optimizers.Adam(1e-4))
    results["a_keras_kd_distiller"] = train_throughput(ours, data, args.steps)

    teacher, student = classifier(6, seed=1), classifier(2, seed=2)
    theirs = keras.distillation.Distiller(
        teacher=teacher,
        student=student,
        distillation_losses=keras.distillation.LogitsDistillation(
            temperature=2.0
        ),
        student_loss_weight=0.5,
    )
    theirs.compile(
        optimizer=keras.optimizers.Adam(1e-4),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    results["b_keras_distiller"] = train_throughput(theirs, data, args.steps)

    for label, jit in (("c_student_fit_xla", True), ("c_student_fit_keras_default", "auto")):
        student = classifier(2, seed=2)
        student.compile(
            optimizer=keras.optimizers.Adam(1e-4),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=jit,
        )
        results[label] = train_throughput(student, data, args.steps)

    teacher = classifier(6, seed=1)
    results["teacher_predict_xla"] = predict_throughput(
        teacher, data, args.steps, jit_compile=True
    )
    results["teacher_predict_keras_default"] = predict_throughput(
        teacher, data, args.steps, jit_compile="auto"
    )

    a = results["a_keras_kd_distiller"]["seconds_per_step"]
    b = results["b_keras_distiller"]["seconds_per_step"]
    c = results["c_student_fit_xla"]["seconds_per_step"]
    forward = results["teacher_predict_xla"]["seconds_per_step"]
    summary = {
        "speedup_a_over_b": b / a,
        "target_speedup_a_over_b": 2.5,
        "a_over_c_plus_teacher_forward": a / (c + forward),
        "target_a_over_c_plus_teacher_forward": 1.1,
    }
    kl_rows = kl_comparison()

    print(
        f"\nTraining throughput, batch {BATCH_SIZE}, sequence length "
        f"{SEQUENCE_LENGTH}, 6-layer teacher / 2-layer student "
        f"(hidden 384), {os.cpu_count()} CPU cores, {args.steps} timed steps"
    )
    print(f"{'run':34s} {'XLA':>5s} {'ms/step':>9s} {'examples/s':>11s}")
    for name, row in results.items():
        print(
            f"{name:34s} {str(row['jit_compile']):>5s} "
            f"{1000 * row['seconds_per_step']:9.1f} "
            f"{row['examples_per_second']:11.1f}"
        )
    print(
        f"\n(a) / (b) speed-up: {summary['speedup_a_over_b']:.2f}x "
        f"(target >= 2.5x)"
    )
    print(
        "(a) step / ((c) step + teacher forward): "
        f"{summary['a_over_c_plus_teacher_forward']:.3f} (target <= 1.1)"
    )
    print("\nKL(teacher || student) at T=2 on the same logits")
    print(f"{'case':40s} {'exact':>9s} {'keras_kd':>9s} {'keras':>9s}")
    for row in kl_rows:
        print(
            f"{row['case']:40s} {row['exact']:9.4f} {row['keras_kd']:9.4f} "
            f"{row['keras']:9.4f}"
        )

    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    record = {
        "machine": machine_info(),
        "settings": {
            "batch_size": BATCH_SIZE,
            "sequence_length": SEQUENCE_LENGTH,
            "timed_steps": args.steps,
        },
        "throughput": results,
        "summary": summary,
        "kl_divergence": kl_rows,
    }
    with open(args.out, "w") as f:
        json.dump(record, f, indent=2)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
