"""XLA and the `Distiller`: whether a function compiles with XLA (the check
before its first step, which decides between XLA and a warning), and the
`jit_compile` its `compile` gives Keras."""

import tensorflow as tf

from keras_kd.utils.validation import check_choice

# What lowering a traced graph to XLA raises when an op has no XLA kernel or
# a shape cannot be made static (`experimental_get_compiler_ir` reports
# those as ValueError). Tracing happens before, outside the `try`: its errors
# are bugs of the models or the data and propagate.
_XLA_ERRORS = (
    ValueError,
    tf.errors.InvalidArgumentError,
    tf.errors.UnimplementedError,
    tf.errors.InternalError,
)


def xla_lowering_error(function, *args):
    """Traces `function(*args)`, then lowers it to XLA.

    Returns:
        The error XLA raised, or None when the function compiles. An error
        of tracing (Python code, shapes) is not XLA's and propagates.

    Example:

    >>> import numpy as np
    >>> xla_lowering_error(lambda x: x * 2.0, np.ones(3, "float32")) is None
    True
    >>> no_kernel = lambda x: tf.numpy_function(lambda a: a, [x], tf.float32)
    >>> type(xla_lowering_error(no_kernel, np.ones(3, "float32"))).__name__
    'ValueError'
    """
    compiled = tf.function(function, jit_compile=True)
    compiled.get_concrete_function(*args)
    try:
        compiled.experimental_get_compiler_ir(*args)(stage="hlo")
    except _XLA_ERRORS as error:
        return error
    return None


def keras_jit_compile(jit_compile, run_eagerly, distributed):
    """The `jit_compile` to give `keras.Model.compile` for the `Distiller`'s
    `jit_compile` (`"auto"`, True or False): `"auto"` is XLA unless eager
    or under a `tf.distribute` strategy (as Keras's `"auto"`, whose
    cross-replica calls XLA does not compile), also on CPU.

    Example:

    >>> keras_jit_compile("auto", run_eagerly=False, distributed=False)
    True
    >>> keras_jit_compile("auto", run_eagerly=False, distributed=True)
    False
    """
    check_choice("jit_compile", jit_compile, ("auto", True, False))
    if jit_compile == "auto":
        return not (run_eagerly or distributed)
    return jit_compile
