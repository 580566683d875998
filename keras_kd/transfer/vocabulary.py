"""Vocabulary trimming: `trim_vocabulary` keeps only the WordPiece tokens a
corpus uses (plus the special tokens and the single-character pieces) and
shrinks the backbone's embedding table to match; and the pieces it shares
with `lm_vocabulary.trim_lm_vocabulary` (`used_token_ids`,
`backbone_with_rows`)."""

from collections.abc import Mapping

import keras

from keras_kd.transfer.weight_copy import copy_except_blocks
from keras_kd.transfer.weight_copy import copy_weights
from keras_kd.transfer.weight_copy import encoder_blocks
from keras_kd.utils.validation import check_texts

# The WordPiece special tokens that a BERT-family vocabulary must keep for
# keras-hub, TFLite and MediaPipe tokenizers to work.
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def check_keep_tokens(keep_tokens):
    """Returns `keep_tokens` as a tuple, refusing one string: iterated, it
    would keep its characters, not the token.

    Args:
        keep_tokens: an iterable of token strings.

    Returns:
        The tokens, as a tuple.

    Example:

    >>> check_keep_tokens(["hello"])
    ('hello',)
    >>> check_keep_tokens("hello")
    Traceback (most recent call last):
    ...
    TypeError: keep_tokens='hello' is one string, which would be read as its characters ['h', 'e', 'l', 'l', 'o']. Pass a list, e.g. keep_tokens=['hello'].
    """
    if isinstance(keep_tokens, (str, bytes)):
        raise TypeError(
            f"keep_tokens={keep_tokens!r} is one string, which would be read "
            f"as its characters {list(keep_tokens)!r}. Pass a list, e.g. "
            f"keep_tokens={[keep_tokens]!r}."
        )
    return tuple(keep_tokens)


def is_character_piece(token):
    """Whether `token` is a single-character WordPiece (`a` or `##a`)."""
    return len(token) == 1 or (len(token) == 3 and token.startswith("##"))


def has_vocabulary(tokenizer):
    """Whether a keras-hub tokenizer holds its vocabulary yet: one loaded
    from a `.keras` file (a saved Distiller's) gets it from the file's
    assets after the models are built, and the Distiller was checked when
    it was first built.

    Example:

    >>> from keras_kd.utils.testing import tiny_bert_text_classifier
    >>> has_vocabulary(tiny_bert_text_classifier().preprocessor.tokenizer)
    True
    """
    return (
        getattr(tokenizer, "vocabulary", None) is not None
        or getattr(tokenizer, "proto", None) is not None
    )


def _tokens_by_id(tokenizer):
    """The tokenizer's tokens in id order. A byte-level BPE tokenizer's
    `get_vocabulary()` lists its `{token: id}` dict's keys in insertion
    order, which need not be id order."""
    vocabulary = tokenizer.vocabulary
    if isinstance(vocabulary, Mapping):
        return [token for token, _ in sorted(vocabulary.items(), key=lambda item: item[1])]
    return list(tokenizer.get_vocabulary())


def vocabulary_difference(first, second):
    """Where the tokenizers of two keras-hub tasks (their preprocessors')
    differ: `(token_id, first_token, second_token)` at the first id whose
    tokens differ (a token is None past the end of the shorter
    vocabulary), or None when the vocabularies are equal or either model
    has no tokenizer holding one.

    Example:

    >>> from keras_kd.utils.testing import tiny_bert_text_classifier
    >>> teacher = tiny_bert_text_classifier()
    >>> vocabulary_difference(teacher, teacher.trim_vocabulary(["a dull plot"], keep_characters=False))
    (6, 'fine', 'dull')
    """
    tokenizers = [
        getattr(getattr(m, "preprocessor", None), "tokenizer", None) for m in (first, second)
    ]
    if not all(t is not None and has_vocabulary(t) for t in tokenizers):
        return None
    vocabularies = [_tokens_by_id(t) for t in tokenizers]
    if vocabularies[0] == vocabularies[1]:
        return None
    length = max(len(v) for v in vocabularies)
    padded = [v + [None] * (length - len(v)) for v in vocabularies]
    index = next(i for i, (a, b) in enumerate(zip(*padded)) if a != b)
    return index, padded[0][index], padded[1][index]


def used_token_ids(tokenizer, corpus):
    """The set of token ids `tokenizer` produces on the strings `corpus`."""
    used = set()
    for start in range(0, len(corpus), 1024):
        # A list in gives ragged lists of ids out.
        for ids in tokenizer(corpus[start : start + 1024]):
            used.update(int(i) for i in ids)
    return used


