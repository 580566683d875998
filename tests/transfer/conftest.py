"""Shared fixtures of the keras_kd.transfer tests: the MiniLM classifier,
movie-review texts, tiny BERT backbones and token batches."""

import types

import keras
import keras_hub
import numpy as np
import pytest


@pytest.fixture(scope="session")
def minilm():
    """The MiniLM classifier, built once through the public entry point."""
    from keras_kd import transfer

    keras.utils.set_random_seed(0)
    return transfer.build_finetune_model("minilm_l6", num_classes=2, sequence_length=32)


@pytest.fixture(scope="session")
def reviews(movie_reviews):
    return movie_reviews.train.texts[:64], movie_reviews.train.labels[:64]


@pytest.fixture(scope="session")
def minilm_params():
    """Parameter counts of all-MiniLM-L6-v2, from its config (vocab 30,522,
    hidden 384, intermediate 1,536, 512 positions, 2 segments)."""
    c = types.SimpleNamespace()
    c.TOKEN_EMB = 30522 * 384
    c.EMBEDDINGS = c.TOKEN_EMB + 512 * 384 + 2 * 384 + 2 * 384
    c.BLOCK = 4 * (384 * 384 + 384) + 2 * 384 * 1536 + 1536 + 384 + 4 * 384
    c.POOLER = 384 * 384 + 384
    c.HEAD = 384 * 2 + 2
    # Keras's LoRA on the query and value EinsumDense layers (kernel
    # (384, 12, 32)) trains lora_kernel_a (384, 12, 4), lora_kernel_b (4, 32)
    # and the bias (12, 32).
    c.LORA_4 = 6 * 2 * (384 * 12 * 4 + 4 * 32 + 12 * 32)
    # Everything but the (unused, frozen) pooler trains with freeze="none".
    c.NONE = c.EMBEDDINGS + 6 * c.BLOCK + c.HEAD
    return c


@pytest.fixture
def tiny_backbone():
    """`tiny_backbone(num_layers=2, vocabulary_size=50)`: a random BERT,
    hidden 8, 2 heads, intermediate 16, 16 positions."""

    def make(num_layers=2, vocabulary_size=50):
        return keras_hub.models.BertBackbone(
            vocabulary_size=vocabulary_size,
            num_layers=num_layers,
            num_heads=2,
            hidden_dim=8,
            intermediate_dim=16,
            max_sequence_length=16,
        )

    return make


@pytest.fixture
def token_batch():
    """`token_batch(batch=4, length=6, ...)`: BERT token-id inputs whose
    last two positions are padding."""

    def make(batch=4, length=6, vocabulary_size=50, seed=0):
        rng = np.random.default_rng(seed)
        mask = np.ones((batch, length), "int32")
        mask[:, length - 2 :] = 0
        return {
            "token_ids": rng.integers(1, vocabulary_size, (batch, length)).astype("int32") * mask,
            "padding_mask": mask,
            "segment_ids": np.zeros((batch, length), "int32"),
        }

    return make


@pytest.fixture
def n_trainable():
    """`n_trainable(model)`: the number of trainable parameters."""
    return lambda model: sum(int(np.prod(w.shape)) for w in model.trainable_weights)
