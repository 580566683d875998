"""Students of each shape and method side by side, with the teacher.

On the movie reviews, one fine-tuned MiniLM teacher (or `--teacher`, a
saved `FinetuneModel`), students of `--shapes` (layers x hidden; default 2
and 3 layers at hidden 128, 256 and 384), each trained with the pipeline's
recipe (`keras_kd.pipeline.steps.distill_student`: its auto budget, AdamW
warm-up and cosine decay, best validation epoch, early stopping) by:

  a  labels only (alpha 0);
  b  logits KD from the teacher's cache (alpha 0.5, T 2);
  c  b plus intermediate-layer KD from the live teacher, on the same
     batches: `HiddenStateLoss` (cosine, weight 1, evenly spaced layer
     map, a learned projection when narrower; chosen over MSE, MSE with
     `AttentionRelationLoss`, and `AttentionRelationLoss` alone by
     validation accuracy on the 2x128 student, one seed each);
  d  c on the training texts plus `--generated` texts written by SmolLM2
     from prompts cut from them, less copies of the run's texts and
     repeats (the JSON's `generated` counts them), labelled by the
     teacher;
  e  c on the training texts plus the sentences of the three other rated
     sets (product reviews, news editorials, tweets: 12,678 texts of other
     domains as `keras_kd.datasets.load` gives them, their people's
     ratings unused), labelled by the teacher.

Every student of a shape starts from the same weights for a seed (the
narrower ones: new layers, the teacher's embeddings projected; hidden 384:
the teacher's layers). `--two-teachers` adds a row distilled as b from two
teachers (a second MiniLM fine-tuned with another seed), equal weights.

Each shape's dynamic-int8 `.tflite`, vocabulary trimmed to the training
texts, is measured for size and single-example latency at the teacher's
sequence length, side by side with the teacher's own file. Rows carry
`size_mb` (10^6 bytes) and `retention` (student / teacher test accuracy).
The JSON (with the commit, also on every row) is rewritten after every
training, so a killed run keeps the rows it finished, and `--resume`
trains only the rows missing from it (same teacher and settings); the plot of accuracy against size goes
next to it. Targets (issue 15): a student of at most 4 MB keeps at least
97% of the teacher's accuracy (mean of the seeds); at hidden 128 and 256,
c beats b by at least 1 point.

    python bench/students.py [--teacher model.keras] [--shapes 2x128,2x256]
        [--methods abcde] [--seeds 0,1,2] [--two-teachers]
        [--out bench/results/students.json]

`--train-size 256 --epochs 1` runs every path in a few minutes (a smoke
check; its accuracies mean nothing).
"""

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_kd import TeacherCache, transfer  # noqa: E402
from keras_kd import datasets as kd_datasets  # noqa: E402
from keras_kd.distillation import HiddenStateLoss  # noqa: E402
from keras_kd.pipeline import PipelineConfig, steps  # noqa: E402
from keras_kd.pipeline.budget import resolve_budget  # noqa: E402
from keras_kd.pipeline.student_search import measure_students  # noqa: E402
from keras_kd.utils.io import RunProgress, atomic_write, atomic_write_json  # noqa: E402
from _machine import machine_info  # noqa: E402

METHODS = {
    "a": "labels",
    "b": "logits KD",
    "c": "logits + intermediate KD",
    "d": "c + generated text",
    "e": "c + other rated text",
}
OTHER_RATED_SETS = ("product_reviews", "news_editorials", "tweets")


def _shape(text):
    layers, hidden = text.lower().split("x")
    return int(layers), int(hidden)


def _teacher(path, config, data, seed):
    if path:
        return transfer.load_finetune_model(path)
    teacher, _ = steps.finetune_teacher(
        dataclasses.replace(config, seeds=(seed,)), data.train, data.validation,
        data.class_names,
    )
    return teacher


def feature_losses():
    """Method c's losses, new for each training (they learn projections)."""
    return [HiddenStateLoss(loss="cosine", weight=1.0)]


