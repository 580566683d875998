"""The on-device input convention and the checks shared by every exporter.

Exported classifiers take token ids, not strings: keras-hub's in-graph
WordPiece tokenizer uses TensorFlow Text ops that TFLite builtins cannot run,
so the tokenizer stays outside the graph (MediaPipe's `TextClassifier` or
`TFLiteTextClassifier` tokenizes with the vocabulary embedded in the file).
The exported graph has three int32 inputs `input_word_ids`, `input_mask`,
`input_type_ids` of shape `[batch, sequence_length]` and one float32 output,
the class probabilities (softmax inside the graph).
"""

import os

import keras
import numpy as np

from keras_kd.distillation.shapes import independent_outputs, regression_output, softmax_output
from keras_kd.export.metadata import INPUT_NAMES, SPECIAL_TOKENS

# keras-hub BERT input names, in the order of `INPUT_NAMES`.
KERAS_HUB_NAMES = ("token_ids", "padding_mask", "segment_ids")


def check_destination(path, overwrite, folder=False):
    """Returns `path` as a str after checking it can be written.

    Raises:
        FileNotFoundError: the parent folder does not exist.
        IsADirectoryError: a file path names an existing folder.
        FileExistsError: `path` exists and `overwrite` is False.
    """
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise FileNotFoundError(
            f"The folder of path={path!r} does not exist ({parent!r}). Create "
            "it first, e.g. `os.makedirs(folder, exist_ok=True)`."
        )
    if not folder and os.path.isdir(path):
        raise IsADirectoryError(
            f"path={path!r} is a folder; pass a file path such as "
            f"{os.path.join(path, 'model.tflite')!r}."
        )
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(
            f"{path!r} already exists. Pass overwrite=True to replace it, or "
            "choose another path."
        )
    return path


def model_input_names(model):
    """Returns the model's three input names, in the order of `INPUT_NAMES`.

    Raises:
        TypeError: `model` is not a built Keras model.
        ValueError: its inputs are not the three token-id tensors.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(
            "Expected a Keras model (`keras.Model`) that maps token ids to "
            f"class logits. Received: model of type {type(model).__name__}"
        )
    inputs = getattr(model, "_inputs_struct", None)
    if inputs is None:
        raise ValueError(
            f"The model {model.name!r} has no symbolic inputs (a subclassed "
            "model that was never called). Build it as a functional model, "
            "e.g. with keras-hub's BertBackbone inputs `token_ids`, "
            "`padding_mask`, `segment_ids`."
        )
    string_inputs = [
        t.name
        for t in keras.tree.flatten(inputs)
        if keras.backend.standardize_dtype(t.dtype) == "string"
    ]
    explanation = (
        "keras-kd exports take token ids, not strings: keras-hub's in-graph "
        "WordPiece tokenizer needs TensorFlow Text ops that TFLite builtins "
        "cannot run, so the tokenizer stays outside the exported graph and "
        "MediaPipe (or `keras_kd.export.TFLiteTextClassifier`) tokenizes with "
        "the vocabulary embedded in the .tflite file. Pass the model that "
        "follows the preprocessor, e.g. `keras_hub.models.BertTextClassifier`"
        " (its `preprocessor` is a separate layer) or a functional model on "
        "`token_ids`, `padding_mask`, `segment_ids`."
    )
    if string_inputs:
        raise ValueError(
            f"The model {model.name!r} takes string inputs {string_inputs} "
            f"(an in-graph tokenizer). {explanation}"
        )
    if isinstance(inputs, dict):
        for names in (KERAS_HUB_NAMES, INPUT_NAMES):
            if set(inputs) == set(names):
                return names
    received = (
        sorted(inputs)
        if isinstance(inputs, dict)
        else [t.name for t in keras.tree.flatten(inputs)]
    )
    raise ValueError(
        f"The model {model.name!r} must take a dict of three int token "
        f"tensors keyed {list(KERAS_HUB_NAMES)} (keras-hub BERT) or "
        f"{list(INPUT_NAMES)} (on-device names). Received inputs: "
        f"{received}. {explanation}"
    )


def num_classes(model):
    """Returns the size of the model's single output."""
    outputs = model.outputs
    if len(outputs) != 1 or len(outputs[0].shape) != 2:
        raise ValueError(
            f"The model {model.name!r} must have a single output of shape "
            "(batch, num_classes). Received output shapes: "
            f"{[tuple(o.shape) for o in outputs]}"
        )
    return int(outputs[0].shape[-1])


