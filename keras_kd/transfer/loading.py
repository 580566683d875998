"""`load_finetune_model`: a saved `FinetuneModel` back from its `.keras`
file, in Keras's safe mode unless the caller trusts the file."""

import os
import zipfile

import keras

from keras_kd.transfer.finetune_model import FinetuneModel


def load_finetune_model(path, safe_mode=True):
    """Loads a `FinetuneModel` saved as a `.keras` file.

    The file is checked before Keras reads it, and loaded with Keras's
    `safe_mode`: a file that would run arbitrary Python code when loaded (a
    `Lambda` layer holding a Python lambda) is refused unless
    `safe_mode=False` (`--unsafe` on the `keras-kd` command line).

    Args:
        path: a `.keras` file written by `FinetuneModel.save`,
            `keras-kd finetune`, `keras-kd distill` or `keras_kd.pipeline.run`.
        safe_mode: refuse files that need arbitrary code. Pass False only
            for files you trust.

    Returns:
        The `FinetuneModel`.

    Raises:
        FileNotFoundError: `path` is not a file.
        ValueError: the file is not a Keras archive, or needs arbitrary code
            while `safe_mode` is on.
        TypeError: the file holds another kind of Keras model.

    Example:

    >>> import os, tempfile, keras
    >>> path = os.path.join(tempfile.mkdtemp(), "plain.keras")
    >>> keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]).save(path)
    >>> load_finetune_model(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: '...plain.keras' holds a Sequential, not a keras-kd FinetuneModel...
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{path!r} is not a file. Pass a .keras model written by "
            "`keras-kd finetune`, `keras-kd distill` or `FinetuneModel.save`."
        )
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path!r} is not a Keras model: a .keras file is a zip archive "
            "and this file is not one. Pass a .keras model written by "
            "`keras-kd finetune`, `keras-kd distill` or `FinetuneModel.save`."
        )
    try:
        model = keras.saving.load_model(path, safe_mode=safe_mode)
    except ValueError as error:
        # Keras names `safe_mode` in exactly the refusals that safe mode makes.
        if safe_mode and "safe_mode" in str(error):
            raise ValueError(
                f"{path!r} holds code that runs when it loads (a Lambda layer "
                "or a Python lambda), so it was not loaded. If you trust the "
                "file, pass safe_mode=False (--unsafe on the keras-kd command "
                "line)."
            ) from error
        raise
    student = getattr(model, "student", None)
    if isinstance(student, FinetuneModel):
        raise TypeError(
            f"{path!r} holds a Distiller (a student and its teacher, saved "
            "while training), not a FinetuneModel. Load it with "
            "`keras.saving.load_model(path)` and take `.student`, or save "
            "the student itself: `distiller.student.save(path)`."
        )
    if not isinstance(model, FinetuneModel):
        raise TypeError(
            f"{path!r} holds a {type(model).__name__}, not a keras-kd "
            "FinetuneModel (a text classifier with its preprocessor). Pass a "
            ".keras model written by `keras-kd finetune`, `keras-kd distill` "
            "or `FinetuneModel.save`."
        )
    return model
