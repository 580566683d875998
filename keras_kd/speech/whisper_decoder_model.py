"""`whisper_decoder_model`: a Whisper task's decoder alone, reading the
encoder's output instead of audio features, for training with the encoder
frozen."""

import keras


def whisper_decoder_model(model):
    """The decoder of `model` as a functional `keras.Model`:
    `{"encoder_hidden_states", "decoder_token_ids", "decoder_padding_mask"}`
    to next-token logits at every decoder position.

    It shares its layers (and so its weights) with `model`: training it
    trains `model`'s decoder. With the encoder frozen, as in Distil-Whisper,
    the encoder's output of each utterance can be computed once
    (`WhisperAudioToText.call_encoder`) and the decoders of a teacher and a
    student trained on it, for a fraction of a full forward pass: the
    encoder of a 30-second window is most of Whisper tiny's compute.

    Args:
        model: a `keras_kd.speech.WhisperAudioToText`.

    Returns:
        A `keras.Model` whose logits equal `model`'s on the same utterance.

    Example:

    >>> import numpy as np
    >>> from keras_kd.utils.testing import tiny_whisper_audio_to_text
    >>> model = tiny_whisper_audio_to_text()
    >>> x, _, _ = model.preprocessor({"audio": np.zeros((1, 8000), "float32"), "text": ["re"]})
    >>> decoder = whisper_decoder_model(model)
    >>> logits = decoder({
    ...     "encoder_hidden_states": model.call_encoder(x["encoder_features"]),
    ...     "decoder_token_ids": x["decoder_token_ids"],
    ...     "decoder_padding_mask": x["decoder_padding_mask"]})
    >>> bool(np.allclose(logits, model(x), atol=1e-5))
    True
    """
    b = model.backbone
    inputs = {
        "encoder_hidden_states": keras.Input((None, b.hidden_dim), name="encoder_hidden_states"),
        "decoder_token_ids": keras.Input((None,), dtype="int32", name="decoder_token_ids"),
        "decoder_padding_mask": keras.Input((None,), dtype="int32", name="decoder_padding_mask"),
    }
    # The same layers in the same order as the backbone's own graph.
    x = b.decoder_embeddings(inputs["decoder_token_ids"])
    x = b.decoder_embeddings_dropout(x)
    for layer in b.decoder_transformer_layers:
        x = layer(
            decoder_sequence=x,
            encoder_sequence=inputs["encoder_hidden_states"],
            decoder_padding_mask=inputs["decoder_padding_mask"],
        )
    x = b.decoder_layer_norm(x)
    logits = b.token_embedding(x, reverse=True)
    return keras.Model(inputs, logits, name=f"{model.name}_decoder")
