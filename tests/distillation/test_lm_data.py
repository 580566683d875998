"""Sequence-level and on-policy data, and the causal-LM metrics."""

import math
import types

import numpy as np
import pytest

from keras_kd.datasets.prompt_responses import preprocess_prompt_responses
from keras_kd.distillation import lm_metrics, on_policy, sequence_kd
from keras_kd.utils.testing import with_swapped_tokens

TEXTS = [
    "the cat sat on the mat.",
    "a dog ran in the rain.",
    "the sun is hot.",
    "an ant ate a seed.",
]


def _numpy_nll(labels, logits):
    logits = logits.astype("float64")
    log_probs = logits - logits.max(-1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
    return -np.take_along_axis(log_probs, labels[..., None], -1)[..., 0]


def test_perplexity_metric_matches_numpy_and_ignores_padding():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 5, 7)).astype("float32") * 3
    labels = rng.integers(0, 7, size=(2, 5))
    weight = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], "float32")
    metric = lm_metrics.Perplexity()
    metric.update_state(labels, logits, weight)
    nll = _numpy_nll(labels, logits)
    expected = math.exp((nll * weight).sum() / weight.sum())
    assert float(metric.result()) == pytest.approx(expected, rel=1e-5)
    # Changing padded positions changes nothing.
    logits[0, 3:] = 100.0
    metric.reset_state()
    metric.update_state(labels, logits, weight)
    assert float(metric.result()) == pytest.approx(expected, rel=1e-5)


def test_evaluate_causal_lm_matches_a_manual_pass(tiny_causal_lm):
    model, teacher = tiny_causal_lm(seed=0), tiny_causal_lm(seed=1)
    result = lm_metrics.evaluate_causal_lm(
        model, TEXTS, teacher=teacher, batch_size=3, sequence_length=16, jit_compile=False
    )
    x, y, w = model.preprocessor(TEXTS, sequence_length=16)
    w = np.asarray(w, "float64")
    logits = np.asarray(model(x))
    nll = (_numpy_nll(np.asarray(y), logits) * w).sum() / w.sum()
    agree = (logits.argmax(-1) == np.asarray(teacher(x)).argmax(-1)) * w
    assert result["tokens"] == int(w.sum())
    assert result["perplexity"] == pytest.approx(math.exp(nll), rel=1e-4)
    assert result["top1_agreement"] == pytest.approx(agree.sum() / w.sum())


def test_teacher_predictions_stand_in_for_the_teacher(tiny_causal_lm):
    model, teacher = tiny_causal_lm(seed=0), tiny_causal_lm(seed=1)
    kwargs = dict(batch_size=3, sequence_length=16, jit_compile=False)
    live = lm_metrics.evaluate_causal_lm(model, TEXTS, teacher=teacher, **kwargs)
    scored = lm_metrics.evaluate_causal_lm(teacher, TEXTS, return_predictions=True, **kwargs)
    x, _, _ = teacher.preprocessor(TEXTS, sequence_length=16)
    np.testing.assert_array_equal(
        scored["predictions"], np.asarray(teacher(x)).argmax(-1)
    )
    given = lm_metrics.evaluate_causal_lm(
        model, TEXTS, teacher=scored["predictions"], **kwargs
    )
    assert given == live
    with pytest.raises(ValueError, match=r"\(len\(texts\), sequence_length\) = \(4, 16\)"):
        lm_metrics.evaluate_causal_lm(
            model, TEXTS, teacher=scored["predictions"][:, :8], **kwargs
        )


