"""`GenerationConfig`: the settings of a generative run
(`keras_kd.pipeline.run_generation`, `keras-kd demo --task generation`),
checked on creation.

Pure Python: the `keras-kd` command reads its defaults without starting
TensorFlow.
"""

import dataclasses

from keras_kd.pipeline.config import RunConfig
from keras_kd.utils.validation import check_choice, check_int, check_number, is_prompt_responses


@dataclasses.dataclass
class GenerationConfig(RunConfig):
    """Settings of a generative run; the defaults are the embedded demo.

    The student's recipe is `bench/causal_lm.py`'s row (b): token-level KD
    from the teacher's cached top-64 logits on packed rows, peak learning
    rate 1e-3, alpha 0.7. The teacher's adaptation is cheaper than the
    benchmark's, so that the whole run stays under 20 minutes on 2 CPU
    cores.

    Attributes:
        data: an offline set of sentences (`"movie_reviews"`,
            `"product_reviews"`, `"news_editorials"`, `"tweets"`), a `.txt`
            file (one text per line), a `.csv`/`.tsv`/`.jsonl` file or a
            list of strings (`keras_kd.datasets.load_texts`).
        text_column: the column of the texts in a `.csv`/`.tsv`/`.jsonl`
            `data` file.
        response_column: set, `data` is a `.csv`/`.tsv`/`.jsonl` file of
            prompts (`prompt_column`) and their responses (this column;
            `keras_kd.datasets.load_prompt_responses`): the teacher and the
            student train on prompt-response rows, one pair a row (no
            packing), whose loss and scores count the responses' tokens,
            and the verification prompts are held-out prompts, whole. A
            `data` dict `{"prompts": [...], "responses": [...]}` is read
            the same way.
        prompt_column: the prompts' column of such a file.
        teacher: a causal-LM preset `keras_kd.transfer.load_causal_lm`
            accepts (`"smollm2_135m"`, offline).
        teacher_steps: fine-tuning steps of the teacher on the training
            texts (0: use it as it is).
        teacher_train_layers: the teacher's top transformer layers that
            fine-tune; the embeddings and the layers below stay frozen (no
            backward pass through them: 2.1 s a step for SmolLM2 at 10 of
            30 layers against 3.9 s for all). None trains every layer.
        teacher_learning_rate: peak AdamW learning rate of the teacher.
        student_layers: transformer layers the student keeps
            (`keras_kd.transfer.student_like`: the bottom and top layers).
        steps: the student's optimizer steps.
        batch_size: texts per step (teacher and student).
        sequence_length: tokens per training row.
        packing: the student's rows are the training texts packed into
            full rows (`keras_kd.datasets.pack_texts`); False: one padded
            text a row.
        learning_rate: the student's peak AdamW learning rate.
        alpha, temperature: `Distiller.compile` settings.
        top_k: teacher logits kept per token in the `TeacherCache`.
        quantization: quantization of the shipped student bundle.
        trim_vocabulary: keep only the tokens of the training texts (and
            every byte and special token) in the shipped student
            (`keras_kd.transfer.trim_lm_vocabulary`).
        max_sequence_length: context length of the bundles.
        prefill_length: length of the bundles' `prefill_<T>` signature.
        prompts: verification prompts (the first words of test texts).
        max_new_tokens: tokens generated per verification prompt.
        samples: prompts whose continuations the report shows.
        eval_texts: held-out texts scored for perplexity.
        seed: seed of sampling, shuffling and new weights.
        output_dir, run_name: the run writes to `output_dir/run_name/`.
        overwrite: replace an existing run folder; without `resume`, also
            discard a partial run of it.
        resume: continue the partial run of the run folder from its last
            completed step (`PipelineConfig`'s `resume`).
        jit_compile: compile the training steps with XLA (scoring runs
            without: on the default run it took about as long either way).
        verbose: Keras verbosity.

    >>> GenerationConfig().student_layers, GenerationConfig.quick().student_layers
    (6, 2)
    >>> GenerationConfig(samples=30)
    Traceback (most recent call last):
    ...
    ValueError: `samples` (30) cannot exceed `prompts` (20): the samples are the first verification prompts.
    """

    data: object = "movie_reviews"
    text_column: str = "text"
    response_column: object = None
    prompt_column: str = "prompt"
    teacher: str = "smollm2_135m"
    teacher_steps: int = 60
    teacher_train_layers: int = 10
    teacher_learning_rate: float = 1e-4
    student_layers: int = 6
    steps: int = 120
    batch_size: int = 8
    sequence_length: int = 48
    packing: bool = True
    learning_rate: float = 1e-3
    alpha: float = 0.7
    temperature: float = 1.0
    top_k: int = 64
    quantization: str = "dynamic_int8"
    trim_vocabulary: bool = True
    max_sequence_length: int = 128
    prefill_length: int = 32
    prompts: int = 20
    max_new_tokens: int = 16
    samples: int = 5
    eval_texts: int = 200
    seed: int = 0
    output_dir: str = "saved_models"
    run_name: str = "generation"
    overwrite: bool = False
    resume: bool = False
    jit_compile: bool = True
    verbose: int = 1

    def __post_init__(self):
        self._check_run_folder()
        if self.response_column is not None and (
            not isinstance(self.response_column, str) or not self.response_column
        ):
            raise ValueError(
                "`response_column` must be the name of a column, e.g. "
                f"'completion'. Received: response_column={self.response_column!r}"
            )
        if self.response_column is not None and self.text_column != type(self).text_column:
            # It would be ignored: pairs are read from their two columns.
            raise ValueError(
                f"text_column={self.text_column!r} (--text-column) names a column "
                "of texts; prompt-response pairs are read from prompt_column "
                f"(--prompt-column) and response_column. Pass prompt_column="
                f"{self.text_column!r} if it holds the prompts."
            )
        if self.response_column == self.prompt_column:
            raise ValueError(
                f"`response_column` and `prompt_column` are both "
                f"{self.prompt_column!r}: the prompts and the responses are "
                "two columns."
            )
        check_int("teacher_steps", self.teacher_steps, minimum=0, example=60)
        check_int("teacher_train_layers", self.teacher_train_layers, allow_none=True)
        for name in (
            "student_layers", "steps", "batch_size", "top_k", "prompts",
            "max_new_tokens", "samples", "eval_texts",
        ):
            check_int(name, getattr(self, name))
        check_int("sequence_length", self.sequence_length, minimum=2)
        check_int("max_sequence_length", self.max_sequence_length, minimum=2)
        check_int("prefill_length", self.prefill_length)
        check_int("seed", self.seed, minimum=0)
        if self.prefill_length > self.max_sequence_length:
            raise ValueError(
                f"`prefill_length` ({self.prefill_length}) cannot exceed "
                f"`max_sequence_length` ({self.max_sequence_length})."
            )
        if self.samples > self.prompts:
            raise ValueError(
                f"`samples` ({self.samples}) cannot exceed `prompts` "
                f"({self.prompts}): the samples are the first verification "
                "prompts."
            )
        check_number("alpha", self.alpha, 0, 1)
        check_number("temperature", self.temperature, 0, low_open=True, example=1)
        for name in ("teacher_learning_rate", "learning_rate"):
            # Above 1, AdamW diverges: a rate typed as 5 for 5e-5.
            check_number(name, getattr(self, name), 0, 1, low_open=True, example=1e-4)
        check_choice("quantization", self.quantization, ("none", "float16", "dynamic_int8"))

    @property
    def prompt_responses(self):
        """Whether the run trains on prompt-response pairs."""
        return self.response_column is not None or is_prompt_responses(self.data)

    # `quick()`: the teacher as it is, a 2-layer student, 20 steps of 4
    # texts of 32 tokens without XLA, shipped in float32 (two bundles to
    # export and check instead of three), 5 prompts, a 64-token context.
    QUICK = dict(
        teacher_steps=0,
        student_layers=2,
        steps=20,
        batch_size=4,
        sequence_length=32,
        prompts=5,
        samples=3,
        max_new_tokens=8,
        max_sequence_length=64,
        eval_texts=32,
        quantization="none",
        jit_compile=False,
        run_name="generation_quick",
    )
