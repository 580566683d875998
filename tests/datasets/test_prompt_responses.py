"""Prompt-response data for causal LMs: the rows and weights against a
reference built token by token, the `tf.data` path against the eager one,
and fine-tuning, scoring and the teacher cache on the responses alone."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_kd import TeacherCache, transfer
from keras_kd.datasets.prompt_responses import preprocess_prompt_responses
from keras_kd.distillation import evaluate_causal_lm

PROMPTS = ["the cat sat", "a dog", "the sun is hot and the sea is"]
RESPONSES = [" on the mat.", " ran in the rain.", " blue."]
DATA = {"prompts": PROMPTS, "responses": RESPONSES}


def _reference(preprocessor, prompts, responses, length):
    """Rows of `length + 1` tokens built by hand: start token, prompt tokens,
    response tokens, end token, cut (the end token kept) and padded; a
    label is weighted when its token comes after the prompt's."""
    tokenizer = preprocessor.tokenizer
    start = [tokenizer.start_token_id] if preprocessor.add_start_token else []
    end = [tokenizer.end_token_id] if preprocessor.add_end_token else []
    rows, weights = [], []
    for prompt, response in zip(prompts, responses):
        prompt_ids = list(tokenizer([prompt])[0])
        content = (prompt_ids + list(tokenizer([response])[0]))[: length + 1 - len(start) - len(end)]
        ids = start + content + end
        first_response = len(start) + len(prompt_ids)
        weight = [float(j >= first_response) for j in range(1, len(ids))]
        rows.append(ids + [tokenizer.pad_token_id] * (length + 1 - len(ids)))
        weights.append(weight + [0.0] * (length - len(weight)))
    rows = np.array(rows)
    return rows[:, :-1], rows[:, 1:], np.array(weights, "float32")


@pytest.mark.parametrize("length", [32, 12], ids=["whole", "cut"])
@pytest.mark.parametrize("start_token", [False, True], ids=["no_start", "start"])
def test_rows_and_weights_equal_a_reference(tiny_causal_lm, length, start_token):
    preprocessor = tiny_causal_lm().preprocessor
    preprocessor.add_start_token = start_token
    x, y, weight = preprocess_prompt_responses(preprocessor, DATA, sequence_length=length)
    inputs, labels, weights = _reference(preprocessor, PROMPTS, RESPONSES, length)
    np.testing.assert_array_equal(np.asarray(x["token_ids"]), inputs)
    np.testing.assert_array_equal(np.asarray(y), labels)
    np.testing.assert_array_equal(np.asarray(weight), weights)
    np.testing.assert_array_equal(np.asarray(x["padding_mask"]), inputs != 0)
    if length == 12:
        # The first response is cut; the long prompt fills its row, which
        # carries no weight.
        assert weights[2].sum() == 0 and weights[0].sum() > 0
    else:
        # Whole rows: the weights count each response's tokens and its end.
        counts = [len(preprocessor.tokenizer([r])[0]) + 1 for r in RESPONSES]
        assert weights.sum(axis=1).tolist() == counts