def backbone_with_rows(backbone, kept):
    """A copy of `backbone` whose vocabulary is the token ids `kept` (in that
    order): the embedding rows, and an untied output layer's columns, of
    those ids; every other weight copied."""
    config = backbone.get_config()
    config["vocabulary_size"] = len(kept)
    config.pop("name", None)
    trimmed = type(backbone).from_config(config)
    copy_except_blocks(backbone, trimmed, skip=("token_embedding",))
    for source, target in zip(backbone.transformer_layers, trimmed.transformer_layers):
        copy_weights(source, target)
    source = backbone.get_layer("token_embedding")
    target = trimmed.get_layer("token_embedding")
    target.embeddings.assign(keras.ops.convert_to_numpy(source.embeddings)[kept])
    if not getattr(source, "tie_weights", True):
        reverse = keras.ops.convert_to_numpy(source.reverse_embeddings)
        target.reverse_embeddings.assign(reverse[:, kept])
    return trimmed


def trim_vocabulary(backbone, tokenizer, corpus, keep_tokens=(), keep_characters=True):
    """Keeps only the vocabulary that a corpus uses, shrinking the embeddings.

    The new vocabulary holds the special tokens, `keep_tokens`, every
    token the tokenizer produces on `corpus` and (with `keep_characters`)
    every single-character piece (`a`, `##a`), in their original order, so
    `[PAD]` stays id 0 and the list stays a valid WordPiece vocabulary.
    WordPiece picks the longest matching piece, and every piece it picked
    on the corpus is kept, so the corpus tokenizes to the same pieces and
    the model's outputs on it do not change. A word the corpus lacks
    splits into smaller kept pieces, down to characters, where without
    them WordPiece maps the whole word to `[UNK]`.

    Args:
        backbone: a keras-hub encoder backbone with a `token_embedding`.
        tokenizer: its keras-hub WordPiece tokenizer (e.g. `BertTokenizer`).
        corpus: an iterable of strings.
        keep_tokens: further tokens to keep: a list of token strings.
        keep_characters: keep the single-character pieces (about 2,000 of
            BERT's 30,522 tokens), so new words do not become `[UNK]`.

    Returns:
        `(backbone, tokenizer)`: new objects; the inputs are unchanged.

    Example:

    >>> import keras_hub
    >>> from keras_kd.transfer import trim_vocabulary
    >>> vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a",
    ...               "fine", "film", "dull", "plot", "f", "i", "l", "m", "##m"]
    >>> tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocabulary)
    >>> backbone = keras_hub.models.BertBackbone(
    ...     vocabulary_size=len(vocabulary), num_layers=1, num_heads=2,
    ...     hidden_dim=8, intermediate_dim=16, max_sequence_length=8)
    >>> backbone, tokenizer = trim_vocabulary(backbone, tokenizer, ["a fine film"])
    >>> tokenizer.get_vocabulary()  # 5 special, 3 used, 5 character pieces
    ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'a', 'fine', 'film', 'f', 'i', 'l', 'm', '##m']
    >>> tuple(backbone.get_layer("token_embedding").embeddings.shape)
    (13, 8)
    """
    keep_tokens = check_keep_tokens(keep_tokens)
    encoder_blocks(backbone)
    vocabulary = list(tokenizer.get_vocabulary())
    corpus = check_texts("corpus", corpus)
    missing = [t for t in SPECIAL_TOKENS if t not in vocabulary]
    if missing:
        raise ValueError(
            f"The tokenizer's vocabulary lacks the special tokens {missing}; "
            "trim_vocabulary supports BERT-style WordPiece vocabularies."
        )
    unknown = [t for t in keep_tokens if t not in vocabulary]
    if unknown:
        raise ValueError(f"keep_tokens not in the vocabulary: {unknown}")
    used = used_token_ids(tokenizer, corpus)
    token_to_id = {token: i for i, token in enumerate(vocabulary)}
    used.update(token_to_id[t] for t in SPECIAL_TOKENS + keep_tokens)
    if keep_characters:
        used.update(i for i, t in enumerate(vocabulary) if is_character_piece(t))
    kept = sorted(used)
    new_vocabulary = [vocabulary[i] for i in kept]

    trimmed = backbone_with_rows(backbone, kept)

    tokenizer_config = tokenizer.get_config()
    tokenizer_config["vocabulary"] = new_vocabulary
    tokenizer_config.pop("name", None)
    new_tokenizer = type(tokenizer).from_config(tokenizer_config)
    return trimmed, new_tokenizer
