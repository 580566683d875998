"""keras-kd: knowledge distillation, transfer learning and on-device export
for Keras 3 language models.

The public API loads on first use (PEP 562), so that `keras-kd --help` and
its usage errors answer without starting TensorFlow. Every module that needs
Keras checks on import that it runs on the TensorFlow backend.
"""

import importlib

__version__ = "0.1.0"

_MODULES = (
    "commands",
    "datasets",
    "export",
    "heads",
    "losses",
    "pipeline",
    "presets",
    "report",
    "transfer",
)
_OBJECTS = {
    "Distiller": "keras_kd.distiller",
    "TeacherCache": "keras_kd.teacher_cache",
    "require_tensorflow_backend": "keras_kd._backend",
}

# `commands` backs the `keras-kd` command and is not public API.
__all__ = sorted(
    {*_MODULES, *_OBJECTS} - {"commands", "require_tensorflow_backend"}
) + ["__version__"]


def __getattr__(name):
    if name in _MODULES:
        return importlib.import_module(f"keras_kd.{name}")
    if name in _OBJECTS:
        return getattr(importlib.import_module(_OBJECTS[name]), name)
    raise AttributeError(f"module 'keras_kd' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
