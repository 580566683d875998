"""Distill a MiniLM text classifier on several devices with tf.distribute.

The steps of `distill_classifier.py` (fine-tune the teacher, build a student
from it, distill, evaluate), with every model created in a
`tf.distribute` strategy's scope, so that each step trains on all the
devices of the strategy. `--batch-size` is per replica: the global batch is
that times the number of replicas, and the learning rates are those of one
device on the global batch.

    python examples/distill_distributed.py                   # every local GPU
    python examples/distill_distributed.py --cpu-devices 2   # no GPU: the CPU
        # split into 2 logical devices, to try the multi-device path
    python examples/distill_distributed.py --strategy multi_worker
        # on each machine, with TF_CONFIG naming all workers and this one:
        # TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]},
        #             "task": {"type": "worker", "index": 0}}'
    python examples/distill_distributed.py --strategy tpu --tpu my-tpu

`--strategy mirrored` (the default) uses every local GPU, or the CPU when
there is none.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_kd.utils import devices
from keras_kd.utils.devices import split_cpu

STRATEGIES = ("mirrored", "multi_worker", "tpu")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--strategy", choices=STRATEGIES, default="mirrored")
    parser.add_argument(
        "--cpu-devices",
        type=int,
        default=1,
        help="split the CPU into this many logical devices (mirrored only)",
    )
    parser.add_argument("--tpu", default="", help="TPU name or address (tpu only)")
    parser.add_argument("--data", default="movie_reviews")
    parser.add_argument("--teacher", default="minilm_l6")
    parser.add_argument("--sequence-length", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--student-layers", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32, help="per replica")
    parser.add_argument("--run-name", default="distill_distributed")
    parser.add_argument("--output-dir", default="saved_models")
    parser.add_argument(
        "--quick", action="store_true", help="512 training sentences, length 32"
    )
    parser.add_argument("--verbose", type=int, default=1)
    return parser.parse_args(argv)


def make_strategy(name, cpu_devices=1, tpu=""):
    """The `tf.distribute` strategy to train under
    (`keras_kd.utils.devices.make_strategy`).

    `cpu_devices > 1` splits the CPU first, which must happen before
    TensorFlow sets up its devices: call this at the start of the program.
    """
    if cpu_devices > 1:
        if name != "mirrored":
            raise SystemExit("--cpu-devices is for --strategy mirrored")
        split_cpu(cpu_devices)
    return devices.make_strategy(name, tpu)


def main(argv=None):
    args = parse_args(argv)
    strategy = make_strategy(args.strategy, args.cpu_devices, args.tpu)
    import keras

    import keras_kd
    from keras_kd import datasets, pipeline, transfer
    from keras_kd.utils.io import atomic_write_json

    replicas = strategy.num_replicas_in_sync
    global_batch = args.batch_size * replicas
    print(f"{type(strategy).__name__}: {replicas} replicas, global batch {global_batch}")
    keras.utils.set_random_seed(0)
    data = datasets.load(args.data)
    train, test = data.train, data.test or data.validation
    sequence_length = args.sequence_length
    if args.quick:
        train, test, sequence_length = train.sample(512), test.sample(256), 32
    num_classes = len(data.class_names)

    with strategy.scope():
        teacher = transfer.build_finetune_model(
            args.teacher, num_classes=num_classes, sequence_length=sequence_length
        )
        teacher.token_id_model.compile(
            optimizer=keras.optimizers.Adam(5e-5),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
    train_ds = train.tokenize(teacher.preprocessor, global_batch, shuffle=True, seed=0)
    print(f"[1/3] Fine-tuning the teacher ({args.teacher}) on {len(train)} texts")
    # train_ds shuffles itself; Keras would warn that it cannot.
    teacher.token_id_model.fit(train_ds, epochs=1, shuffle=False, verbose=args.verbose)

    with strategy.scope():
        student = transfer.student_like(teacher, num_layers=args.student_layers)
        distiller = keras_kd.Distiller(
            student=student.token_id_model, teacher=teacher.token_id_model
        )
        distiller.compile(optimizer=keras.optimizers.Adam(1e-4), metrics=["accuracy"])
    print(f"[2/3] Distilling into a {args.student_layers}-layer student")
    history = distiller.fit(train_ds, epochs=args.epochs, verbose=args.verbose)

    print("[3/3] Evaluating on the test split")
    with strategy.scope():  # evaluation compiles the models: in their scope
        accuracy = {
            name: pipeline.evaluate_accuracy(model, test)
            for name, model in (("student", student), ("teacher", teacher))
        }
    results = {
        "strategy": type(strategy).__name__,
        "replicas": replicas,
        "global_batch": global_batch,
        "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
        "student_test_accuracy": accuracy["student"],
        "teacher_test_accuracy": accuracy["teacher"],
    }
    run_dir = os.path.join(args.output_dir, args.run_name)
    os.makedirs(run_dir, exist_ok=True)
    student.save(os.path.join(run_dir, "student.keras"))
    atomic_write_json(os.path.join(run_dir, "results.json"), results)
    print(
        f"teacher {results['teacher_test_accuracy']:.4f}, student "
        f"{results['student_test_accuracy']:.4f} test accuracy; student saved "
        f"to {run_dir}"
    )
    return results


if __name__ == "__main__":
    main()
