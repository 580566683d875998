"""The pipeline's steps, each usable alone: fine-tune the teacher, distill
students from it, the few-labels experiment, accuracy, and the checks run
before any work (`check_config`, `check_run_dir`, `check_few_labels`).

`keras_kd.pipeline.run` chains them; `keras-kd finetune` and `keras-kd
distill` run one each.
"""

import dataclasses
import functools
import math
import os
import warnings

import keras
import numpy as np

from keras_kd import datasets as kd_datasets
from keras_kd.datasets.splitting import text_key
from keras_kd.datasets.tokenization import warn_of_unknown_tokens
from keras_kd import transfer
from keras_kd.distillation import Distiller, TeacherCache
from keras_kd.distillation import in_domain_texts
from keras_kd.export import QUANTIZATIONS
from keras_kd.pipeline.budget import fit_best_epoch, resolve_budget
from keras_kd.pipeline.step_curve import StepCurve
from keras_kd.presets import check_preset_task
from keras_kd.utils.io import atomic_write, check_resumable, file_above
from keras_kd.utils.validation import check_choice

# A training with a backup folder backs up every this many steps: a kill
# loses at most these steps. Each backup
# writes the weights and the optimizer's state, a Distiller's with its
# teacher's weights, so backing up every step would cost real time.
BACKUP_EVERY_STEPS = 50

# Tokens of a generated text, prompt included: sentences of a review or a
# question are shorter (the movie reviews' 95th percentile is 48 MiniLM
# tokens), and longer continuations drift from the prompt's topic.
GENERATED_LENGTH = 40


def _steps(num_examples, batch_size, epochs):
    return epochs * math.ceil(num_examples / batch_size)


def _compile_classifier(model, jit_compile, optimizer="rmsprop"):
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )


