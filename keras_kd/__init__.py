"""keras-kd: knowledge distillation, transfer learning and on-device export
for Keras 3 language models."""

from keras_kd._backend import require_tensorflow_backend

require_tensorflow_backend()

from keras_kd import datasets  # noqa: E402
from keras_kd import losses  # noqa: E402
from keras_kd import heads, presets, transfer  # noqa: E402
from keras_kd.distiller import Distiller  # noqa: E402
from keras_kd.teacher_cache import TeacherCache  # noqa: E402

__version__ = "0.1.0"

__all__ = ["Distiller", "TeacherCache", "datasets", "heads", "losses", "presets", "transfer", "__version__"]
