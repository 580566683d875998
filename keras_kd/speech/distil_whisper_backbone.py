"""`DistilWhisperBackbone`: keras-hub's Whisper backbone with a decoder of
its own depth, the shape of Distil-Whisper's students."""

import keras
import keras_hub
from keras_hub.src.layers.modeling.position_embedding import PositionEmbedding
from keras_hub.src.layers.modeling.token_and_position_embedding import (
    TokenAndPositionEmbedding,
)
from keras_hub.src.models.whisper.whisper_backbone import (
    Padder,
    whisper_kernel_initializer,
)
from keras_hub.src.models.whisper.whisper_decoder import WhisperDecoder
from keras_hub.src.models.whisper.whisper_encoder import WhisperEncoder


@keras.saving.register_keras_serializable(package="keras_kd")
class DistilWhisperBackbone(keras_hub.models.WhisperBackbone):
    """A `keras_hub.models.WhisperBackbone` whose decoder has
    `num_decoder_layers` layers and whose encoder has `num_layers`.

    keras-hub's class gives both stacks one depth; Distil-Whisper keeps the
    teacher's encoder and two of its decoder layers, because decoding runs
    the decoder once per token and the encoder once per utterance. Layers
    and variables are named as keras-hub's, so weights copy between the
    two by `variable.path`.

    Args:
        num_layers: int, the encoder's layers.
        num_decoder_layers: int, the decoder's layers (default:
            `num_layers`).
        **kwargs: the other arguments of `keras_hub.models.WhisperBackbone`.

    Example:

    >>> backbone = DistilWhisperBackbone(
    ...     vocabulary_size=50, num_layers=2, num_decoder_layers=1,
    ...     num_heads=2, hidden_dim=8, intermediate_dim=16,
    ...     max_encoder_sequence_length=40, max_decoder_sequence_length=8)
    >>> len(backbone.encoder_transformer_layers), len(backbone.decoder_transformer_layers)
    (2, 1)
    """

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        num_decoder_layers=None,
        num_mels=80,
        dropout=0.0,
        max_encoder_sequence_length=3000,
        max_decoder_sequence_length=448,
        dtype=None,
        **kwargs,
    ):
        num_decoder_layers = num_layers if num_decoder_layers is None else num_decoder_layers
        common = dict(
            num_heads=num_heads,
            intermediate_dim=intermediate_dim,
            activation=keras.activations.gelu,
            layer_norm_epsilon=1e-5,
            dropout=dropout,
            kernel_initializer=whisper_kernel_initializer(),
            normalize_first=True,
            dtype=dtype,
        )
        self.encoder_conv_layer_1 = keras.layers.Conv1D(
            hidden_dim, 3, padding="same", dtype=dtype,
            name="encoder_token_embedding_conv_layer_1",
        )
        self.encoder_conv_layer_2 = keras.layers.Conv1D(
            hidden_dim, 3, strides=2, padding="valid", dtype=dtype,
            name="encoder_token_embedding_conv_layer_2",
        )
        self.encoder_padder = Padder(dtype=dtype, name="encoder_padder")
        self.encoder_position_embedding = PositionEmbedding(
            initializer=whisper_kernel_initializer(),
            sequence_length=max_encoder_sequence_length // 2,
            dtype=dtype,
            name="encoder_position_embedding",
            trainable=False,
        )
        self.encoder_embeddings_add = keras.layers.Add(dtype=dtype, name="encoder_embeddings_add")
        self.encoder_embeddings_dropout = keras.layers.Dropout(
            dropout, dtype=dtype, name="encoder_embeddings_dropout"
        )
        self.encoder_transformer_layers = [
            WhisperEncoder(name=f"transformer_encoder_layer_{i}", **common)
            for i in range(num_layers)
        ]
        self.encoder_layer_norm = keras.layers.LayerNormalization(
            epsilon=1e-5, dtype=dtype, name="encoder_layer_norm"
        )
        self.decoder_embeddings = TokenAndPositionEmbedding(
            vocabulary_size=vocabulary_size,
            sequence_length=max_decoder_sequence_length,
            embedding_dim=hidden_dim,
            embeddings_initializer=whisper_kernel_initializer(),
            dtype=dtype,
            name="decoder_token_and_position_embedding",
        )
        self.token_embedding = self.decoder_embeddings.token_embedding
        self.decoder_embeddings_dropout = keras.layers.Dropout(
            dropout, dtype=dtype, name="decoder_embeddings_dropout"
        )
        self.decoder_transformer_layers = [
            WhisperDecoder(name=f"transformer_decoder_layer_{i}", **common)
            for i in range(num_decoder_layers)
        ]
        self.decoder_layer_norm = keras.layers.LayerNormalization(
            epsilon=1e-5, dtype=dtype, name="decoder_layer_norm"
        )

        features = keras.Input(shape=(None, num_mels), dtype="float32", name="encoder_features")
        token_ids = keras.Input(shape=(None,), dtype="int32", name="decoder_token_ids")
        padding_mask = keras.Input(shape=(None,), dtype="int32", name="decoder_padding_mask")
        x = keras.activations.gelu(self.encoder_conv_layer_1(features), approximate=False)
        x = self.encoder_padder(x)
        x = keras.activations.gelu(self.encoder_conv_layer_2(x), approximate=False)
        x = self.encoder_embeddings_add((x, self.encoder_position_embedding(x)))
        x = self.encoder_embeddings_dropout(x)
        for layer in self.encoder_transformer_layers:
            x = layer(x)
        encoder_output = self.encoder_layer_norm(x)
        x = self.decoder_embeddings_dropout(self.decoder_embeddings(token_ids))
        for layer in self.decoder_transformer_layers:
            x = layer(
                decoder_sequence=x,
                encoder_sequence=encoder_output,
                decoder_padding_mask=padding_mask,
            )
        decoder_output = self.decoder_layer_norm(x)
        # keras-hub's Backbone, skipping WhisperBackbone's own constructor,
        # which would build a decoder as deep as the encoder.
        keras_hub.models.Backbone.__init__(
            self,
            inputs={
                "encoder_features": features,
                "decoder_token_ids": token_ids,
                "decoder_padding_mask": padding_mask,
            },
            outputs={
                "encoder_sequence_output": encoder_output,
                "decoder_sequence_output": decoder_output,
            },
            dtype=dtype,
            **kwargs,
        )
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_decoder_layers = num_decoder_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.num_mels = num_mels
        self.dropout = dropout
        self.max_encoder_sequence_length = max_encoder_sequence_length
        self.max_decoder_sequence_length = max_decoder_sequence_length

    def get_config(self):
        config = super().get_config()
        config["num_decoder_layers"] = self.num_decoder_layers
        return config
