"""Distilling a real causal LM: SmolLM2-135M into a 6-layer student.

One run, on the movie-review sentences (a domain language model: next-word
suggestion for a review app):

1. the teacher, SmolLM2-135M-Instruct (the offline `smollm2_135m` preset),
   is fine-tuned on the training sentences (`transfer.finetune_causal_lm`);
2. the student keeps 6 of its 30 layers (`transfer.student_like`), with the
   teacher's embeddings, final norm and tied output layer;
3. the adapted teacher's top-k logits are cached once (`TeacherCache`,
   `top_k=64`), on the training sentences packed into full rows of 48
   tokens (`datasets.pack_texts`; `--no-packing`: one padded sentence a
   row, 47% of the positions padding);
4. for the same number of optimizer steps and the same batches, the student
   trains (a) on the data alone, (b) with token-level KD from the cache,
   (c) with sequence-level KD (on the teacher's sampled continuations of
   the first words of 960 training sentences, one a row), (d) on-policy
   (GKD: with probability 0.5 a batch's continuations are the student's
   own, the live teacher's distribution over them is the target; one
   sentence a row);
5. the best KD row keeps training, on the cache's further batches, under
   one warm-up and cosine decay planned to end within the run's time budget
   (`--budget-minutes`, default 38; at most `--extra-steps`), scored every
   `--extend-chunk` steps, and stops early once its perplexity is within
   2x of the adapted teacher's.

The cache holds `--cache-sentences` training sentences (default 6,000);
the rows' equal-step batches are drawn from it with one shuffle seed, so
(a) and (b) see the same batches, and the extended row goes on to the
batches after them. The student rows train at batch 8 under AdamW with
warm-up and cosine decay to a peak learning rate of 1e-3; (b) weighs the
KD term 0.7 (`--alpha`).

`--rows ab` leaves out (c) and (d), so that a longer `--budget-minutes`
goes to the extended row sooner.

Reported: held-out perplexity (a seeded sample of the test split), top-1
agreement with the teacher, parameters, greedy generation speed in Keras
(batch 1, both generate functions XLA-compiled; teacher and student timed
in turn over `--speed-rounds` rounds, medians), step times, cache bytes
per token, peak memory, wall time of each row.

    python bench/causal_lm.py [--out bench/results/causal_lm.json]
"""

import argparse
import json
import os
import resource
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_kd  # noqa: E402
from keras_kd import datasets, transfer  # noqa: E402
from keras_kd.distillation import (  # noqa: E402
    evaluate_causal_lm,
    greedy_tokens_per_second,
    on_policy_batches,
    sequence_kd_dataset,
    split_prompts,
)
from keras_kd.utils.io import atomic_write_json  # noqa: E402
from _machine import machine_info  # noqa: E402


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class StepTimer(keras.callbacks.Callback):
    """Wall time of each training step."""

    def __init__(self):
        super().__init__()
        self.times = []

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter() - self._start)


def median_step(timer):
    # The first steps trace and compile.
    return float(np.median(timer.times[5:] if len(timer.times) > 10 else timer.times))


def teacher_forward_seconds(teacher, cache, args, batches=6):
    """Median time of one XLA-compiled teacher forward pass on a training
    batch: what a live teacher adds to each distillation step (timed here,
    since the cache may have been reused rather than built)."""
    forward = tf.function(lambda x: teacher(x, training=False), jit_compile=True)
    times = []
    for batch in cache.dataset(args.batch_size).take(batches + 1):
        start = time.perf_counter()
        forward(batch[0]).numpy()
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))


def student_from(teacher, args):
    keras.utils.set_random_seed(args.seed)
    return transfer.student_like(teacher, num_layers=args.student_layers)


class Checkpoints(keras.callbacks.Callback):
    """Scores the student after every epoch (a chunk of steps) and stops the
    training once its perplexity reaches `target`."""

    def __init__(self, score, first_step, chunk, target):
        super().__init__()
        self.score, self.first_step, self.chunk, self.target = score, first_step, chunk, target
        self.points = []
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        point = {
            "steps": self.first_step + (epoch + 1) * self.chunk,
            **self.score(),
            "seconds": time.perf_counter() - self._start,
        }
        self.points.append(point)
        print("extended", point, flush=True)
        if point["perplexity"] <= self.target:
            self.model.stop_training = True


