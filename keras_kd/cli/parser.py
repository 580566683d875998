"""The `keras-kd` command's arguments: `build_parser` and `UsageError`.

Defaults come from `keras_kd.pipeline.PipelineConfig`, the one source of the
tuned settings: `keras-kd finetune` takes the teacher's (`teacher`,
`teacher_epochs`, `teacher_learning_rate`, ...), `keras-kd distill` the
students' (`student_layers`, `epochs`, `learning_rate`, ...). Building the
parser imports neither Keras nor TensorFlow.
"""

import argparse

from keras_kd.pipeline.budget import (
    LENGTH_MULTIPLE,
    LENGTH_PERCENTILE,
    MAX_EPOCHS,
    MIN_LENGTH,
    MIN_STEPS,
)
from keras_kd.pipeline.config import PipelineConfig
from keras_kd.pipeline.generation_config import GenerationConfig
from keras_kd.pipeline.speech_config import SpeechConfig

_EXAMPLES = {
    "demo": """examples:
  keras-kd demo                 # MiniLM teacher, movie-review sentences
  keras-kd demo --quick         # 512 sentences, one epoch each
  keras-kd demo --task generation   # SmolLM2-135M -> 6 layers -> LiteRT-LM bundles
  keras-kd demo --task generation --quick
  keras-kd demo --task speech       # Whisper tiny.en -> 2 decoder layers -> .tflite
  keras-kd demo --seeds 0 1 2 --few-labels 1000 --run-name bench
  keras-kd demo --run-name mine --overwrite
  keras-kd demo --resume        # continue a killed `keras-kd demo`
  keras-kd demo --strategy mirrored   # the trainings on every local GPU""",
    "finetune": """examples:
  keras-kd finetune --run-name teacher
  keras-kd finetune --data reviews.csv --text-column review \\
      --label-column sentiment --preset minilm_l6 --freeze embeddings --epochs 3
  keras-kd finetune --data train.csv --test-data test.csv""",
    "distill": """examples:
  keras-kd distill --teacher saved_models/teacher/model.keras --run-name student
  keras-kd distill --teacher saved_models/teacher/model.keras \\
      --data reviews.csv --student-layers 2 --alpha 0.7 --temperature 4""",
    "export": """examples:
  keras-kd export --model saved_models/student/model.keras --run-name student_tflite
  keras-kd export --model saved_models/student/model.keras \\
      --quantization dynamic_int8 float16 --sequence-length 64""",
    "evaluate": """examples:
  keras-kd evaluate --model saved_models/student/model.keras
  keras-kd evaluate --model saved_models/student_tflite/model_dynamic_int8.tflite \\
      --data reviews.csv --split test
  keras-kd evaluate --model saved_models/student/model.keras --data test.csv --split all""",
}


class UsageError(Exception):
    """A problem with the user's input, reported as one line on stderr."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def _add_data(parser, tasks=False):
    parser.add_argument(
        "--data",
        default=PipelineConfig.data,
        help="'movie_reviews' (default), 'product_reviews', "
        "'news_editorials', 'tweets', a .csv/.tsv/.jsonl file, or "
        "'tfds:NAME' prepared offline"
        + (
            "; for --task generation or speech, the texts of any of these but "
            "tfds (labels unused), or a .txt file of one text per line"
            if tasks else ""
        ),
    )
    parser.add_argument(
        "--validation-data", default=None, metavar="FILE",
        help="your own validation split (a .csv/.tsv/.jsonl file read whole) "
        "when --data is a file; default: a share of --data",
    )
    parser.add_argument(
        "--test-data", default=None, metavar="FILE",
        help="your own test split (a .csv/.tsv/.jsonl file read whole) when "
        "--data is a file; default: a share of --data",
    )
    parser.add_argument(
        "--text-column", default=PipelineConfig.text_column, help="default: %(default)s"
    )
    parser.add_argument(
        "--label-column", default=PipelineConfig.label_column, help="default: %(default)s"
    )


def _add_output(parser, default_run_name):
    parser.add_argument(
        "--output-dir", default=PipelineConfig.output_dir, help="default: %(default)s"
    )
    parser.add_argument(
        "--run-name",
        default=default_run_name,
        help=f"default: {default_run_name or 'demo (demo_quick with --quick)'}",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing run folder"
    )


def _add_resume(parser):
    parser.add_argument(
        "--resume", action="store_true",
        help="continue the run with this --run-name that was killed or "
        "failed, from its last completed step (same options as that run)",
    )


def _add_unsafe(parser):
    parser.add_argument(
        "--unsafe", action="store_true",
        help="load a .keras file that runs code when it loads (a Lambda "
        "layer); only for files you trust",
    )


class _Distinct(argparse.Action):
    """Stores the values of an option of several (`nargs="+"`), refusing a
    value given more than once: `--quantization none none` exported the same file
    twice, `--seeds 0 0` trained the same student twice and reported its
    spread over copies.

    >>> parser = _Parser(prog="keras-kd export")
    >>> _ = parser.add_argument("--quantization", nargs="+", action=_Distinct)
    >>> parser.parse_args(["--quantization", "none", "float16"]).quantization
    ['none', 'float16']
    >>> parser.parse_args(["--quantization", "none", "none"])
    Traceback (most recent call last):
    ...
    keras_kd.cli.parser.UsageError: keras-kd export: argument --quantization: 'none' given more than once; give each value once: --quantization none (see keras-kd export --help)
    """

    def __call__(self, parser, namespace, values, option_string=None):
        repeated = list(dict.fromkeys(v for v in values if values.count(v) > 1))
        if repeated:
            once = list(dict.fromkeys(values))
            raise argparse.ArgumentError(
                self,
                f"{', '.join(map(repr, repeated))} given more than once; give "
                f"each value once: {option_string} {' '.join(map(str, once))}",
            )
        setattr(namespace, self.dest, values)


def _int_or_auto(text):
    """An option's int, or None for "auto" (decided from the data).

    >>> _int_or_auto("auto"), _int_or_auto("3")
    (None, 3)
    """
    if text == "auto":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'auto' or an integer, got {text!r}"
        ) from None


def _add_extra_texts(parser):
    """--generated-texts, --generator and --unlabelled-data."""
    parser.add_argument(
        "--generated-texts", type=int, default=PipelineConfig.generated_texts, metavar="N",
        help="also distill the student on N new texts that --generator writes "
        "from prompts cut from the training texts, labelled by the teacher "
        "(classification)",
    )
    parser.add_argument(
        "--generator", default=PipelineConfig.generator,
        help="the causal LM of --generated-texts; default: %(default)s",
    )
    parser.add_argument(
        "--unlabelled-data", default=PipelineConfig.unlabelled_data, metavar="PATH",
        help="also distill the student on these texts without labels, "
        "labelled by the teacher: a .txt file (one text per line), a .csv, "
        ".tsv or .jsonl file (its --text-column) or an offline set such as "
        "product_reviews; copies of the data's texts are dropped "
        "(classification)",
    )


def _add_training(parser, epochs, learning_rate):
    """--epochs, --patience, --batch-size, --learning-rate, defaulting to
    the named `PipelineConfig` fields."""
    parser.add_argument(
        "--epochs",
        type=_int_or_auto,
        default=getattr(PipelineConfig, epochs),
        metavar="N|auto",
        help="the most epochs (fewer when validation accuracy stops "
        f"improving, see --patience); default: auto, enough epochs for "
        f"{MIN_STEPS} optimizer steps, 1 to {MAX_EPOCHS} (1 on {32 * MIN_STEPS:,} "
        f"texts or more at batch 32) (PipelineConfig.{epochs})",
    )
    parser.add_argument(
        "--patience", type=int, default=PipelineConfig.patience, metavar="N",
        help="with a validation split, stop once validation accuracy has not "
        "improved for N epochs and keep the best epoch's weights; default: "
        "%(default)s",
    )
    parser.add_argument(
        "--batch-size", type=int, default=PipelineConfig.batch_size, help="default: %(default)s"
    )
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=getattr(PipelineConfig, learning_rate),
        help="peak AdamW learning rate (warm-up, then cosine decay); "
        f"default: %(default)s (PipelineConfig.{learning_rate})",
    )


def build_parser():
    """The `keras-kd` argument parser; its errors raise `UsageError`.

    Example:

    >>> args = build_parser().parse_args(["distill", "--teacher", "t.keras"])
    >>> args.student_layers, args.max_size_mb  # 2 layers, no size budget
    (None, None)
    >>> (args.epochs, args.learning_rate) == (PipelineConfig.epochs, PipelineConfig.learning_rate)
    True
    >>> build_parser().parse_args(["distill"])
    Traceback (most recent call last):
    ...
    keras_kd.cli.parser.UsageError: keras-kd distill: the following arguments are required: --teacher (see keras-kd distill --help)
    """
    parser = _Parser(
        prog="keras-kd",
        description="Distill Keras models into small ones for on-device use: "
        "text classifiers (every command), causal LMs exported as LiteRT-LM "
        "bundles and Whisper speech recognition (demo --task generation, "
        "demo --task speech).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name, help_text):
        return commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=_EXAMPLES[name],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    demo = command("demo", "Run the whole pipeline on the embedded defaults.")
    demo.add_argument(
        "--task", choices=["classification", "generation", "speech"], default="classification",
        help="classification: a text classifier to TFLite; generation: a "
        "causal LM to LiteRT-LM bundles; speech: Whisper, trained on "
        "synthetic speech, to .tflite (default: %(default)s)",
    )
    demo.add_argument("--quick", action="store_true", help="a small, fast run")
    _add_data(demo, tasks=True)
    demo.add_argument(
        "--response-column", default=None, metavar="COLUMN",
        help="--task generation: train on prompt-response pairs of a "
        ".csv/.tsv/.jsonl --data file, the responses in this column (TRL's: "
        "completion); the loss counts the responses' tokens",
    )
    demo.add_argument(
        "--prompt-column", default=None, metavar="COLUMN",
        help=f"the prompts' column, with --response-column (default: "
        f"{GenerationConfig.prompt_column})",
    )
    demo.add_argument(
        "--teacher", default=None,
        help=f"default: {PipelineConfig.teacher} (classification), "
        f"{GenerationConfig.teacher} (generation), {SpeechConfig.teacher} (speech)",
    )
    demo.add_argument(
        "--seeds", type=int, nargs="+", action=_Distinct, default=list(PipelineConfig.seeds),
        help="students' seeds; several give mean and spread (default: "
        + " ".join(map(str, PipelineConfig.seeds)) + ")",
    )
    demo.add_argument(
        "--few-labels", type=int, default=PipelineConfig.few_labels, metavar="N",
        help="also distill with only N labelled training texts (the rest "
        "unlabelled) against a student trained on the N labels alone",
    )
    _add_extra_texts(demo)
    demo.add_argument(
        "--strategy", choices=["default", "mirrored", "multi_worker"], default="default",
        help="train on several devices (classification): mirrored (every "
        "local GPU), multi_worker (the machines TF_CONFIG names, each with "
        "its own --output-dir); each batch is then split over the devices "
        "(default: %(default)s, one device)",
    )
    _add_output(demo, None)
    _add_resume(demo)

    finetune = command("finetune", "Fine-tune a pretrained backbone on labelled texts.")
    _add_data(finetune)
    finetune.add_argument(
        "--preset", default=PipelineConfig.teacher, help="default: %(default)s"
    )
    finetune.add_argument(
        "--freeze",
        default=PipelineConfig.freeze,
        help="what stays frozen: none, embeddings, all, N (the embeddings "
        "and the first N transformer layers) or a regular expression of "
        "layer names (default: %(default)s)",
    )
    finetune.add_argument(
        "--sequence-length", type=_int_or_auto, default=PipelineConfig.sequence_length,
        metavar="N|auto",
        help=f"tokens per text; default: auto, the {LENGTH_PERCENTILE}th percentile "
        "of the training texts' token lengths, rounded up to a multiple of "
        f"{LENGTH_MULTIPLE}, {MIN_LENGTH} to the preset's positions",
    )
    _add_training(finetune, "teacher_epochs", "teacher_learning_rate")
    _add_output(finetune, "finetune")
    _add_resume(finetune)

    distill = command("distill", "Distill a fine-tuned teacher into a smaller student.")
    _add_data(distill)
    distill.add_argument("--teacher", required=True, help="a .keras model from `finetune`")
    _add_unsafe(distill)
    distill.add_argument(
        "--student-layers", type=int, default=None, metavar="N",
        help="transformer layers of the student (PipelineConfig.student_layers); "
        f"default: {PipelineConfig.student_layers}",
    )
    distill.add_argument(
        "--student-hidden-dim", type=int, default=None, metavar="N",
        help="width of the student (PipelineConfig.student_hidden_dim); a "
        "narrower one than the teacher starts from its embeddings projected "
        "onto that width, with new layers; default: the teacher's",
    )
    distill.add_argument(
        "--max-size-mb", type=float, default=None, metavar="MB",
        help="choose the student's layers and width to fit this .tflite size "
        "(10^6 bytes): 1 to 3 layers at 1/3, 2/3 and all of the teacher's "
        "width are exported and timed, the 3 largest that fit are distilled "
        "for one epoch and the best on the validation split is trained fully "
        "and saved with its vocabulary trimmed to the data, as measured "
        "(keras_kd.pipeline.search_student)",
    )
    distill.add_argument(
        "--max-latency-ms", type=float, default=None, metavar="MS",
        help="as --max-size-mb, for the median single-example latency of the "
        ".tflite on this machine",
    )
    _add_training(distill, "epochs", "learning_rate")
    _add_extra_texts(distill)
    distill.add_argument(
        "--no-trim-vocabulary", dest="trim_vocabulary", action="store_false",
        help="save the student with the teacher's whole vocabulary; by "
        "default a BERT student keeps the tokens of the texts it trained and "
        "was validated on, and the single characters, as the demo ships it "
        "(PipelineConfig.trim_vocabulary)",
    )
    distill.add_argument(
        "--alpha", type=float, default=PipelineConfig.alpha,
        help="weight of the teacher's soft targets; default: %(default)s",
    )
    distill.add_argument(
        "--temperature", type=float, default=PipelineConfig.temperature,
        help="default: %(default)s",
    )
    _add_output(distill, "distill")
    _add_resume(distill)

    export = command("export", "Export a classifier to TFLite, SavedModel and .keras.")
    export.add_argument("--model", required=True, help="a .keras model")
    _add_unsafe(export)
    export.add_argument(
        "--quantization",
        nargs="+",
        action=_Distinct,
        default=["none", "dynamic_int8"],
        help="one or more of none, float16, dynamic_int8, int8",
    )
    export.add_argument(
        "--sequence-length", type=int, default=None,
        help="default: the model's preprocessor's",
    )
    _add_data(export)
    _add_output(export, "export")

    evaluate = command("evaluate", "Accuracy of a .keras or .tflite classifier.")
    evaluate.add_argument("--model", required=True, help="a .keras or .tflite file")
    evaluate.add_argument(
        "--split", default="test", choices=["train", "validation", "test", "all"],
        help="the split of --data to score; all: every example of --data",
    )
    _add_unsafe(evaluate)
    _add_data(evaluate)
    return parser
