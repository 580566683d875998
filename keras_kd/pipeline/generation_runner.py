"""The generative main job: from a pretrained causal LM and raw text to a
distilled student running on a phone's LLM runtime, with a report.

`run_generation(GenerationConfig(...))` (or `keras-kd demo --task
generation` on the command line):

1. fine-tunes the teacher (by default SmolLM2-135M, the top 10 of its 30
   layers) on the training texts;
2. builds a student that keeps the teacher's bottom and top layers
   (`keras_kd.transfer.student_like`), caches the teacher's top-k logits on
   the training texts (packed into full rows by default) and distills the
   student from the cache;
3. scores teacher and student on held-out texts (perplexity, top-1
   agreement) and trims the student's vocabulary to the training texts;
4. exports the teacher (float32) and the student (float32 and quantized) to
   LiteRT-LM bundles, each checked in the LiteRT-LM runtime against its
   Keras model's greedy generation on raw-text prompts;
5. measures Keras greedy generation speed, and saves the student as a
   keras-hub preset;
6. writes `report.json`, `report.md` and `report.png` in the run folder.
"""

import dataclasses
import os
import random
import shutil
import time

from keras_kd.datasets.texts import load_prompt_responses, load_texts
from keras_kd.distillation.sequence_kd import split_prompts
from keras_kd.pipeline.generation_config import GenerationConfig
from keras_kd.pipeline.generation_report import bundle_label, build_generation_report
from keras_kd.pipeline.report_card import write_report
from keras_kd.pipeline.steps import check_run_dir
from keras_kd.presets import check_preset_task
from keras_kd.utils.io import atomic_folder, resumable_folder
from keras_kd.utils.timing import Laps

# Words of a test text that make a verification prompt.
PROMPT_WORDS = 4
# A float32 bundle runs the Keras model's arithmetic in another order: on a
# trained model that changes no greedy token, except where two logits are
# within rounding of each other. A real export bug disagrees on most tokens,
# so the run stops below this share; the report counts identical prompts.
FLOAT32_MIN_TOKEN_AGREEMENT = 0.95


def _say(step, text):
    print(f"[{step}/6] {text}", flush=True)


def generation_texts(config):
    """The texts of a generative run, checked before any model loads.

    Args:
        config: a `GenerationConfig`.

    Returns:
        `(train, eval_texts, prompts)`: the training texts, the held-out
        texts scored for perplexity (a seeded sample of `eval_texts`), and
        the verification prompts (the first 4 words of held-out texts).
        With prompt-response data (`config.prompt_responses`), `train` and
        `eval_texts` are prompt-response dicts and the prompts are
        held-out prompts, whole.

    Raises:
        ValueError, FileNotFoundError: the data cannot be read, or gives
            fewer than `config.prompts` prompts.

    Example:

    >>> texts = [f"the film number {i} was fine" for i in range(60)]
    >>> train, scored, prompts = generation_texts(
    ...     GenerationConfig(data=texts, prompts=5, samples=5))
    >>> len(train), len(scored), prompts[0].count(" ")
    (54, 6, 3)
    """
    rng = random.Random(config.seed)
    if config.prompt_responses:
        train, test = load_prompt_responses(
            config.data, prompt_column=config.prompt_column,
            response_column=config.response_column, seed=config.seed,
        )
        order = rng.sample(range(len(test["prompts"])), len(test["prompts"]))
        held_out = {key: [column[i] for i in order] for key, column in test.items()}
        prompts = held_out["prompts"]
        if len(prompts) < config.prompts:
            raise ValueError(
                f"The held-out pairs give {len(prompts)} prompts; the run "
                f"needs prompts={config.prompts}. Pass fewer prompts or more pairs."
            )
        scored = {key: column[: config.eval_texts] for key, column in held_out.items()}
        return train, scored, prompts[: config.prompts]
    train, test = load_texts(config.data, text_column=config.text_column, seed=config.seed)
    shuffled = rng.sample(test, len(test))
    prompts, _ = split_prompts(shuffled, PROMPT_WORDS)
    if len(prompts) < config.prompts:
        raise ValueError(
            f"The held-out texts give {len(prompts)} prompts of "
            f"{PROMPT_WORDS} words; the run needs prompts={config.prompts}. "
            "Pass fewer prompts or more text."
        )
    return train, shuffled[: config.eval_texts], prompts[: config.prompts]


