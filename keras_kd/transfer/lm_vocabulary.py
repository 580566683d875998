"""Vocabulary trimming for causal LMs: `trim_lm_vocabulary` keeps the
byte-level BPE tokens a corpus uses (plus every byte token, the special
tokens and the merges that build the kept tokens) and shrinks the embedding
and its tied output layer to match.

A small student's output layer is where its time goes: SmolLM2's 49,152 x
576 table costs 28M multiply-adds per generated token, about eight of its
decoder layers.
"""

import numpy as np
from keras_hub.src.tokenizers.byte_pair_tokenizer import bytes_to_unicode

from keras_kd.transfer.causal_lm import is_causal_lm, set_sampler
from keras_kd.transfer.vocabulary import backbone_with_rows
from keras_kd.transfer.vocabulary import check_keep_tokens
from keras_kd.transfer.vocabulary import used_token_ids
from keras_kd.utils.validation import check_texts


def _merge_closure(kept, merges, vocabulary):
    """Adds to `kept` (token strings) the parts of every merge whose result
    is kept, recursively: the intermediate tokens BPE builds on the way."""
    producers = {}
    for merge in merges:
        left, right = merge.split(" ")
        producers.setdefault(left + right, []).append((left, right))
    stack = list(kept)
    while stack:
        token = stack.pop()
        for parts in producers.get(token, ()):
            for part in parts:
                if part not in kept and part in vocabulary:
                    kept.add(part)
                    stack.append(part)
    return kept


def _with_a_merge(kept, merges, vocabulary):
    """`kept`, with the result of the lowest-ranked merge of two kept
    tokens when no merge builds a kept token: keras-hub's
    `BytePairTokenizer` cannot be built without a merge (a TensorFlow
    HashTable error). Then BPE merged nothing in the corpus (each merge it
    applies leaves its result and parts in the closure), so no pair of the
    corpus's pieces is a merge, and the added one never applies to it."""
    pairs = [merge.split(" ") for merge in merges]
    if any(left in kept and right in kept and left + right in kept for left, right in pairs):
        return kept
    for left, right in pairs:
        if left in kept and right in kept and left + right in vocabulary:
            return kept | {left + right}
    raise ValueError(
        "trim_lm_vocabulary keeps no merge, and keras-hub's byte-pair "
        "tokenizer needs one: none of the tokenizer's merges joins two kept "
        "tokens into a token of the vocabulary. Pass keep_tokens=[...] with "
        f"the parts and result of a merge, e.g. {merges[0]!r}."
    )


def _rebuilt_tokenizer(tokenizer, vocabulary, merges):
    """`tokenizer`'s class and settings with a new vocabulary and merges."""
    new = type(tokenizer).from_config(tokenizer.get_config())
    new.set_vocabulary_and_merges(vocabulary, merges)
    return new


