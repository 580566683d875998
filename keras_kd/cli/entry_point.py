"""`main`, the entry point of the `keras-kd` command and `python -m keras_kd`.

Bad input (an unknown option, unreadable data, an existing output folder, a
model that cannot be loaded) ends with one line on stderr and exit status 2,
never a traceback. `--help` and usage errors answer before TensorFlow starts.
"""

import os
import sys

from keras_kd.cli.parser import UsageError, build_parser


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
    """Entry point of the `keras-kd` command; returns the exit status.

    Args:
        argv: the arguments (default: `sys.argv[1:]`).

    Returns:
        0 on success, 2 on bad input (one line on stderr), 130 when
        interrupted. `--help` exits through `SystemExit(0)`, as argparse does.

    Example:

    >>> import contextlib, io
    >>> stderr = io.StringIO()
    >>> with contextlib.redirect_stderr(stderr):
    ...     status = main(["demo", "--nope"])
    >>> status, stderr.getvalue()
    (2, 'keras-kd: unrecognized arguments: --nope (see keras-kd --help)\\n')
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        _import_tensorflow_quietly()
        from keras_kd.cli import commands

        commands.run(args)
        return 0
    except UsageError as error:
        # One line, whatever the wrapped message holds.
        print(" ".join(str(error).split()), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("keras-kd: interrupted", file=sys.stderr)
        return 130