def check_generation_config(config):
    """Checks a generative run before any model loads: the run folder
    (`check_run_dir`), the teacher's preset (a Llama-family or Qwen 2 causal LM, the
    run's export needs: `keras_kd.presets.check_preset_task`, nothing
    downloaded) and the texts (`generation_texts`).

    Args:
        config: a `GenerationConfig`.

    Returns:
        `generation_texts(config)`.

    Raises:
        FileExistsError, NotADirectoryError: the run folder.
        ValueError, TypeError, FileNotFoundError, ImportError: the teacher
            or the data.

    Example:

    >>> import tempfile
    >>> check_generation_config(GenerationConfig(
    ...     teacher="bogus", output_dir=tempfile.mkdtemp()))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Unknown preset: preset='bogus' is neither a keras-kd offline preset (minilm_l6, smollm2_135m, whisper_tiny_en), nor ...
    """
    check_run_dir(config)
    # The run ends by exporting LiteRT-LM bundles: refused at once, not after training.
    check_preset_task(config.teacher, "litert_lm")
    return generation_texts(config)


def run_generation(config=None):
    """Runs the generative pipeline and returns the report dict.

    The run's folder is built in a sibling, `.<run name>.partial`, and
    swapped in at the end (`keras_kd.utils.io.resumable_folder`): an
    interrupted run leaves no half-written run folder, and an existing one
    stays as it was until the new one is complete. With `resume=True` a
    run that was killed or failed continues: its fine-tuned teacher and
    its distilled student are reused, an unfinished training continues
    from its last backup (`keras_kd.utils.backup`), and the later steps
    run again.

    Args:
        config: a `GenerationConfig`; defaults to the embedded demo.

    Returns:
        The report dict (`build_generation_report`, plus `seconds` and
        `seconds_by_step`), also written to `report.json`, `report.md` and
        `report.png` in the run folder, beside the bundles
        (`teacher_float32.litertlm`, `student_float32.litertlm`,
        `student_<quantization>.litertlm`, each with its `.tflite`) and the
        student as a keras-hub preset folder (`student/`, loadable with
        `keras_kd.transfer.load_causal_lm`).

    Raises:
        FileExistsError: the run folder exists and `config.overwrite` is
            False, or a partial run exists and neither `config.resume` nor
            `config.overwrite` is set (before any work;
            `check_generation_config` lists the other checks).
        FileNotFoundError: `config.resume` is set and there is no partial
            run to resume.
        ValueError: the teacher is not a causal LM the LiteRT-LM export
            supports (raised once it has loaded, before training).
    """
    config = config or GenerationConfig()
    train, eval_texts, prompts = check_generation_config(config)
    started = time.perf_counter()
    with resumable_folder(
        config.run_dir, config.settings(), resume=config.resume, overwrite=config.overwrite
    ) as progress:
        report = _run_steps(config, progress, train, eval_texts, prompts)
        report["seconds"] = time.perf_counter() - started
        _say(6, f"Writing the report to {config.run_dir}")
        write_report(report, progress.path)
    return report


def _save_preset(model, folder):
    """Saves `model` as a keras-hub preset `folder`, complete or not at all."""
    with atomic_folder(folder, overwrite=True) as staging:
        model.save_to_preset(str(staging))


def _count(data):
    """`"N texts"`, or `"N prompt-response pairs"` for a dict."""
    if isinstance(data, dict):
        return f"{len(data['prompts'])} prompt-response pairs"
    return f"{len(data)} texts"


def _teacher_freeze(config, depth):
    """The `finetune_causal_lm` freeze spec that leaves the top
    `teacher_train_layers` layers trainable."""
    if config.teacher_train_layers is None:
        return "none"
    return max(depth - config.teacher_train_layers, 0)


def student_examples(config, train, preprocessor):
    """The student's `config.steps * config.batch_size` training rows, for
    its `TeacherCache`: `(examples, preprocessor)`, the preprocessor None
    when the rows are already tokenized.

    With `config.packing`, the training texts in a seeded order packed into
    full rows (`keras_kd.datasets.pack_texts`), repeated only when they fill
    fewer rows than the steps take; otherwise, and for prompt-response
    pairs (a dict `train`), a seeded draw of texts (pairs), one a row, for
    `preprocessor` to pad.

    Example (a tiny Llama 3 preprocessor, rows of 16 tokens):

    >>> from keras_kd.utils.testing import tiny_llama3_causal_lm
    >>> preprocessor = tiny_llama3_causal_lm(1, 8, 0, 16).preprocessor
    >>> config = GenerationConfig(steps=3, batch_size=2)
    >>> rows, _ = student_examples(config, ["a dog ran.", "the sun is hot."] * 4, preprocessor)
    >>> [int(x["padding_mask"].numpy().sum()) for x, _, _ in rows]
    [16, 16, 16, 16, 16, 16]
    >>> texts, given = student_examples(
    ...     GenerationConfig(steps=3, batch_size=2, packing=False), ["a dog ran."], preprocessor)
    >>> len(list(texts)), given is preprocessor
    (6, True)
    """
    import tensorflow as tf

    from keras_kd.datasets.packing import pack_texts

    rows = config.steps * config.batch_size
    if isinstance(train, dict):
        drawn = random.Random(config.seed).choices(range(len(train["prompts"])), k=rows)
        pairs = {key: [column[i] for i in drawn] for key, column in train.items()}
        return tf.data.Dataset.from_tensor_slices(pairs), preprocessor
    if config.packing:
        shuffled = random.Random(config.seed).sample(list(train), len(train))
        return pack_texts(shuffled, preprocessor).repeat().take(rows), None
    texts = random.Random(config.seed).choices(train, k=rows)
    return tf.data.Dataset.from_tensor_slices(texts), preprocessor


