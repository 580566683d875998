"""`export_bundle`: every deployment artefact of a classifier in one folder."""

import os

import keras
import tensorflow as tf

from keras_kd.export import metadata as md
from keras_kd.export import serving
from keras_kd.export.tflite import QUANTIZATIONS, export_tflite
from keras_kd.utils.io import atomic_folder, atomic_write, atomic_write_json
from keras_kd.utils.validation import check_not_a_distiller

MODEL_CARD = "model_card.json"


def _tflite_name(quantization):
    return "model.tflite" if quantization == "none" else f"model_{quantization}.tflite"


def _describe_teacher(teacher):
    if teacher is None or isinstance(teacher, str):
        return teacher
    if isinstance(teacher, keras.Model):
        return {"name": teacher.name, "parameters": int(teacher.count_params())}
    raise TypeError(
        "`teacher` must be None, a description string or the teacher Keras "
        f"model. Received: teacher of type {type(teacher).__name__}"
    )


def export_bundle(
    model,
    directory,
    *,
    labels,
    vocabulary=None,
    sequence_length=128,
    quantizations=("none", "dynamic_int8"),
    representative_data=None,
    verification_data=None,
    teacher=None,
    from_logits=True,
    lowercase=None,
    overwrite=False,
):
    """Writes the Keras model, a SavedModel, `.tflite` files and a model card.

    `directory` receives:

    - `model.keras`: the Keras model, for further training or distillation;
    - `saved_model/`: a TF Serving SavedModel whose `serving_default`
      signature takes `input_word_ids`, `input_mask`, `input_type_ids` (int32,
      `[batch, sequence_length]`) and returns the class probabilities;
    - `model.tflite`, `model_<quantization>.tflite`: one `export_tflite` file
      per entry of `quantizations`, with MediaPipe metadata;
    - `model_card.json`: labels, sequence length, file sizes, parity figures
      of each `.tflite` and the teacher the model was distilled from.

    The folder is assembled next to `directory` and moved into place at the
    end (`keras_kd.utils.io.atomic_folder`), so a failure leaves no partial
    folder, and an existing `directory` is replaced only with
    `overwrite=True`.

    Args:
        model: the Keras classifier on token ids (see `export_tflite`).
        directory: destination folder; its parent must exist.
        labels: class names, one per output (the model's `class_names` in
            another order are refused).
        vocabulary: the WordPiece vocabulary (see `export_tflite`); a
            keras-hub tokenizer also sets `lowercase` and tokenizes the
            parity check's texts for Keras.
        sequence_length: tokens per example.
        quantizations: `.tflite` variants to write, from `QUANTIZATIONS`.
        representative_data: texts for `"int8"` calibration and for the
            parity figures.
        verification_data: texts (with labels for accuracies) for the parity
            figures; default: `representative_data`.
        teacher: None, a description string or the teacher Keras model.
        from_logits: whether the model outputs logits (softmax is added;
            a model that ends in a softmax is refused: pass False).
        lowercase: whether the tokenizer lowercases; default: the model's
            tokenizer's setting (see `export_tflite`).
        overwrite: replace an existing `directory`.

    Returns:
        The model card, as a dict.

    Example, with `model` a small BERT classifier on token ids and
    `vocabulary` its WordPiece tokens:

    >>> import os, tempfile
    >>> folder = tempfile.TemporaryDirectory()
    >>> bundle = os.path.join(folder.name, "sentiment_student")
    >>> card = export_bundle(
    ...     model, bundle, labels=["negative", "positive"],
    ...     vocabulary=vocabulary, sequence_length=16, quantizations=("none",),
    ...     teacher="all-MiniLM-L6-v2",
    ... )
    >>> sorted(os.listdir(bundle))
    ['model.keras', 'model.tflite', 'model_card.json', 'saved_model']
    >>> card["labels"], card["teacher"], card["tflite"]["model.tflite"]["quantization"]
    (['negative', 'positive'], 'all-MiniLM-L6-v2', 'none')
    >>> folder.cleanup()
    """
    check_not_a_distiller(model, "model", "export_bundle")
    directory = serving.check_destination(directory, overwrite, folder=True)
    check_replaceable(directory)
    unknown = [q for q in quantizations if q not in QUANTIZATIONS]
    if unknown or not quantizations:
        raise ValueError(
            f"`quantizations` must be a non-empty list from "
            f"{list(QUANTIZATIONS)}. Received: {list(quantizations)!r}"
        )
    if "int8" in quantizations and representative_data is None:
        raise ValueError(
            '"int8" in `quantizations` needs `representative_data` (texts '
            "for the calibration). Received: representative_data=None."
        )
    serving.model_input_names(model)
    serving.check_from_logits(model, from_logits)
    labels = serving.resolve_labels(
        labels, serving.num_classes(model), getattr(model, "class_names", None)
    )
    tokens = serving.resolve_vocabulary(vocabulary, model)
    tokenizer = serving.model_tokenizer(vocabulary, model)
    lowercase = serving.resolve_lowercase(lowercase, tokenizer, tokens)
    teacher_card = _describe_teacher(teacher)

    with atomic_folder(directory, overwrite=overwrite) as staging:
        atomic_write(os.path.join(staging, "model.keras"), model.save)
        wrapped = serving.serving_model(model, sequence_length, from_logits)
        signature = [
            [
                tf.TensorSpec((None, sequence_length), tf.int32, name=name)
                for name in md.INPUT_NAMES
            ]
        ]
        wrapped.export(
            os.path.join(staging, "saved_model"),
            format="tf_saved_model",
            input_signature=signature,
            verbose=False,
        )
        tflite_card = {}
        for quantization in quantizations:
            result = export_tflite(
                model,
                os.path.join(staging, _tflite_name(quantization)),
                quantization,
                representative_data,
                sequence_length=sequence_length,
                labels=labels,
                # A tokenizer, not its tokens: its settings verify the file.
                vocabulary=vocabulary if tokenizer is vocabulary else tokens,
                lowercase=lowercase,
                from_logits=from_logits,
                verification_data=verification_data,
            )
            report = result.verification.to_dict()
            report.pop("path")
            tflite_card[_tflite_name(quantization)] = {
                "quantization": quantization,
                **report,
            }
        card = {
            "model": model.name,
            "parameters": int(model.count_params()),
            "teacher": teacher_card,
            "labels": labels,
            "sequence_length": sequence_length,
            "inputs": list(md.INPUT_NAMES),
            "output": "probabilities",
            "tokenizer": {
                "type": "wordpiece", "lowercase": bool(lowercase),
                "strip_accents": serving.resolve_strip_accents(tokenizer),
            },
            # Sizes of the other files; the card cannot hold its own.
            "files": {
                name: _size(os.path.join(staging, name))
                for name in sorted(os.listdir(staging))
            },
            "tflite": tflite_card,
        }
        atomic_write_json(os.path.join(staging, MODEL_CARD), card)
    return card


