"""Tiny things of the tests and docstring examples: the causal LM of the
causal-LM tests (keras-hub's real `Llama3Tokenizer` class on 42 byte-level
BPE tokens, `tiny_llama3_tokenizer`, and a random `Llama3CausalLM` on it,
`tiny_llama3_causal_lm`, a random `QwenCausalLM` on the same tokens,
`tiny_qwen_causal_lm`, and `with_swapped_tokens`), the seeded Dense classifier and token model of
the Distiller's tests, a tiny random BERT classifier and its inputs
(feature distillation) and one that reads raw text (the pipeline steps),
and a tiny Whisper (keras-hub's real `WhisperTokenizer` on the same
byte-level BPE tokens, the preprocessor and the speech-to-text task)."""

LETTERS = list("abcdefghijklmnopqrstuvwxyz.,")
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
MERGES = ["Ġ t", "h e", "Ġt he", "Ġ a", "i n", "e r", "o n", "Ġ s", "r e", "a n"]


def tiny_llama3_tokenizer(special_tokens=SPECIAL_TOKENS, merges=MERGES):
    """A `keras_hub.models.Llama3Tokenizer` of 42 tokens (3 special tokens,
    28 characters, "Ġ" and the results of 10 merges), with start token
    `<|im_start|>` and end token `<|im_end|>`, as SmolLM2's.

    Args:
        special_tokens: the special tokens, ids from 0; `SPECIAL_TOKENS`'s
            three first.
        merges: the merge rules, whose results follow the characters.

    Example:

    >>> tiny_llama3_tokenizer().vocabulary_size()
    42
    """
    import keras_hub

    vocabulary = special_tokens + LETTERS + ["Ġ"] + [m.replace(" ", "") for m in merges]
    return keras_hub.models.Llama3Tokenizer(
        vocabulary={token: i for i, token in enumerate(vocabulary)},
        merges=merges,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        misc_special_tokens=set(special_tokens) - {"<|im_start|>", "<|im_end|>"},
    )


def _tiny_decoder_shape(vocabulary_size, num_layers, hidden_dim):
    """The tiny decoders' backbone settings: 4 query and 2 key-value
    heads, a feed-forward twice as wide, tied embeddings."""
    return dict(
        vocabulary_size=vocabulary_size,
        num_layers=num_layers,
        num_query_heads=4,
        num_key_value_heads=2,
        hidden_dim=hidden_dim,
        intermediate_dim=2 * hidden_dim,
        tie_word_embeddings=True,
    )


def tiny_llama3_causal_lm(num_layers=2, hidden_dim=16, seed=0, sequence_length=16):
    """A tiny random keras-hub `Llama3CausalLM` (tied embeddings, 4 query
    and 2 key-value heads) on `tiny_llama3_tokenizer`, whose preprocessor
    adds no start token, as SmolLM2's, and which generates greedily: the
    real classes at a fraction of the cost.

    Example:

    >>> model = tiny_llama3_causal_lm(num_layers=1)
    >>> model.backbone.num_layers, model.backbone.vocabulary_size
    (1, 42)
    """
    import keras
    import keras_hub

    tokenizer = tiny_llama3_tokenizer()
    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.Llama3Backbone(
        **_tiny_decoder_shape(tokenizer.vocabulary_size(), num_layers, hidden_dim),
        layer_norm_epsilon=1e-5,
    )
    preprocessor = keras_hub.models.Llama3CausalLMPreprocessor(
        tokenizer, sequence_length=sequence_length, add_start_token=False
    )
    model = keras_hub.models.Llama3CausalLM(backbone=backbone, preprocessor=preprocessor)
    model.compile(sampler="greedy")
    return model


