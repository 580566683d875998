"""keras_kd.speech.error_rate: WER and CER against hand-counted edits."""

import pytest

from keras_kd.speech import character_error_rate, normalize_transcript, word_error_rate


def test_word_error_rate_counts_substitutions_insertions_and_deletions():
    references = ["fail again fail better", "no matter"]
    # 1 substitution (bitter), 1 deletion (again); 2 insertions (at all).
    hypotheses = ["Fail, fail bitter!", "No matter at all."]
    assert word_error_rate(references, hypotheses) == pytest.approx(4 / 6)


def test_character_error_rate_and_normalization():
    assert normalize_transcript("  Don't  STOP. ") == "don't stop"
    assert character_error_rate(["abc"], ["abd"]) == pytest.approx(1 / 3)
    assert word_error_rate(["Ever tried."], ["ever tried"]) == 0.0


@pytest.mark.parametrize(
    "references, hypotheses, error, match",
    [
        ("a b", ["a b"], TypeError, "wrap a single one in a list"),
        (["a", "b"], ["a"], ValueError, "2 references but 1 hypotheses"),
        (["..."], ["a"], ValueError, "empty after normalization"),
        # A bare "'NoneType' object is not iterable" and, for None among
        # the transcripts, "'NoneType' object has no attribute 'lower'".
        (None, ["a"], ValueError, r"`references` must be a list of strings. Received: NoneType None"),
        (["a"], None, ValueError, r"`hypotheses` must be a list of strings. Received: NoneType None"),
        (["a"], [None], ValueError, r"`hypotheses` must hold strings; item 0 is NoneType: None"),
        (["a", b"b"], ["a", "b"], ValueError, r"`references` must hold strings; item 1 is bytes: b'b'"),
    ],
)
@pytest.mark.parametrize("error_rate", [word_error_rate, character_error_rate])
def test_bad_inputs_are_named(error_rate, references, hypotheses, error, match):
    with pytest.raises(error, match=match):
        error_rate(references, hypotheses)
