"""The Distil-Whisper recipe: encode the training audio once with the
frozen encoder, pseudo-label it with the teacher, drop the pseudo-labels
that stray from what was said, and distill a shallow-decoder student on the
rest (`encode`, `transcribe_encoded`, `pseudo_label`, `PseudoLabels`,
`trimmed_batches`, `distil_whisper`)."""

import dataclasses
import math
import os

import keras
import numpy as np
import tensorflow as tf

from keras_kd.distillation import Distiller, TeacherCache
from keras_kd.speech.audio import batch_waveforms
from keras_kd.speech.error_rate import word_error_rate
from keras_kd.speech.whisper_audio_to_text import WhisperAudioToText, compiled_encoder
from keras_kd.speech.whisper_decoder_model import whisper_decoder_model
from keras_kd.speech.whisper_student import whisper_student
from keras_kd.transfer.schedules import warmup_cosine_adamw
from keras_kd.utils.validation import check_int, check_number, check_texts


def encode(model, audio, batch_size=8):
    """The encoder's output for each waveform, computed once.

    Args:
        model: a `WhisperAudioToText` (its preprocessor makes the features).
        audio: a list of 16 kHz waveforms (any lengths up to 30 s).
        batch_size: waveforms encoded at once.

    Returns:
        A float16 array `(len(audio), frames / 2, hidden_dim)` (1,500
        frames for Whisper): float16 halves the memory of what a few
        thousand 30-second windows take, and the decoder reads it back in
        float32.

    Example:

    >>> from keras_kd.utils.testing import tiny_whisper_audio_to_text
    >>> model = tiny_whisper_audio_to_text()
    >>> encode(model, [np.zeros(800, "float32"), np.zeros(1600, "float32")]).shape
    (2, 1500, 16)
    """
    check_int("batch_size", batch_size, example=8)
    if isinstance(audio, (str, bytes, os.PathLike)):
        batch_waveforms(audio)  # refuses a path, naming load_wav
    if not len(audio):
        raise ValueError("`audio` is empty: pass a list of waveforms, one per utterance.")
    if np.ndim(audio[0]) == 0:
        # Its samples would be taken for utterances, 8 at a time.
        raise ValueError(
            f"`audio` is one waveform ({len(audio)} samples); `encode` takes "
            "a list of waveforms, one per utterance: encode(model, [audio])."
        )
    encoder = compiled_encoder(model)
    chunks = []
    for start in range(0, len(audio), batch_size):
        batch, _ = batch_waveforms(list(audio[start : start + batch_size]))
        features = model.preprocessor.generate_preprocess(batch, 1)["encoder_features"]
        chunks.append(np.asarray(encoder(features), dtype=np.float16))
    return np.concatenate(chunks)


def _check_states(name, states):
    """Refuses encoder outputs that are not `encode`'s array."""
    if not isinstance(states, np.ndarray) or states.ndim != 3:
        raise TypeError(
            f"`{name}` must be the array `encode` returns, (utterances, "
            f"frames, hidden). Received: {type(states).__name__}"
            + (f" of shape {states.shape}" if isinstance(states, np.ndarray) else "")
        )


def _check_states_and_labels(what, states, labels):
    """Refuses `labels` that are not the `PseudoLabels` of `states`: a
    slice of one or the other would pair audio with other transcripts."""
    _check_states(f"{what}states", states)
    if not isinstance(labels, PseudoLabels):
        raise TypeError(
            f"The {what}labels must be the `PseudoLabels` that "
            "`pseudo_label(teacher, states, truths)` returns. Received: "
            f"{type(labels).__name__}"
        )
    if len(labels.texts) != len(states):
        raise ValueError(
            f"The {what}states hold {len(states)} utterances but their labels "
            f"{len(labels.texts)}: pass the labels `pseudo_label` made from "
            "these states, each utterance with its own transcript."
        )


