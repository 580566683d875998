"""keras-kd: knowledge distillation, transfer learning and on-device export
for Keras 3 language models.

The public API loads on first use (PEP 562), so that `keras-kd --help` and
its usage errors answer without starting TensorFlow. Every module that needs
Keras checks on import that it runs on the TensorFlow backend.
"""

import importlib

__version__ = "0.1.0"

# Public name -> the module that holds it.
_MODULES = {
    "datasets": "keras_kd.datasets",
    "distillation": "keras_kd.distillation",
    "export": "keras_kd.export",
    "heads": "keras_kd.transfer.heads",
    "losses": "keras_kd.losses",
    "pipeline": "keras_kd.pipeline",
    "presets": "keras_kd.presets",
    "speech": "keras_kd.speech",
    "transfer": "keras_kd.transfer",
}
_OBJECTS = {
    "BackupAndRestore": "keras_kd.utils.backup",
    "Distiller": "keras_kd.distillation.distiller",
    "TeacherCache": "keras_kd.distillation.teacher_cache",
}

__all__ = sorted({*_MODULES, *_OBJECTS}) + ["__version__"]


def __getattr__(name):
    if name in _MODULES:
        return importlib.import_module(_MODULES[name])
    if name in _OBJECTS:
        return getattr(importlib.import_module(_OBJECTS[name]), name)
    raise AttributeError(f"module 'keras_kd' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