def test_top1_agreement_refuses_a_teacher_of_another_vocabulary(tiny_causal_lm):
    # The teacher read the student's token ids and the agreement compared
    # ids of two vocabularies: a trimmed student scored a number, no error.
    from keras_kd import transfer

    teacher = tiny_causal_lm(seed=1)
    trimmed = transfer.trim_lm_vocabulary(tiny_causal_lm(seed=0), TEXTS)
    size = trimmed.backbone.vocabulary_size
    assert size < 42
    kwargs = dict(sequence_length=16, jit_compile=False)
    with pytest.raises(ValueError, match=(
            rf"must share the tokenizer: evaluate_causal_lm .*a teacher vocabulary of 42 "
            rf"tokens and a student vocabulary of {size}.*trim_lm_vocabulary")):
        lm_metrics.evaluate_causal_lm(trimmed, TEXTS, teacher=teacher, **kwargs)
    # As many tokens, two of them swapped.
    student, (a, b) = with_swapped_tokens(teacher, tiny_causal_lm(seed=0).backbone)
    with pytest.raises(ValueError, match=(
            rf"The teacher's tokenizer differs from the student's \(token id 5 is {a!r} for the "
            rf"teacher, {b!r} for the student\). evaluate_causal_lm tokenizes")):
        lm_metrics.evaluate_causal_lm(student, TEXTS, teacher=teacher, **kwargs)


def test_scoring_and_generating_refuse_texts_that_are_not_a_list_of_texts(tiny_causal_lm):
    model = tiny_causal_lm()
    # One string used to be scored as one text per character.
    with pytest.raises(ValueError, match=r"Wrap it in a list: texts=\['the cat sat'\]"):
        lm_metrics.evaluate_causal_lm(model, "the cat sat", jit_compile=False)
    with pytest.raises(ValueError, match="`texts` is empty"):
        lm_metrics.evaluate_causal_lm(model, [], jit_compile=False)
    with pytest.raises(ValueError, match="`texts` holds 2 texts, all empty"):
        lm_metrics.evaluate_causal_lm(model, ["", ""], jit_compile=False)
    # Was a ZeroDivisionError: texts of one token have none to predict.
    model.preprocessor.add_end_token = False
    with pytest.raises(ValueError, match="No token to score: none of the 2 texts"):
        lm_metrics.evaluate_causal_lm(model, ["a", "b"], jit_compile=False)
    with pytest.raises(ValueError, match=r"Wrap it in a list: prompts=\['the cat'\]"):
        sequence_kd.sequence_kd_dataset(model, "the cat", max_length=8)


def test_split_prompts_keeps_the_text_whole():
    prompts, rest = sequence_kd.split_prompts(TEXTS + ["short"], prompt_words=3)
    assert len(prompts) == 4
    assert [p + r for p, r in zip(prompts, rest)] == TEXTS
    assert prompts[0] == "the cat sat"
    # Every text too short: an error, not two empty lists.
    with pytest.raises(ValueError, match="None of the 2 texts has more than prompt_words=3 words"):
        sequence_kd.split_prompts(["short", "a b c"], prompt_words=3)
    with pytest.raises(ValueError, match="Wrap it in a list"):
        sequence_kd.split_prompts("the cat sat on the mat", prompt_words=3)


def test_sequence_kd_dataset_holds_the_teachers_greedy_outputs(tiny_causal_lm):
    teacher = tiny_causal_lm(seed=3)
    prompts, _ = sequence_kd.split_prompts(TEXTS, prompt_words=2)
    dataset = sequence_kd.sequence_kd_dataset(teacher, prompts, max_length=12, batch_size=3)
    texts = [t.decode() for t in dataset.as_numpy_iterator()]
    one_by_one = [str(teacher.generate(p, max_length=12)) for p in prompts]
    assert texts == one_by_one
    assert all(t.startswith(p) for t, p in zip(texts, prompts))
    # Greedy: the same again.
    again = sequence_kd.generate_texts(teacher, prompts, max_length=12)
    assert again == texts


class _Continues:
    """A causal LM's `generate` that continues each prompt alike, with a
    second line, and records the prompts it got."""

    def __init__(self):
        self.prompts = []
        # One token a word, no start token.
        self.preprocessor = types.SimpleNamespace(tokenizer=lambda texts: [[0] * len(t.split()) for t in texts])

    def generate(self, prompts, max_length, strip_prompt=False):
        self.prompts.extend(prompts)
        return [f"{'' if strip_prompt else p} and more\nanother line" for p in prompts]


