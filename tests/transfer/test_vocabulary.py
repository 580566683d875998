"""trim_vocabulary: the corpus's pieces, special tokens and characters are
kept, predictions on the corpus do not change."""

import numpy as np
import pytest

from keras_kd import transfer


def test_trimmed_vocabulary_keeps_predictions(minilm, reviews):
    texts, _ = reviews
    before = minilm.predict(texts, verbose=0)
    trimmed = minilm.trim_vocabulary(texts)
    vocabulary = trimmed.preprocessor.tokenizer.get_vocabulary()
    assert vocabulary[0] == "[PAD]"
    assert {"[UNK]", "[CLS]", "[SEP]", "[MASK]"} <= set(vocabulary)
    # MiniLM's vocabulary has 997 single characters and 997 "##" ones.
    characters = [t for t in vocabulary if len(t) == 1 or (len(t) == 3 and t[:2] == "##")]
    assert len(characters) == 1994
    assert len(vocabulary) - len(characters) < 2000
    embedding = trimmed.backbone.get_layer("token_embedding").embeddings
    assert embedding.shape == (len(vocabulary), 384)
    np.testing.assert_allclose(trimmed.predict(texts, verbose=0), before, atol=1e-5)
    # Same pieces: each trimmed id maps back to the full vocabulary's token.
    full = minilm.preprocessor.tokenizer
    old_ids = full(texts[:3])
    new_ids = trimmed.preprocessor.tokenizer(texts[:3])
    for old, new in zip(old_ids, new_ids):
        assert [vocabulary[i] for i in new] == [full.id_to_token(int(i)) for i in old]


def test_trimmed_vocabulary_splits_new_words_instead_of_unk(minilm, reviews):
    texts, _ = reviews
    word = "zyxwv"
    assert not any(word in t.lower() for t in texts)

    def pieces(model):
        tokenizer = model.preprocessor.tokenizer
        return [tokenizer.id_to_token(int(i)) for i in tokenizer([word])[0]]

    assert "[UNK]" not in pieces(minilm)
    assert pieces(minilm.trim_vocabulary(texts, keep_characters=False)) == ["[UNK]"]
    split = pieces(minilm.trim_vocabulary(texts))
    assert "[UNK]" not in split
    assert "".join(p.removeprefix("##") for p in split) == word


def test_trim_vocabulary_keep_tokens_and_bad_corpora(tiny_backbone):
    import keras_hub

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "fine", "film", "plot", "dull"]
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocabulary)
    backbone = tiny_backbone(num_layers=1, vocabulary_size=len(vocabulary))
    trimmed, new_tokenizer = transfer.trim_vocabulary(backbone, tokenizer, ["a film"], keep_tokens=["dull"])
    assert new_tokenizer.get_vocabulary() == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "film", "dull"]
    table = backbone.get_layer("token_embedding").embeddings.numpy()
    np.testing.assert_array_equal(trimmed.get_layer("token_embedding").embeddings.numpy(), table[[0, 1, 2, 3, 4, 5, 7, 9]])
    with pytest.raises(ValueError, match=r"not one string.*corpus=\['a film'"):
        transfer.trim_vocabulary(backbone, tokenizer, "a film")
    with pytest.raises(ValueError, match=r"`corpus` is empty"):
        transfer.trim_vocabulary(backbone, tokenizer, [])
    with pytest.raises(ValueError, match=r"keep_tokens not in the vocabulary: \['great'\]"):
        transfer.trim_vocabulary(backbone, tokenizer, ["a film"], keep_tokens=["great"])
    # One string is one token, not its characters.
    with pytest.raises(TypeError, match=r"keep_tokens='dull' is one string.*Pass a list, e.g. keep_tokens=\['dull'\]"):
        transfer.trim_vocabulary(backbone, tokenizer, ["a film"], keep_tokens="dull")
