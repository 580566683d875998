"""The backend requirement shared by every entry point of keras-kd."""

import keras


def require_tensorflow_backend():
    """Raises a clear error unless Keras runs on the TensorFlow backend.

    keras-kd trains with `tf.GradientTape`, feeds `tf.data` pipelines and
    exports through TensorFlow Lite, so no other backend can work.
    """
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise ImportError(
            "keras-kd needs the TensorFlow backend of Keras, but Keras is "
            f"using backend='{backend}'. Set the environment variable "
            "KERAS_BACKEND=tensorflow before Python starts (for example "
            "`export KERAS_BACKEND=tensorflow`), or set "
            '"backend": "tensorflow" in ~/.keras/keras.json.'
        )


require_tensorflow_backend()