def _run_steps(config, progress, train, eval_texts, prompts):
    """Steps 1 to 5 of `run_generation`, writing into the folder of
    `progress` (a `keras_kd.utils.io.RunProgress`); the teacher and student
    steps it records as done are reused."""
    import keras

    from keras_kd import transfer
    from keras_kd.distillation import Distiller, TeacherCache
    from keras_kd.distillation.lm_metrics import (
        evaluate_causal_lm,
        greedy_tokens_per_second,
    )
    from keras_kd.export import litert_lm_graph
    from keras_kd.export.litert_lm import export_litert_lm
    from keras_kd.pipeline.step_curve import StepCurve
    from keras_kd.pipeline.steps import BACKUP_EVERY_STEPS
    from keras_kd.transfer.schedules import warmup_cosine_adamw
    from keras_kd.utils.backup import BackupAndRestore

    staging = str(progress.path)
    laps = Laps()

    def backup(step):
        return BackupAndRestore(
            progress.resume_path(f"backup_{step}"), save_freq=BACKUP_EVERY_STEPS
        )

    def load(folder):
        model = transfer.load_causal_lm(folder)
        # Every training batch (teacher, cache, student) is cut to this length.
        model.preprocessor.sequence_length = config.sequence_length
        return model

    def evaluate(model, teacher=None, return_predictions=False):
        # Without XLA: scoring is a few batches per model. Measured on the
        # default run, it took about 105 s either way, so compiling it buys
        # nothing.
        return evaluate_causal_lm(
            model, eval_texts, teacher=teacher,
            sequence_length=config.sequence_length, jit_compile=False,
            return_predictions=return_predictions,
        )

    # The trained teacher's next-token predictions on the held-out texts:
    # its scoring gives them, and both scorings of the student compare
    # with them instead of running the teacher again.
    teacher_predictions = None

    def scored_teacher():
        nonlocal teacher_predictions
        scored = evaluate(teacher, return_predictions=True)
        teacher_predictions = scored.pop("predictions")
        return scored

    def teacher_top1():
        if teacher_predictions is None:
            scored_teacher()
        return teacher_predictions

    teacher_folder = progress.resume_path("teacher")
    if progress.done("teacher"):
        _say(1, "Reusing the teacher of the partial run")
        teacher = load(teacher_folder if config.teacher_steps else config.teacher)
    else:
        _say(1, f"Loading the teacher {config.teacher!r}")
        teacher = load(config.teacher)
        litert_lm_graph.check_supported(teacher)
        scores = {
            "teacher_before": evaluate(teacher) if config.teacher_steps else scored_teacher()
        }
        teacher_curve = StepCurve(every=5, metric="loss")
        if config.teacher_steps:
            _say(1, f"Fine-tuning it for {config.teacher_steps} steps on {_count(train)}")
            transfer.finetune_causal_lm(
                teacher, train, steps=config.teacher_steps,
                batch_size=config.batch_size, sequence_length=config.sequence_length,
                learning_rate=config.teacher_learning_rate,
                freeze=_teacher_freeze(config, teacher.backbone.num_layers),
                jit_compile=config.jit_compile, seed=config.seed,
                verbose=config.verbose, callbacks=[backup("teacher"), teacher_curve],
            )
            scores["teacher"] = scored_teacher()
            _save_preset(teacher, teacher_folder)
        else:
            scores["teacher"] = scores["teacher_before"]
        progress.complete("teacher", {"scores": scores, "curve": teacher_curve.curve})
    scores = dict(progress.result("teacher")["scores"])
    laps.lap("teacher")

    student_folder = progress.resume_path("student")
    if progress.done("student"):
        _say(2, "Reusing the distilled student of the partial run")
        student = load(student_folder)
    else:
        _say(2, f"Distilling a {config.student_layers}-layer student from the "
                f"teacher's cached top-{config.top_k} logits, {config.steps} steps")
        keras.utils.set_random_seed(config.seed)
        student = transfer.student_like(teacher, num_layers=config.student_layers)
        student_before = evaluate(student, teacher_top1())
        examples, preprocessor = student_examples(config, train, teacher.preprocessor)
        # A resumed run reuses the logits cached by the killed one.
        cache_dir = os.path.join(staging, "teacher_cache")
        cache = TeacherCache.build(
            teacher, examples, cache_dir, preprocessor=preprocessor,
            top_k=config.top_k, batch_size=16, verbose=config.verbose,
        )
        distiller = Distiller(student=student, teacher=teacher)
        distiller.compile(
            optimizer=warmup_cosine_adamw(config.learning_rate, config.steps),
            alpha=config.alpha, temperature=config.temperature,
            jit_compile=config.jit_compile,
        )
        student_curve = StepCurve(every=5, metric="student_loss")
        distiller.fit(
            cache.dataset(config.batch_size, shuffle=True, seed=config.seed),
            epochs=1, shuffle=False, verbose=config.verbose,
            callbacks=[backup("student"), student_curve],
        )
        _save_preset(student, student_folder)
        progress.complete("student", {
            "student_before": student_before,
            "curve": student_curve.curve,
            "cache_bytes_per_token": cache.bytes_per_position(),
        })
        shutil.rmtree(cache_dir)
    student_result = progress.result("student")
    scores["student_before"] = student_result["student_before"]
    laps.lap("student")

    _say(3, f"Scoring {_count(eval_texts)} held out; trimming the vocabulary")
    scores["student"] = evaluate(student, teacher_top1())
    # Prompts and responses are tokenized apart: the trimmed vocabulary
    # keeps the tokens of each.
    corpus = train["prompts"] + train["responses"] if isinstance(train, dict) else train
    shipped = (
        transfer.trim_lm_vocabulary(student, corpus) if config.trim_vocabulary else student
    )
    laps.lap("evaluation")

    _say(4, "Exporting LiteRT-LM bundles, each checked against Keras in the runtime")
    exports = {}
    for name, model, quantization in (
        ("teacher_float32", teacher, "none"),
        ("student_float32", shipped, "none"),
        (f"student_{bundle_label(config.quantization)}", shipped, config.quantization),
    ):
        if name in exports:
            continue
        exports[name] = export_litert_lm(
            model, os.path.join(staging, f"{name}.litertlm"),
            max_sequence_length=config.max_sequence_length,
            prefill_lengths=(config.prefill_length,),
            quantization=quantization,
            verification_prompts=prompts,
            max_new_tokens=config.max_new_tokens,
            min_token_agreement=(
                FLOAT32_MIN_TOKEN_AGREEMENT if quantization == "none" else 0.0
            ),
            # A killed run may have written the bundle: replace it.
            overwrite=True,
        )
        print(f"  {name}: {exports[name].verification.identical_prompts:.0%} of "
              "prompts identical to Keras", flush=True)
    laps.lap("export")

    _say(5, "Measuring Keras greedy generation speed; saving the student")
    speed_prompts = prompts[:4]
    keras_speed = {
        name: greedy_tokens_per_second(model, speed_prompts, config.sequence_length)
        for name, model in (("teacher", teacher), ("student", student))
    }
    # Untrimmed, the shipped model is the student: measured once.
    keras_speed["shipped"] = (
        greedy_tokens_per_second(shipped, speed_prompts, config.sequence_length)
        if shipped is not student else keras_speed["student"]
    )
    _save_preset(shipped, os.path.join(staging, "student"))
    laps.lap("speed_and_save")

    report = build_generation_report(
        config,
        models={"teacher": teacher, "student": student, "shipped": shipped},
        scores=scores,
        exports=exports,
        keras_speed=keras_speed,
        curves={"teacher fine-tuning": progress.result("teacher")["curve"],
                "student distillation": student_result["curve"]},
        cache_bytes_per_token=student_result["cache_bytes_per_token"],
    )
    report["seconds_by_step"] = laps.seconds
    report["settings"] = {
        **{k: v for k, v in dataclasses.asdict(config).items()
           if k not in ("data", "resume")},
        "data": config.data if isinstance(config.data, str) else (
            "prompt-response pairs" if isinstance(config.data, dict) else "a list of texts"
        ),
    }
    return report
