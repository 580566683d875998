"""`Distiller`: trains a student model on labels and on a teacher's outputs."""

import types

import keras
import tensorflow as tf
from keras import ops

from keras_kd._backend import require_tensorflow_backend
from keras_kd.datasets.tokenization import warn_of_unknown_tokens
from keras_kd.distillation import losses as kd_losses
from keras_kd.distillation import objective
from keras_kd.distillation.feature_loss import (
    FeatureMatching,
    cached_teacher_error,
    check_feature_losses,
)
from keras_kd.distillation.fit_checks import (
    checked_evaluation_data,
    checked_fit_data,
)
from keras_kd.distillation.inputs import split_cached_teacher, tokenized_inputs
from keras_kd.distillation.multi_teacher import (
    check_teachers,
    combine_teacher_logits,
    teacher_mixture,
    teacher_temperature,
)
from keras_kd.distillation.shapes import check_exclusive_classes, is_sparse
from keras_kd.distillation.xla import keras_jit_compile
from keras_kd.utils.compile_config import compile_saved, with_optimizer_state
from keras_kd.utils.multi_worker import MultiWorkerFit
from keras_kd.utils.validation import check_number

DEFAULT_TEMPERATURE = 2.0


def _preprocessor(model):
    return getattr(model, "preprocessor", None)