def tiny_qwen_causal_lm(num_layers=3, hidden_dim=16, seed=0, sequence_length=16):
    """A tiny random keras-hub `QwenCausalLM` (Qwen 2: query, key and value
    biases, tied embeddings, 4 query and 2 key-value heads) on the tokens
    of `tiny_llama3_tokenizer` in keras-hub's `QwenTokenizer`, which has no
    start token; its end token `<|endoftext|>` comes last (at id 0, Qwen's
    padding id, keras-hub's `generate` would take the padding for ends).
    It generates greedily.

    Example:

    >>> model = tiny_qwen_causal_lm(num_layers=1)
    >>> model.backbone.num_layers, model.preprocessor.tokenizer.end_token_id
    (1, 41)
    """
    import keras
    import keras_hub

    vocabulary = tiny_llama3_tokenizer().vocabulary
    tokens = sorted(vocabulary, key=vocabulary.get)
    tokens = tokens[1:] + tokens[:1]
    tokenizer = keras_hub.models.QwenTokenizer(
        vocabulary={token: i for i, token in enumerate(tokens)}, merges=MERGES
    )
    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.QwenBackbone(
        **_tiny_decoder_shape(len(tokens), num_layers, hidden_dim)
    )
    preprocessor = keras_hub.models.QwenCausalLMPreprocessor(
        tokenizer, sequence_length=sequence_length
    )
    model = keras_hub.models.QwenCausalLM(backbone=backbone, preprocessor=preprocessor)
    model.compile(sampler="greedy")
    return model


def with_swapped_tokens(causal_lm, backbone, token_id=5):
    """A `Llama3CausalLM` of `backbone` whose tokenizer is `causal_lm`'s
    with the tokens of ids `token_id` and `token_id + 1` swapped: as many
    tokens, other words (what vocabulary checks must refuse).

    Returns:
        `(model, (a, b))`, `a` and `b` the tokens `causal_lm` gives those
        ids.

    Example:

    >>> teacher = tiny_llama3_causal_lm(num_layers=1)
    >>> model, (a, b) = with_swapped_tokens(teacher, teacher.backbone)
    >>> model.preprocessor.tokenizer.id_to_token(5) == b
    True
    """
    import keras_hub

    tokenizer = causal_lm.preprocessor.tokenizer
    vocabulary = dict(tokenizer.vocabulary)
    a, b = tokenizer.id_to_token(token_id), tokenizer.id_to_token(token_id + 1)
    vocabulary[a], vocabulary[b] = token_id + 1, token_id
    swapped = keras_hub.models.Llama3Tokenizer(
        vocabulary=vocabulary, merges=tokenizer.merges, bos_token="<|im_start|>",
        eos_token="<|im_end|>", misc_special_tokens={"<|endoftext|>"},
    )
    preprocessor = causal_lm.preprocessor
    preprocessor = type(preprocessor).from_config(
        {**preprocessor.get_config(), "tokenizer": swapped}
    )
    model = keras_hub.models.Llama3CausalLM(backbone=backbone, preprocessor=preprocessor)
    return model, (a, b)


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


WHISPER_SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|startoftranscript|>",
    "<|translate|>",
    "<|transcribe|>",
    "<|notimestamps|>",
]


def tiny_whisper_tokenizer():
    """A `keras_hub.models.WhisperTokenizer` on the tiny byte-level BPE
    vocabulary (39 tokens), then Whisper's special tokens in Whisper's
    order: `<|endoftext|>` (39) to `<|notimestamps|>` (43).

    Example:

    >>> tokenizer = tiny_whisper_tokenizer()
    >>> tokenizer.eos_token_id, tokenizer.no_timestamps_token_id
    (39, 43)
    """
    import keras_hub

    vocabulary = LETTERS + ["Ġ"] + [m.replace(" ", "") for m in MERGES]
    return keras_hub.models.WhisperTokenizer(
        vocabulary={token: i for i, token in enumerate(vocabulary)},
        merges=MERGES,
        special_tokens={
            token: len(vocabulary) + i for i, token in enumerate(WHISPER_SPECIAL_TOKENS)
        },
    )


def tiny_whisper_preprocessor(decoder_sequence_length=8):
    """A `keras_kd.speech.WhisperAudioToTextPreprocessor` with
    `tiny_whisper_tokenizer` and keras-hub's 80-bin audio converter.

    Example:

    >>> tiny_whisper_preprocessor().prompt_ids
    [40, 43]
    """
    import keras_hub

    from keras_kd.speech import WhisperAudioToTextPreprocessor

    return WhisperAudioToTextPreprocessor(
        keras_hub.layers.WhisperAudioConverter(),
        tiny_whisper_tokenizer(),
        decoder_sequence_length=decoder_sequence_length,
    )


