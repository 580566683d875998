"""Mechanisms shared across keras-kd: atomic writes (`io`), argument
checks (`validation`), units, the cache folder, installed packages
located without importing them (`packages`), logical CPU devices for
`tf.distribute` (`devices`), the work-arounds for `fit` under
`MultiWorkerMirroredStrategy` (`multi_worker`), the exact
`BackupAndRestore` (`backup`), and the tiny models of the tests and
docstring examples (`testing`). Importing the package does not start
TensorFlow; `backup` and `multi_worker` import Keras."""