def _generated(config, data, teacher, work, count):
    """`count` generated texts less copies of the run's texts and repeats,
    labelled by `teacher`, with `new_texts`'s counts: the pipeline's
    `steps.generated_once`, its texts written once into `work`."""
    folder = os.path.join(work, f"generated_{count}")
    os.makedirs(folder, exist_ok=True)
    return steps.generated_once(
        RunProgress(folder, {"generated": count}),
        dataclasses.replace(config, generated_texts=count), teacher, data.train,
        [t for split in data.splits.values() for t in split.texts],
    )


def _other_rated(config, teacher):
    """Every sentence of `OTHER_RATED_SETS` (all splits), labelled by
    `teacher`."""
    texts = [text for name in OTHER_RATED_SETS for text in kd_datasets.read_texts(name)]
    return steps.teacher_labelled(teacher, texts, config.batch_size)


def _summary(rows, teacher_accuracy, sizes):
    """Mean accuracy of each shape and method, with the shape's size and
    latency as this run measured them, else as its latest row recorded
    (a `--resume` run measures only its `--shapes`)."""
    groups = {}
    for row in rows:
        groups.setdefault((row["shape"], row["method"]), []).append(row["test_accuracy"])
    recorded = {row["shape"]: {k: row[k] for k in ("size_mb", "latency_ms") if k in row} for row in rows}
    summary = []
    for (shape, method), accuracies in groups.items():
        mean = float(np.mean(accuracies))
        summary.append({
            "shape": shape,
            "method": method,
            "seeds": len(accuracies),
            "test_accuracy_mean": mean,
            "test_accuracy_std": float(np.std(accuracies)),
            "retention": mean / teacher_accuracy,
            **sizes.get(shape, recorded[shape]),
        })
    return summary


def _targets(summary):
    fits = [
        row for row in summary
        if row.get("size_mb", float("inf")) <= 4.0 and row["method"] != "two teachers"
    ]
    best = max(fits, key=lambda row: row["retention"], default=None)
    by_key = {(row["shape"], row["method"]): row for row in summary}
    gains = {}
    for row in summary:
        shape = row["shape"]
        if row["method"] == "c" and (shape, "b") in by_key and _shape(shape)[1] in (128, 256):
            gains[shape] = 100 * (row["test_accuracy_mean"] - by_key[shape, "b"]["test_accuracy_mean"])
    return {
        "best_within_4mb": best and {k: best[k] for k in ("shape", "method", "size_mb", "retention", "seeds")},
        "within_4mb_keeps_97": bool(best and best["retention"] >= 0.97),
        "c_minus_b_points": gains,
        "c_beats_b_by_1_point": bool(gains) and all(g >= 1.0 for g in gains.values()),
    }


def _earlier_rows(args, teacher_accuracy):
    """The rows of an earlier run in `args.out`, each with the commit that
    trained it; refused unless that run had this teacher and settings."""
    if not os.path.exists(args.out):
        raise SystemExit(f"--resume: {args.out!r} does not exist; run without --resume.")
    with open(args.out) as f:
        earlier = json.load(f)
    same = ("teacher", "train_size", "epochs", "generated")
    changed = [k for k in same if earlier["settings"].get(k) != getattr(args, k)]
    if earlier["teacher"]["test_accuracy"] != teacher_accuracy:
        changed.append("teacher test accuracy")
    if changed:
        raise SystemExit(
            f"--resume: {args.out!r} was written with another {', '.join(changed)}; "
            "pass the same ones, or another --out without --resume."
        )
    return [{"commit": earlier["machine"]["commit"], **row} for row in earlier["rows"]]