def tiny_whisper_audio_to_text(num_layers=2, hidden_dim=16, seed=0, decoder_sequence_length=8):
    """A tiny random `keras_kd.speech.WhisperAudioToText` (46 token ids: the
    tokenizer's 44 and two timestamp ids), greedy.

    Example:

    >>> tiny_whisper_audio_to_text(num_layers=1).backbone.vocabulary_size
    46
    """
    import keras
    import keras_hub

    from keras_kd.speech import WhisperAudioToText

    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.WhisperBackbone(
        vocabulary_size=46,
        num_layers=num_layers,
        num_heads=2,
        hidden_dim=hidden_dim,
        intermediate_dim=2 * hidden_dim,
        max_decoder_sequence_length=32,
    )
    model = WhisperAudioToText(
        backbone, tiny_whisper_preprocessor(decoder_sequence_length)
    )
    model.compile(sampler="greedy")
    return model


def tiny_bert_classifier(num_layers=2, hidden_dim=8, num_heads=2, seed=0, num_classes=2):
    """A seeded `FinetuneModel` (mean pooling, a classification head, no
    preprocessor) on a random keras-hub `BertBackbone` of 30 tokens and 8
    positions, `intermediate_dim = 2 * hidden_dim`: the real classes of the
    feature-distillation tests at a fraction of the cost.

    Example:

    >>> model = tiny_bert_classifier(num_layers=1)
    >>> model.backbone.num_layers, tuple(model.output.shape)
    (1, (None, 2))
    """
    import keras
    import keras_hub

    from keras_kd.transfer import build_finetune_model

    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=30,
        num_layers=num_layers,
        num_heads=num_heads,
        hidden_dim=hidden_dim,
        intermediate_dim=2 * hidden_dim,
        max_sequence_length=8,
        dropout=0.0,
    )
    return build_finetune_model(
        backbone, num_classes=num_classes, dropout=0.0, compile=False
    )


def tiny_bert_text_classifier(num_classes=2, seed=0):
    """A seeded 1-layer `FinetuneModel` that reads raw text: keras-hub's
    `BertTokenizer` on the 10 tokens of "a fine film", "a dull plot",
    sequence length 8; for the pipeline steps that label texts.

    Example:

    >>> model = tiny_bert_text_classifier()
    >>> model.predict(["a fine film", "a dull plot"], verbose=0).shape
    (2, 2)
    """
    import keras
    import keras_hub

    from keras_kd.transfer import build_finetune_model

    keras.utils.set_random_seed(seed)
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=[
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "fine", "film", "dull", "plot"])
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=10, num_layers=1, num_heads=2, hidden_dim=8,
        intermediate_dim=16, max_sequence_length=8)
    return build_finetune_model(
        backbone, num_classes=num_classes, tokenizer=tokenizer, sequence_length=8
    )


def tiny_bert_inputs(batch_size=4, length=8, seed=0, padded=2):
    """Random BERT inputs for `tiny_bert_classifier`, the last `padded`
    tokens of every other example padding.

    Example:

    >>> x = tiny_bert_inputs(batch_size=2, length=4, padded=1)
    >>> x["padding_mask"].tolist()
    [[1, 1, 1, 0], [1, 1, 1, 1]]
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    mask = np.ones((batch_size, length), "int32")
    mask[::2, length - padded :] = 0
    return {
        "token_ids": (rng.integers(1, 30, (batch_size, length)) * mask).astype("int32"),
        "segment_ids": np.zeros((batch_size, length), "int32"),
        "padding_mask": mask,
    }


def free_ports(count):
    """`count` TCP ports free on 127.0.0.1 now, for the workers of a
    multi-worker test (`TF_CONFIG`).

    Example:

    >>> ports = free_ports(2)
    >>> len(set(ports)), all(1024 <= port < 65536 for port in ports)
    (2, True)
    """
    import socket

    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports
