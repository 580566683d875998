"""Packed causal-LM rows: every token of every text a label once, in the
preprocessor's own tokenization and layout."""

import numpy as np
import pytest

from keras_kd import datasets
from keras_kd.utils.testing import tiny_llama3_causal_lm

TEXTS = [
    "the cat sat on the mat.",
    "a dog ran in the rain.",
    "the sun is hot.",
    "an ant ate a seed.",
]


@pytest.fixture(scope="module")
def preprocessor():
    return tiny_llama3_causal_lm(1, 8, 0, sequence_length=16).preprocessor


def _preprocessor_tokens(preprocessor, text):
    """One text's tokens as the preprocessor itself lays them out, with room
    to spare (its inputs hold them all, the end token included)."""
    x, _, _ = preprocessor([text], sequence_length=64)
    n = int(np.sum(x["padding_mask"][0]))
    return np.asarray(x["token_ids"][0][:n]).tolist()


def _rows(dataset):
    xs, ys, ws = zip(*dataset)
    return (
        np.stack([x["token_ids"] for x in xs]),
        np.stack([x["padding_mask"] for x in xs]),
        np.stack(ys),
        np.stack(ws),
    )


@pytest.mark.parametrize("sequence_length", [5, 7, 16])
def test_rows_hold_the_preprocessor_tokens_of_every_text_once(preprocessor, sequence_length):
    stream = [t for text in TEXTS for t in _preprocessor_tokens(preprocessor, text)]
    token_ids, mask, labels, weight = _rows(
        datasets.pack_texts(TEXTS, preprocessor, sequence_length=sequence_length)
    )
    assert token_ids.shape == (-(-(len(stream) - 1) // sequence_length), sequence_length)
    assert token_ids[mask].tolist() == stream
    assert labels[weight].tolist() == stream[1:]
    # Labels are the next position's token, across row boundaries too.
    np.testing.assert_array_equal(labels.ravel()[:-1][weight.ravel()[:-1]],
                                  token_ids.ravel()[1:][weight.ravel()[:-1]])
    # Only the last row is padded.
    assert mask[:-1].all() and weight[:-1].all()
    assert token_ids.dtype == np.int32 and labels.dtype == np.int32
    assert mask.dtype == bool and weight.dtype == bool


def test_default_length_and_start_tokens_follow_the_preprocessor(preprocessor):
    import keras_hub

    with_start = keras_hub.models.Llama3CausalLMPreprocessor(
        preprocessor.tokenizer, sequence_length=6, add_start_token=True
    )
    token_ids, mask, _, _ = _rows(datasets.pack_texts(TEXTS[:2], with_start))
    assert token_ids.shape[1] == 6
    stream = token_ids[mask].tolist()
    start, end = with_start.tokenizer.start_token_id, with_start.tokenizer.end_token_id
    assert stream.count(start) == 2 and stream[0] == start
    assert stream[stream.index(end) + 1] == start


def test_a_preprocessor_without_a_start_token_packs_the_preprocessors_tokens():
    # Qwen's preprocessor says add_start_token=True and adds none: packing
    # put its start token, None, into the stream and failed.
    from keras_kd.utils.testing import tiny_qwen_causal_lm

    qwen = tiny_qwen_causal_lm(1, 8, 0, sequence_length=8).preprocessor
    assert qwen.add_start_token and qwen.tokenizer.start_token_id is None
    stream = [t for text in TEXTS for t in _preprocessor_tokens(qwen, text)]
    token_ids, mask, _, _ = _rows(datasets.pack_texts(TEXTS, qwen))
    assert token_ids[mask].tolist() == stream


def test_a_teacher_cache_stores_packed_rows_as_given(preprocessor, tmp_path):
    import keras_kd

    teacher = tiny_llama3_causal_lm(1, 8, 0, sequence_length=8)
    packed = datasets.pack_texts(TEXTS, teacher.preprocessor)
    cache = keras_kd.TeacherCache.build(teacher, packed, tmp_path / "cache", top_k=4, verbose=0)
    token_ids, _, labels, _ = _rows(packed)
    assert len(cache) == len(token_ids)
    x, y, _ = next(iter(cache.dataset(len(token_ids))))
    np.testing.assert_array_equal(x["token_ids"], token_ids)
    np.testing.assert_array_equal(y["labels"], labels)
    assert y["teacher_logits"]["indices"].shape[:2] == token_ids.shape


@pytest.mark.parametrize(
    "texts, kwargs, match",
    [
        ("one text", {}, "not one string.*Wrap it in a list"),
        ([], {}, "empty"),
        (["fine", "  "], {}, "text 1 has an empty text"),
        (["fine", 3], {}, "item 1 is int"),
        (TEXTS, {"sequence_length": 0}, "sequence_length"),
    ],
)
def test_bad_input_is_refused(preprocessor, texts, kwargs, match):
    with pytest.raises(ValueError, match=match):
        datasets.pack_texts(texts, preprocessor, **kwargs)