def _plot(summary, teacher, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    for method in sorted({row["method"] for row in summary}):
        points = sorted(
            (row["size_mb"], 100 * row["test_accuracy_mean"], 100 * row["test_accuracy_std"])
            for row in summary if row["method"] == method and "size_mb" in row
        )
        if points:
            x, y, spread = zip(*points)
            axis.errorbar(x, y, yerr=spread, marker="o", capsize=3,
                          label=f"{method}: {METHODS.get(method, method)}")
    axis.scatter([teacher["size_mb"]], [100 * teacher["test_accuracy"]], marker="*",
                 s=150, color="black", label="teacher", zorder=3)
    axis.axvline(4.0, color="grey", linestyle=":", linewidth=1)
    axis.set_xscale("log")
    axis.set_xlabel("dynamic-int8 .tflite, MB (vocabulary trimmed)")
    axis.set_ylabel("test accuracy, % (mean of seeds)")
    axis.set_title("Students of the MiniLM teacher on the movie reviews")
    axis.legend(fontsize=8)
    figure.tight_layout()
    atomic_write(path, lambda tmp: figure.savefig(tmp, dpi=110), overwrite=True)
    plt.close(figure)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", help="a saved FinetuneModel (.keras); default: fine-tune one")
    parser.add_argument("--second-teacher", help="the second teacher of --two-teachers")
    parser.add_argument("--shapes", default="2x128,2x256,2x384,3x128,3x256,3x384")
    parser.add_argument("--methods", default="abcd")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--two-teachers", action="store_true")
    parser.add_argument("--generated", type=int, default=2000)
    parser.add_argument("--work-dir", help="keeps caches and generated texts between runs")
    parser.add_argument("--train-size", type=int,
                        help="a seeded sample of the training texts (a quick look; not for the targets)")
    parser.add_argument("--epochs", type=int, help="fixed epochs instead of the auto budget")
    parser.add_argument("--out", default="bench/results/students.json")
    parser.add_argument("--resume", action="store_true",
                        help="keep the rows of --out (same teacher and settings) and "
                             "train only the missing ones")
    args = parser.parse_args(argv)
    shapes = [_shape(text) for text in args.shapes.split(",")]
    seeds = [int(seed) for seed in args.seeds.split(",")]
    unknown = set(args.methods) - set(METHODS)
    if unknown:
        raise SystemExit(f"--methods={args.methods!r}: unknown {sorted(unknown)}; use letters of {''.join(METHODS)!r}.")
    started = time.perf_counter()
    work = args.work_dir or tempfile.mkdtemp(prefix="keras_kd_students_")
    os.makedirs(work, exist_ok=True)
    data = kd_datasets.load("movie_reviews")
    if args.train_size:
        data = dataclasses.replace(data, train=data.train.sample(args.train_size, seed=0))
    base = PipelineConfig(verbose=0, epochs=args.epochs)
    teacher = _teacher(args.teacher, base, data, 0)
    base = dataclasses.replace(base, sequence_length=teacher.preprocessor.sequence_length)
    teacher_accuracy = steps.accuracy_of(base, teacher, data.test)
    measured = measure_students(
        teacher, shapes + [(teacher.backbone.num_layers, teacher.backbone.hidden_dim)],
        data.train.texts, base.sequence_length,
    )
    sizes = {
        f"{row['num_layers']}x{row['hidden_dim']}": {
            "size_mb": row["size_mb"], "latency_ms": row["latency_ms"],
            "parameters": row["parameters"],
        }
        for row in measured
    }
    teacher_row = {
        "test_accuracy": teacher_accuracy,
        **sizes[f"{teacher.backbone.num_layers}x{teacher.backbone.hidden_dim}"],
    }
    cache = steps.teacher_cache(base, teacher, data.train, os.path.join(work, "cache"))
    validation_ds = steps.validation_dataset(base, teacher, data.validation)
    extended = generated_counts = None
    if "d" in args.methods:
        extra, generated_counts = _generated(base, data, teacher, work, args.generated)
        extended = steps.teacher_cache(
            base, teacher, data.train.extended(extra), os.path.join(work, f"cache_{args.generated}")
        )
    other = None
    if "e" in args.methods:
        other = steps.teacher_cache(
            base, teacher, data.train.extended(_other_rated(base, teacher)),
            os.path.join(work, "cache_other_rated"),
        )
    result = {
        "machine": machine_info(), "settings": vars(args), "teacher": teacher_row,
        "generated": generated_counts, "rows": [],
    }
    if args.resume:
        result["rows"] = _earlier_rows(args, teacher_accuracy)
    done = {(row["shape"], row["method"], row["seed"]) for row in result["rows"]}

    def save():
        result["summary"] = _summary(result["rows"], teacher_accuracy, sizes)
        result["targets"] = _targets(result["summary"])
        result["seconds"] = time.perf_counter() - started
        atomic_write_json(args.out, result, overwrite=True)

    def train(shape, method, seed, run_cache, losses):
        if (f"{shape[0]}x{shape[1]}", method, seed) in done:
            return
        config = resolve_budget(
            dataclasses.replace(base, student_layers=shape[0], student_hidden_dim=shape[1]),
            data.train, sequence_length=False, teacher_hidden_dim=teacher.backbone.hidden_dim,
        ).config
        keras.utils.set_random_seed(seed)
        student = steps.student_of(config, teacher)
        lap = time.perf_counter()
        history = steps.distill_student(
            config, student, teacher, run_cache, 0.0 if method == "a" else config.alpha,
            seed, validation_ds, feature_losses=losses() if losses else None,
        )
        row = {
            "shape": f"{shape[0]}x{shape[1]}",
            "method": method,
            "seed": seed,
            "test_accuracy": steps.accuracy_of(config, student, data.test),
            "trained": history.budget,
            "seconds": time.perf_counter() - lap,
            "commit": result["machine"]["commit"],
        }
        row["retention"] = row["test_accuracy"] / teacher_accuracy
        row.update({k: sizes[row["shape"]][k] for k in ("size_mb", "latency_ms")})
        result["rows"].append(row)
        save()
        print(
            f"{row['shape']:>6} {method:>12} seed {seed}: {row['test_accuracy']:.4f} "
            f"({100 * row['retention']:.1f}%) in {row['seconds']:.0f} s", flush=True,
        )

    runs = {"a": (cache, None), "b": (cache, None), "c": (cache, feature_losses),
            "d": (extended, feature_losses), "e": (other, feature_losses)}
    for shape in shapes:
        for seed in seeds:
            for method in args.methods:
                train(shape, method, seed, *runs[method])
    two_done = all((f"{shapes[0][0]}x{shapes[0][1]}", "two teachers", seed) in done
                   for seed in seeds)
    if args.two_teachers and not two_done:
        second = _teacher(args.second_teacher, base, data, 1)
        teacher_row["second_test_accuracy"] = steps.accuracy_of(base, second, data.test)
        both = TeacherCache.build(
            [teacher.token_id_model, second.token_id_model], data.train,
            os.path.join(work, "cache_two_teachers"), preprocessor=teacher.preprocessor,
            temperature=base.temperature, jit_compile=base.jit_compile, verbose=0,
        )
        for seed in seeds:
            train(shapes[0], "two teachers", seed, both, None)
    save()
    _plot(result["summary"], teacher_row, os.path.splitext(args.out)[0] + ".png")
    print(f"teacher {teacher_accuracy:.4f}, {teacher_row['size_mb']:.2f} MB, "
          f"{teacher_row['latency_ms']:.2f} ms")
    print(f"{'shape':>6} {'method':>12} {'seeds':>5} {'accuracy':>14} {'retention':>9} "
          f"{'MB':>6} {'ms':>6}")
    for row in result["summary"]:
        print(
            f"{row['shape']:>6} {row['method']:>12} {row['seeds']:>5} "
            f"{row['test_accuracy_mean']:.4f}±{row['test_accuracy_std']:.4f} "
            f"{100 * row['retention']:>8.1f}% {row['size_mb']:>6.2f} {row['latency_ms']:>6.2f}"
        )
    print(json.dumps(result["targets"]))
    print(f"{result['seconds'] / 60:.1f} min")


if __name__ == "__main__":
    main()
