"""The main job, measured: the default pipeline over several seeds, few labels,
and the end-to-end latency of what ships.

One run of `keras_kd.pipeline.run` on the embedded defaults (the demo's
settings: MiniLM teacher fine-tuned on the movie-review sentences, a 2-layer
student built from it, dynamic-int8 TFLite) with

  - `--seeds` (default 0 1 2): the distilled student and the same student
    trained without KD, once per seed (the teacher and the shipped student
    use the first seed), so the report gives mean and spread;
  - `--few-labels` (default 1000): a teacher fine-tuned on that many labelled
    sentences, a student distilled from it on all training sentences with
    the other labels hidden, against the same student trained on the
    labelled sentences alone for the same number of steps, once per seed.

The run's report times its two files at the demo's length side by side
(`keras_kd.export.compare_latency`, `--latency-runs` each, more than the
demo's 200). Then, from the run's saved models, the end-to-end latency on real test
sentences (tokenization and LiteRT `invoke`, one sentence at a time, mean
and median over `--e2e-sentences`): the student as it ships (dynamic-int8,
dynamic sequence length, truncated at the demo's length) against the
teacher exported at keras-hub's default sequence length (float32, 512).

It writes `bench/results/pipeline.json` (the report's figures, the time of
each step and the targets) and copies the run's chart to
`bench/results/pipeline_report.png`. The demo runs one seed without the
few-labels setting: time it with `time make demo`.

    python bench/pipeline.py [--seeds 0 1 2] [--few-labels 1000]
        [--e2e-sentences 300] [--latency-runs 1000] [--out bench/results/pipeline.json] [--quick]
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from _machine import machine_info  # noqa: E402
from _report import by_prefix  # noqa: E402
from keras_kd import datasets, export, pipeline  # noqa: E402
from keras_kd.utils.units import megabytes  # noqa: E402

# keras-hub's BertTextClassifierPreprocessor default.
KERAS_HUB_SEQUENCE_LENGTH = 512


def end_to_end_ms(path, texts):
    """Per-sentence time of raw text to probabilities, one at a time."""
    classifier = export.TFLiteTextClassifier(path, num_threads=2)
    classifier.predict(texts[:1])
    times = []
    for text in texts:
        start = time.perf_counter()
        classifier.predict([text])
        times.append(1000 * (time.perf_counter() - start))
    return {"mean_ms": float(np.mean(times)), "median_ms": float(np.median(times))}


def end_to_end(run_dir, sequence_length, labels, texts):
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, model_file, settings in (
            (
                "student (dynamic_int8, dynamic sequence length)",
                "student.keras",
                dict(
                    quantization="dynamic_int8",
                    sequence_length=sequence_length,
                    dynamic_sequence=True,
                ),
            ),
            (
                f"teacher (float32, keras-hub default length {KERAS_HUB_SEQUENCE_LENGTH})",
                "teacher.keras",
                dict(quantization="none", sequence_length=KERAS_HUB_SEQUENCE_LENGTH),
            ),
        ):
            model = keras.saving.load_model(os.path.join(run_dir, model_file))
            path = os.path.join(folder, f"{model_file}.tflite")
            result = export.export_tflite(
                model.token_id_model,
                path,
                labels=labels,
                vocabulary=model.preprocessor.tokenizer.get_vocabulary(),
                representative_data=texts[:100],
                verify_options={"latency_runs": 0, "use_mediapipe": False},
                **settings,
            )
            rows[name] = {
                "size_mb": megabytes(result.size_bytes),
                **end_to_end_ms(path, texts),
            }
            print(f"end to end, {name}: {rows[name]}", flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--few-labels", type=int, default=1000)
    parser.add_argument("--e2e-sentences", type=int, default=300)
    parser.add_argument("--latency-runs", type=int, default=1000)
    parser.add_argument("--run-name", default="bench_pipeline")
    parser.add_argument(
        "--quick", action="store_true",
        help="a smoke run on PipelineConfig.quick() settings (not the benchmark)",
    )
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    command = " ".join(["python", "bench/pipeline.py"] + (argv or sys.argv[1:]))
    out = args.out or os.path.join(
        "bench", "results", "pipeline_quick.json" if args.quick else "pipeline.json"
    )

    settings = dict(
        seeds=tuple(args.seeds),
        few_labels=args.few_labels or None,
        run_name=args.run_name,
        latency_runs=args.latency_runs,
        overwrite=True,
        verbose=2,
    )
    config = (
        pipeline.PipelineConfig.quick(**settings)
        if args.quick
        else pipeline.PipelineConfig(**settings)
    )
    report = pipeline.run(config)
    data = datasets.load(config.data)
    test_texts = data.test.sample(args.e2e_sentences).texts
    # The run's length: chosen from the data unless given.
    e2e = end_to_end(
        config.run_dir, report["settings"]["sequence_length"], list(data.class_names), test_texts
    )

    models, summary, steps = report["models"], report["summary"], report["seconds_by_step"]
    (student_e2e, teacher_e2e) = e2e.values()
    figures = {
        "teacher test accuracy": models["teacher (Keras)"]["test_accuracy"],
        "distilled student test accuracy (mean)": models["student with KD (Keras)"]["test_accuracy"],
        "distilled student test accuracy (std)": models["student with KD (Keras)"]["test_accuracy_std"],
        "student without KD test accuracy (mean)": models["student without KD (Keras)"]["test_accuracy"],
        "student without KD test accuracy (std)": models["student without KD (Keras)"]["test_accuracy_std"],
        **summary,
        "end-to-end speed-up (teacher at keras-hub defaults / shipped student, mean per sentence)": (
            teacher_e2e["mean_ms"] / student_e2e["mean_ms"]
        ),
        "bench seconds": report["seconds"],
    }
    kd_retention = by_prefix(summary, "accuracy retention (Keras student with KD / teacher")
    targets = {
        "distilled student >= 98% of the teacher (mean of seeds)": kd_retention >= 0.98,
        "TFLite int8 student file >= 8x smaller than the float32 teacher": (
            summary["TFLite size compression (teacher / student)"] >= 8
        ),
        "single-example latency >= 3x lower at the same sequence length": (
            summary["TFLite latency speed-up (teacher / student)"] >= 3
        ),
        "end to end >= 3x lower (shipped settings vs keras-hub defaults)": (
            figures[
                "end-to-end speed-up (teacher at keras-hub defaults / shipped student, mean per sentence)"
            ]
            >= 3
        ),
        "TFLite student within 0.5 points of the Keras student": (
            abs(summary["TFLite student vs its Keras model (points)"]) <= 0.5
        ),
    }
    if config.few_labels:
        targets["few labels: KD gain >= 2 points (mean of seeds)"] = (
            by_prefix(summary, "few labels: KD gain (points") >= 2
        )

    print(f"\n{report['title']} (seeds {list(config.seeds)})")
    with open(os.path.join(config.run_dir, "report.md")) as f:
        print(f.read())
    print("End to end on real test sentences (tokenization + LiteRT, 2 threads):")
    for name, row in e2e.items():
        print(
            f"  {name:60s} {row['size_mb']:6.1f} MB  mean {row['mean_ms']:7.2f} ms"
            f"  median {row['median_ms']:7.2f} ms"
        )
    print("Seconds by step: " + ", ".join(f"{k} {v:.0f}" for k, v in steps.items()))
    for name, met in targets.items():
        print(f"  [{'met' if met else 'NOT met'}] {name}")

    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    record = {
        "benchmark": "pipeline",
        "command": command,
        "machine": machine_info(),
        "figures": figures,
        "targets": targets,
        "end_to_end": {**e2e, "sentences": len(test_texts), "threads": 2},
        "seconds_by_step": steps,
        "report": report,
    }
    with open(out, "w") as f:
        json.dump(record, f, indent=2, default=float)
    shutil.copyfile(
        os.path.join(config.run_dir, "report.png"),
        os.path.splitext(out)[0] + "_report.png",
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