@dataclasses.dataclass
class PseudoLabels:
    """The teacher's transcripts of the training audio, scored against what
    was said.

    Attributes:
        texts: the teacher's transcript of each utterance.
        truths: what was said.
        error_rates: each transcript's word error rate against its truth.
        kept: indices of the utterances trained on (error rate at most the
            threshold, transcript not empty).
    """

    texts: list
    truths: list
    error_rates: np.ndarray
    kept: np.ndarray

    def summary(self):
        """Counts and error rates, JSON-able."""
        return {
            "utterances": len(self.texts),
            "kept": int(len(self.kept)),
            "teacher_wer": word_error_rate(self.truths, self.texts) if self.texts else None,
            "kept_teacher_wer": (
                word_error_rate([self.truths[i] for i in self.kept], [self.texts[i] for i in self.kept])
                if len(self.kept) else None
            ),
        }


def transcribe_encoded(model, states, batch_size=16, max_length=None, order=None):
    """`model.generate` on encoder outputs (`encode`), in batches.

    Args:
        model: a `WhisperAudioToText`.
        states: its encoder's outputs (`encode`).
        batch_size: utterances decoded at once.
        max_length: decoder length of the transcripts (default: the
            preprocessor's).
        order: the order in which utterances are batched, a permutation
            of their indices (default: as given). A batch decodes until
            its longest transcript ends, so batching utterances of
            similar length (by what was said, or by audio duration)
            saves decoding steps.

    Returns:
        The transcripts, in the order of `states`.

    Example:

    >>> from keras_kd.utils.testing import tiny_whisper_audio_to_text
    >>> model = tiny_whisper_audio_to_text()
    >>> audio = [np.zeros(800, "float32"), np.ones(1600, "float32") / 4]
    >>> transcribe_encoded(model, encode(model, audio), max_length=6) == model.generate(audio, max_length=6)
    True
    >>> transcribe_encoded(model, encode(model, audio), 1, 6, order=[1, 0]) == model.generate(audio, max_length=6)
    True
    """
    check_int("batch_size", batch_size, example=16)
    if order is None:
        order = np.arange(len(states))
    order = np.asarray(order)
    if order.shape != (len(states),) or not np.array_equal(np.sort(order), np.arange(len(states))):
        raise ValueError(
            f"`order` must be a permutation of the indices of the {len(states)} "
            f"utterances, such as np.argsort(durations). Received: order="
            f"{order.tolist()[:10]!r}{' ...' if order.size > 10 else ''} (shape {order.shape})"
        )
    texts = [None] * len(states)
    for start in range(0, len(order), batch_size):
        rows = np.sort(order[start : start + batch_size])
        chunk = np.asarray(states[rows], dtype=np.float32)
        for row, text in zip(rows, model.generate({"encoder_hidden_states": chunk}, max_length=max_length)):
            texts[row] = text
    return texts


def pseudo_label(teacher, states, truths, max_wer=0.5, batch_size=16, max_length=None):
    """Transcribes encoded utterances with `teacher` and keeps those whose
    transcript's word error rate against the truth is at most `max_wer`,
    as Distil-Whisper filters its pseudo-labels. Utterances are decoded
    in batches of similar truth length (`transcribe_encoded`'s `order`).

    Args:
        teacher: a `WhisperAudioToText`.
        states: its encoder's outputs (`encode`).
        truths: what was said in each utterance.
        max_wer: the largest word error rate kept, >= 0.
        batch_size: utterances decoded at once.
        max_length: decoder length of the transcripts (default: the
            preprocessor's).

    Returns:
        A `PseudoLabels`.

    Example:

    >>> from keras_kd.utils.testing import tiny_whisper_audio_to_text
    >>> teacher = tiny_whisper_audio_to_text()
    >>> states = encode(teacher, [np.zeros(800, "float32")] * 2)
    >>> labels = pseudo_label(teacher, states, ["re", "an"], max_wer=10.0, max_length=6)
    >>> len(labels.texts), labels.kept.tolist()
    (2, [0, 1])
    """
    check_number("max_wer", max_wer, 0, example=0.5)
    _check_states("states", states)
    truths = check_texts("truths", truths)
    if len(truths) != len(states):
        raise ValueError(
            f"{len(truths)} truths for {len(states)} encoded utterances: "
            "pass one truth (what was said) per utterance."
        )
    # Batched by the length of what was said: a batch's rows end together.
    order = np.argsort([len(truth.split()) for truth in truths], kind="stable")
    texts = transcribe_encoded(teacher, states, batch_size, max_length, order)
    error_rates = np.array([word_error_rate([t], [h]) for t, h in zip(truths, texts)])
    kept = np.flatnonzero((error_rates <= max_wer) & np.array([bool(t.strip()) for t in texts]))
    return PseudoLabels(texts, list(truths), error_rates, kept)