@keras.saving.register_keras_serializable(package="keras_kd")
class Distiller(MultiWorkerFit, keras.Model):
    """Knowledge distillation of a `teacher` model into a `student` model.

    The distiller is a `keras.Model` whose `call` is the student's: `predict`
    and `evaluate` use the student alone. Its `fit` minimizes

    `(1 - alpha) * student_loss(y, student(x))
     + alpha * distillation_loss(teacher(x), student(x))
     + sum(student.losses)`

    where each of the two loss terms is averaged over the same weighted
    positions (examples, or the tokens a padding mask keeps) and the
    student's regularization losses are added once, unweighted. The teacher
    runs in inference mode (`training=False`) before the gradient tape is
    opened, and is frozen: only the student's trainable weights move.
    Batches of a `TeacherCache` carry the teacher's logits, and the teacher
    is not run.

    Several teachers (`teacher=[t1, t2, ...]`) give one target: the
    weighted average of their probabilities (not logits) at the
    distillation temperature, or, for `LogitsMSE`, which matches logits,
    of their logits (`keras_kd.distillation.multi_teacher`).
    `compile(feature_losses=[...])` adds weighted losses between
    intermediate layers, from the same single forward pass of each model.

    Under a `tf.distribute` strategy (models and distiller created in its
    `scope()`), each replica averages over the weight of the whole global
    batch: N replicas give one device's weights and logged losses on the
    same global batches (tested with `MirroredStrategy` on 2 devices, and
    with `MultiWorkerMirroredStrategy` on 2 worker processes, under which
    the distiller works around two faults of Keras 3.15's `fit`: see
    `keras_kd.utils.multi_worker`).

    Training is XLA-compiled by default, also on CPU where Keras's own
    `jit_compile="auto"` turns XLA off (not under a `tf.distribute`
    strategy, where Keras turns it off too). What XLA buys depends on the
    CPU: on one 2-core machine it made a 2-layer BERT student's training
    step 1.28x faster and a 6-layer teacher's forward pass 1.65x faster
    (MiniLM's widths, batch 32, sequence length 64;
    `bench/distiller_step.py`); on another, 0.94x and 1.10x. Pass
    `jit_compile=False` to `compile` to train without it. If the models
    cannot be compiled with XLA, the distiller warns once and trains
    without it.

    Args:
        student: a `keras.Model` producing logits.
        teacher: a `keras.Model` taking the same inputs and producing logits
            of the same shape as the student's, or a list of them.
        teacher_weights: with several teachers, one float >= 0 each (a
            positive sum; normalized to sum to 1). Default: equal.
        name: name of the distiller model.

    Example:

    >>> import keras, numpy as np
    >>> import keras_kd
    >>> def mlp(width):
    ...     return keras.Sequential([
    ...         keras.Input((8,)),
    ...         keras.layers.Dense(width, activation="relu"),
    ...         keras.layers.Dense(3),
    ...     ])
    >>> distiller = keras_kd.Distiller(student=mlp(4), teacher=mlp(16))
    >>> distiller.compile(optimizer="adam", metrics=["accuracy"],
    ...                   alpha=0.5, temperature=2.0,
    ...                   jit_compile=False)  # 2 steps: not worth compiling
    >>> x = np.random.rand(32, 8).astype("float32")
    >>> y = np.random.randint(0, 3, size=(32,))
    >>> history = distiller.fit(x, y, epochs=1, batch_size=16, verbose=0)
    >>> sorted(history.history)
    ['accuracy', 'distillation_loss', 'loss', 'student_loss']
    >>> distiller.predict(x, verbose=0).shape
    (32, 3)
    """

    def __init__(
        self, student, teacher, teacher_weights=None, name="distiller", **kwargs
    ):
        require_tensorflow_backend()
        teachers, weights = check_teachers(student, teacher, teacher_weights)
        super().__init__(name=name, **kwargs)
        self.student = student
        # One teacher is the attribute itself, as saved files expect.
        self.teacher = teachers[0] if len(teachers) == 1 else teachers
        self.teacher_weights = weights
        for t in teachers:
            t.trainable = False
            # Each variable too: in a teacher loaded from a file (a saved
            # Distiller), the layer flag does not reach every variable, and
            # trainable teacher variables would join the optimizer (whose
            # saved state would then not load).
            for variable in t.variables:
                variable.trainable = False
        self.student_loss_tracker = keras.metrics.Mean(name="student_loss")
        self.distillation_loss_tracker = keras.metrics.Mean(name="distillation_loss")
        self.feature_losses = []
        self.feature_loss_trackers = {}
        # Not tracked: the extractors share the models' weights, which the
        # distiller would otherwise save again.
        self._features = types.SimpleNamespace(matching=None)
        self._jit_auto = False
        self._first_batch_checked = False
        self._num_classes = None
        if student.built and all(t.built for t in teachers):
            self.built = True

    @property
    def teachers(self):
        """The teachers, as a list (of one for a single teacher)."""
        return list(self.teacher) if isinstance(self.teacher, list) else [self.teacher]

    def call(self, inputs, training=None):
        return self.student(inputs, training=training)

    def compile(
        self,
        optimizer="adam",
        metrics=None,
        student_loss_fn=None,
        distillation_loss_fn=None,
        alpha=0.5,
        temperature=None,
        evaluate_distillation=False,
        jit_compile="auto",
        feature_losses=None,
        **kwargs,
    ):
        """Configures the distiller for training.

        Args:
            optimizer: optimizer instance or name, as in `keras.Model.compile`.
            metrics: metrics of the student's predictions against the labels,
                as in `keras.Model.compile`.
            student_loss_fn: loss between labels and student logits: a name
                or config of `keras.losses`, a `keras.losses.Loss` or a
                function `(y_true, y_pred)`, as in `keras.Model.compile`. The
                student produces logits, so a cross-entropy given by name
                (`"sparse_categorical_crossentropy"`,
                `"categorical_crossentropy"`, `"binary_crossentropy"`, ...)
                or as Keras's function is built with `from_logits=True`; an
                instance must have `from_logits=True`. Defaults to
                `"sparse_categorical_crossentropy"`.
            distillation_loss_fn: loss between teacher and student logits: a
                `keras_kd.losses` instance or name, another
                `keras.losses.Loss`, or a function
                `(teacher_logits, student_logits)`. Defaults to
                `keras_kd.losses.KLDivergence(temperature)`. Both losses give
                one value per position, which the distiller averages over
                the weighted positions itself: a loss instance's
                `reduction` is not used.
            alpha: float in [0, 1], the weight of the distillation loss;
                `1 - alpha` weighs the student loss. With `alpha=0` (and no
                feature losses) the teacher is not run; with `alpha=1`
                labels are not needed.
            temperature: float > 0, the temperature of a distillation loss
                given by name or left to the default (2.0 if not given), and
                at which several teachers' probabilities are mixed for a
                loss function without one. A loss instance carries its own:
                a different `temperature` beside it is refused, since one of
                the two would be ignored.
            evaluate_distillation: if True, `evaluate` also runs the teacher
                and reports the distillation loss; by default it evaluates the
                student alone and `loss` is the student loss.
            jit_compile: `"auto"` (default: XLA wherever the models compile
                with it, CPU included, except under a `tf.distribute`
                strategy), True or False.
            feature_losses: a list of `FeatureLoss` (`HiddenStateLoss`,
                `AttentionRelationLoss`) between the intermediate layers of
                one live teacher (not a `TeacherCache`) and the student,
                each added with its `weight` (not scaled by `alpha`) and
                logged under its name.
            **kwargs: other arguments of `keras.Model.compile`
                (`steps_per_execution`, `run_eagerly`, ...). `loss` is not
                accepted: use `student_loss_fn`.

        Example:

        >>> import keras, keras_kd
        >>> def linear():
        ...     return keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        >>> distiller = keras_kd.Distiller(student=linear(), teacher=linear())
        >>> distiller.compile(
        ...     optimizer=keras.optimizers.Adam(1e-3),
        ...     metrics=["accuracy"],
        ...     distillation_loss_fn=keras_kd.losses.KLDivergence(temperature=4.0),
        ...     alpha=0.9,
        ... )
        >>> distiller.alpha, distiller.distillation_loss_fn.temperature
        (0.9, 4.0)
        """
        if "loss" in kwargs:
            raise ValueError(
                "`Distiller.compile` takes `student_loss_fn` (labels vs "
                "student) and `distillation_loss_fn` (teacher vs student) "
                f"instead of `loss`. Received: loss={kwargs['loss']!r}"
            )
        alpha = check_number(
            "alpha",
            alpha,
            0,
            1,
            example="0.5; alpha weighs the distillation loss against the "
            "student loss (0: labels only, 1: the teacher only)",
        )
        given_temperature = temperature
        temperature = kd_losses.check_temperature(
            DEFAULT_TEMPERATURE if temperature is None else temperature
        )
        keras_jit = keras_jit_compile(
            jit_compile,
            kwargs.get("run_eagerly", False),
            self._distribute_strategy is not None or tf.distribute.has_strategy(),
        )
        distillation_loss = kd_losses.get(
            "kl_divergence"
            if distillation_loss_fn is None
            else distillation_loss_fn,
            temperature=temperature,
        )
        own_temperature = getattr(distillation_loss, "temperature", None)
        if (
            given_temperature is not None
            and own_temperature is not None
            and float(own_temperature) != temperature
        ):
            raise ValueError(
                f"temperature={given_temperature!r} contradicts the "
                f"distillation loss's own temperature={own_temperature!r} "
                f"({type(distillation_loss).__name__}), which is the one "
                "used. Set it on the loss, e.g. "
                f"{type(distillation_loss).__name__}(temperature="
                f"{given_temperature!r}), and leave `temperature` out."
            )
        if (
            alpha > 0
            and isinstance(distillation_loss, kd_losses.DistillationLoss)
            and not distillation_loss.matches_logits
        ):
            check_exclusive_classes(
                [("student", self.student)]
                + [(f"teacher {t.name!r}", t) for t in self.teachers],
                type(distillation_loss).__name__,
            )
        # Bound before anything is set: a bad layer map leaves no half compile.
        feature_losses = check_feature_losses(feature_losses, len(self.teachers))
        matching = (
            FeatureMatching(feature_losses, self.teacher, self.student)
            if feature_losses
            else None
        )
        super().compile(
            optimizer=optimizer,
            metrics=metrics,
            jit_compile=keras_jit,
            **kwargs,
        )
        self.alpha = alpha
        self.temperature = temperature
        self.evaluate_distillation = bool(evaluate_distillation)
        self.student_loss_fn = objective.student_loss(student_loss_fn)
        self.distillation_loss_fn = distillation_loss
        self.feature_losses = feature_losses
        self._features.matching = matching
        for loss in feature_losses:
            if loss.name not in self.feature_loss_trackers:
                self.feature_loss_trackers[loss.name] = keras.metrics.Mean(
                    name=loss.name
                )
        self._jit_auto = jit_compile == "auto" and keras_jit
        self._first_batch_checked = False
        self._compile_args = dict(
            optimizer=self.optimizer,
            metrics=metrics,
            student_loss_fn=student_loss_fn,
            distillation_loss_fn=distillation_loss_fn,
            alpha=alpha,
            temperature=given_temperature,
            evaluate_distillation=self.evaluate_distillation,
            jit_compile=jit_compile,
            feature_losses=feature_losses,
            **kwargs,
        )

    def get_compile_config(self):
        if not self.compiled:
            return None
        return with_optimizer_state(self, {
            key: keras.saving.serialize_keras_object(value)
            for key, value in self._compile_args.items()
        })

    def compile_from_config(self, config):
        # Files saved before the flag existed held built optimizers.
        compile_saved(self, config, built_if_unknown=True)

    def _uses_labels(self, training):
        return self.alpha < 1.0 or not training

    def _uses_teacher(self, training):
        return (self.alpha > 0.0 or bool(self.feature_losses)) and (
            training or self.evaluate_distillation
        )

    def _teacher_outputs(self, x, y, training):
        """`(teacher_logits, feature_targets)` for the batch, without
        gradients: cached in `y`, or from one forward pass of each teacher;
        `(None, None)` when the teacher is not needed."""
        _, cached = split_cached_teacher(y)
        if not self._uses_teacher(training):
            return None, None
        if cached is not None:
            if self.feature_losses:
                raise cached_teacher_error(self.feature_losses)
            return keras.tree.map_structure(ops.stop_gradient, cached), None
        if self._features.matching is not None:
            return self._features.matching.teacher_outputs(x)
        logits = self.live_teacher_logits(x)
        return keras.tree.map_structure(ops.stop_gradient, logits), None

    def live_teacher_logits(self, x):
        """The target the live teachers give for `x`: one teacher's logits,
        or several teachers' combination at the distillation loss's
        temperature and mixture (`keras_kd.distillation.multi_teacher`)."""
        return combine_teacher_logits(
            [t(x, training=False) for t in self.teachers],
            self.teacher_weights,
            teacher_temperature(self.distillation_loss_fn, self.temperature),
            teacher_mixture(self.distillation_loss_fn),
        )

    def _student_outputs(self, x, training, teacher):
        """`(logits, features)`: the student's, with its intermediate
        features (from the same forward pass) when the teacher's outputs
        (`_teacher_outputs`) hold feature targets."""
        if teacher[1] is None:
            return self.student(x, training=training), None
        out = self._features.matching.student(x, training=training)
        return out["logits"], out["features"]

    def step_weights(self):
        """The weights a training step moves: the student's and the feature
        losses' projections."""
        extra = [w for loss in self.feature_losses for w in loss.trainable_weights]
        return self.student.trainable_weights + extra

    def _forward(self, x, y, sample_weight, teacher, training):
        """The student's forward pass and the losses: `(y_pred,
        replica_loss, logs)`; `teacher` is `_teacher_outputs`'s pair."""
        y_pred, features = self._student_outputs(x, training, teacher)
        loss, logs = self._loss_terms(x, y, sample_weight, y_pred, features, teacher, training)
        return y_pred, loss, logs

    def _loss_terms(self, x, y, sample_weight, y_pred, features, teacher, training):
        """Returns `(replica_loss, logs)` (`objective.weighted_total`): the
        logits terms (`objective.logits_terms`) and the feature terms."""
        teacher_logits, targets = teacher
        terms, weights = objective.logits_terms(
            self.student_loss_fn if self._uses_labels(training) else None,
            self.distillation_loss_fn,
            self.alpha,
            split_cached_teacher(y)[0],
            teacher_logits,
            y_pred,
        )
        if targets is not None and features is not None:
            feature_terms, feature_weights = self._features.matching.terms(
                x, targets, features, position_rank=len(y_pred.shape) - 1
            )
            terms.update(feature_terms)
            weights.update(feature_weights)
        return objective.weighted_total(
            terms,
            weights,
            objective.position_weights(sample_weight, y_pred),
            self.student.losses,
        )

    def _trackers(self):
        features = {n.name: self.feature_loss_trackers[n.name] for n in self.feature_losses}
        return {
            "loss": self._loss_tracker,
            "student_loss": self.student_loss_tracker,
            "distillation_loss": self.distillation_loss_tracker,
            **features,
        }

    def _update_loss_trackers(self, x, logs):
        batch_size = tf.shape(next(v for v in keras.tree.flatten(x)))[0]
        for name, tracker in self._trackers().items():
            # Feature terms are absent where the teacher does not run.
            if name in logs:
                tracker.update_state(logs[name], sample_weight=batch_size)

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        # Before the tape: nothing of the frozen teacher's forward pass is
        # recorded (in eager mode the tape would keep its activations).
        teacher = self._teacher_outputs(x, y, training=True)
        trainable = self.step_weights()
        with tf.GradientTape() as tape:
            y_pred, loss, logs = self._forward(
                x, y, sample_weight, teacher, training=True
            )
            scaled = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, trainable)
        self.optimizer.apply_gradients(zip(gradients, trainable))
        self._update_loss_trackers(x, logs)
        return self._step_logs(x, y, y_pred, sample_weight, training=True)

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        teacher = self._teacher_outputs(x, y, training=False)
        y_pred, _, logs = self._forward(x, y, sample_weight, teacher, training=False)
        self._update_loss_trackers(x, logs)
        return self._step_logs(x, y, y_pred, sample_weight, training=False)

    def _step_logs(self, x, y, y_pred, sample_weight, training):
        y, _ = split_cached_teacher(y)
        logs = self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
        # Trackers of feature losses an earlier `compile` had.
        for name in set(self.feature_loss_trackers) - set(self._trackers()):
            logs.pop(name, None)
        if not training and not self._uses_teacher(training):
            # Without the teacher, evaluation reports the student loss only.
            for name in set(self._trackers()) - {"loss", "student_loss"}:
                logs.pop(name, None)
        return self.worker_logs(logs)

    def fit(self, x=None, y=None, **kwargs):
        """Trains the student; arguments are those of `keras.Model.fit`.

        Before the first step, the first batch is checked (output, label
        and feature shapes) and, with `jit_compile="auto"`, the step is
        lowered to XLA once; if that fails the distiller warns and trains
        without XLA. With a sparse categorical cross-entropy, every batch's
        class ids are checked as they are read (an id outside the student's
        classes raises an error naming it, where XLA would give NaN
        losses), and every batch's `token_ids` against the models'
        vocabulary (XLA would clamp an id past it to the last row). Training
        stops at the first non-finite loss with a `FloatingPointError`
        naming the term (`StopOnNonFiniteLoss`). See
        `keras_kd.distillation.fit_checks`.

        Args:
            x: a `tf.data.Dataset`, a Python generator or a
                `keras.utils.PyDataset` of `(x, y)` or `(x, y, sample_weight)`
                batches, or input arrays (or a dict of arrays, such as
                keras-hub's `token_ids`/`padding_mask`).
            y: labels, when `x` holds arrays.
            **kwargs: the other arguments of `keras.Model.fit`.

        Returns:
            A `keras.callbacks.History`; `history.history` holds `loss`,
            `student_loss`, `distillation_loss` and the compiled metrics
            per epoch.
        """
        if not self.compiled:
            raise RuntimeError(
                "The Distiller is not compiled. Call "
                "`distiller.compile(optimizer='adam', alpha=0.5, "
                "temperature=2.0)` before `fit()`."
            )
        preprocessor = getattr(self.student, "preprocessor", None)
        if preprocessor is not None:
            warn_of_unknown_tokens(preprocessor.tokenizer, x)
        x, y, kwargs = self._tokenize_texts(x, y, kwargs, shuffle=True)
        x, y, kwargs = checked_fit_data(self, x, y, kwargs)
        return super().fit(x=x, y=y, **kwargs)

    def evaluate(self, x=None, y=None, **kwargs):
        """Evaluates the student (see `compile`'s `evaluate_distillation`);
        arguments are those of `keras.Model.evaluate`, and raw texts work as
        in `fit`. Class and token ids are checked as in `fit`."""
        x, y, kwargs = self._tokenize_texts(x, y, kwargs)
        # `fit` evaluates its validation data, already checked, this way.
        if not kwargs.get("_use_cached_eval_dataset"):
            x, y = checked_evaluation_data(self, x, y, kwargs)
        return super().evaluate(x=x, y=y, **kwargs)

    def _checks_class_ids(self, training):
        return self._uses_labels(training) and is_sparse(self.student_loss_fn)

    def predict(self, x, **kwargs):
        """The student's predictions; raw texts work as in `fit`."""
        x, _, kwargs = self._tokenize_texts(x, None, kwargs)
        if isinstance(x, tf.data.Dataset) and isinstance(x.element_spec, tuple):
            x = x.map(lambda x, *_: x)
        return super().predict(x, **kwargs)

    def _tokenize_texts(self, x, y, kwargs, shuffle=False):
        preprocessor = getattr(self.student, "preprocessor", None)
        return tokenized_inputs(preprocessor, x, y, kwargs, shuffle)

    def get_config(self):
        several = len(self.teachers) > 1
        return {
            "name": self.name,
            "trainable": self.trainable,
            "student": keras.saving.serialize_keras_object(self.student),
            "teacher": keras.saving.serialize_keras_object(
                self.teachers if several else self.teacher
            ),
            "teacher_weights": self.teacher_weights if several else None,
            "shared_preprocessor": [
                i for i, t in enumerate(self.teachers)
                if _preprocessor(t) is not None
                and _preprocessor(t) is _preprocessor(self.student)
            ],
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        # "teacher" is a list of configs for several teachers.
        config = dict(config)
        trainable = config.pop("trainable", True)
        shared = config.pop("shared_preprocessor", [])
        for role in ("student", "teacher"):
            config[role] = keras.saving.deserialize_keras_object(
                config[role], custom_objects=custom_objects
            )
        teachers = config["teacher"] if isinstance(config["teacher"], list) else [config["teacher"]]
        # A preprocessor the student shared with a teacher (as
        # `student_like` makes them) is saved once, its vocabulary with it:
        # shared again, it loads that vocabulary; two copies would leave
        # the second without one.
        for i in shared:
            teachers[i].preprocessor = config["student"].preprocessor
        distiller = cls(**config)
        distiller.trainable = trainable
        return distiller