def trim_lm_vocabulary(causal_lm, corpus, keep_tokens=()):
    """Keeps only the vocabulary a corpus uses, shrinking a causal LM.

    The new vocabulary holds, in their original order: the tokenizer's
    special tokens, `keep_tokens`, every byte-level base token (so any text
    still tokenizes), every token the tokenizer produces on `corpus`, and
    the intermediate tokens of the BPE merges that build them. A merge is
    kept when its result is. BPE applies, at each step, the
    lowest-ranked merge among those that fit; every merge it applied on the
    corpus is kept and the others never applied there, so the corpus
    tokenizes to the same tokens as before (with new ids), and the model's
    logits over the kept tokens are unchanged. Text outside the corpus
    still tokenizes, into smaller pieces down to bytes. A corpus that BPE
    merges nowhere keeps the lowest-ranked merge of two byte tokens and its
    result (keras-hub's tokenizer needs a merge); it never applies there.

    Args:
        causal_lm: a keras-hub `CausalLM` with a byte-level BPE tokenizer
            (Llama 3, SmolLM2, GPT-2, Qwen, ...) in its preprocessor.
        corpus: an iterable of strings (the domain's text).
        keep_tokens: further tokens to keep: a list of token strings.

    Returns:
        A new `CausalLM` of the same class, with a new backbone,
        preprocessor and tokenizer; `causal_lm` is unchanged. The kept
        token ids (old numbering) are in its attribute `kept_token_ids`.

    Example:

    >>> import keras_hub
    >>> from keras_kd.transfer import trim_lm_vocabulary
    >>> merges = ["Ġ t", "h e", "Ġt he", "i n"]
    >>> vocabulary = ["<|im_end|>", *"aehint", "Ġ", "Ġt", "he", "Ġthe", "in"]
    >>> tokenizer = keras_hub.models.Llama3Tokenizer(
    ...     vocabulary={t: i for i, t in enumerate(vocabulary)}, merges=merges,
    ...     bos_token="<|im_end|>", eos_token="<|im_end|>",
    ...     misc_special_tokens=set())
    >>> backbone = keras_hub.models.Llama3Backbone(
    ...     vocabulary_size=len(vocabulary), num_layers=1, num_query_heads=2,
    ...     num_key_value_heads=1, hidden_dim=8, intermediate_dim=16,
    ...     tie_word_embeddings=True)
    >>> model = keras_hub.models.Llama3CausalLM(
    ...     backbone, keras_hub.models.Llama3CausalLMPreprocessor(tokenizer))
    >>> small = trim_lm_vocabulary(model, ["the hat"])
    >>> list(small.preprocessor.tokenizer.get_vocabulary())
    ['<|im_end|>', 'a', 'e', 'h', 'i', 'n', 't', 'Ġ', 'he']
    >>> small.backbone.vocabulary_size
    9

    "Ġt", "Ġthe" and "in" are gone: "the hat" has no " the" and no "in".
    """
    keep_tokens = check_keep_tokens(keep_tokens)
    if not is_causal_lm(causal_lm) or causal_lm.preprocessor is None:
        raise TypeError(
            "trim_lm_vocabulary needs a keras-hub CausalLM with a "
            f"preprocessor. Received: {type(causal_lm).__name__}. For "
            "BERT-style classifiers use `transfer.trim_vocabulary`."
        )
    tokenizer = causal_lm.preprocessor.tokenizer
    merges = list(getattr(tokenizer, "merges", None) or [])
    if not merges:
        raise ValueError(
            f"trim_lm_vocabulary needs a byte-level BPE tokenizer with merges; "
            f"{type(tokenizer).__name__} has none."
        )
    corpus = check_texts("corpus", corpus)
    vocabulary = list(tokenizer.get_vocabulary())
    token_to_id = {token: i for i, token in enumerate(vocabulary)}
    unknown = [t for t in keep_tokens if t not in token_to_id]
    if unknown:
        raise ValueError(
            f"keep_tokens not in the vocabulary: {unknown}. Pass token "
            "strings as the tokenizer spells them (e.g. 'Ġthe')."
        )

    kept = set(tokenizer.special_tokens) | set(keep_tokens)
    kept |= set(bytes_to_unicode()[1]) & set(token_to_id)
    kept.update(vocabulary[i] for i in used_token_ids(tokenizer, corpus))
    kept = _with_a_merge(_merge_closure(kept, merges, token_to_id), merges, token_to_id)
    kept_ids = sorted(token_to_id[t] for t in kept)
    new_vocabulary = {vocabulary[i]: new for new, i in enumerate(kept_ids)}
    new_merges = [
        m for m in merges if m.replace(" ", "", 1) in new_vocabulary
        and all(part in new_vocabulary for part in m.split(" "))
    ]

    trimmed = backbone_with_rows(causal_lm.backbone, kept_ids)

    preprocessor = causal_lm.preprocessor
    new_tokenizer = _rebuilt_tokenizer(tokenizer, new_vocabulary, new_merges)
    new_preprocessor = type(preprocessor).from_config(
        {**preprocessor.get_config(), "tokenizer": new_tokenizer}
    )
    model = type(causal_lm)(backbone=trimmed, preprocessor=new_preprocessor)
    set_sampler(model, getattr(causal_lm, "sampler", None) or "greedy")
    model.kept_token_ids = np.array(kept_ids, dtype="int32")
    return model
