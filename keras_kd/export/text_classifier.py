"""`TFLiteTextClassifier`: raw strings in, class probabilities out."""

import numpy as np

from keras_kd.export import metadata as md
from keras_kd.export import serving


class TFLiteTextClassifier:
    """Classifies raw strings with a `.tflite` exported by keras-kd.

    It reads the vocabulary, labels and tokenizer settings embedded in the
    file, tokenizes like MediaPipe's `TextClassifier` (lowercased WordPiece,
    `[CLS] text [SEP]`, truncated to the model's sequence length; with the
    accents stripped when the file says so, which MediaPipe cannot) and runs the
    model with the LiteRT interpreter, for users without MediaPipe and for
    tests. MediaPipe and keras-hub tokenize CJK text differently; they agree
    on cased ASCII, accents, emoji and truncation.

    Args:
        path: path of a `.tflite` written by `keras_kd.export.export_tflite`.
        num_threads: LiteRT interpreter threads.

    Attributes:
        labels: list of class names, one per output.
        sequence_length: tokens per example (the maximum when the model has a
            dynamic sequence length).
        dynamic_sequence: whether the model accepts any sequence length.

    Example, with `tflite_path` a file from `export_tflite` (a tiny model
    with random weights, so its probabilities mean nothing):

    >>> classifier = TFLiteTextClassifier(tflite_path)
    >>> classifier.labels, classifier.sequence_length
    (['negative', 'positive'], 16)
    >>> probabilities = classifier.predict(["a fine film", "a dull one"])
    >>> probabilities.shape, bool(abs(probabilities.sum(axis=1) - 1).max() < 1e-5)
    ((2, 2), True)
    >>> sorted(label for label, _ in classifier.classify("a fine film"))
    ['negative', 'positive']
    """

    def __init__(self, path, num_threads=2):
        from ai_edge_litert.interpreter import Interpreter

        with open(path, "rb") as f:
            self._model_buffer = f.read()
        settings, vocabulary, labels = md.read_metadata(self._model_buffer)
        self.path = str(path)
        self.labels = labels
        self.sequence_length = int(settings["sequence_length"])
        self.dynamic_sequence = bool(settings["dynamic_sequence"])
        self.settings = settings
        self._preprocessor = serving.make_preprocessor(
            vocabulary, self.sequence_length, settings["lowercase"],
            # Absent from files exported before keras-kd carried it; those
            # never stripped accents.
            settings.get("strip_accents", False),
        )
        self._interpreter = Interpreter(
            model_content=self._model_buffer, num_threads=num_threads
        )
        self._runner = self._interpreter.get_signature_runner()

    def encode(self, texts):
        """Returns the model inputs of `texts`: one dict per text of int32
        arrays of shape `(1, length)`, keyed by input name."""
        return serving.encode(
            self._preprocessor, texts, dynamic_sequence=self.dynamic_sequence
        )

    def run(self, inputs):
        """Runs the model on one example of encoded inputs (batch of 1)."""
        (probabilities,) = self._runner(**inputs).values()
        return probabilities[0]

    def predict(self, texts):
        """Returns the class probabilities of `texts`, shape `(n, classes)`."""
        if isinstance(texts, str):
            texts = [texts]
        return np.stack([self.run(x) for x in self.encode(texts)])

    def classify(self, text):
        """Returns `[(label, probability), ...]` for one text, best first."""
        probabilities = self.predict([text])[0]
        order = np.argsort(-probabilities, kind="stable")
        return [(self.labels[i], float(probabilities[i])) for i in order]
