"""The tiny byte-level BPE tokenizer of the causal-LM tests and docstring
examples: keras-hub's real `Llama3Tokenizer` class on 42 tokens."""

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
