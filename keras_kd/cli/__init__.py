"""The `keras-kd` command: `demo`, `finetune`, `distill`, `export`, `evaluate`.

Modules: `parser` (the arguments, `UsageError`), `entry_point` (`main`),
`commands` (what each subcommand does; imported once the arguments parse,
so `--help` and usage errors answer without starting TensorFlow).
"""

from keras_kd.cli.entry_point import main

__all__ = ["main"]
