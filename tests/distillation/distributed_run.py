"""Three steps of distillation of a tiny Dense student, with the live teacher
and from a `TeacherCache`, and three steps of fine-tuning a tiny BERT
`FinetuneModel` (its `token_id_model`, as the pipeline fine-tunes a
teacher); writes the trained weights, the logged losses (each step's, as
callbacks get them, and the epoch's) and an evaluation as JSON. tests/distillation/test_distribute.py runs it in new processes
(TensorFlow fixes its devices and collectives at start-up) and compares:

    python distributed_run.py OUT.json single     # the default strategy
    python distributed_run.py OUT.json mirrored   # 1 device, then
        # MirroredStrategy on 2 logical CPU devices, in one process
    TF_CONFIG=... python distributed_run.py OUT.json worker
        # one worker of MultiWorkerMirroredStrategy

The 48 examples come in 3 global batches of 16 with uneven sample weights
(some 0), and the student has an L2 regularizer: each replica's share of
the loss depends on the whole global batch.
"""

import contextlib
import json
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

GLOBAL_BATCH = 16


def examples():
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(3 * GLOBAL_BATCH, 8)).astype("float32")
    y = rng.integers(0, 3, size=(3 * GLOBAL_BATCH,)).astype("int32")
    weight = rng.uniform(0.0, 2.0, size=(3 * GLOBAL_BATCH,)).astype("float32")
    weight[rng.random(weight.shape) < 0.3] = 0.0
    return x, y, weight


def models():
    import keras

    from keras_kd.utils.testing import tiny_mlp

    return tiny_mlp(16, 1, regularizer=keras.regularizers.L2(0.01)), tiny_mlp(32, 2)


def batches(data):
    import tensorflow as tf

    options = tf.data.Options()
    # The examples are in memory: each worker takes its part of each batch.
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    return data.batch(GLOBAL_BATCH).with_options(options)


def fit_and_evaluate(model, dataset):
    """The epoch's history, each step's logs and `evaluate`'s results of
    `model` (compiled) on `dataset`."""
    import keras
    import numpy as np

    steps = []  # each step's logs, as the callbacks get them
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: steps.append(
            {k: np.asarray(v).tolist() for k, v in logs.items()}
        )
    )
    history = model.fit(dataset, epochs=1, verbose=0, callbacks=[record]).history
    evaluation = model.evaluate(dataset, verbose=0, return_dict=True)
    return {
        "history": {k: [float(v) for v in vs] for k, vs in history.items()},
        "steps": steps,
        "evaluation": {k: float(v) for k, v in evaluation.items()},
    }


def finetune(strategy):
    """The tiny BERT classifier's initial and trained weights, with
    `fit_and_evaluate`'s results, after 3 steps of plain Keras `fit`."""
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_kd.utils.testing import tiny_bert_classifier, tiny_bert_inputs

    x = tiny_bert_inputs(batch_size=3 * GLOBAL_BATCH, seed=0)
    y = np.random.default_rng(1).integers(0, 2, 3 * GLOBAL_BATCH).astype("int32")
    with strategy.scope():
        model = tiny_bert_classifier(num_layers=1).token_id_model
        model.compile(
            optimizer=keras.optimizers.SGD(0.5),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
            jit_compile=False,
        )
    initial = [w.numpy().tolist() for w in model.weights]
    run = fit_and_evaluate(model, batches(tf.data.Dataset.from_tensor_slices((x, y))))
    return {
        "initial": initial,
        "weights": [w.numpy().tolist() for w in model.weights],
        **run,
    }


def train(strategy, folder):
    """Returns `{"live": ..., "cache": ..., "finetune": ...}`, each the
    student's (or the fine-tuned model's) initial and trained weights, the
    history of one epoch of 3 steps, each step's logs, and `evaluate`'s
    results on the same batches."""
    import keras
    import tensorflow as tf

    import keras_kd

    x, y, weight = examples()
    examples_ds = tf.data.Dataset.from_tensor_slices((x, y, weight))
    results = {}
    for source in ("live", "cache"):
        with strategy.scope():
            student, teacher = models()
            distiller = keras_kd.Distiller(student=student, teacher=teacher)
            distiller.compile(
                optimizer=keras.optimizers.SGD(0.5),
                metrics=["accuracy"],
                alpha=0.5,
                temperature=2.0,
                jit_compile=False,
            )
        data = examples_ds
        if source == "cache":
            cache = keras_kd.TeacherCache.build(
                teacher, examples_ds, os.path.join(folder, "cache"),
                jit_compile=False, verbose=0,
            )
            data = cache.dataset(batch_size=GLOBAL_BATCH).unbatch()
        initial = [w.numpy().tolist() for w in student.weights]
        # `fit` is called outside the scope for the live teacher and inside
        # it for the cache, as users do both.
        with strategy.scope() if source == "cache" else contextlib.nullcontext():
            run = fit_and_evaluate(distiller, batches(data))
        results[source] = {
            "initial": initial,
            "weights": [w.numpy().tolist() for w in student.weights],
            **run,
        }
    results["finetune"] = finetune(strategy)
    return results


def main(out, mode):
    from keras_kd.utils.devices import split_cpu

    if mode == "mirrored":
        devices = split_cpu(2)
    import tensorflow as tf

    if mode == "worker":
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    with tempfile.TemporaryDirectory() as folder:
        if mode == "worker":
            results = {"worker": train(strategy, folder)}
        else:
            results = {"single": train(tf.distribute.get_strategy(), folder)}
        if mode == "mirrored":
            results["mirrored"] = train(
                tf.distribute.MirroredStrategy(devices), folder
            )
            results["replicas"] = len(devices)
    with open(out, "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
