"""`transfer.trim_lm_vocabulary` on a tiny keras-hub Llama3CausalLM."""

import numpy as np
import pytest

from keras_kd import transfer

CORPUS = ["the rain in spain.", "a sane train ran on.", "the end."]


def _ids(model, texts):
    return [list(map(int, ids)) for ids in model.preprocessor.tokenizer(texts)]


def test_corpus_tokenizes_the_same_and_logits_are_kept(tiny_causal_lm):
    model = tiny_causal_lm(num_layers=2)
    small = transfer.trim_lm_vocabulary(model, CORPUS)
    kept = small.kept_token_ids
    vocabulary = list(model.preprocessor.tokenizer.get_vocabulary())
    assert small.backbone.vocabulary_size == len(kept) < len(vocabulary)
    # Same tokens, new ids: old id = kept[new id].
    for old, new in zip(_ids(model, CORPUS), _ids(small, CORPUS)):
        assert [int(kept[i]) for i in new] == old
    # Special tokens and every byte token of the vocabulary survive.
    small_vocabulary = list(small.preprocessor.tokenizer.get_vocabulary())
    for token in ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "z", "Ġ"]:
        assert token in small_vocabulary
    # The tied embedding rows are the kept rows: logits over the kept tokens
    # are the original logits at those ids.
    x = model.preprocessor.generate_preprocess(CORPUS)
    y = small.preprocessor.generate_preprocess(CORPUS)
    np.testing.assert_array_equal(np.asarray(x["padding_mask"]), np.asarray(y["padding_mask"]))
    full = np.asarray(model(x))
    trimmed = np.asarray(small(y))
    np.testing.assert_allclose(trimmed, full[..., kept], rtol=1e-5, atol=1e-5)


def test_text_outside_the_corpus_still_tokenizes(tiny_causal_lm):
    model = tiny_causal_lm(num_layers=1)
    small = transfer.trim_lm_vocabulary(model, ["the end."])
    text = "zebras train in the rain."
    ids = small.preprocessor.tokenizer(text)
    assert small.preprocessor.tokenizer.detokenize(ids) == text
    # Merges of dropped tokens are gone: more, smaller pieces than before.
    assert len(ids) > len(model.preprocessor.tokenizer(text))
    assert model.backbone.vocabulary_size == 42  # the input model is unchanged


def test_bad_arguments(tiny_causal_lm):
    model = tiny_causal_lm(num_layers=1)
    with pytest.raises(ValueError, match=r"not one string.*corpus=\['the end.'\]"):
        transfer.trim_lm_vocabulary(model, "the end.")
    with pytest.raises(ValueError, match="item 1 is int"):
        transfer.trim_lm_vocabulary(model, ["the end.", 7])
    with pytest.raises(ValueError, match="empty"):
        transfer.trim_lm_vocabulary(model, [])
    with pytest.raises(ValueError, match=r"keep_tokens not in the vocabulary: \['Ġzebra'\]"):
        transfer.trim_lm_vocabulary(model, CORPUS, keep_tokens=["Ġzebra"])
    # Its characters are all tokens: iterated, the string would pass unnoticed.
    with pytest.raises(TypeError, match=r"keep_tokens='the' is one string.*keep_tokens=\['the'\]"):
        transfer.trim_lm_vocabulary(model, CORPUS, keep_tokens="the")
    with pytest.raises(TypeError, match="needs a keras-hub CausalLM"):
        transfer.trim_lm_vocabulary(model.backbone, CORPUS)


def test_a_corpus_of_no_merges_keeps_the_first_merge(tiny_causal_lm):
    # keras-hub's BytePairTokenizer cannot be built without a merge: a
    # corpus whose words BPE never merges gave a TensorFlow HashTable error.
    model = tiny_causal_lm(num_layers=1)
    corpus = ["xyz.", "zyx, yy"]
    small = transfer.trim_lm_vocabulary(model, corpus)
    tokenizer = small.preprocessor.tokenizer
    # The lowest-ranked merge of two kept (byte) tokens, and its result.
    assert list(tokenizer.merges) == ["Ġ t"]
    assert "Ġt" in tokenizer.get_vocabulary() and "he" not in tokenizer.get_vocabulary()
    kept = small.kept_token_ids
    for old, new in zip(_ids(model, corpus), _ids(small, corpus)):
        assert [int(kept[i]) for i in new] == old
    x = model.preprocessor.generate_preprocess(corpus)
    y = small.preprocessor.generate_preprocess(corpus)
    np.testing.assert_allclose(np.asarray(small(y)), np.asarray(model(x))[..., kept], rtol=1e-5, atol=1e-5)
    assert tokenizer.detokenize(tokenizer("the tea")) == "the tea"
