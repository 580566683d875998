"""Devices for `tf.distribute`: logical CPU devices on one machine without
accelerators (`split_cpu`), and the strategies by name (`make_strategy`)."""

from keras_kd.utils.validation import check_choice
from keras_kd.utils.validation import check_int


def split_cpu(num_devices):
    """Splits the CPU into `num_devices` logical devices, `/cpu:0` to
    `/cpu:{num_devices - 1}`, so that `tf.distribute.MirroredStrategy` can
    run one replica on each: a way to try multi-device training on a laptop
    (the replicas share the CPU's cores, so it is not faster).

    TensorFlow fixes its devices when it first uses them: call this at the
    start of the program, before any other TensorFlow work.

    Args:
        num_devices: int >= 1.

    Returns:
        The logical CPU devices' names.

    Raises:
        RuntimeError: TensorFlow has already set up its devices.

    Example (in a new process; the test process has set up its devices):

    >>> split_cpu(2)  # doctest: +SKIP
    ['/device:CPU:0', '/device:CPU:1']
    """
    import tensorflow as tf

    check_int("num_devices", num_devices, example=2)
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * num_devices
        )
    except RuntimeError as error:
        raise RuntimeError(
            f"Cannot split the CPU into {num_devices} devices: TensorFlow "
            "has already set up its devices. Call `split_cpu` at the start "
            "of the program, before any other TensorFlow work (in a new "
            f"process). TensorFlow said: {error}"
        ) from error
    return [device.name for device in tf.config.list_logical_devices("CPU")]


STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def make_strategy(name="default", tpu=""):
    """The `tf.distribute` strategy that `name` selects.

    Args:
        name: `"default"` (one device), `"mirrored"` (`MirroredStrategy`
            on every local GPU, or on the CPU's logical devices when there
            is no GPU), `"multi_worker"` (`MultiWorkerMirroredStrategy` on
            the machines that `TF_CONFIG` names: create it at the start of
            the program) or `"tpu"` (`TPUStrategy` on the TPU named `tpu`).
        tpu: the TPU's name or address, for `"tpu"`.

    Returns:
        A `tf.distribute.Strategy`.

    Example:

    >>> make_strategy("default").num_replicas_in_sync
    1
    >>> make_strategy("gpus")
    Traceback (most recent call last):
    ...
    ValueError: `strategy` must be one of 'default', 'mirrored', 'multi_worker', 'tpu'. Received: strategy='gpus'
    """
    check_choice("strategy", name, STRATEGIES)
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([device.name for device in devices])