@keras.saving.register_keras_serializable(package="keras_kd")
class TruncateTokens(keras.layers.Layer):
    """Cuts unpadded token sequences longer than `sequence_length`.

    MediaPipe does not truncate text for models with a dynamic sequence
    length, so the graph does it: it keeps the first `sequence_length - 1`
    tokens and the last one (`[SEP]`), as keras-hub's packer does. Inputs are
    expected without padding, as MediaPipe and `TFLiteTextClassifier` send
    them for such models.

    Args:
        sequence_length: the longest sequence passed on to the model.
    """

    def __init__(self, sequence_length, **kwargs):
        super().__init__(**kwargs)
        self.sequence_length = sequence_length

    def call(self, x):
        length = keras.ops.shape(x)[1]
        kept = keras.ops.minimum(length, self.sequence_length) - 1
        return keras.ops.concatenate(
            [x[:, :kept], x[:, length - 1 :]], axis=1
        )

    def compute_output_shape(self, input_shape):
        return (input_shape[0], None)

    def get_config(self):
        config = super().get_config()
        config["sequence_length"] = self.sequence_length
        return config


def check_from_logits(model, from_logits):
    """Refuses what the text-classifier file would score wrongly, every
    parity check passing since Keras is wrapped the same way: a regression
    head (its values put through a softmax: one output is always 1.0),
    and, with `from_logits=True`, a model that ends in a softmax (the
    softmax of probabilities, 0.73 / 0.27 at most for two classes) or
    scores each class on its own (sigmoid, multi-label: the softmax would
    make its classes compete).

    Example:

    >>> dense = keras.layers.Dense(2, activation="softmax", name="scores")
    >>> check_from_logits(keras.Sequential([keras.Input((4,)), dense]), True)
    Traceback (most recent call last):
    ...
    ValueError: from_logits=True appends a softmax to the model's outputs, but its output layer 'scores' has a softmax activation: the file would output the softmax of probabilities. Pass from_logits=False (the model outputs probabilities already).
    >>> tags = keras.layers.Dense(3, activation="sigmoid", name="tags")
    >>> check_from_logits(keras.Sequential([keras.Input((4,)), tags]), True)
    Traceback (most recent call last):
    ...
    ValueError: from_logits=True appends a softmax to the model's outputs, but the model scores each class on its own (a multi-label or sigmoid classifier): its output layer 'tags' has a sigmoid activation. The softmax would make its classes compete. Pass from_logits=False to export its scores as they are (a model that outputs logits of such classes: end it in a sigmoid first).
    """
    name = regression_output(model)
    if name is not None:
        raise ValueError(
            f"The model's output layer {name!r} is Head('regression'): real "
            "values, not class scores. The text-classifier file (MediaPipe's "
            "TextClassifier convention) outputs class probabilities, and a "
            "softmax would turn the values into them (one output: always "
            "1.0). Export the token-id network as a plain TFLite model "
            "instead: `model.token_id_model.export(folder, "
            'format="tf_saved_model")`, then '
            "`tf.lite.TFLiteConverter.from_saved_model(folder)`."
        )
    if not from_logits:
        return
    found = softmax_output(model)
    if found is not None:
        raise ValueError(
            "from_logits=True appends a softmax to the model's outputs, but "
            f"{found}: the file would output the softmax of probabilities. "
            "Pass from_logits=False (the model outputs probabilities already)."
        )
    found = independent_outputs(model)
    if found is not None:
        raise ValueError(
            "from_logits=True appends a softmax to the model's outputs, but "
            "the model scores each class on its own (a multi-label or "
            f"sigmoid classifier): {found}. The softmax would make its "
            "classes compete. Pass from_logits=False to export its scores "
            "as they are (a model that outputs logits of such classes: end "
            "it in a sigmoid first)."
        )


