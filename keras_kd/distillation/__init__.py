"""Knowledge distillation: a teacher's outputs train a smaller student.

- `Distiller`: a `keras.Model` whose `fit` trains the student on labels and
  on the teacher's logits (`distiller.py`).
- Losses between teacher and student logits: `KLDivergence`,
  `ReverseKLDivergence`, `JensenShannonDivergence`, `LogitsMSE`, their base
  class `DistillationLoss` and `get` (`losses.py`, public as
  `keras_kd.losses`).
- Intermediate-layer distillation, from `Distiller.compile(feature_losses=...)`:
  `HiddenStateLoss` (`hidden_state_loss.py`), `AttentionRelationLoss`
  (MiniLM-v2, `attention_relation_loss.py`), their base class `FeatureLoss`
  (`feature_loss.py`) and the extractors they read (`feature_extractor.py`:
  `feature_extractor`).
- Several teachers: `combine_teacher_logits` and `check_teacher_weights`
  (`multi_teacher.py`).
- `StopOnNonFiniteLoss`: the callback that stops `fit` at a NaN or
  infinite loss, naming the term; the `Distiller` adds it unless your
  callbacks hold one (`non_finite.py`).
- `TeacherCache`: a teacher's logits computed once and stored on disk, for
  offline distillation (`teacher_cache.py`).
- `top_k_logits`: the sparse top-k form of teacher logits for large
  vocabularies (`top_k.py`).
- Causal language models: `Perplexity`, `evaluate_causal_lm` and
  `greedy_tokens_per_second`
  (`lm_metrics.py`), sequence-level distillation data
  (`sequence_kd.py`: `split_prompts`, `generate_texts`,
  `sequence_kd_dataset`, `in_domain_texts`) and on-policy distillation data
  (`on_policy.py`: `on_policy_batches`).

Modules not re-exported here: `shapes` (the shape checks shared by the
distiller and the losses), `inputs` (the distiller's input handling),
`objective` (its loss terms and their reduction), `fit_checks` (its checks
of the data of `fit` and `evaluate`) and `xla`.
"""

from keras_kd.distillation import losses
from keras_kd.distillation.attention_relation_loss import AttentionRelationLoss
from keras_kd.distillation.distiller import Distiller
from keras_kd.distillation.feature_extractor import feature_extractor
from keras_kd.distillation.feature_loss import FeatureLoss
from keras_kd.distillation.hidden_state_loss import HiddenStateLoss
from keras_kd.distillation.losses import DistillationLoss
from keras_kd.distillation.losses import JensenShannonDivergence
from keras_kd.distillation.losses import KLDivergence
from keras_kd.distillation.losses import LogitsMSE
from keras_kd.distillation.losses import ReverseKLDivergence
from keras_kd.distillation.lm_metrics import Perplexity
from keras_kd.distillation.lm_metrics import evaluate_causal_lm
from keras_kd.distillation.lm_metrics import greedy_tokens_per_second
from keras_kd.distillation.multi_teacher import check_teacher_weights
from keras_kd.distillation.multi_teacher import combine_teacher_logits
from keras_kd.distillation.non_finite import StopOnNonFiniteLoss
from keras_kd.distillation.on_policy import on_policy_batches
from keras_kd.distillation.sequence_kd import generate_texts
from keras_kd.distillation.sequence_kd import in_domain_texts
from keras_kd.distillation.sequence_kd import sequence_kd_dataset
from keras_kd.distillation.sequence_kd import split_prompts
from keras_kd.distillation.teacher_cache import TeacherCache
from keras_kd.distillation.top_k import top_k_logits
