"""Knowledge distillation: a teacher's outputs train a smaller student.

- `Distiller`: a `keras.Model` whose `fit` trains the student on labels and
  on the teacher's logits (`distiller.py`).
- Losses between teacher and student logits: `KLDivergence`,
  `ReverseKLDivergence`, `JensenShannonDivergence`, `LogitsMSE`, their base
  class `DistillationLoss` and `get` (`losses.py`, public as
  `keras_kd.losses`).
- `TeacherCache`: a teacher's logits computed once and stored on disk, for
  offline distillation (`teacher_cache.py`).
- `top_k_logits`: the sparse top-k form of teacher logits for large
  vocabularies (`top_k.py`).

Modules not re-exported here: `shapes` (the shape checks shared by the
distiller and the losses) and `inputs` (the distiller's input handling).
"""

from keras_kd.distillation import losses
from keras_kd.distillation.distiller import Distiller
from keras_kd.distillation.losses import DistillationLoss
from keras_kd.distillation.losses import JensenShannonDivergence
from keras_kd.distillation.losses import KLDivergence
from keras_kd.distillation.losses import LogitsMSE
from keras_kd.distillation.losses import ReverseKLDivergence
from keras_kd.distillation.teacher_cache import TeacherCache
from keras_kd.distillation.top_k import top_k_logits