def serving_model(model, sequence_length, from_logits, truncate_to=None):
    """Wraps `model` into the on-device convention (see module docstring).

    Args:
        model: a Keras classifier on token ids (`model_input_names`).
        sequence_length: int, or None for a dynamic sequence length.
        from_logits: whether `model` outputs logits (softmax is appended) or
            probabilities already.
        truncate_to: with a dynamic sequence length, the longest sequence
            passed on to `model` (see `TruncateTokens`).

    Returns:
        A functional `keras.Model` with inputs named `INPUT_NAMES`, a list in
        that order, and float32 probabilities as output.
    """
    names = model_input_names(model)
    inputs = [
        keras.Input((sequence_length,), dtype="int32", name=name)
        for name in INPUT_NAMES
    ]
    model_inputs = {}
    for name, x in zip(names, inputs):
        if truncate_to is not None:
            x = TruncateTokens(truncate_to, name=f"truncate_{name}")(x)
        model_inputs[name] = keras.ops.cast(x, model._inputs_struct[name].dtype)
    outputs = keras.ops.cast(model(model_inputs), "float32")
    if from_logits:
        outputs = keras.layers.Softmax(name="probabilities")(outputs)
    return keras.Model(inputs, outputs, name=f"{model.name}_serving")


def check_tflite_text_classifier(model):
    """Refuses, before any work, a `keras_kd.transfer.FinetuneModel` that a
    `.tflite` text classifier cannot carry: the file takes BERT's three
    token inputs and carries a WordPiece vocabulary for on-device
    tokenizers (MediaPipe's, `TFLiteTextClassifier`). RoBERTa, DistilBERT
    or DeBERTa models train, distill and predict in Keras, but do not
    export.

    Raises:
        ValueError: the backbone lacks one of BERT's inputs or the
            tokenizer is not WordPiece; the message names both classes.

    Example:

    >>> from keras_kd.utils.testing import tiny_bert_text_classifier
    >>> check_tflite_text_classifier(tiny_bert_text_classifier())
    """
    import keras_hub

    inputs = model.backbone.input
    tokenizer = model.preprocessor.tokenizer
    if not (
        isinstance(inputs, dict)
        and set(KERAS_HUB_NAMES) <= set(inputs)
        and isinstance(tokenizer, keras_hub.tokenizers.WordPieceTokenizer)
    ):
        raise ValueError(
            f"The model is a {type(model.backbone).__name__} with a "
            f"{type(tokenizer).__name__}; a .tflite text classifier takes "
            f"BERT's inputs {list(KERAS_HUB_NAMES)} and carries a WordPiece "
            "vocabulary for on-device tokenizers. Train from a BERT teacher "
            "(BERT, MiniLM, ...), such as the offline preset 'minilm_l6'; "
            "this model still works in Keras."
        )


