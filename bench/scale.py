"""Distiller training throughput on 1 and 2 devices under tf.distribute.

The models and data of `bench/distiller_step.py`: a 6-layer teacher and a
2-layer student (keras-hub `BertBackbone`, MiniLM's widths: hidden 384, 12
heads, intermediate 1536; random init, 2 classes), sequence length 64,
global batch 32. Each configuration runs in its own process (TensorFlow
fixes its devices at start-up):

  cpu_1: one CPU device, no strategy;
  cpu_2: the CPU split into 2 logical devices (`keras_kd.utils.devices.
         split_cpu`), `MirroredStrategy` over both;
  gpu_N: `MirroredStrategy` over the first N GPUs (N = 1, 2, ... up to all
         of them), when there are GPUs.

XLA is off in every configuration (`jit_compile=False`), as the default
`"auto"` leaves it under a strategy, so the ratios compare like with like.
An epoch of `--steps` steps warms up (tracing); the fastest of 2 timed
epochs counts.

Two logical CPU devices share the same cores: they are the way to run and
test multi-device code without accelerators, not a speed-up. Expect a ratio
near or below 1 there; GPU rows show real scaling.

    python bench/scale.py [--steps 5] [--out bench/results/scale.json]
"""

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

def measure(config, steps):
    """Runs in the configuration's own process; returns its figures."""
    from keras_kd.utils.devices import split_cpu

    kind, count = config.split("_")
    count = int(count)
    if kind == "cpu" and count > 1:
        split_cpu(count)
    import keras
    import tensorflow as tf
    from distiller_step import BATCH_SIZE, classifier, dataset

    import keras_kd

    if kind == "gpu":
        gpus = tf.config.list_logical_devices("GPU")[:count]
        strategy = tf.distribute.MirroredStrategy([d.name for d in gpus])
    elif count > 1:
        strategy = tf.distribute.MirroredStrategy(
            [d.name for d in tf.config.list_logical_devices("CPU")]
        )
    else:
        strategy = tf.distribute.get_strategy()

    epoch_seconds = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epoch_seconds.append(time.perf_counter() - self.start)

    with strategy.scope():
        distiller = keras_kd.Distiller(
            student=classifier(2, seed=2), teacher=classifier(6, seed=1)
        )
        distiller.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile=False)
    distiller.fit(
        dataset(steps).repeat(),
        epochs=3,
        steps_per_epoch=steps,
        callbacks=[Timer()],
        verbose=0,
    )
    seconds = min(epoch_seconds[1:]) / steps
    return {
        "replicas": strategy.num_replicas_in_sync,
        "seconds_per_step": seconds,
        "examples_per_second": BATCH_SIZE / seconds,
        "warmup_seconds": epoch_seconds[0],
    }


def run_in_process(config, steps):
    result = subprocess.run(
        [sys.executable, __file__, "--measure", config, "--steps", str(steps)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{config} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def gpu_count():
    code = "import tensorflow as tf; print(len(tf.config.list_physical_devices('GPU')))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument(
        "--out", default=os.path.join("bench", "results", "scale.json")
    )
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.steps)))
        return

    from _machine import machine_info
    from distiller_step import BATCH_SIZE, SEQUENCE_LENGTH

    from keras_kd.utils.io import atomic_write_json

    gpus = gpu_count()
    configs = ["cpu_1", "cpu_2"] + [f"gpu_{n}" for n in range(1, gpus + 1)]
    results = {config: run_in_process(config, args.steps) for config in configs}
    ratios = {
        "cpu_2_over_cpu_1": results["cpu_2"]["examples_per_second"]
        / results["cpu_1"]["examples_per_second"]
    }
    for config in configs:
        if config.startswith("gpu_") and config != "gpu_1":
            ratios[f"{config}_over_gpu_1"] = (
                results[config]["examples_per_second"]
                / results["gpu_1"]["examples_per_second"]
            )

    print(
        "\nDistiller training, 6-layer teacher / 2-layer student (BERT, "
        f"hidden 384), global batch {BATCH_SIZE}, sequence length "
        f"{SEQUENCE_LENGTH}, XLA off, {os.cpu_count()} CPU cores"
    )
    print(f"{'configuration':14s} {'replicas':>8s} {'ms/step':>9s} {'examples/s':>11s}")
    for config, row in results.items():
        print(
            f"{config:14s} {row['replicas']:8d} "
            f"{1000 * row['seconds_per_step']:9.1f} "
            f"{row['examples_per_second']:11.1f}"
        )
    for name, ratio in ratios.items():
        print(f"{name}: {ratio:.2f}x")
    if gpus == 0:
        print("No GPU here: the GPU rows are missing, not zero.")
    record = {
        "machine": machine_info(),
        "settings": {
            "global_batch": BATCH_SIZE,
            "sequence_length": SEQUENCE_LENGTH,
            "timed_steps": args.steps,
            "models": "bench/distiller_step.py's: keras-hub BertBackbone, "
            "hidden 384, 12 heads, intermediate 1536; 6-layer teacher, "
            "2-layer student",
            "jit_compile": False,
        },
        "throughput": results,
        "ratios": ratios,
        "note": "cpu_2 is the CPU split into 2 logical devices that share "
        "its cores: it tests multi-device code, it does not add compute.",
    }
    atomic_write_json(args.out, record, overwrite=True)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
