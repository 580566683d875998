"""`SpeechConfig`: the settings of a speech run
(`keras_kd.pipeline.run_speech`, `keras-kd demo --task speech`), checked on
creation.

Pure Python: the `keras-kd` command reads its defaults without starting
TensorFlow.
"""

import dataclasses

from keras_kd.pipeline.config import RunConfig
from keras_kd.utils.validation import check_choice, check_int, check_number

# eSpeak NG voices (`keras_kd.speech.ENGLISH_VOICES`) heard only in the test
# utterances: an American, a British and a Scottish accent.
HELD_OUT_VOICES = ("en-us+f4", "en+m2", "en-gb-scotland")


@dataclasses.dataclass
class SpeechConfig(RunConfig):
    """Settings of a speech run; the defaults are the embedded demo.

    Attributes:
        data: the sentences spoken: an offline set of sentences
            (`"movie_reviews"` and the others of `keras_kd.datasets.load`),
            a `.txt` file (one sentence per line), a `.csv`/`.tsv`/`.jsonl`
            file or a list of strings (`keras_kd.datasets.load_texts`);
            training utterances speak the training split, test utterances
            the held-out split.
        text_column: the column of the sentences in a `.csv`/`.tsv`/`.jsonl`
            `data` file.
        teacher: a Whisper preset (`"whisper_tiny_en"`, offline).
        train_sentences: training sentences spoken (the first of the
            shuffled training split), joined into passages of up to
            `passage_words` words (`keras_kd.speech.join_sentences`), one
            utterance each; those longer than 30 s spoken are dropped.
        passage_words: the largest word budget of a training passage; 1
            speaks every sentence alone.
        test_utterances: synthetic test utterances, spoken by
            `held_out_voices` only.
        held_out_voices: eSpeak NG voices kept out of training.
        extra_voices: voices heard in training beside eSpeak NG's (its
            `ENGLISH_VOICES` less the held-out ones), such as
            `keras_kd.speech.FLITE_VOICES` (`("flite:slt", ...)`, which
            needs Debian's `flite`); each is tried before any model loads.
        noise_snr_db: `(low, high)` signal-to-noise ratio of the added
            noise, in dB (`keras_kd.speech.synthesize`).
        max_wer: pseudo-labels whose word error rate against what was said
            is above this are dropped (Distil-Whisper's filter).
        decoder_layers: the teacher decoder layers the student keeps
            (None: the first and the last).
        epochs, batch_size, learning_rate, warmup: the student's training
            (`keras_kd.speech.distil_whisper`).
        alpha, temperature: `Distiller.compile` settings.
        label_length: decoder length of the pseudo-labels (prompt
            included): the 1,980 passages of 3,000 movie-review sentences
            (60 words at most) hold up to 86 tokens, about 1.3 a word;
            128 leaves room for the prompt and for wordier text.
        max_length: decoder length of the transcripts (prompt included)
            and of the `.tflite` files' caches: 224, Whisper's own limit
            for a 30 s window (OpenAI's `sample_len`), holds the 22 to 28 s
            real recording windows whole (about 1.3 tokens a word; 64 cut
            three of the five off after about 45 words).
        quantization: quantization of the shipped student `.tflite`.
        seed: seed of sentence sampling, voices, noise and training.
        output_dir, run_name: the run writes to `output_dir/run_name/`.
        overwrite: replace an existing run folder; without `resume`, also
            discard a partial run of it.
        resume: continue the partial run of the run folder: a student it
            had distilled is reused (`PipelineConfig`'s `resume`).
        jit_compile: compile the encoder, generation and training with XLA.
        verbose: Keras verbosity.

    >>> SpeechConfig.quick().train_sentences
    64
    >>> SpeechConfig(held_out_voices=())
    Traceback (most recent call last):
    ...
    ValueError: `held_out_voices` must be a tuple of at least one voice name, such as ('en-us+f4',). Received: held_out_voices=()
    """

    data: object = "movie_reviews"
    text_column: str = "text"
    teacher: str = "whisper_tiny_en"
    train_sentences: int = 1000
    passage_words: int = 60
    test_utterances: int = 100
    held_out_voices: tuple = HELD_OUT_VOICES
    extra_voices: tuple = ()
    noise_snr_db: tuple = (20.0, 40.0)
    max_wer: float = 0.5
    decoder_layers: object = None
    epochs: int = 3
    batch_size: int = 16
    learning_rate: float = 3e-4
    warmup: float = 0.1
    alpha: float = 0.5
    temperature: float = 2.0
    label_length: int = 128
    max_length: int = 224
    quantization: str = "dynamic_int8"
    seed: int = 0
    output_dir: str = "saved_models"
    run_name: str = "speech"
    overwrite: bool = False
    resume: bool = False
    jit_compile: bool = True
    verbose: int = 1

    def __post_init__(self):
        self._check_run_folder()
        for name in ("train_sentences", "passage_words", "test_utterances", "epochs", "batch_size"):
            check_int(name, getattr(self, name))
        check_int("max_length", self.max_length, minimum=3, example=224)
        check_int("label_length", self.label_length, minimum=3, example=128)
        check_int("seed", self.seed, minimum=0)
        self.held_out_voices = _voices("held_out_voices", self.held_out_voices, ("en-us+f4",))
        self.extra_voices = _voices("extra_voices", self.extra_voices, ("flite:slt", "flite:rms"), empty=True)
        snr = self.noise_snr_db
        if snr is not None:
            if not isinstance(snr, (list, tuple)) or len(snr) != 2:
                raise ValueError(
                    "`noise_snr_db` must be None (no noise) or a (low, high) "
                    f"pair in dB, such as (20, 40). Received: noise_snr_db={snr!r}"
                )
            check_number("noise_snr_db[0]", snr[0], example=20)
            check_number("noise_snr_db[1]", snr[1], snr[0], example=40)
            self.noise_snr_db = tuple(float(v) for v in snr)
        check_number("max_wer", self.max_wer, 0, example=0.5)
        check_number("alpha", self.alpha, 0, 1)
        check_number("temperature", self.temperature, 0, low_open=True, example=2)
        check_number("learning_rate", self.learning_rate, 0, low_open=True, example=3e-4)
        check_number("warmup", self.warmup, 0, 1, high_open=True, example=0.1)
        check_choice("quantization", self.quantization, ("none", "dynamic_int8"))

    # `quick()`: 64 training and 16 test sentences, one epoch.
    QUICK = dict(
        train_sentences=64,
        test_utterances=16,
        epochs=1,
        batch_size=8,
        run_name="speech_quick",
    )


def _voices(name, voices, example, empty=False):
    """`voices` as a tuple of non-empty names, or a ValueError naming
    `name`; `empty` allows ()."""
    if (
        not isinstance(voices, (list, tuple))
        or not (voices or empty)
        or not all(isinstance(v, str) and v for v in voices)
    ):
        raise ValueError(
            f"`{name}` must be a tuple of {'' if empty else 'at least one '}voice "
            f"name{'s' if empty else ''}, such as {example!r}{', or ()' if empty else ''}. "
            f"Received: {name}={voices!r}"
        )
    return tuple(voices)
