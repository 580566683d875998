"""Distillation losses between teacher and student logits, the public path
of `keras_kd.distillation.losses` (see it for the losses' definitions):
`keras_kd.losses.KLDivergence` and `from keras_kd.losses import
KLDivergence` name the same class.

Example:

>>> from keras_kd.losses import KLDivergence, get
>>> isinstance(get("kl_divergence", temperature=2.0), KLDivergence)
True
"""

from keras_kd.distillation import losses as _losses
# Its `__all__`, so that a name made public there is public here too.
from keras_kd.distillation.losses import *  # noqa: F403

__all__ = list(_losses.__all__)