def distill(student, teacher, data, args, steps, alpha, loss=None, epochs=1, callbacks=()):
    distiller = keras_kd.Distiller(student=student, teacher=teacher)
    distiller.compile(
        optimizer=transfer.warmup_cosine_adamw(args.learning_rate, steps),
        alpha=alpha,
        temperature=args.temperature,
        distillation_loss_fn=loss,
    )
    timer = StepTimer()
    start = time.perf_counter()
    distiller.fit(
        data, steps_per_epoch=steps // epochs, epochs=epochs, verbose=args.verbose,
        callbacks=[timer, *callbacks],
    )
    return distiller, time.perf_counter() - start, median_step(timer)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher-steps", type=int, default=100)
    parser.add_argument("--teacher-learning-rate", type=float, default=1e-4)
    parser.add_argument("--student-layers", type=int, default=6)
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--rows", default="abcd",
                        help="a and b always run; c and d only when named")
    parser.add_argument("--seq-kd-prompts", type=int, default=960,
                        help="prompts the teacher continues for (c), cycled")
    parser.add_argument("--seq-kd-sampler", default="top_k",
                        help="the teacher's sampler for (c): a keras-hub sampler name")
    parser.add_argument("--cache-sentences", type=int, default=6000,
                        help="training sentences whose teacher logits are cached")
    parser.add_argument("--packing", action=argparse.BooleanOptionalAction, default=True,
                        help="pack the cached sentences into full rows "
                             "(datasets.pack_texts) instead of one padded sentence a row")
    parser.add_argument("--extra-steps", type=int, default=3000,
                        help="most further steps for the best KD row")
    parser.add_argument("--extend-chunk", type=int, default=240,
                        help="steps between the extended row's evaluations")
    parser.add_argument("--budget-minutes", type=float, default=38,
                        help="the extended row's steps are planned to end the run "
                             "within this much wall time")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--sequence-length", type=int, default=48)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--alpha", type=float, default=0.7)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=64)
    parser.add_argument("--lmbda", type=float, default=0.5)
    parser.add_argument("--prompt-words", type=int, default=4)
    parser.add_argument("--eval-sentences", type=int, default=300)
    parser.add_argument("--speed-rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=2)
    parser.add_argument("--out", default="bench/results/causal_lm.json")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    wall = {}
    result = {"machine": machine_info(), "settings": vars(args)}

    data = datasets.load("movie_reviews")
    if set(args.rows) - set("abcd"):
        parser.error(f"--rows {args.rows!r}: use letters of 'abcd', e.g. --rows ab")
    if args.cache_sentences > len(data.train.texts):
        parser.error(
            f"--cache-sentences {args.cache_sentences} is more than the "
            f"{len(data.train.texts)} training sentences: pass at most that"
        )
    train_texts = data.train.sample(args.cache_sentences, seed=args.seed).texts
    finetune_texts = data.train.texts
    test_texts = data.test.sample(args.eval_sentences, seed=1).texts

    def evaluate(model, teacher=None, **kwargs):
        return evaluate_causal_lm(
            model, test_texts, teacher=teacher, sequence_length=args.sequence_length,
            **kwargs,
        )

    # 1. The teacher, before and after adapting to the domain.
    t = time.perf_counter()
    teacher = transfer.load_causal_lm("smollm2_135m")
    # Students share this preprocessor: every batch is cut to this length.
    teacher.preprocessor.sequence_length = args.sequence_length
    lengths = [len(ids) for ids in teacher.preprocessor.tokenizer(data.train.texts[:2000])]
    result["token_length_p95"] = float(np.percentile(lengths, 95))
    result["teacher_parameters"] = int(teacher.count_params())
    result["teacher_before"] = evaluate(teacher)
    print("teacher before fine-tuning:", result["teacher_before"], flush=True)
    history = transfer.finetune_causal_lm(
        teacher, finetune_texts, steps=args.teacher_steps,
        batch_size=args.batch_size, sequence_length=args.sequence_length,
        learning_rate=args.teacher_learning_rate, seed=args.seed, verbose=args.verbose,
    )
    result["teacher_finetune_loss"] = history.history["loss"]
    result["teacher_after"] = evaluate(teacher, return_predictions=True)
    # Scored once: every student's top-1 agreement reads these.
    teacher_predictions = result["teacher_after"].pop("predictions")
    wall["teacher"] = time.perf_counter() - t
    print("teacher after fine-tuning:", result["teacher_after"], flush=True)

    # 2. The student's starting point.
    student = student_from(teacher, args)
    result["student_parameters"] = int(student.count_params())
    result["student_initial"] = evaluate(student, teacher_predictions)
    print("student before training:", result["student_initial"], flush=True)

    # 3. The teacher's top-k logits on the training batches, cached once.
    t = time.perf_counter()
    cache_dir = os.path.join("saved_models", "bench_causal_lm", "teacher_cache")
    if args.packing:
        examples = datasets.pack_texts(train_texts, teacher.preprocessor, args.sequence_length)
        preprocessor = None
    else:
        examples, preprocessor = tf.data.Dataset.from_tensor_slices(train_texts), teacher.preprocessor
    cache = keras_kd.TeacherCache.build(
        teacher, examples, cache_dir, preprocessor=preprocessor,
        top_k=args.top_k, batch_size=16, verbose=args.verbose,
    )
    result["cache_rows"] = len(cache)
    wall["cache"] = time.perf_counter() - t
    result["cache_bytes_per_token"] = cache.bytes_per_position()
    result["cache_reused"] = bool(getattr(cache, "reused", False))
    result["teacher_forward_s_per_batch"] = teacher_forward_seconds(teacher, cache, args)

    def batches(skip=0):
        # A fresh iterator of this seeded shuffle starts from the same batch:
        # `skip` moves a continued training past the batches it has seen.
        data = cache.dataset(args.batch_size, shuffle=True, seed=args.seed).repeat()
        return data.skip(skip)

    rows = {}

    def record(name, model, seconds, step_s, steps):
        t = time.perf_counter()
        rows[name] = {
            **evaluate(model, teacher_predictions),
            "eval_seconds": time.perf_counter() - t,
            "steps": steps,
            "seconds": seconds,
            "step_seconds": step_s,
            "peak_rss_mib": peak_rss_mib(),
        }
        print(name, rows[name], flush=True)

    # (a) the data alone, (b) token-level KD from the cache: same batches.
    student_a = student_from(teacher, args)
    _, seconds, step_a = distill(student_a, teacher, batches(), args, args.steps, alpha=0.0)
    record("a_data_alone", student_a, seconds, step_a, args.steps)
    student_b = student_from(teacher, args)
    distiller_b, seconds, step_b = distill(
        student_b, teacher, batches(), args, args.steps, alpha=args.alpha
    )
    record("b_token_kd_cached", student_b, seconds, step_b, args.steps)

    prompts, continuations = split_prompts(train_texts, args.prompt_words)

    if "c" in args.rows:
        # (c) sequence-level KD: the teacher's continuations of the cached
        # sentences' first words, the student's cross-entropy on them. Sampled
        # by default: greedy continuations repeat the teacher's most likely
        # phrasing, which a student then overfits.
        t = time.perf_counter()
        transfer.set_sampler(teacher, args.seq_kd_sampler)
        keras.utils.set_random_seed(args.seed)
        generated = sequence_kd_dataset(
            teacher, prompts[: args.seq_kd_prompts], args.sequence_length, batch_size=16
        )
        transfer.set_sampler(teacher, "greedy")
        generation_seconds = time.perf_counter() - t
        student_c = student_from(teacher, args)
        seq_data = generated.shuffle(args.seq_kd_prompts, seed=args.seed).repeat()
        _, seconds, step_c = distill(
            student_c, teacher, seq_data.batch(args.batch_size), args, args.steps, alpha=0.0
        )
        record("c_sequence_kd", student_c, seconds + generation_seconds, step_c, args.steps)
        rows["c_sequence_kd"]["teacher_generation_seconds"] = generation_seconds
        rows["c_sequence_kd"]["example"] = next(iter(generated.take(1))).numpy().decode()

    if "d" in args.rows:
        # (d) on-policy (GKD): lmbda of the batches are the student's own
        # continuations; the live teacher's distribution is the target.
        student_d = student_from(teacher, args)
        on_policy = on_policy_batches(
            student_d, prompts, continuations, lmbda=args.lmbda,
            batch_size=args.batch_size, sequence_length=args.sequence_length,
            seed=args.seed,
        )
        _, seconds, step_d = distill(
            student_d, teacher, on_policy, args, args.steps, alpha=1.0,
            loss=keras_kd.losses.JensenShannonDivergence(beta=0.5, temperature=args.temperature),
        )
        record("d_on_policy", student_d, seconds, step_d, args.steps)

    wall["rows"] = time.perf_counter() - started

    # 5. The best KD row keeps training until within 2x of the teacher.
    kd_rows = [n for n in ("b_token_kd_cached", "c_sequence_kd", "d_on_policy") if n in rows]
    best = min(kd_rows, key=lambda name: rows[name]["perplexity"])
    target = 2 * result["teacher_after"]["perplexity"]
    extended = {"row": best, "target_perplexity": target, "checkpoints": []}
    if best == "b_token_kd_cached" and args.extra_steps:
        # One warm-up and cosine decay, from the row's weights, over as many
        # chunks as the budget holds at (b)'s median step time (plus 10% for
        # the slower steps) with a scoring after each and two minutes for
        # the final timings; it stops early once within 2x.
        left = 60 * args.budget_minutes - (time.perf_counter() - started) - 120
        chunk_seconds = 1.1 * args.extend_chunk * step_b + rows[best]["eval_seconds"]
        chunks = min(int(left // chunk_seconds), args.extra_steps // args.extend_chunk)
        extended["planned_steps"] = args.steps + chunks * args.extend_chunk
        if chunks > 0:
            checkpoints = Checkpoints(
                lambda: evaluate(student_b, teacher_predictions),
                args.steps, args.extend_chunk, target,
            )
            distill(
                student_b, teacher, batches(skip=args.steps), args,
                chunks * args.extend_chunk, alpha=args.alpha, epochs=chunks,
                callbacks=[checkpoints],
            )
            extended["checkpoints"] = checkpoints.points
    result["extended"] = extended

    # Keras generation speed, greedy, batch 1: the two models take turns,
    # so a slow spell of the machine does not fall on one of them.
    speed_prompts = prompts[:6]
    speed_rounds = {"teacher": [], "student": []}
    for i in range(args.speed_rounds):
        order = ["teacher", "student"][:: 1 if i % 2 == 0 else -1]
        for name in order:
            model = teacher if name == "teacher" else student_b
            speed_rounds[name].append(
                greedy_tokens_per_second(model, speed_prompts, args.sequence_length)
            )
    result["generation_tokens_per_s"] = {
        name: float(np.median(values)) for name, values in speed_rounds.items()
    }
    result["generation_tokens_per_s_rounds"] = speed_rounds

    # Summary against the targets.
    a, b = rows["a_data_alone"]["perplexity"], rows["b_token_kd_cached"]["perplexity"]
    best_ppl = min(
        [rows[n]["perplexity"] for n in kd_rows]
        + [c["perplexity"] for c in extended["checkpoints"]]
    )
    speed = result["generation_tokens_per_s"]
    result["rows"] = rows
    result["summary"] = {
        "(b) perplexity lower than (a) at equal steps (%)": 100 * (1 - b / a),
        "target: >= 15": 100 * (1 - b / a) >= 15,
        "best KD perplexity / adapted teacher": best_ppl / result["teacher_after"]["perplexity"],
        "target: <= 2": best_ppl <= target,
        "student / teacher greedy tokens per s": speed["student"] / speed["teacher"],
        "target: >= 2.5": speed["student"] / speed["teacher"] >= 2.5,
        "(b) step / ((a) step + teacher forward)": step_b
        / (step_a + result["teacher_forward_s_per_batch"]),
        "(b) step / (a) step": step_b / step_a,
    }
    wall["total"] = time.perf_counter() - started
    result["wall_seconds"] = wall
    atomic_write_json(args.out, result, overwrite=True)
    print(json.dumps(result["summary"], indent=2))
    print(f"wrote {args.out} in {wall['total']:.0f} s")
    return result


if __name__ == "__main__":
    main()
