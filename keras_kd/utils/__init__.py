"""Mechanisms shared across keras-kd: atomic writes (`io`) and argument
checks (`validation`). Pure Python; importing them does not start
TensorFlow."""
