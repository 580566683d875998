"""`Distiller`: trains a student model on labels and on a teacher's outputs."""

import warnings

import keras
import tensorflow as tf
from keras import ops

from keras_kd._backend import require_tensorflow_backend
from keras_kd.distillation import losses as kd_losses
from keras_kd.distillation import objective
from keras_kd.distillation.inputs import (
    check_class_ids,
    peek_first_batch,
    split_cached_teacher,
    tokenized_inputs,
    with_checked_class_ids,
)
from keras_kd.distillation.non_finite import StopOnNonFiniteLoss
from keras_kd.distillation.shapes import (
    check_label_shape,
    check_logits_shapes,
    check_model_output_shapes,
    is_sparse,
)
from keras_kd.distillation.top_k import is_top_k
from keras_kd.distillation.xla import xla_lowering_error
from keras_kd.utils.validation import check_choice, check_number


@keras.saving.register_keras_serializable(package="keras_kd")
class Distiller(keras.Model):
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

    Under a `tf.distribute` strategy (models and distiller created in its
    `scope()`), each replica averages over the weight of the whole global
    batch: N replicas give one device's weights and logged losses on the
    same global batches (tested with `MirroredStrategy`; Keras 3.15's `fit`
    fails under `MultiWorkerMirroredStrategy`).

    Training is XLA-compiled by default, also on CPU where Keras's own
    `jit_compile="auto"` turns XLA off (not under a `tf.distribute`
    strategy, where Keras turns it off too). On a 2-core CPU, XLA made a
    2-layer BERT student's training step 1.28x faster and a 6-layer
    teacher's forward pass 1.65x faster (MiniLM's widths, batch 32, sequence
    length 64; `bench/distiller_step.py`). If the models cannot be compiled
    with XLA, the distiller warns once and trains without it.

    Args:
        student: a `keras.Model` producing logits.
        teacher: a `keras.Model` taking the same inputs and producing logits
            of the same shape as the student's.
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

    def __init__(self, student, teacher, name="distiller", **kwargs):
        require_tensorflow_backend()
        for role, model in (("student", student), ("teacher", teacher)):
            if not isinstance(model, keras.Model):
                raise TypeError(
                    f"`{role}` must be a `keras.Model` producing logits. "
                    f"Received: {role}={model!r} of type "
                    f"{type(model).__name__}"
                )
        if student is teacher:
            raise ValueError(
                "`student` and `teacher` are the same model object; the "
                "teacher is frozen, so the student would never train. Pass "
                "a separate (for example smaller) student model."
            )
        if _is_causal_lm(teacher) and _is_causal_lm(student):
            from keras_kd.transfer.causal_lm import check_same_tokenizer

            check_same_tokenizer(teacher, student)
        check_model_output_shapes(teacher, student)
        super().__init__(name=name, **kwargs)
        self.student = student
        self.teacher = teacher
        self.teacher.trainable = False
        self.student_loss_tracker = keras.metrics.Mean(name="student_loss")
        self.distillation_loss_tracker = keras.metrics.Mean(
            name="distillation_loss"
        )
        self._jit_auto = False
        self._first_batch_checked = False
        self._num_classes = None
        if student.built and teacher.built:
            self.built = True

    def call(self, inputs, training=None):
        return self.student(inputs, training=training)

    def compile(
        self,
        optimizer="adam",
        metrics=None,
        student_loss_fn=None,
        distillation_loss_fn=None,
        alpha=0.5,
        temperature=2.0,
        evaluate_distillation=False,
        jit_compile="auto",
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
                `1 - alpha` weighs the student loss. With `alpha=0` the teacher
                is not run; with `alpha=1` labels are not needed.
            temperature: float > 0, the temperature of the default
                distillation loss (ignored when `distillation_loss_fn` is an
                instance, which carries its own).
            evaluate_distillation: if True, `evaluate` also runs the teacher
                and reports the distillation loss; by default it evaluates the
                student alone and `loss` is the student loss.
            jit_compile: `"auto"` (default: XLA wherever the models compile
                with it, CPU included, except under a `tf.distribute`
                strategy), True or False.
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
        temperature = kd_losses.check_temperature(temperature)
        check_choice("jit_compile", jit_compile, ("auto", True, False))
        run_eagerly = kwargs.get("run_eagerly", False)
        # As Keras's "auto": no XLA under tf.distribute, whose cross-replica
        # calls XLA does not compile.
        distributed = (
            self._distribute_strategy is not None or tf.distribute.has_strategy()
        )
        keras_jit = (
            not (run_eagerly or distributed)
            if jit_compile == "auto"
            else jit_compile
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
        self.distillation_loss_fn = kd_losses.get(
            "kl_divergence"
            if distillation_loss_fn is None
            else distillation_loss_fn,
            temperature=temperature,
        )
        self._jit_auto = jit_compile == "auto" and keras_jit
        self._first_batch_checked = False
        self._compile_args = dict(
            optimizer=self.optimizer,
            metrics=metrics,
            student_loss_fn=student_loss_fn,
            distillation_loss_fn=distillation_loss_fn,
            alpha=alpha,
            temperature=temperature,
            evaluate_distillation=self.evaluate_distillation,
            jit_compile=jit_compile,
            **kwargs,
        )

    def get_compile_config(self):
        if not self.compiled:
            return None
        return {
            key: keras.saving.serialize_keras_object(value)
            for key, value in self._compile_args.items()
        }

    def compile_from_config(self, config):
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def _uses_labels(self, training):
        return self.alpha < 1.0 or not training

    def _uses_teacher(self, training):
        return self.alpha > 0.0 and (training or self.evaluate_distillation)

    def _teacher_logits(self, x, y, training):
        """The teacher's logits for the batch: cached in `y` (a batch of a
        `TeacherCache`), computed, or None when the distillation term is not
        computed (`alpha=0`, or evaluation without `evaluate_distillation`)."""
        _, cached = split_cached_teacher(y)
        if not self._uses_teacher(training):
            return None
        logits = self.teacher(x, training=False) if cached is None else cached
        return keras.tree.map_structure(ops.stop_gradient, logits)

    def _distillation_losses(self, y, sample_weight, y_pred, teacher_logits, training):
        """Returns `(replica_loss, logs)`.

        `logs` holds the global batch's `loss`, `student_loss` and
        `distillation_loss` (0 for a term not computed); `replica_loss` is
        this replica's share of `loss`, to differentiate (the same without
        a strategy). Terms whose weight is zero are not computed: `alpha=0`
        never runs the teacher and `alpha=1` never reads the labels.
        """
        y, _ = split_cached_teacher(y)
        terms = {}
        if self._uses_labels(training):
            if y is None:
                raise ValueError(
                    "The data has no labels `y`, which the student loss needs "
                    f"(alpha={self.alpha}). Pass `(x, y)` batches, or "
                    "compile with alpha=1.0 to train from the teacher alone."
                )
            check_label_shape(y, y_pred, self.student_loss_fn)
            terms["student_loss"] = objective.per_position(
                self.student_loss_fn, y, y_pred
            )
        if teacher_logits is not None:
            if not is_top_k(teacher_logits):
                # Sparse top-k logits are checked by the loss itself.
                check_logits_shapes(teacher_logits, y_pred)
            terms["distillation_loss"] = objective.per_position(
                self.distillation_loss_fn, teacher_logits, y_pred
            )
        local, logs = objective.weighted_means(
            terms, objective.position_weights(sample_weight, y_pred)
        )
        alpha = self.alpha if "distillation_loss" in terms else 0.0
        weights = {"student_loss": 1.0 - alpha, "distillation_loss": alpha}
        regularization = ops.zeros((), dtype="float32")
        if self.student.losses:
            regularization = ops.cast(ops.sum(self.student.losses), "float32")
        # Every replica adds the same regularization; the optimizer sums the
        # replicas' gradients.
        replica_loss = sum(weights[n] * local[n] for n in terms) + (
            regularization / objective.num_replicas()
        )
        logs["loss"] = sum(weights[n] * logs[n] for n in terms) + regularization
        for name in weights:
            logs.setdefault(name, ops.zeros((), dtype="float32"))
        return replica_loss, logs

    def _update_loss_trackers(self, x, logs):
        batch_size = tf.shape(next(v for v in keras.tree.flatten(x)))[0]
        for tracker, name in (
            (self._loss_tracker, "loss"),
            (self.student_loss_tracker, "student_loss"),
            (self.distillation_loss_tracker, "distillation_loss"),
        ):
            tracker.update_state(logs[name], sample_weight=batch_size)

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        # Before the tape: nothing of the frozen teacher's forward pass is
        # recorded (in eager mode the tape would keep its activations).
        teacher_logits = self._teacher_logits(x, y, training=True)
        trainable = self.student.trainable_weights
        with tf.GradientTape() as tape:
            y_pred = self.student(x, training=True)
            loss, logs = self._distillation_losses(
                y, sample_weight, y_pred, teacher_logits, training=True
            )
            scaled = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, trainable)
        self.optimizer.apply_gradients(zip(gradients, trainable))
        self._update_loss_trackers(x, logs)
        return self._step_logs(x, y, y_pred, sample_weight, training=True)

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        teacher_logits = self._teacher_logits(x, y, training=False)
        y_pred = self.student(x, training=False)
        _, logs = self._distillation_losses(
            y, sample_weight, y_pred, teacher_logits, training=False
        )
        self._update_loss_trackers(x, logs)
        return self._step_logs(x, y, y_pred, sample_weight, training=False)

    def _step_logs(self, x, y, y_pred, sample_weight, training):
        y, _ = split_cached_teacher(y)
        logs = self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
        if not training and not self._uses_teacher(training):
            # Without the teacher, evaluation reports the student loss only.
            logs.pop("distillation_loss", None)
        return logs

    def fit(self, x=None, y=None, **kwargs):
        """Trains the student; arguments are those of `keras.Model.fit`.

        Before the first step, the first batch is checked (teacher and
        student output shapes, label shape) and, with `jit_compile="auto"`,
        the step is lowered to XLA once; if that fails the distiller warns
        and trains without XLA. With a sparse categorical cross-entropy,
        every batch's class ids (and the validation data's) are checked as
        they are read: an id outside the student's classes raises an error
        naming it (`ValueError`, or `tf.errors.InvalidArgumentError` from a
        `tf.data` pipeline), where XLA would give NaN losses. Training stops
        at the first step whose loss is NaN or infinite, with a
        `FloatingPointError` that names the term (`StopOnNonFiniteLoss`,
        added unless the callbacks hold one).

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
        x, y, kwargs = self._tokenize_texts(x, y, kwargs, shuffle=True)
        callbacks = list(kwargs.pop("callbacks", None) or [])
        if not any(isinstance(c, StopOnNonFiniteLoss) for c in callbacks):
            callbacks.append(StopOnNonFiniteLoss())
        kwargs["callbacks"] = callbacks
        if not self._first_batch_checked:
            batch, x = peek_first_batch(
                x, y, kwargs.get("sample_weight"), kwargs.get("batch_size")
            )
            self._check_first_batch(batch)
            self._first_batch_checked = True
        if self._checks_class_ids(training=True):
            x, y = with_checked_class_ids(x, y, self._num_classes)
        if kwargs.get("validation_data") is not None and self._checks_class_ids(
            training=False
        ):
            kwargs["validation_data"] = with_checked_class_ids(
                kwargs["validation_data"], None, self._num_classes
            )[0]
        return super().fit(x=x, y=y, **kwargs)

    def evaluate(self, x=None, y=None, **kwargs):
        """Evaluates the student (see `compile`'s `evaluate_distillation`);
        arguments are those of `keras.Model.evaluate`, and raw texts work as
        in `fit`. Class ids are checked as in `fit`."""
        x, y, kwargs = self._tokenize_texts(x, y, kwargs)
        # `fit` evaluates its validation data, already checked, this way.
        if not kwargs.get("_use_cached_eval_dataset") and self._checks_class_ids(
            training=False
        ):
            if self._num_classes is None:
                batch, x = peek_first_batch(
                    x, y, kwargs.get("sample_weight"), kwargs.get("batch_size")
                )
                first_x, _, _ = keras.utils.unpack_x_y_sample_weight(batch)
                self._num_classes = self.student(first_x, training=False).shape[-1]
            x, y = with_checked_class_ids(x, y, self._num_classes)
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

    def _check_first_batch(self, batch):
        """Validates shapes and class ids on real data, then decides on XLA."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(batch)
        y_pred = self.student(x, training=False)
        self._num_classes = y_pred.shape[-1]
        if self._checks_class_ids(training=True):
            check_class_ids(self._num_classes, batch)
        self._distillation_losses(
            y, sample_weight, y_pred, self._teacher_logits(x, y, True), True
        )
        if not self._jit_auto:
            return

        def gradients(x, y, sample_weight):
            teacher_logits = self._teacher_logits(x, y, training=True)
            with tf.GradientTape() as tape:
                y_pred = self.student(x, training=True)
                loss, _ = self._distillation_losses(
                    y, sample_weight, y_pred, teacher_logits, training=True
                )
            return tape.gradient(loss, self.student.trainable_weights)

        error = xla_lowering_error(gradients, x, y, sample_weight)
        if error is not None:
            warnings.warn(
                "The distillation step does not compile with XLA; training "
                f"without it (jit_compile=False). XLA said: {error}",
                stacklevel=3,
            )
            self.jit_compile = False
            self.train_function = None
            self.test_function = None
            self.predict_function = None

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "student": keras.saving.serialize_keras_object(self.student),
            "teacher": keras.saving.serialize_keras_object(self.teacher),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        trainable = config.pop("trainable", True)
        for role in ("student", "teacher"):
            config[role] = keras.saving.deserialize_keras_object(
                config[role], custom_objects=custom_objects
            )
        distiller = cls(**config)
        distiller.trainable = trainable
        return distiller


def _is_causal_lm(model):
    from keras_hub.models import CausalLM

    return isinstance(model, CausalLM)
