"""Mechanisms shared across keras-kd: atomic writes (`io`), argument
checks (`validation`), units, the cache folder, installed packages
located without importing them (`packages`), logical CPU devices for
`tf.distribute` (`devices`), and the tiny tokenizer of
the tests and docstring examples (`testing`). Pure Python; importing them
does not start TensorFlow."""