def resolve_vocabulary(vocabulary, model):
    """Returns the WordPiece vocabulary as a list of tokens.

    Args:
        vocabulary: a path to a `vocab.txt` (one token a line), a list of
            tokens, a keras-hub tokenizer, or None to take the tokenizer of
            `model.preprocessor` (keras-hub tasks).
        model: the classifier; its token embedding size must equal the
            vocabulary size.
    """
    if vocabulary is None:
        preprocessor = getattr(model, "preprocessor", None)
        vocabulary = getattr(preprocessor, "tokenizer", None)
        if vocabulary is None:
            raise ValueError(
                "`vocabulary` is required: the exported file embeds the "
                "WordPiece vocabulary so that on-device runtimes can tokenize "
                "raw text. Pass the path of the model's `vocab.txt`, a list of "
                "tokens, or its keras-hub tokenizer. Received: vocabulary=None"
                f" and model {model.name!r} has no `preprocessor.tokenizer`."
            )
    if hasattr(vocabulary, "get_vocabulary"):
        tokens = list(vocabulary.get_vocabulary())
    elif isinstance(vocabulary, (str, os.PathLike)):
        if not os.path.isfile(vocabulary):
            raise FileNotFoundError(
                f"Vocabulary file not found: {str(vocabulary)!r}. Pass the "
                "path of a WordPiece `vocab.txt` (one token a line)."
            )
        with open(vocabulary, encoding="utf-8") as f:
            tokens = f.read().splitlines()
    elif isinstance(vocabulary, (list, tuple)) and all(
        isinstance(t, str) for t in vocabulary
    ):
        tokens = list(vocabulary)
    else:
        raise TypeError(
            "`vocabulary` must be a path to a vocab.txt, a list of str tokens "
            "or a keras-hub tokenizer. Received: vocabulary of type "
            f"{type(vocabulary).__name__}"
        )
    missing = [t for t in SPECIAL_TOKENS.values() if t not in tokens]
    if missing:
        raise ValueError(
            f"The vocabulary lacks the BERT special tokens {missing}; a "
            f"WordPiece vocabulary for BERT models has "
            f"{list(SPECIAL_TOKENS.values())}. Pass the vocabulary the model "
            "was trained with."
        )
    embedding_size = _token_embedding_size(model)
    if embedding_size is not None and embedding_size != len(tokens):
        raise ValueError(
            f"The vocabulary has {len(tokens)} tokens but the model's token "
            f"embedding has {embedding_size} rows. Pass the vocabulary the "
            "model was trained with (for keras-hub presets, the preset's "
            "vocab.txt)."
        )
    return tokens


def model_tokenizer(vocabulary, model):
    """The keras-hub tokenizer the model reads text with: `vocabulary` when
    it is a tokenizer, else `model.preprocessor.tokenizer`, else None (the
    vocabulary alone is known).

    Example:

    >>> from keras_kd.utils.testing import tiny_bert_text_classifier
    >>> model = tiny_bert_text_classifier()
    >>> model_tokenizer(["[PAD]"], model) is model.preprocessor.tokenizer
    True
    """
    if hasattr(vocabulary, "get_vocabulary"):
        return vocabulary
    return getattr(getattr(model, "preprocessor", None), "tokenizer", None)


def _cased(token):
    """Whether a vocabulary token holds an ASCII capital letter (special
    tokens such as `[CLS]` aside): a lowercasing tokenizer never produces
    it."""
    if token.startswith("[") and token.endswith("]"):
        return False
    return any("A" <= c <= "Z" for c in token)


def resolve_lowercase(lowercase, tokenizer, tokens):
    """Whether the exported tokenization lowercases text.

    The model's own tokenizer decides: its `lowercase` is the default, and
    a `lowercase` that contradicts it is refused, since the file would
    tokenize text otherwise than the model was trained on. Without a
    tokenizer, `lowercase` is used, else the vocabulary decides: one
    holding capitalized tokens (`The`, `##A`) is cased.

    Args:
        lowercase: None for the model's setting, or a bool.
        tokenizer: the model's keras-hub tokenizer (`model_tokenizer`), or
            None.
        tokens: the WordPiece vocabulary, a list of str.

    Returns:
        A bool.

    Example:

    >>> import keras_hub
    >>> tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "The", "the"]
    >>> resolve_lowercase(None, None, tokens)
    False
    >>> cased = keras_hub.models.BertTokenizer(vocabulary=tokens, lowercase=False)
    >>> resolve_lowercase(True, cased, tokens)
    Traceback (most recent call last):
    ...
    ValueError: lowercase=True contradicts the model's tokenizer (a BertTokenizer with lowercase=False): the file would tokenize text otherwise than the model was trained on. Leave `lowercase` out; it defaults to the tokenizer's.
    """
    if lowercase is not None and not isinstance(lowercase, bool):
        raise TypeError(
            f"`lowercase` must be True, False or None (the model's setting). "
            f"Received: lowercase={lowercase!r}"
        )
    own = getattr(tokenizer, "lowercase", None)
    if own is None:
        return not any(_cased(t) for t in tokens) if lowercase is None else lowercase
    if lowercase is not None and lowercase != bool(own):
        raise ValueError(
            f"lowercase={lowercase!r} contradicts the model's tokenizer (a "
            f"{type(tokenizer).__name__} with lowercase={own!r}): the file "
            "would tokenize text otherwise than the model was trained on. "
            "Leave `lowercase` out; it defaults to the tokenizer's."
        )
    return bool(own)


