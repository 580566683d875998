"""Whisper's temperature fallback: a transcript that compresses too well
(the decoder looped) or that the model gave a low mean log-probability is
decoded again by sampling at the next temperature, as OpenAI's Whisper
`transcribe` does (its `decode_with_fallback`, with its defaults:
temperatures 0, 0.2, ..., 1, compression ratio above 2.4, mean
log-probability below -1). `WhisperAudioToText.transcribe` and
`WhisperTFLiteTranscriber.transcribe` both decode through
`decode_with_fallback`.

Whisper's third rule, which keeps a low-probability transcript when the
model also predicts no speech, is left out: the decoding here suppresses
the special tokens that carry that prediction.
"""

import dataclasses
import numbers
import zlib

from keras_kd.utils.validation import check_number

TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def compression_ratio(text):
    """UTF-8 bytes of `text` over those of its zlib compression: a
    transcript that repeats itself compresses well (Whisper's test for a
    decoding loop).

    Example:

    >>> compression_ratio("Ever tried. Ever failed. No matter.") < 1.5
    True
    >>> compression_ratio("It was the spring of hope. " * 5) > 2.4
    True
    """
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One decoding of one waveform.

    Attributes:
        text: the transcript.
        temperature: the sampling temperature (0: greedy).
        avg_logprob: the mean log-probability of its tokens, the end token
            included, under the model's distribution at temperature 1 with
            its token suppression.
    """

    text: str
    temperature: float
    avg_logprob: float

    @property
    def compression_ratio(self):
        """`compression_ratio(text)`."""
        return compression_ratio(self.text)


@dataclasses.dataclass(frozen=True)
class Transcription:
    """A waveform's transcript and the attempts that led to it.

    Attributes:
        attempts: the `Attempt`s in the order made; the first is greedy
            (with the default temperatures), the last is the transcript.
    """

    attempts: tuple

    @property
    def text(self):
        return self.attempts[-1].text

    @property
    def temperature(self):
        return self.attempts[-1].temperature


@dataclasses.dataclass(frozen=True)
class TemperatureFallback:
    """The temperatures to try and the tests a transcript must pass.

    Args:
        temperatures: sampling temperatures, tried in order (0 is greedy);
            a single number decodes once.
        compression_ratio_threshold: a transcript whose
            `compression_ratio` is above it is decoded again; None turns
            the test off.
        logprob_threshold: a transcript whose mean token log-probability
            is below it is decoded again; None turns the test off.

    Example:

    >>> rule = TemperatureFallback()
    >>> rule.accepts(Attempt("It was the spring of hope. " * 5, 0.0, -0.2))
    False
    >>> rule.accepts(Attempt("Ever tried. Ever failed.", 0.0, -0.2))
    True
    >>> TemperatureFallback(temperatures=[0.0, -0.2])
    Traceback (most recent call last):
    ...
    ValueError: `temperatures[1]` must be a finite number >= 0, e.g. 0.2. Received: temperatures[1]=-0.2
    """

    temperatures: tuple = TEMPERATURES
    compression_ratio_threshold: float = 2.4
    logprob_threshold: float = -1.0

    def __post_init__(self):
        temperatures = self.temperatures
        if isinstance(temperatures, numbers.Real) and not isinstance(temperatures, bool):
            temperatures = (temperatures,)
        if isinstance(temperatures, (str, bytes)) or not hasattr(temperatures, "__len__") or not len(temperatures):
            raise ValueError(
                "`temperatures` must be a number or a non-empty list of "
                f"numbers >= 0, e.g. {list(TEMPERATURES)}. Received: "
                f"temperatures={self.temperatures!r}"
            )
        temperatures = tuple(
            check_number(f"temperatures[{i}]", t, 0, example=0.2) for i, t in enumerate(temperatures)
        )
        object.__setattr__(self, "temperatures", temperatures)
        for name in ("compression_ratio_threshold", "logprob_threshold"):
            if getattr(self, name) is not None:
                check_number(name, getattr(self, name), example=-1.0 if "logprob" in name else 2.4)

    def accepts(self, attempt):
        """Whether `attempt` passes both tests (no fallback)."""
        too_repetitive = (
            self.compression_ratio_threshold is not None
            and attempt.compression_ratio > self.compression_ratio_threshold
        )
        too_unsure = self.logprob_threshold is not None and attempt.avg_logprob < self.logprob_threshold
        return not (too_repetitive or too_unsure)


def check_fallback(fallback):
    """`fallback`, or Whisper's rule for None; anything else is refused.

    Example:

    >>> check_fallback(None) == TemperatureFallback()
    True
    >>> check_fallback({"temperatures": 0.0})
    Traceback (most recent call last):
    ...
    TypeError: `fallback` must be a keras_kd.speech.TemperatureFallback, e.g. TemperatureFallback(temperatures=0.0), or None for Whisper's. Received: {'temperatures': 0.0}
    """
    if fallback is None:
        return TemperatureFallback()
    if not isinstance(fallback, TemperatureFallback):
        raise TypeError(
            "`fallback` must be a keras_kd.speech.TemperatureFallback, e.g. "
            "TemperatureFallback(temperatures=0.0), or None for Whisper's. "
            f"Received: {fallback!r}"
        )
    return fallback


def decode_with_fallback(decode, count, fallback):
    """Decodes `count` waveforms, each again at the next temperature while
    its transcript fails `fallback`'s tests; after the last temperature
    the last attempt stands, as in Whisper.

    Args:
        decode: `decode(indices, temperature)` returns one `Attempt` for
            each waveform index in `indices`, decoded at `temperature`.
        count: how many waveforms.
        fallback: a `TemperatureFallback`.

    Returns:
        A list of `count` `Transcription`s.

    Example: a decoder that loops when greedy.

    >>> def decode(indices, temperature):
    ...     text = "no no no no no no no no no no no" if temperature == 0 else "no"
    ...     return [Attempt(text, temperature, -0.1) for _ in indices]
    >>> [t.text for t in decode_with_fallback(decode, 2, TemperatureFallback())]
    ['no', 'no']
    """
    attempts = [[] for _ in range(count)]
    pending = list(range(count))
    for temperature in fallback.temperatures:
        for index, attempt in zip(pending, decode(pending, temperature)):
            attempts[index].append(attempt)
        pending = [i for i in pending if not fallback.accepts(attempts[i][-1])]
        if not pending:
            break
    return [Transcription(tuple(a)) for a in attempts]
