"""`main`, the entry point of the `keras-kd` command and `python -m keras_kd`.

Bad input (an unknown option, unreadable data, an existing output folder, a
model that cannot be loaded) ends with one line on stderr and exit status 2,
never a traceback; a warning is one line as well (`keras-kd COMMAND:
warning: ...`), not Python's file path, line number and source line.
`--help` and usage errors answer before TensorFlow starts.
"""

import os
import sys
import warnings

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


def _print_line(text):
    """Prints `text` on stderr as one line, whatever it wraps."""
    print(" ".join(str(text).split()), file=sys.stderr)


def _show_warning(command):
    """A `warnings.showwarning` for `command`: the library's warnings
    (too few texts to hold a split out, say) name the fix in their text;
    where Python found them is of no use on the command line."""

    def show(message, category, filename, lineno, file=None, line=None):
        _print_line(f"keras-kd {command}: warning: {message}")

    return show


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
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning(args.command)
            _import_tensorflow_quietly()
            from keras_kd.cli import commands

            commands.run(args)
        return 0
    except UsageError as error:
        _print_line(error)
        return 2
    except KeyboardInterrupt:
        print("keras-kd: interrupted", file=sys.stderr)
        return 130
