"""What every benchmark records about the machine it ran on."""

import os
import platform


def machine_info():
    """Returns CPU count, processor, platform and library versions."""
    import keras
    import keras_hub
    import tensorflow as tf

    return {
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "platform": platform.platform(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "keras_hub": keras_hub.__version__,
    }