def test_in_domain_texts_draws_every_prompt_then_drops_repeats_and_known_texts():
    texts = ["the cat sat on the mat", "a dog ran far", "the cat and more", "short"]
    model = _Continues()
    new = sequence_kd.in_domain_texts(model, texts, num_texts=5, prompt_words=2, batch_size=2)
    # 3 texts have a prompt; all 3 are drawn before any is drawn again.
    assert sorted(model.prompts[:3]) == ["a dog", "the cat", "the cat"]
    assert len(model.prompts) == 5
    # Cut at the line break; "the cat and more" is a training text, and the
    # repeats of "a dog and more" are dropped.
    assert new == ["a dog and more"]
    with pytest.raises(ValueError, match="prompt_words=4"):
        sequence_kd.in_domain_texts(model, ["a dog"], num_texts=1, prompt_words=4)
    # A prompt that leaves no room to continue it (keras-hub's `generate`
    # cut it short) is left out; with none left, an error.
    model = _Continues()
    model.preprocessor.tokenizer = lambda texts: [[ord(c) for c in t] for t in texts]
    link = "https://example.com/a/long/link and more"
    sequence_kd.in_domain_texts(model, ["ab cd", link], num_texts=3, prompt_words=1, max_length=6)
    assert model.prompts == ["ab", "ab", "ab"]
    with pytest.raises(ValueError, match="first 1 fit in max_length=6 tokens"):
        sequence_kd.in_domain_texts(model, [link], num_texts=1, prompt_words=1, max_length=6)


def _pairs(preprocessor, prompts, responses, length):
    """Each prompt-response row's token ids -> (its ids, its weights)."""
    x, _, weight = preprocess_prompt_responses(
        preprocessor, {"prompts": prompts, "responses": responses}, length
    )
    return {
        tuple(row): np.asarray(w)
        for row, w in zip(np.asarray(x["token_ids"]).tolist(), np.asarray(weight))
    }


def test_on_policy_batches_mask_prompts_and_mix_sources(tiny_causal_lm):
    student = tiny_causal_lm(seed=4)
    preprocessor = student.preprocessor
    prompts, rest = sequence_kd.split_prompts(TEXTS, prompt_words=2)

    # lmbda=0: the data's own continuations, prompt positions masked.
    batches = on_policy.on_policy_batches(
        student, prompts, rest, lmbda=0.0, batch_size=4, sequence_length=32
    )
    x, y, weight = next(batches)
    data_rows = _pairs(preprocessor, prompts, rest, 32)
    rows = [tuple(r) for r in np.asarray(x["token_ids"]).tolist()]
    assert set(rows) == set(data_rows)
    for i, row in enumerate(rows):
        np.testing.assert_array_equal(weight[i], data_rows[row])
    # The weighted labels of a row (none cut at 32 tokens) are its
    # continuation's tokens and the end token: the prompt's carry none.
    lengths = {tuple(preprocessor.tokenizer([p])[0]): r for p, r in zip(prompts, rest)}
    for i, row in enumerate(rows):
        prompt = next(k for k in lengths if row[: len(k)] == k)
        expected = list(preprocessor.tokenizer([lengths[prompt]])[0]) + [
            preprocessor.tokenizer.end_token_id
        ]
        assert y[i][weight[i] > 0].tolist() == expected
        assert weight[i, : len(prompt) - 1].sum() == 0

    # lmbda=1: the student's own greedy continuations of the same prompts.
    batches = on_policy.on_policy_batches(
        student, prompts, rest, lmbda=1.0, batch_size=4, sequence_length=12
    )
    x, _, weight = next(batches)
    continuations = sequence_kd.generate_texts(student, prompts, 12, strip_prompt=True)
    full = sequence_kd.generate_texts(student, prompts, 12)
    assert [p + c for p, c in zip(prompts, continuations)] == full
    generated = _pairs(preprocessor, prompts, continuations, 12)
    assert {tuple(r) for r in np.asarray(x["token_ids"]).tolist()} == set(generated)
    assert weight.dtype == np.float32