def test_the_tf_data_path_equals_the_eager_one(tiny_causal_lm):
    # A dataset of prompt-response dicts, as `Distiller.fit` and
    # `evaluate` map it (`preprocessed`), batched there.
    from keras_kd.distillation.inputs import preprocessed

    preprocessor = tiny_causal_lm().preprocessor
    eager = preprocess_prompt_responses(preprocessor, DATA, sequence_length=16)
    dataset = preprocessed(
        preprocessor, tf.data.Dataset.from_tensor_slices(DATA), batch_size=3, sequence_length=16
    )
    traced = next(iter(dataset))
    for a, b in zip(keras.tree.flatten(eager), keras.tree.flatten(traced)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def _numpy_nll(model, x, y, weight):
    logits = np.asarray(model(x)).astype("float64")
    logits -= logits.max(-1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nll = -np.take_along_axis(log_probs, np.asarray(y)[..., None], -1)[..., 0]
    weight = np.asarray(weight, "float64")
    return (nll * weight).sum() / weight.sum(), weight.sum()


def test_evaluate_causal_lm_scores_the_responses_alone(tiny_causal_lm):
    model = tiny_causal_lm(num_layers=1)
    x, y, weight = preprocess_prompt_responses(model.preprocessor, DATA, sequence_length=16)
    nll, tokens = _numpy_nll(model, x, y, weight)
    scored = evaluate_causal_lm(model, DATA, sequence_length=16, batch_size=2, jit_compile=False)
    assert scored["tokens"] == tokens
    assert scored["perplexity"] == pytest.approx(math.exp(nll), rel=1e-5)
    texts = [p + r for p, r in zip(PROMPTS, RESPONSES)]
    whole = evaluate_causal_lm(model, texts, sequence_length=16, batch_size=2, jit_compile=False)
    assert whole["tokens"] > tokens


def test_finetuning_trains_on_the_responses_alone(tiny_causal_lm):
    model = tiny_causal_lm(num_layers=1)
    before = evaluate_causal_lm(model, DATA, sequence_length=16, batch_size=4, jit_compile=False)
    # One batch of all three pairs: the training perplexity of the first
    # step is that of the model before the step, on the responses.
    history = transfer.finetune_causal_lm(
        model, DATA, steps=1, batch_size=4, sequence_length=16,
        learning_rate=1e-2, jit_compile=False, verbose=0,
    )
    assert history.history["perplexity"][0] == pytest.approx(before["perplexity"], rel=1e-4)
    after = evaluate_causal_lm(model, DATA, sequence_length=16, batch_size=4, jit_compile=False)
    assert after["perplexity"] < before["perplexity"]


def test_the_teacher_cache_keeps_the_response_weights(tiny_causal_lm, tmp_path):
    teacher = tiny_causal_lm()
    teacher.preprocessor.sequence_length = 16
    cache = TeacherCache.build(
        teacher, DATA, tmp_path / "cache", preprocessor=teacher.preprocessor,
        top_k=4, jit_compile=False, verbose=0,
    )
    x, target, weight = next(iter(cache.dataset(batch_size=3, shuffle=False)))
    _, labels, expected = _reference(teacher.preprocessor, PROMPTS, RESPONSES, 16)
    np.testing.assert_array_equal(np.asarray(target["labels"]), labels)
    np.testing.assert_array_equal(np.asarray(weight, "float32"), expected)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"prompt": PROMPTS, "completion": RESPONSES}, "keys \\['completion', 'prompt'\\]"),
        ({"prompts": PROMPTS, "responses": RESPONSES[:2]}, "3 prompts and 2 responses"),
        ({"prompts": PROMPTS, "responses": [" a", 2, " c"]}, "item 1 is int"),
        ({"prompts": ["the cat sat on the mat"], "responses": [" and slept."]}, "None of the 1 responses"),
    ],
    ids=["trl_keys", "unequal", "not_a_string", "prompt_fills_the_rows"],
)
def test_bad_prompt_response_data_is_refused_before_training(tiny_causal_lm, data, message):
    model = tiny_causal_lm(num_layers=1)
    weights = [w.numpy().copy() for w in model.weights]
    with pytest.raises(ValueError, match=message):
        transfer.finetune_causal_lm(model, data, steps=1, sequence_length=4, verbose=0)
    for before, after in zip(weights, model.weights):
        np.testing.assert_array_equal(before, after.numpy())


def test_load_prompt_responses_reads_trl_columns_and_holds_out_by_prompt(tmp_path):
    import json

    from keras_kd.datasets import load_prompt_responses

    rows = [{"prompt": f"Question {i % 25}?", "completion": f" Answer {i}.", "id": i} for i in range(30)]
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    train, test = load_prompt_responses(path, test_fraction=0.2)
    pairs = {(r["prompt"], r["completion"]) for r in rows}
    got = [set(zip(split["prompts"], split["responses"])) for split in (train, test)]
    # Every pair once, leading spaces kept; a prompt given twice (0 to 4)
    # lands in one split.
    assert got[0] | got[1] == pairs and not got[0] & got[1]
    assert len(test["prompts"]) == int(30 * 0.2)
    assert not set(train["prompts"]) & set(test["prompts"])
    # The same file as CSV, other column names: the same split.
    csv_path = tmp_path / "chat.csv"
    csv_path.write_text(
        "question,answer\n" + "".join(f'"{r["prompt"]}","{r["completion"]}"\n' for r in rows),
        encoding="utf-8",
    )
    assert load_prompt_responses(
        csv_path, prompt_column="question", response_column="answer", test_fraction=0.2
    )[1]["prompts"] == test["prompts"]
    with pytest.raises(ValueError, match="'response'"):
        load_prompt_responses(path, response_column="response")
