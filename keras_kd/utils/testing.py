"""Tiny things of the tests and docstring examples: the byte-level BPE
tokenizer of the causal-LM tests (keras-hub's real `Llama3Tokenizer` class
on 42 tokens), and the seeded Dense classifier and token model of the
Distiller's tests."""

LETTERS = list("abcdefghijklmnopqrstuvwxyz.,")
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
MERGES = ["Ġ t", "h e", "Ġt he", "Ġ a", "i n", "e r", "o n", "Ġ s", "r e", "a n"]


def tiny_llama3_tokenizer():
    """A `keras_hub.models.Llama3Tokenizer` of 42 tokens (3 special tokens,
    28 characters, "Ġ" and the results of 10 merges), with start token
    `<|im_start|>` and end token `<|im_end|>`, as SmolLM2's.

    Example:

    >>> tiny_llama3_tokenizer().vocabulary_size()
    42
    """
    import keras_hub

    vocabulary = SPECIAL_TOKENS + LETTERS + ["Ġ"] + [m.replace(" ", "") for m in MERGES]
    return keras_hub.models.Llama3Tokenizer(
        vocabulary={token: i for i, token in enumerate(vocabulary)},
        merges=MERGES,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        misc_special_tokens={"<|endoftext|>"},
    )


def tiny_mlp(width, seed, num_classes=3, regularizer=None):
    """A seeded classifier of 8 features: `Dense(width, relu)` (with
    `regularizer` on its kernel), then `Dense(num_classes)` logits.

    Example:

    >>> tiny_mlp(4, seed=0).output_shape
    (None, 3)
    """
    import keras

    init = keras.initializers.GlorotUniform(seed=seed)
    return keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(
                width,
                activation="relu",
                kernel_initializer=init,
                kernel_regularizer=regularizer,
            ),
            keras.layers.Dense(num_classes, kernel_initializer=init),
        ]
    )


def tiny_token_model(width, seed, vocabulary=30, length=6):
    """A seeded token-level model: `length` token ids, an `Embedding` of
    `width`, then logits over the `vocabulary` at every position.

    Example:

    >>> tiny_token_model(4, seed=0).output_shape
    (None, 6, 30)
    """
    import keras

    init = keras.initializers.GlorotUniform(seed=seed)
    return keras.Sequential(
        [
            keras.Input((length,), dtype="int32"),
            keras.layers.Embedding(vocabulary, width, embeddings_initializer=init),
            keras.layers.Dense(vocabulary, kernel_initializer=init),
        ]
    )
