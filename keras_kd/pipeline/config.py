"""`PipelineConfig`: the settings of a pipeline run, checked on creation.

Pure Python: the `keras-kd` command reads its defaults from this class to
show them in `--help` without starting TensorFlow.
"""

import dataclasses
import hashlib
import json
import os

from keras_kd.utils.validation import check_int, check_number, check_sequence_length


class RunConfig:
    """What the run configs share: `quick()`, the class's small run, and
    `run_dir`.

    >>> PipelineConfig.quick().run_dir == os.path.join("saved_models", "demo_quick")
    True
    >>> PipelineConfig.quick(max_train=64).max_train
    64
    """

    # The settings of `quick()`, overriding the defaults.
    QUICK = {}

    @classmethod
    def quick(cls, **overrides):
        """The class's small run (its `QUICK` settings), with `overrides`."""
        return cls(**{**cls.QUICK, **overrides})

    def _check_run_folder(self):
        """Refuses a `run_name` that is not one folder name: joined to
        `output_dir`, an absolute path replaced it and `..` or `a/b` wrote
        elsewhere, and an empty name wrote into `output_dir` itself; and
        an empty `output_dir` (an unset shell variable), which put the run
        in the current folder."""
        if self.output_dir == "":
            raise ValueError(
                "`output_dir` is empty, which would put the run in the "
                "current folder. Pass output_dir='.' (--output-dir .) for the "
                "current folder, or leave it out for the default "
                f"{type(self).output_dir!r}. Received: output_dir=''"
            )
        name = self.run_name
        separators = [sep for sep in (os.sep, os.altsep, "/") if sep]
        if (
            not isinstance(name, str)
            or name in ("", ".", "..")
            or any(sep in name for sep in separators)
        ):
            raise ValueError(
                "`run_name` must be the name of one folder, made in "
                f"`output_dir`, not a path. Received: run_name={name!r}. Pass "
                "the parent folder as output_dir (--output-dir) and a name "
                "such as 'student' as run_name (--run-name)."
            )

    @property
    def run_dir(self):
        """The run's folder, `output_dir/run_name`."""
        return os.path.join(self.output_dir, self.run_name)

    # Fields that say how to run, not what: a run resumed with other
    # values of these gives the same results.
    NOT_SETTINGS = ("resume", "overwrite", "verbose")

    def settings(self):
        """The fields that decide the run's results, JSON-able: what a
        resumed run must share with the partial run it continues
        (`keras_kd.utils.io.resumable_folder`). A value whose JSON is long
        (a list of texts given as `data`) is replaced by its SHA-256.

        Returns:
            A dict of field name to value.

        >>> settings = PipelineConfig(epochs=2, data=(["a"] * 100, [0] * 100)).settings()
        >>> settings["epochs"], settings["data"][:7], "resume" in settings
        (2, 'sha256:', False)
        """
        settings = {}
        for field in dataclasses.fields(self):
            if field.name in self.NOT_SETTINGS:
                continue
            text = json.dumps(getattr(self, field.name), default=repr)
            settings[field.name] = (
                json.loads(text) if len(text) <= 200
                else "sha256:" + hashlib.sha256(text.encode()).hexdigest()
            )
        return settings


