"""Saving and restoring the compile settings of models whose `compile` is
their own (Keras skips it on loading, with a warning): `with_optimizer_state`
marks whether the optimizer had been built, `compile_saved` compiles a
loaded model from the saved settings."""

import keras


def with_optimizer_state(model, config):
    """`config`, a `get_compile_config()`, noting whether the optimizer had
    been built: one that never stepped saves no moments, and a loaded model
    builds its optimizer only to receive saved ones (else Keras warns that
    it skips loading them).

    Example:

    >>> from keras_kd.utils.testing import tiny_whisper_audio_to_text
    >>> model = tiny_whisper_audio_to_text(num_layers=1)
    >>> with_optimizer_state(model, model.get_compile_config())["optimizer_built"]
    False
    """
    if config:
        config["optimizer_built"] = bool(model.optimizer.built)
    return config


def compile_saved(model, config, built_if_unknown=True):
    """Compiles a loaded `model` with the settings `with_optimizer_state`
    saved; `built_if_unknown` stands for the flag in files saved before it
    existed.

    Example:

    >>> import tempfile, os
    >>> from keras_kd.utils.testing import tiny_whisper_audio_to_text
    >>> model = tiny_whisper_audio_to_text(num_layers=1)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.keras")
    >>> model.save(path)
    >>> type(keras.saving.load_model(path).sampler).__name__
    'GreedySampler'
    """
    config = dict(config)
    built = config.pop("optimizer_built", built_if_unknown)
    model.compile(**keras.saving.deserialize_keras_object(config))
    if model.built and built:
        model.optimizer.build(model.trainable_variables)
