"""keras-hub 0.32's byte-level BPE tokenizer, as `keras_hub_fixes` leaves
it: the TensorFlow path (tf.data, `fit`) and the eager path (`generate`)
give the same ids, special tokens whole."""

import json
import os

import keras_hub
import numpy as np
import pytest
import tensorflow as tf

import keras_kd.transfer  # noqa: F401  (applies keras_hub_fixes)
from keras_kd.utils.testing import SPECIAL_TOKENS, tiny_llama3_tokenizer

# Twelve special tokens: with more than ten, keras-hub's placeholders for
# them (`ĴB`, `ĴBA`, ...) contained one another.
SPECIAL = SPECIAL_TOKENS + [f"<|extra_{i}|>" for i in range(9)]


def tokenizer():
    return tiny_llama3_tokenizer(SPECIAL, ["Ġ Ġ", "Ġ t", "h e", "Ġt he", "Ġ a"])


def both_paths(tok, texts):
    graph = tf.data.Dataset.from_tensor_slices(texts).batch(len(texts)).map(tok)
    (traced,) = [batch.to_list() for batch in graph]
    return [np.asarray(tok(text)).tolist() for text in texts], traced


def test_every_special_token_stays_whole_on_both_paths():
    tok = tokenizer()
    texts = [f"the{token}a" for token in SPECIAL]
    eager, traced = both_paths(tok, texts)
    the = np.asarray(tok("the")).tolist()
    expected = [the + [SPECIAL.index(token), tok.token_to_id("a")] for token in SPECIAL]
    assert traced == expected
    assert eager == expected


def test_runs_of_spaces_split_alike_on_both_paths():
    # The eager path split them with Llama 3's pattern, the TensorFlow path
    # with GPT-2's ("ĠĠ" as a word, then "Ġthe"). Spaces that end a text
    # still differ: the TensorFlow path gives one token a space.
    tok = tokenizer()
    texts = ["a   the", "the    a", "a  the a"]
    eager, traced = both_paths(tok, texts)
    assert eager == traced
    assert [tok.id_to_token(i) for i in traced[0]] == ["a", "ĠĠ", "Ġthe"]


@pytest.mark.large
def test_smollm2_chat_text_tokenizes_as_its_tokenizer_json():
    # The point is the real tokenizer: 17 special tokens, in an order that
    # changes from process to process (keras-hub keeps them in a set).
    from tokenizers import Tokenizer

    from keras_kd.presets.registry import resolve_preset

    folder = resolve_preset("smollm2_135m")
    tok = keras_hub.tokenizers.Tokenizer.from_preset(folder)
    with open(os.path.join(folder, "tokenizer.json")) as f:
        specials = [t["content"] for t in json.load(f)["added_tokens"]]
    assert len(specials) == 17
    reference = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    texts = [
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
        "A fine film.<|endoftext|>A dull   one.<|endoftext|>",
        "".join(specials),
    ]
    eager, traced = both_paths(tok, texts)
    expected = [e.ids for e in reference.encode_batch(texts)]
    assert expected[2] == list(range(17))
    assert traced == expected
    assert eager == expected


@pytest.mark.parametrize("count, width", [(1, 1), (10, 1), (11, 2), (101, 3)])
def test_placeholders_have_one_length(count, width):
    from keras_hub.src.tokenizers import byte_pair_tokenizer

    alts = byte_pair_tokenizer.create_alts_for_unsplittable_tokens(["x"] * count)
    assert len(set(alts)) == count
    assert {len(alt) for alt in alts} == {1 + width}