@dataclasses.dataclass
class PipelineConfig(RunConfig):
    """Settings of a pipeline run; the defaults are the embedded demo.

    The `keras-kd` command's options take their defaults from these fields
    (`keras-kd finetune` the teacher's, `keras-kd distill` the students').

    Attributes:
        data: any source `keras_kd.datasets.load` accepts.
        validation_data, test_data: a file or `(texts, labels)` pair read
            whole as that split, when `data` is a single file or pair
            (`keras_kd.datasets.load`'s arguments of the same names).
        text_column, label_column: columns of a file source.
        teacher: any preset `keras_kd.transfer.build_finetune_model` accepts.
        freeze: the teacher's freeze spec while fine-tuning.
        sequence_length: tokens per example; None (auto): the 95th
            percentile of the training texts' token lengths under the
            teacher's tokenizer, [CLS] and [SEP] included, rounded up to a
            multiple of 8, at least 16, at most the preset's positions
            (`keras_kd.pipeline.budget.percentile_length`; 48 on the movie
            reviews).
        batch_size: training batch size.
        teacher_epochs: fine-tuning epochs of the teacher (at most, with a
            validation split: see `patience`); None (auto): enough epochs
            for 250 optimizer steps, from 1 to 10
            (`keras_kd.pipeline.budget.auto_epochs`; 1 on the movie
            reviews, 265 steps an epoch).
        epochs: training epochs of the students, likewise.
        patience: with a validation split, each training is scored on it
            after every epoch, keeps the weights of its best epoch
            (validation accuracy) and stops once that has not improved for
            this many epochs (`keras_kd.pipeline.budget.fit_best_epoch`).
        student_layers: transformer layers of the student (`--student-layers`
            on the command line; `num_layers` of
            `keras_kd.transfer.student_like`). 2 of MiniLM's 6 makes
            single-example latency over 3x lower at the same length; 3 stays
            under 2.5x.
        student_hidden_dim: width of the student (`--student-hidden-dim`);
            None keeps the teacher's, and the student starts from the
            teacher's layers. A narrower one has attention heads of the
            teacher's head size and the teacher's feed-forward ratio
            (`keras_kd.transfer.student_config`) and starts
            from the teacher's embeddings projected onto its width, with
            new transformer layers.
        alpha, temperature: distillation settings of `Distiller.compile`.
        teacher_learning_rate, learning_rate: peak AdamW learning rates of
            the teacher and the students
            (`keras_kd.transfer.warmup_cosine_adamw`: linear warm-up over the
            first `warmup` fraction of the steps, then cosine decay to 0).
            The students' is higher: a 2-layer student copied from a 6-layer
            teacher has far to move in one epoch (measured on the demo's
            seed: 0.800 test accuracy at 1e-4, 0.822 at 3e-4, 0.830 at 6e-4).
        warmup: fraction of the training steps spent warming up, in [0, 1).
        quantization: quantization of the student's `.tflite`.
        trim_vocabulary: keep only the tokens of the texts the student
            trained and was validated on (`vocabulary_texts`; and the
            single-character pieces) in the student's vocabulary before
            export.
        latency_runs: timed single-example runs of each `.tflite`, teacher
            and student side by side (`keras_kd.export.compare_latency`).
        max_train, max_test: cap the number of examples with a seeded random
            sample (None: all).
        seeds: random seeds of the students (initialisation of new weights,
            dropout, shuffling); each seed trains the distilled student and
            its baseline once, and the report gives mean and spread. The
            teacher and the shipped student use the first.
        few_labels: if set, also run the few-labels setting: a teacher
            fine-tuned on this many labelled training texts, a student
            distilled from it on all training texts with the other labels
            hidden, against the same student trained on the labelled texts
            alone for the same number of steps.
        few_label_teacher_epochs: epochs of that teacher on its few labels.
        generated_texts: if set, this many prompts cut from the training
            texts are continued by `generator` (top-k sampling;
            `keras_kd.distillation.in_domain_texts`), the teacher labels the
            new texts (`keras_kd.pipeline.teacher_labelled`), and the
            distilled student trains on them with the training texts (the
            baseline on the training texts alone). `bench/generated_text.py`
            measures what it buys.
        generator: the causal LM that writes them: a keras-kd offline
            preset (`smollm2_135m`), a keras-hub preset or a Hugging Face
            folder.
        unlabelled_data: if set, texts without labels that the teacher
            labels for the distilled student to train on with the training
            texts (the baseline on the training texts alone), after any
            generated ones: a `.txt` file (one text per line), a `.csv`,
            `.tsv` or `.jsonl` file (its `text_column`), an offline set
            of rated sentences, or a list of strings
            (`keras_kd.datasets.read_texts`). Texts that are also training,
            validation or test texts, and repeats, are dropped
            (`keras_kd.pipeline.unlabelled_texts`).
        output_dir, run_name: the run writes to `output_dir/run_name/`.
        overwrite: replace an existing run folder; without `resume`, also
            discard a partial run of it.
        resume: continue the partial run of the run folder, left by a run
            that was killed or failed, from its last completed step (a
            fine-tuned teacher, a student or a teacher cache already on
            disk is reused; an unfinished training continues from its
            last backup). The settings (`settings()`) must be the same.
        jit_compile: compile training and inference with XLA (faster for
            real models on CPU too; tiny test models compile longer than
            they run).
        verbose: Keras verbosity (1: progress bars).

    Bad settings raise `ValueError` naming the field and the value; those
    that need the file system or the teacher's preset (data files, the run
    folder, the freeze spec, the sequence length against the preset's
    positions) are checked by `keras_kd.pipeline.check_config`, which
    `keras_kd.pipeline.run` calls before any work:

    >>> PipelineConfig(seeds=[0, 1]).seeds
    (0, 1)
    >>> PipelineConfig(few_labels=0)
    Traceback (most recent call last):
    ...
    ValueError: `few_labels` must be None or an int >= 1, e.g. 1000. Received: few_labels=0
    """

    data: object = "movie_reviews"
    validation_data: object = None
    test_data: object = None
    text_column: str = "text"
    label_column: str = "label"
    teacher: str = "minilm_l6"
    freeze: object = "none"
    sequence_length: int = None
    batch_size: int = 32
    teacher_epochs: int = None
    epochs: int = None
    patience: int = 2
    student_layers: int = 2
    student_hidden_dim: int = None
    alpha: float = 0.5
    temperature: float = 2.0
    teacher_learning_rate: float = 1e-4
    learning_rate: float = 6e-4
    warmup: float = 0.1
    quantization: str = "dynamic_int8"
    trim_vocabulary: bool = True
    latency_runs: int = 200
    max_train: int = None
    max_test: int = None
    seeds: tuple = (0,)
    few_labels: int = None
    few_label_teacher_epochs: int = 4
    generated_texts: int = None
    generator: str = "smollm2_135m"
    unlabelled_data: object = None
    output_dir: str = "saved_models"
    run_name: str = "demo"
    overwrite: bool = False
    resume: bool = False
    jit_compile: bool = True
    verbose: int = 1

    def __post_init__(self):
        self._check_run_folder()
        if not isinstance(self.seeds, (list, tuple)) or not self.seeds:
            raise ValueError(
                "`seeds` must be a non-empty tuple of ints, e.g. (0, 1, 2). "
                f"Received: seeds={self.seeds!r}"
            )
        for i, seed in enumerate(self.seeds):
            check_int(f"seeds[{i}]", seed, minimum=0)
        self.seeds = tuple(self.seeds)
        for name in (
            "batch_size",
            "student_layers",
            "latency_runs",
            "few_label_teacher_epochs",
        ):
            check_int(name, getattr(self, name))
        check_sequence_length(self.sequence_length, allow_none=True, example=48)
        check_int("student_hidden_dim", self.student_hidden_dim, allow_none=True, example=128)
        for name in ("teacher_epochs", "epochs"):
            check_int(name, getattr(self, name), allow_none=True, example=3)
        check_int("patience", self.patience, example=2)
        for name in ("max_train", "max_test"):
            check_int(name, getattr(self, name), allow_none=True, example=512)
        check_int("few_labels", self.few_labels, allow_none=True, example=1000)
        check_int("generated_texts", self.generated_texts, allow_none=True, example=1000)
        check_number("alpha", self.alpha, 0, 1)
        check_number("temperature", self.temperature, 0, low_open=True, example=2)
        for name in ("teacher_learning_rate", "learning_rate"):
            # Above 1, AdamW diverges: a rate typed as 5 for 5e-5.
            check_number(name, getattr(self, name), 0, 1, low_open=True, example=1e-4)
        check_number("warmup", self.warmup, 0, 1, high_open=True, example=0.1)

    # `quick()`: 512 training texts, length 32, one epoch each (a smoke
    # run: auto would give 10 epochs of 16 steps), without XLA (at this
    # size compiling costs more than it saves).
    QUICK = dict(
        sequence_length=32,
        teacher_epochs=1,
        epochs=1,
        jit_compile=False,
        max_train=512,
        max_test=256,
        latency_runs=20,
        run_name="demo_quick",
    )
