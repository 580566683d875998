"""Devices for `tf.distribute` on one machine without accelerators."""

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