def resolve_strip_accents(tokenizer):
    """Whether the exported tokenization strips accents: the model's
    tokenizer's `strip_accents` (keras-hub's WordPiece option), else False
    (a vocabulary alone cannot tell).

    Example:

    >>> import keras_hub
    >>> tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "cafe"]
    >>> resolve_strip_accents(keras_hub.models.BertTokenizer(vocabulary=tokens, strip_accents=True))
    True
    >>> resolve_strip_accents(None)
    False
    """
    return bool(getattr(tokenizer, "strip_accents", False))


def _token_embedding_size(model):
    for layer in model._flatten_layers(include_self=False):
        if hasattr(layer, "vocabulary_size") and hasattr(layer, "token_embedding"):
            return int(layer.vocabulary_size)
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.Embedding):
            return int(layer.input_dim)
    return None


def max_sequence_length(model):
    """Returns the longest sequence the model's position embedding allows."""
    for layer in model._flatten_layers(include_self=False):
        value = getattr(layer, "max_sequence_length", None)
        if isinstance(value, int) and hasattr(layer, "token_embedding"):
            return value
    return None


def resolve_labels(labels, count, class_names=None):
    """Returns the class names to embed, one per model output.

    Args:
        labels: the user's labels, or None.
        count: the number of model outputs.
        class_names: the model's own class names (a keras-kd
            `FinetuneModel`'s `class_names`), or None.

    Returns:
        `labels`, else `class_names`, else `"0"`, `"1"`, ...

    Raises:
        ValueError: not `count` non-empty strings, a newline in one, or
            the model's class names in another order than its outputs'.

    Example:

    >>> resolve_labels(None, 2, ["negative", "positive"])
    ['negative', 'positive']
    >>> resolve_labels(None, 2)
    ['0', '1']
    """
    if labels is None:
        labels = class_names if class_names is not None else [str(i) for i in range(count)]
    labels = list(labels)
    if len(labels) != count or not all(isinstance(x, str) and x for x in labels):
        raise ValueError(
            f"`labels` must be {count} non-empty strings, one per model "
            f"output. Received {len(labels)} labels: {labels!r}"
        )
    if any("\n" in x for x in labels):
        raise ValueError(f"Labels may not contain newlines. Received: {labels!r}")
    if class_names is not None and labels != list(class_names) and sorted(labels) == sorted(class_names):
        raise ValueError(
            f"labels={labels!r} names the model's classes in another order "
            f"than its outputs ({list(class_names)!r}), so the file would "
            "name every prediction wrongly. Leave `labels` out; it defaults "
            "to the model's class names."
        )
    return labels


def make_preprocessor(vocabulary, sequence_length, lowercase, strip_accents):
    """Returns the keras-hub BERT preprocessor matching the on-device one."""
    import keras_hub

    tokenizer = keras_hub.models.BertTokenizer(
        vocabulary=list(vocabulary), lowercase=lowercase, strip_accents=strip_accents
    )
    return keras_hub.models.BertTextClassifierPreprocessor(
        tokenizer, sequence_length=sequence_length
    )