def _fit(model, dataset, config, epochs, validation_data=None, backup_dir=None, **kwargs):
    """`fit_best_epoch` (best validation epoch, early stopping after
    `config.patience` epochs, a backup in `backup_dir` when given) with a
    `StepCurve`; the History carries the curve as `curve`."""
    curve = StepCurve(every=max(1, _steps_per_epoch(dataset) // 25))
    history = fit_best_epoch(
        model,
        dataset,
        epochs,
        validation_data=validation_data,
        patience=config.patience,
        backup_dir=backup_dir,
        backup_every=BACKUP_EVERY_STEPS,
        callbacks=[curve],
        verbose=config.verbose,
        **kwargs,
    )
    history.curve = curve.curve
    return history


def _steps_per_epoch(dataset):
    cardinality = int(dataset.cardinality())
    # Infinite or unknown (repeated) datasets: a point every 10 steps.
    return cardinality if cardinality > 0 else 250


def check_config(config, teacher=True, export=True):
    """Checks what `PipelineConfig` cannot check alone, before any data or
    model loads and before the run folder is touched: the run folder
    (`check_run_dir`), the data sources (`keras_kd.datasets.check_source`),
    the quantization, the generator's preset when texts are generated, and
    with `teacher` the teacher's preset with its
    freeze spec and sequence length
    (`keras_kd.transfer.check_finetune_preset`: no weights load) and,
    with `export` as well, its architecture: the run's `.tflite` files take
    BERT's inputs and carry a WordPiece vocabulary
    (`keras_kd.presets.check_preset_task`'s `"tflite_classification"`), so
    a RoBERTa teacher, say, is refused here rather than after its
    training.

    Args:
        config: a `PipelineConfig`.
        teacher: also check the teacher's settings (False for steps that
            take a saved teacher).
        export: the run exports the teacher's students to TFLite (`run`
            does; `keras-kd finetune` does not).

    Example:

    >>> import tempfile
    >>> from keras_kd.pipeline import PipelineConfig
    >>> check_config(PipelineConfig(output_dir=tempfile.mkdtemp(), freeze=9))
    Traceback (most recent call last):
    ...
    ValueError: freeze=9 asks to freeze the embeddings and the first 9 transformer layers, but the backbone has 6. Pass an integer in [0, 6], or freeze="all".
    """
    check_run_dir(config)
    kd_datasets.check_source(
        config.data,
        validation_data=config.validation_data,
        test_data=config.test_data,
    )
    check_choice("quantization", config.quantization, QUANTIZATIONS)
    if config.generated_texts is not None:
        try:
            check_preset_task(config.generator, "generation")
        except (ValueError, FileNotFoundError) as error:
            raise ValueError(f"generator={config.generator!r}: {error}") from None
    if config.unlabelled_data is not None:
        try:
            kd_datasets.read_texts(config.unlabelled_data, text_column=config.text_column)
        except (ValueError, FileNotFoundError) as error:
            raise ValueError(
                f"unlabelled_data={config.unlabelled_data!r:.200}: {error}"
            ) from None
    if teacher:
        transfer.check_finetune_preset(
            config.teacher, config.freeze, config.sequence_length
        )
        if export:
            try:
                check_preset_task(config.teacher, "tflite_classification")
            except ValueError as error:
                raise ValueError(
                    f"{error} Or train the teacher alone: `keras-kd finetune` "
                    "(`keras_kd.transfer.build_finetune_model`) does not export."
                ) from None


def check_run_dir(config):
    """Refuses to run over an existing run folder unless `overwrite` is set,
    or below a file, and checks the partial run of the folder
    (`keras_kd.utils.io.check_resumable`): `resume` needs one started with
    the same settings, and without `resume` one is refused unless
    `overwrite`. A missing `output_dir` is fine: the run creates it.

    Example:

    >>> import tempfile
    >>> from keras_kd.pipeline import PipelineConfig
    >>> config = PipelineConfig(output_dir=tempfile.mkdtemp(), run_name="run")
    >>> check_run_dir(config)
    >>> os.mkdir(config.run_dir)
    >>> check_run_dir(config)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileExistsError: The output folder '.../run' exists. Pass overwrite=True (--overwrite) to replace it, or another run_name (--run-name).
    """
    if os.path.exists(config.run_dir) and not config.overwrite:
        raise FileExistsError(
            f"The output folder {config.run_dir!r} exists. Pass "
            "overwrite=True (--overwrite) to replace it, or another "
            "run_name (--run-name)."
        )
    blocking = file_above(config.run_dir)
    if blocking is not None:
        raise NotADirectoryError(
            f"output_dir={config.output_dir!r} cannot be created: "
            f"{blocking!r} is a file. Choose another output_dir "
            "(--output-dir)."
        )
    check_resumable(
        config.run_dir, config.settings(), resume=config.resume, overwrite=config.overwrite
    )


def check_few_labels(config, num_train):
    """Refuses a `few_labels` that leaves no unlabelled training texts.

    Example:

    >>> from keras_kd.pipeline import PipelineConfig
    >>> check_few_labels(PipelineConfig(few_labels=100), num_train=512)
    >>> check_few_labels(PipelineConfig(few_labels=512), num_train=512)
    Traceback (most recent call last):
    ...
    ValueError: few_labels=512 leaves no unlabelled texts: the run trains on 512 texts. Pass fewer.
    """
    if config.few_labels is not None and config.few_labels >= num_train:
        raise ValueError(
            f"few_labels={config.few_labels} leaves no unlabelled texts: the "
            f"run trains on {num_train} texts. Pass fewer."
        )


def finetune_teacher(config, train, validation, class_names, backup_dir=None):
    """Step 1: builds the teacher from `config.teacher` and fine-tunes it.

    Auto settings of `config` are decided from `train`
    (`keras_kd.pipeline.budget.resolve_budget`). With a `validation` split
    the training keeps its best epoch and stops early (`config.patience`).

    Args:
        class_names: the names of the classes, in the order of the
            labels' ids (saved with the teacher).
        backup_dir: a folder where the training backs up its state
            (`keras_kd.utils.backup.BackupAndRestore`); a training killed
            with one continues from its backup when called again.

    Returns:
        `(teacher, history)`: a `keras_kd.transfer.FinetuneModel` and the
        Keras `History` of its token-id model, with `curve` and `budget`
        (`keras_kd.pipeline.budget.fit_best_epoch`).
    """
    config = resolve_budget(config, train).config
    keras.utils.set_random_seed(config.seeds[0])
    teacher = transfer.build_finetune_model(
        config.teacher,
        class_names=class_names,
        sequence_length=config.sequence_length,
        freeze=config.freeze,
    )
    warn_of_unknown_tokens(teacher.preprocessor.tokenizer, list(train.texts))
    train_ds = train.tokenize(
        teacher.preprocessor, config.batch_size, shuffle=True, seed=config.seeds[0]
    )
    validation_ds = validation_dataset(config, teacher, validation)
    steps = _steps(len(train), config.batch_size, config.teacher_epochs)
    _compile_classifier(
        teacher.token_id_model,
        config.jit_compile,
        transfer.warmup_cosine_adamw(
            config.teacher_learning_rate, steps, warmup=config.warmup, weight_decay=0.01
        ),
    )
    history = _fit(
        teacher.token_id_model, train_ds, config, config.teacher_epochs, validation_ds,
        backup_dir=backup_dir,
    )
    return teacher, history


def trained_once(progress, step, path, train):
    """A model trained once per run, even when the run is resumed.

    Args:
        progress: the run's `keras_kd.utils.io.RunProgress`.
        step: the step's name in `progress`.
        path: the `.keras` file of the trained `FinetuneModel`.
        train: a function returning `(model, result)`, `result` JSON-able.

    Returns:
        `(model, result)`: `train()`'s, after saving the model to `path`
        and recording the step as done with its result; or, when a run
        that was killed had done the step, the model loaded from `path` and
        the result it recorded.
    """
    if progress.done(step):
        return transfer.load_finetune_model(str(path)), progress.result(step)
    model, result = train()
    atomic_write(path, model.save, overwrite=True)
    progress.complete(step, result)
    return model, result


def student_of(config, teacher):
    """A new student of `teacher` (a `FinetuneModel`) with `config`'s
    `student_layers` and `student_hidden_dim`."""
    if config.student_hidden_dim is None:
        return transfer.student_like(teacher, num_layers=config.student_layers)
    return transfer.student_like(teacher, **transfer.student_config(
        teacher.backbone, config.student_layers, config.student_hidden_dim
    ))


def validation_dataset(config, model, validation):
    """`validation` (a `TextSplit`, or None) tokenized by `model`'s
    preprocessor in batches of `config.batch_size`, or None."""
    if validation is None:
        return None
    return validation.tokenize(model.preprocessor, config.batch_size)


def _labels_only(x, y, *sample_weight):
    return (x, y["labels"], *sample_weight)


def distill_student(
    config, student, teacher, cache, alpha, seed, validation_ds, metrics=("accuracy",),
    backup_dir=None, feature_losses=None,
):
    """Trains `student` (a `FinetuneModel`) from the `TeacherCache` of
    `teacher` with `alpha` for `config.epochs`, the learning-rate schedule
    and early stopping of `config`; returns the training's `History` (with
    `curve` and `budget`, as `finetune_teacher`'s).

    With `feature_losses` (`keras_kd.distillation.HiddenStateLoss`,
    `AttentionRelationLoss`) the teacher runs live, since the cache holds
    no intermediate layers: the cache's batches lose their logits, so the
    student sees the same batches in the same order as without."""
    keras.utils.set_random_seed(seed)
    distiller = Distiller(student=student.token_id_model, teacher=teacher.token_id_model)
    dataset = cache.dataset(config.batch_size, shuffle=True, seed=seed)
    if feature_losses:
        dataset = dataset.map(_labels_only)
    distiller.compile(
        optimizer=transfer.warmup_cosine_adamw(
            config.learning_rate,
            _steps(len(cache), config.batch_size, config.epochs),
            warmup=config.warmup,
            weight_decay=0.01,
        ),
        metrics=list(metrics),
        alpha=alpha,
        temperature=config.temperature,
        jit_compile=config.jit_compile,
        feature_losses=feature_losses,
    )
    return _fit(
        distiller,
        dataset,
        config,
        config.epochs,
        validation_ds,
        backup_dir=backup_dir,
    )


def teacher_cache(config, teacher, train, cache_dir):
    """The teacher's logits on `train` (reused when already in `cache_dir`)."""
    warn_of_unknown_tokens(teacher.preprocessor.tokenizer, list(train.texts))
    return TeacherCache.build(
        teacher.token_id_model,
        train,
        cache_dir,
        preprocessor=teacher.preprocessor,
        jit_compile=config.jit_compile,
        verbose=config.verbose,
    )


def generated_texts(config, train):
    """`config.generated_texts` new texts like `train`'s, written by
    `config.generator` with top-k sampling (`in_domain_texts`, seeded with
    `config.seeds[0]`)."""
    keras.utils.set_random_seed(config.seeds[0])
    generator = transfer.load_causal_lm(config.generator, sampler="top_k")
    return in_domain_texts(
        generator, train.texts, config.generated_texts, max_length=GENERATED_LENGTH,
        batch_size=config.batch_size, seed=config.seeds[0],
    )


def generated_once(progress, config, teacher, train, known=()):
    """The teacher-labelled generated texts of a run (`generated_texts`,
    less copies of `known` texts and repeats, as `new_texts` drops them,
    then `teacher_labelled`). The texts are written once per run: a
    resumed run reuses those its `progress` (a
    `keras_kd.utils.io.RunProgress`) recorded.

    Returns:
        `(split, counts)`: the labelled texts (None, with a warning, when
        none is new) and `new_texts`'s counts; `(None, None)` when
        `config.generated_texts` is None.
    """
    if config.generated_texts is None:
        return None, None
    if not progress.done("generated"):
        progress.complete("generated", {"texts": generated_texts(config, train)})
    # A generated copy of a validation or test text would train the
    # student on a text it is scored on.
    texts, counts = new_texts(progress.result("generated")["texts"], known)
    if not texts:
        warnings.warn(
            f"None of the generated texts is new ({counts}); the student "
            "trains without them.",
            stacklevel=2,
        )
        return None, counts
    return teacher_labelled(teacher, texts, config.batch_size), counts


def new_texts(texts, known):
    """The texts of `texts` that are not in `known` and not repeats, in
    order, with what was dropped (texts compared by
    `keras_kd.datasets.splitting.text_key`: runs of white space made one).

    A copy of a validation or test text would train the student on a text
    it is scored on; a copy of a training text, or a repeat, would count
    twice.

    Args:
        texts: a list of strings.
        known: the texts the run already has.

    Returns:
        `(kept, counts)`: a list of strings and `{"texts": kept count,
        "dropped_known": ..., "dropped_repeats": ...}`.

    Example:

    >>> new_texts(["a fine film", "dull", "a  fine film ", "dull"], known=["a fine film"])
    (['dull'], {'texts': 1, 'dropped_known': 2, 'dropped_repeats': 1})
    """
    known_keys = {text_key(text) for text in known}
    kept, kept_keys = [], set()
    dropped_known = dropped_repeats = 0
    for text in texts:
        key = text_key(text)
        if key in known_keys:
            dropped_known += 1
        elif key in kept_keys:
            dropped_repeats += 1
        else:
            kept.append(text)
            kept_keys.add(key)
    return kept, {
        "texts": len(kept), "dropped_known": dropped_known, "dropped_repeats": dropped_repeats,
    }


def unlabelled_texts(config, teacher, known):
    """`config.unlabelled_data`'s texts labelled by `teacher`, less copies
    of the run's own texts and repeats (`new_texts`).

    Args:
        config: a `PipelineConfig`.
        teacher: a `FinetuneModel` with a preprocessor.
        known: the run's training, validation and test texts.

    Returns:
        `(split, counts)`: a `keras_kd.datasets.TextSplit` of the kept
        texts and the teacher's top classes (`teacher_labelled`), and
        `new_texts`'s counts; `(None, None)` when `unlabelled_data` is
        None.

    Raises:
        ValueError: every text was dropped; the message gives the counts.

    Example:

    >>> from keras_kd.pipeline import PipelineConfig
    >>> from keras_kd.utils.testing import tiny_bert_text_classifier
    >>> teacher = tiny_bert_text_classifier()
    >>> config = PipelineConfig(unlabelled_data=["a dull plot", "a fine film", "a dull plot"])
    >>> split, counts = unlabelled_texts(config, teacher, known=["a fine film"])
    >>> split.texts, counts
    (['a dull plot'], {'texts': 1, 'dropped_known': 1, 'dropped_repeats': 1})
    """
    if config.unlabelled_data is None:
        return None, None
    texts = kd_datasets.read_texts(config.unlabelled_data, text_column=config.text_column)
    kept, counts = new_texts(texts, known)
    if not kept:
        raise ValueError(
            f"unlabelled_data={config.unlabelled_data!r:.200}: all {len(texts)} "
            f"texts are copies of the run's own texts or repeats ({counts}). "
            "Pass texts the training data does not hold."
        )
    return teacher_labelled(teacher, kept, config.batch_size), counts


def joined(*splits):
    """The `TextSplit`s given, None ones skipped, one after another; None
    when all are None.

    >>> from keras_kd.datasets import TextSplit
    >>> joined(None, TextSplit(["dull"], np.array([0], "int32")), None).texts
    ['dull']
    """
    present = [split for split in splits if split is not None]
    if not present:
        return None
    return functools.reduce(lambda a, b: a.extended(b), present)


def extra_texts(progress, config, teacher, train, known):
    """The teacher-labelled texts a run's distilled student trains on
    beside `train`: the generated ones (`generated_once`), then those of
    `config.unlabelled_data` (`unlabelled_texts`), each less copies of
    `known` texts and repeats (`new_texts`). They are labelled once per
    run: a resumed run takes the texts, labels and counts its `progress`
    recorded, without reading, generating or labelling again.

    Args:
        progress: the run's `keras_kd.utils.io.RunProgress`.
        config: a `PipelineConfig`.
        teacher: the run's teacher.
        train: the training split.
        known: the run's training, validation and test texts.

    Returns:
        `(extra, counts)`: the texts `joined` (None when neither source
        is set or no text is new) and `{"generated": ..., "unlabelled":
        ...}`, each `new_texts`'s counts, or None for a source not set.
    """
    if not progress.done("extra_texts"):
        generated, generated_counts = generated_once(progress, config, teacher, train, known)
        unlabelled, unlabelled_counts = unlabelled_texts(config, teacher, known)
        extra = joined(generated, unlabelled)
        progress.complete("extra_texts", {
            "texts": None if extra is None else extra.texts,
            "labels": None if extra is None else extra.labels.tolist(),
            "counts": {"generated": generated_counts, "unlabelled": unlabelled_counts},
        })
    record = progress.result("extra_texts")
    extra = None if record["texts"] is None else kd_datasets.TextSplit(
        record["texts"], np.array(record["labels"], "int32")
    )
    return extra, record["counts"]


def vocabulary_texts(train, validation=None, extra=None):
    """The texts a shipped student's vocabulary is trimmed to: those it
    trained on (`train`, then `extra`) and the `validation` texts that
    chose its epoch, each split optional. `search_student` measures each
    shape's size on the same texts, so a student shipped after a search
    has the size it was measured at.

    Example:

    >>> from keras_kd.datasets import TextSplit
    >>> def split(*texts):
    ...     return TextSplit(list(texts), np.zeros(len(texts), "int32"))
    >>> vocabulary_texts(split("a fine film"), split("dull"), extra=split("a new plot"))
    ['a fine film', 'a new plot', 'dull']
    """
    return [text for split in (train, extra, validation) if split is not None for text in split.texts]


def baseline_cache_dir(cache_dir):
    """Where `distill_students` caches the baseline's logits when the
    distilled student trains on extra examples.

    Example:

    >>> baseline_cache_dir("run/teacher_cache")
    'run/teacher_cache_labelled'
    """
    return cache_dir + "_labelled"


def distill_students(
    config, teacher, train, validation, cache_dir, baseline=True, seed=None,
    backup_dir=None, extra=None,
):
    """Steps 2 and 3: builds students from `teacher` and trains them.

    The teacher's logits on `train` are cached in `cache_dir` (or reused
    from it, when built from the same teacher and texts); the distilled
    student and (with `baseline`) the same student trained without
    distillation (`alpha=0`) then see the same batches in the same order.
    Auto epochs of `config` are decided from `train`
    (`keras_kd.pipeline.budget.resolve_budget`; the sequence length is the
    teacher's). With a `validation` split each training keeps its best
    epoch and stops early (`config.patience`).

    Args:
        seed: the students' seed; default: `config.seeds[0]`.
        backup_dir: a folder where each student's training backs up its
            state (in a subfolder named like the student), as in
            `finetune_teacher`.
        extra: more examples for the distilled student only, such as
            `teacher_labelled` generated texts (its cache in `cache_dir`
            then holds both; the baseline's, of `train` alone, is in
            `baseline_cache_dir(cache_dir)`).

    Returns:
        `(students, histories, cache)`: dicts keyed `"distilled"` (and
        `"baseline"`) of `FinetuneModel`s and Keras `History`s, and the
        distilled student's `TeacherCache`.
    """
    config = resolve_budget(
        config, train, sequence_length=False, teacher_hidden_dim=teacher.backbone.hidden_dim
    ).config
    seed = config.seeds[0] if seed is None else seed
    runs = {"distilled": config.alpha}
    if baseline:
        runs["baseline"] = 0.0
    keras.utils.set_random_seed(seed)
    students = {
        name: student_of(config, teacher)
        for name in runs
    }
    cache = teacher_cache(
        config, teacher, train if extra is None else train.extended(extra), cache_dir
    )
    caches = {"distilled": cache}
    if baseline:
        caches["baseline"] = cache if extra is None else teacher_cache(
            config, teacher, train, baseline_cache_dir(cache_dir)
        )
    validation_ds = validation_dataset(config, teacher, validation)
    histories = {
        name: distill_student(
            config, students[name], teacher, caches[name], alpha, seed, validation_ds,
            backup_dir=None if backup_dir is None else os.path.join(backup_dir, name),
        )
        for name, alpha in runs.items()
    }
    return students, histories, cache


def few_label_experiment(config, train, validation, test, class_names, cache_dir):
    """Distillation with few labels and plenty of unlabelled text.

    A teacher is fine-tuned on `config.few_labels` labelled texts of `train`
    (a seeded random sample). For each seed, one student is distilled from it
    on all of `train` with `alpha=1`, so the other labels are never read,
    and the same student is trained on the labelled texts alone, for the
    same number of optimizer steps.

    Auto settings of `config` are decided from all of `train`, so the
    teacher has the run's sequence length.

    Returns:
        A dict: the teacher's test accuracy, and per seed the test
        accuracies of both students.
    """
    config = resolve_budget(config, train).config
    labelled = train.sample(config.few_labels, config.seeds[0])
    few_config = dataclasses.replace(
        config, teacher_epochs=config.few_label_teacher_epochs
    )
    teacher, _ = finetune_teacher(few_config, labelled, validation, class_names)
    cache = teacher_cache(config, teacher, train, cache_dir)
    steps = _steps(len(train), config.batch_size, config.epochs)
    result = {
        "labelled_texts": len(labelled),
        "unlabelled_texts": len(train) - len(labelled),
        "teacher_epochs": config.few_label_teacher_epochs,
        "student_steps": steps,
        "teacher": accuracy_of(config, teacher, test),
        "distilled": [],
        "labels_only": [],
    }
    for seed in config.seeds:
        keras.utils.set_random_seed(seed)
        distilled = student_of(config, teacher)
        labels_only = student_of(config, teacher)
        distill_student(config, distilled, teacher, cache, 1.0, seed, None, metrics=())
        keras.utils.set_random_seed(seed)
        _compile_classifier(
            labels_only.token_id_model,
            config.jit_compile,
            transfer.warmup_cosine_adamw(
                config.learning_rate, steps, warmup=config.warmup, weight_decay=0.01
            ),
        )
        _fit(
            labels_only.token_id_model,
            labelled.tokenize(
                teacher.preprocessor, config.batch_size, shuffle=True, seed=seed
            ).repeat(),
            config,
            1,
            steps_per_epoch=steps,
        )
        result["distilled"].append(accuracy_of(config, distilled, test))
        result["labels_only"].append(accuracy_of(config, labels_only, test))
    return result


def teacher_labelled(teacher, texts, batch_size=32):
    """`texts` labelled by `teacher`: a student distilled on them (from a
    `TeacherCache` built over them) learns the teacher's soft targets in
    the distillation term and its top class in the student term.

    Args:
        teacher: a `FinetuneModel` with a preprocessor.
        texts: a list of strings, such as
            `keras_kd.distillation.in_domain_texts`'s.
        batch_size: texts scored at once.

    Returns:
        A `keras_kd.datasets.TextSplit` of `texts` and the teacher's top
        classes.

    Example:

    >>> from keras_kd.utils.testing import tiny_bert_text_classifier
    >>> teacher = tiny_bert_text_classifier()
    >>> split = teacher_labelled(teacher, ["a fine film", "a dull plot"])
    >>> split.labels.tolist() == teacher.predict(split.texts, verbose=0).argmax(-1).tolist()
    True
    """
    texts = list(texts)
    unlabelled = kd_datasets.TextSplit(texts, np.zeros(len(texts), "int32"))
    logits = teacher.token_id_model.predict(
        unlabelled.tokenize(teacher.preprocessor, batch_size), verbose=0
    )
    return kd_datasets.TextSplit(texts, np.argmax(logits, axis=-1).astype("int32"))


def accuracy_of(config, model, split):
    """`evaluate_accuracy` with the run's batch size and XLA setting."""
    return evaluate_accuracy(model, split, config.batch_size, config.jit_compile)


def evaluate_accuracy(model, split, batch_size=32, jit_compile=True):
    """Accuracy of a `FinetuneModel` on a `keras_kd.datasets.TextSplit`."""
    net = model.token_id_model
    _compile_classifier(net, jit_compile)
    dataset = split.tokenize(model.preprocessor, batch_size)
    return float(net.evaluate(dataset, return_dict=True, verbose=0)["accuracy"])