def test_on_policy_batches_refuse_bad_input(tiny_causal_lm):
    student = tiny_causal_lm()
    # At the call, not at the first batch `fit` asks for.
    with pytest.raises(ValueError, match="lmbda=1.5"):
        on_policy.on_policy_batches(student, ["a"], [" b"], lmbda=1.5, batch_size=1)
    with pytest.raises(ValueError, match="1 prompts and 2 continuations"):
        on_policy.on_policy_batches(student, ["a"], [" b", " c"])
    # numpy: "Cannot take a larger sample than population when replace=False".
    with pytest.raises(ValueError, match=r"`batch_size` must be an int in \[1, 2\] \(a batch draws distinct prompts\).*batch_size=8"):
        on_policy.on_policy_batches(student, ["a", "b"], [" b", " c"])
    with pytest.raises(ValueError, match=r"The prompts \['the cat sat'\] \(9 tokens\) do not fit sequence_length=8 tokens"):
        on_policy.on_policy_batches(student, ["a", "the cat sat"], [" b", " c"], batch_size=1, sequence_length=8)


def test_greedy_tokens_per_second_refuses_prompts_that_fill_the_length(tiny_causal_lm):
    model = tiny_causal_lm(num_layers=1)
    with pytest.raises(ValueError, match="A prompt of 5 tokens leaves nothing to generate at max_length=5"):
        lm_metrics.greedy_tokens_per_second(model, ["the tea"], max_length=5)


def _tiny_gpt2():
    """A random 1-layer GPT-2 on the tiny byte-level BPE tokens, whose
    preprocessor prepends a start token (`<|endoftext|>`), as GPT-2's."""
    import keras
    import keras_hub

    from keras_kd.utils.testing import LETTERS, MERGES

    vocabulary = ["<|endoftext|>"] + LETTERS + ["Ġ"] + [m.replace(" ", "") for m in MERGES]
    tokenizer = keras_hub.models.GPT2Tokenizer(
        vocabulary={t: i for i, t in enumerate(vocabulary)}, merges=MERGES
    )
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=len(vocabulary), num_layers=1, num_heads=2, hidden_dim=8,
        intermediate_dim=16, max_sequence_length=32,
    )
    preprocessor = keras_hub.models.GPT2CausalLMPreprocessor(tokenizer, sequence_length=16)
    return keras_hub.models.GPT2CausalLM(backbone, preprocessor)


def test_greedy_tokens_per_second_counts_only_generated_tokens(monkeypatch):
    # GPT-2's start token was counted as generated: one token too many
    # per prompt.
    model = _tiny_gpt2()
    prompts, max_length = ["the tea", "a cat sat"], 12
    x = model.preprocessor.generate_preprocess(prompts, sequence_length=max_length)
    assert np.asarray(x["token_ids"])[:, 0].tolist() == [0, 0]
    generated = model.generate_step(x, stop_token_ids=None)
    new = int(np.sum(generated["padding_mask"]) - np.sum(x["padding_mask"]))
    assert new == 9
    clock = iter([10.0, 12.0])  # the calls take 2 s in all
    monkeypatch.setattr(lm_metrics, "time", types.SimpleNamespace(perf_counter=lambda: next(clock)))
    assert lm_metrics.greedy_tokens_per_second(model, prompts, max_length, jit_compile=False) == new / 2


@pytest.mark.parametrize("jit_compile", [True, False])
def test_greedy_tokens_per_second_times_every_model_under_one_setting(
    tiny_causal_lm, jit_compile
):
    # A compiled teacher and an uncompiled student must not be timed one
    # with XLA and one without; the model's own setting comes back after.
    model = tiny_causal_lm(num_layers=1)
    model.jit_compile = not jit_compile
    own_function = model.generate_function
    seen = []
    make = model.make_generate_function

    def spy():
        seen.append(model.jit_compile)
        return make()

    model.make_generate_function = spy
    lm_metrics.greedy_tokens_per_second(model, ["the tea"], 8, jit_compile=jit_compile)
    assert seen and set(seen) == {jit_compile}
    assert model.jit_compile is (not jit_compile)
    assert model.generate_function is own_function


def test_greedy_tokens_per_second_refuses_a_bad_jit_compile(tiny_causal_lm):
    with pytest.raises(ValueError, match="Received: jit_compile='auto'"):
        lm_metrics.greedy_tokens_per_second(tiny_causal_lm(), ["a"], 8, jit_compile="auto")