def model_preprocessor(tokenizer, sequence_length):
    """The preprocessor that tokenizes texts as the model does, for
    `encode`: the model's own BERT tokenizer, packed as
    `[CLS] text [SEP]` to `sequence_length`; None for a tokenizer that is
    not a keras-hub `BertTokenizer`."""
    import keras_hub

    if not isinstance(tokenizer, keras_hub.models.BertTokenizer):
        return None
    return keras_hub.models.BertTextClassifierPreprocessor(
        tokenizer, sequence_length=sequence_length
    )


def encode(preprocessor, texts, dynamic_sequence=False):
    """Tokenizes `texts` into single examples of int32 arrays.

    Args:
        preprocessor: from `make_preprocessor`.
        texts: list of str, tokenized in one batch.
        dynamic_sequence: trim each example's padding (for models with a
            dynamic sequence length); otherwise every example has the
            preprocessor's sequence length.

    Returns:
        A list with one dict per text, keyed by `INPUT_NAMES`, of arrays of
        shape `(1, length)`.
    """
    x = preprocessor(list(texts))
    arrays = [np.asarray(x[name]).astype("int32") for name in KERAS_HUB_NAMES]
    lengths = arrays[1].sum(axis=1)
    examples = []
    for i, length in enumerate(lengths):
        end = max(int(length), 1) if dynamic_sequence else None
        examples.append(
            {
                name: a[i : i + 1, :end]
                for name, a in zip(INPUT_NAMES, arrays)
            }
        )
    return examples


def text_inputs(data, argument, class_labels=None):
    """Splits `data` into `(texts, labels or None)`.

    `data` is a `keras_kd.datasets.TextSplit` (or anything with `texts` and
    `labels`), a pair `(texts, labels)`, or a list of strings. With the
    model's `class_labels`, labels given as class names become their indices,
    and a name or index of no class is refused: it would be scored as a
    wrong prediction without a word.

    Example:

    >>> text_inputs((["a fine film", "dull"], ["pos", "neg"]), "data", ["neg", "pos"])
    (['a fine film', 'dull'], array([1, 0]))
    >>> text_inputs((["a fine film"], [5]), "data", ["neg", "pos"])
    Traceback (most recent call last):
    ...
    ValueError: `data` has the label 5, which is no class of the model's ['neg', 'pos']: labels are class indices 0 to 1 or those names.
    """
    if hasattr(data, "texts") and hasattr(data, "labels"):
        texts, labels = data.texts, data.labels
    elif (
        isinstance(data, tuple)
        and len(data) == 2
        and not isinstance(data[0], str)
    ):
        texts, labels = data
    else:
        texts, labels = data, None
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise TypeError(
            f"`{argument}` must be raw texts: a list of str, a pair (texts, "
            "labels) or a keras_kd.datasets TextSplit. Received: "
            f"{type(data).__name__}"
        )
    texts = list(texts)
    if not texts:
        raise ValueError(f"`{argument}` is empty; pass at least one text.")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (len(texts),):
            raise ValueError(
                f"`{argument}` has {len(texts)} texts but labels of shape "
                f"{labels.shape}; pass one integer label per text."
            )
        if class_labels is not None:
            labels = _class_indices(labels, list(class_labels), argument)
    return texts, labels


def _class_indices(labels, class_labels, argument):
    """`labels` (class names or indices) as indices of `class_labels`."""
    if labels.dtype.kind in "USO":
        index = {name: i for i, name in enumerate(class_labels)}
        indices = [index.get(str(label)) for label in labels]
    else:
        count = len(class_labels)
        indices = [
            int(label) if float(label).is_integer() and 0 <= label < count else None
            for label in labels
        ]
    if None in indices:
        bad = labels[indices.index(None)]
        bad = bad.item() if hasattr(bad, "item") else bad
        raise ValueError(
            f"`{argument}` has the label {bad!r}, which is no class of the "
            f"model's {class_labels!r}: labels are class indices 0 to "
            f"{len(class_labels) - 1} or those names."
        )
    return np.array(indices)