def _training_arrays(model, states, texts):
    """`(x, y, sample_weight)` NumPy arrays of `model`'s decoder training
    inputs, padded to the longest transcript (a longer one is cut at the
    decoder's positions)."""
    preprocessor = model.preprocessor
    lengths = [len(ids) for ids in preprocessor.tokenizer(list(texts))]
    # Prompt + transcript + <|endoftext|>, then a multiple of 8.
    length = 8 * math.ceil((max(lengths) + len(preprocessor.prompt_ids) + 1) / 8)
    length = min(length, model.backbone.max_decoder_sequence_length)
    x, y, weight = preprocessor(
        # The states join after: tokenizing needs no copy of them.
        {"encoder_hidden_states": tf.zeros((len(texts), 1, 1)), "text": tf.constant(texts)},
        sequence_length=length,
    )
    x = {k: np.asarray(v) for k, v in x.items()}
    x["encoder_hidden_states"] = states
    return x, np.asarray(y), np.asarray(weight)


def trimmed_batches(x, y, sample_weight, batch_size, seed=0, multiple=16):
    """Training batches drawn at random every epoch, each cut to its
    longest transcript, as a `tf.data.Dataset`.

    A decoder step costs in proportion to the padded length, and padding
    every batch to the longest transcript of the data wastes much of it:
    on 1,959 movie-review passages (37 tokens on average, 87 at most,
    of what was said) the longest of 16 drawn at random averages 69
    tokens with the prompt and the end token, 77 once rounded up to 16. Positions past a
    transcript's end carry no weight and the decoder is causal, so cutting
    them changes no loss and no gradient: the training is the padded
    one's, faster. (Batching transcripts of similar length would cut more,
    but it changes which transcripts share a batch, and with it each
    token's weight in the batch's mean: its one run of `bench/speech.py`
    left the student 16.1 WER points behind its teacher, the most of four
    runs.) Lengths are rounded up to a multiple of
    `multiple` so that XLA compiles a few shapes, not one per length.

    Args:
        x: `_training_arrays`'s inputs: `decoder_token_ids` and
            `decoder_padding_mask` `(n, length)`, `encoder_hidden_states`.
        y: `(n, length)` labels, or a nested structure of arrays of
            `(n, length, ...)` (a teacher cache's `{"labels",
            "teacher_logits"}`, `TeacherCache.arrays()`), each cut alike.
        sample_weight: `(n, length)` weights.
        batch_size: rows per batch.
        seed: seed of the shuffling.
        multiple: batch lengths are rounded up to a multiple of this (and
            cut at `length`).

    Returns:
        A dataset of `(x, y, sample_weight)` batches, every row once per
        epoch, in `ceil(n / batch_size)` batches.

    Example:

    >>> x = {"decoder_token_ids": np.ones((3, 40), "int32"),
    ...      "decoder_padding_mask": np.array([[1] * 5 + [0] * 35, [1] * 20 + [0] * 20, [1] * 6 + [0] * 34]),
    ...      "encoder_hidden_states": np.zeros((3, 1500, 4), "float16")}
    >>> data = trimmed_batches(x, x["decoder_token_ids"], x["decoder_padding_mask"], batch_size=3)
    >>> [b[1].shape for b in data.as_numpy_iterator()]
    [(3, 32)]
    """
    check_int("batch_size", batch_size, example=16)
    check_int("multiple", multiple, example=16)
    lengths = np.asarray(x["decoder_padding_mask"]).sum(axis=1)
    full = x["decoder_padding_mask"].shape[1]
    rng = np.random.default_rng(seed)
    sequences = ("decoder_token_ids", "decoder_padding_mask")

    def batches():
        rows = rng.permutation(len(lengths))
        for start in range(0, len(rows), batch_size):
            index = np.sort(rows[start : start + batch_size])
            length = min(full, multiple * math.ceil(lengths[index].max() / multiple))
            inputs = {k: v[index, :length] if k in sequences else v[index] for k, v in x.items()}
            cut = keras.tree.map_structure(lambda v: v[index, :length], y)
            yield inputs, cut, sample_weight[index, :length]

    def spec(array, sequence):
        shape = (None, None) + array.shape[2:] if sequence else (None,) + array.shape[1:]
        return tf.TensorSpec(shape, tf.as_dtype(array.dtype))

    signature = (
        {k: spec(v, k in sequences) for k, v in x.items()},
        keras.tree.map_structure(lambda v: spec(v, True), y),
        spec(sample_weight, True),
    )
    count = math.ceil(len(lengths) / batch_size)
    return (
        tf.data.Dataset.from_generator(batches, output_signature=signature)
        .apply(tf.data.experimental.assert_cardinality(count))
        .prefetch(2)
    )


