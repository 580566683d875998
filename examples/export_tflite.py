"""Export a fine-tuned classifier to TFLite and classify raw text with the file.

    python examples/finetune_backbone.py --quick            # writes a model first
    python examples/export_tflite.py --model saved_models/finetune_backbone/model.keras
    python examples/export_tflite.py --quick                # builds a small model itself

The `.tflite` files follow the on-device text-classifier convention
(`input_word_ids`, `input_mask`, `input_type_ids` in, probabilities out) and
carry their WordPiece vocabulary and labels as metadata, so MediaPipe's
`TextClassifier` on Android, iOS or the web classifies raw strings with them
alone. In Python, `keras_kd.export.TFLiteTextClassifier` does the same.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from keras_kd import datasets, export, transfer  # noqa: E402
from keras_kd.utils.units import megabytes  # noqa: E402

EXAMPLES = [
    "A gorgeous, witty and moving film.",
    "Dull, overlong and lifeless.",
    "THE BEST THING I'VE SEEN ALL YEAR!!! 🎬",
]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--model", help="a .keras model from finetune_backbone.py")
    parser.add_argument("--data", default="movie_reviews")
    parser.add_argument(
        "--quantization",
        nargs="+",
        default=["none", "dynamic_int8"],
        help="any of none, float16, dynamic_int8, int8",
    )
    parser.add_argument("--sequence-length", type=int, default=64)
    parser.add_argument("--run-name", default="export_tflite")
    parser.add_argument("--output-dir", default="saved_models")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--quick", action="store_true")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    data = datasets.load(args.data)
    if args.model:
        model = keras.models.load_model(args.model)
    else:
        # A head trained briefly on frozen MiniLM features, to have a model.
        model = transfer.build_finetune_model(
            "minilm_l6",
            num_classes=len(data.class_names),
            freeze="all",
            sequence_length=args.sequence_length,
        )
        train = data.train.sample(512) if args.quick else data.train
        model.fit(train.texts, train.labels, epochs=1, verbose=0)
    run_dir = os.path.join(args.output_dir, args.run_name)
    test = data.test
    card = export.export_bundle(
        model.token_id_model,
        run_dir,
        labels=list(data.class_names),
        vocabulary=model.preprocessor.tokenizer,
        sequence_length=model.preprocessor.sequence_length,
        quantizations=tuple(args.quantization),
        representative_data=data.train.sample(100).texts,
        verification_data=test.sample(200),
        overwrite=args.overwrite,
    )
    print(f"\n{'file':28s} {'MB':>7s} {'max |dp|':>10s} {'argmax agree':>13s}")
    for name, row in card["tflite"].items():
        print(
            f"{name:28s} {megabytes(row['size_bytes']):7.1f} "
            f"{row['max_abs_diff']:10.2e} {row['argmax_agreement']:13.3f}"
        )
    for name in card["tflite"]:
        classifier = export.TFLiteTextClassifier(os.path.join(run_dir, name))
        print(f"\n{name}:")
        for text, probabilities in zip(EXAMPLES, classifier.predict(EXAMPLES)):
            best = int(probabilities.argmax())
            print(f"  {classifier.labels[best]:>9s} {probabilities[best]:.3f}  {text}")
    return card


if __name__ == "__main__":
    main()