def check_replaceable(directory):
    """Raises `FileExistsError` unless `directory` is absent, an empty
    folder or an earlier bundle: the only things `overwrite=True` may
    replace, since the swap deletes what `directory` held (a file, or a run
    folder holding the model being exported, would be lost).

    Args:
        directory: the bundle's folder.

    Raises:
        FileExistsError: naming what is at `directory`.

    Example:

    >>> import pathlib, tempfile
    >>> run = pathlib.Path(tempfile.mkdtemp())
    >>> check_replaceable(run)  # an empty folder
    >>> _ = (run / "model.keras").write_bytes(b"weights")
    >>> check_replaceable(run)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileExistsError: '...' is a folder without model_card.json, not a bundle of export_bundle; it is left untouched ...
    """
    if not os.path.lexists(directory):
        return
    if os.path.isdir(directory) and (
        not os.listdir(directory)
        or os.path.isfile(os.path.join(directory, MODEL_CARD))
    ):
        return
    kind = f"a folder without {MODEL_CARD}" if os.path.isdir(directory) else "a file"
    raise FileExistsError(
        f"{str(directory)!r} is {kind}, not a bundle of export_bundle; it is left "
        "untouched (overwrite=True replaces only an earlier bundle or an "
        "empty folder). Pass the path of a new folder for the bundle."
    )


def _size(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(path)
        for name in names
    )