def distil_whisper(
    teacher,
    states,
    labels,
    *,
    decoder_layers=None,
    epochs=2,
    batch_size=16,
    learning_rate=3e-4,
    warmup=0.1,
    alpha=0.5,
    temperature=2.0,
    train_embeddings=False,
    teacher_cache=None,
    top_k=None,
    seed=0,
    validation=None,
    verbose=1,
):
    """Distills a Distil-Whisper student from `teacher` on encoded,
    pseudo-labelled utterances.

    The student keeps the teacher's encoder, frozen, and the decoder layers
    `decoder_layers` (`whisper_student`). Only decoders run in training
    (`whisper_decoder_model`), on the encoder outputs `states` computed
    once: the loss is `(1 - alpha)` times the cross-entropy on the kept
    pseudo-labels plus `alpha * T^2` times the KL divergence from the live
    teacher's next-token distribution, at every transcript position
    (`keras_kd.Distiller`). Batches, drawn at random every epoch, are cut
    to their longest transcript (`trimmed_batches`), from the live teacher
    and from a teacher cache alike.

    Args:
        teacher: a `WhisperAudioToText`.
        states: the utterances' encoder outputs (`encode`).
        labels: their `PseudoLabels` (`pseudo_label`); only `kept` train.
        decoder_layers: teacher decoder layers the student keeps
            (default: the first and the last).
        epochs, batch_size: the training's passes and batch size.
        learning_rate, warmup: AdamW's peak rate and warm-up fraction
            (`keras_kd.transfer.warmup_cosine_adamw`).
        alpha, temperature: `Distiller.compile`'s.
        train_embeddings: whether the decoder's token embeddings (also its
            output layer, tied) train. Frozen by default: they are most
            of the student's decoder (19.9M of 25.4M parameters for
            tiny.en), too many to fit on a few thousand utterances. On 369
            pseudo-labelled utterances (3 epochs), the student's WER on
            held-out voices was 74% frozen against 84% trained (teacher
            71%).
        teacher_cache: optional folder of a `keras_kd.TeacherCache`: the
            teacher's logits on the kept pseudo-labels are computed once,
            stored there (or reused, when built from the same teacher and
            data) and read back every epoch instead of running the
            teacher.
        top_k: with `teacher_cache`, keep only the `k` largest logits at
            each position (4 bytes each, against 4 x 51,864 for all of
            tiny.en's); None keeps all.
        seed: seed of the shuffling.
        validation: optional `(states, labels)` of other utterances, whose
            kept pseudo-labels give the validation loss.
        verbose: Keras verbosity.

    Returns:
        `(student, history)`: a `WhisperAudioToText` and the Keras
        `History` of the distillation.

    Example:

    >>> from keras_kd.utils.testing import tiny_whisper_audio_to_text
    >>> teacher = tiny_whisper_audio_to_text(num_layers=2)
    >>> states = encode(teacher, [np.zeros(800, "float32")] * 4)
    >>> labels = pseudo_label(teacher, states, ["re"] * 4, max_wer=10.0, max_length=6)
    >>> student, history = distil_whisper(teacher, states, labels, decoder_layers=[1], batch_size=2, verbose=0)
    >>> student.backbone.num_decoder_layers, len(history.history["loss"])
    (1, 2)
    """
    if not isinstance(teacher, WhisperAudioToText):
        raise TypeError(
            "`teacher` must be a keras_kd.speech.WhisperAudioToText. "
            f"Received: {type(teacher).__name__}"
        )
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        check_int(name, value, example=16)
    # Above 1, AdamW diverges: a rate typed as 3 for 3e-4.
    check_number("learning_rate", learning_rate, 0, 1, low_open=True, example=3e-4)
    _check_states_and_labels("", states, labels)
    if validation is not None:
        if not isinstance(validation, (tuple, list)) or len(validation) != 2:
            raise TypeError(
                "`validation` must be a pair (states, labels) of other "
                "utterances: `(encode(...), pseudo_label(...))`. Received: "
                f"{type(validation).__name__}"
            )
        _check_states_and_labels("validation ", *validation)
    if top_k is not None and teacher_cache is None:
        raise ValueError(
            f"top_k={top_k!r} sets what a teacher cache keeps: pass "
            "`teacher_cache=<folder>` too, or leave top_k=None."
        )
    if not len(labels.kept):
        raise ValueError(
            f"No pseudo-label is kept: all {len(labels.texts)} transcripts "
            "stray from their truth by more than the threshold, or are "
            "empty. Raise `max_wer` in `pseudo_label`, or check the audio "
            f"(teacher WER {labels.summary()['teacher_wer']:.2f})."
        )
    keras.utils.set_random_seed(seed)
    student = whisper_student(teacher, decoder_layers=decoder_layers)
    student.backbone.token_embedding.trainable = train_embeddings
    x, y, weight = _training_arrays(
        teacher, states[labels.kept], [labels.texts[i] for i in labels.kept]
    )
    validation_data = None
    if validation is not None and len(validation[1].kept):
        v_states, v_labels = validation
        validation_data = _training_arrays(
            teacher, v_states[v_labels.kept], [v_labels.texts[i] for i in v_labels.kept]
        )
    teacher_decoder = whisper_decoder_model(teacher)
    distiller = Distiller(student=whisper_decoder_model(student), teacher=teacher_decoder)
    steps = epochs * math.ceil(len(y) / batch_size)
    distiller.compile(
        optimizer=warmup_cosine_adamw(learning_rate, steps, warmup=warmup),
        alpha=alpha,
        temperature=temperature,
        jit_compile=bool(teacher.jit_compile),
    )
    if teacher_cache is None:
        history = distiller.fit(  # the batches shuffle themselves
            trimmed_batches(x, y, weight, batch_size, seed=seed),
            validation_data=validation_data, epochs=epochs, shuffle=False, verbose=verbose,
        )
    else:
        cache = TeacherCache.build(
            teacher_decoder, tf.data.Dataset.from_tensor_slices((x, y, weight)),
            teacher_cache, batch_size=batch_size, top_k=top_k,
            jit_compile=bool(teacher.jit_compile), verbose=verbose,
        )
        cached_x, target, cached_weight = cache.arrays()
        history = distiller.fit(  # the batches shuffle themselves
            trimmed_batches(cached_x, target, cached_weight, batch_size, seed=seed),
            validation_data=validation_data, epochs=epochs, shuffle=False, verbose=verbose,
        )
    return student, history
