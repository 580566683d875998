"""Transfer learning: fine-tuning models built on keras-hub text backbones.

`build_finetune_model` loads a backbone (a keras-hub preset, a local
keras-hub or HuggingFace folder, or a named offline preset of
`keras_kd.presets`), freezes the requested layers, adds task heads and
returns a `FinetuneModel` that fits, evaluates and predicts on raw strings.
`GradualUnfreezing`, `layerwise_lr_decay` and `warmup_cosine_adamw` are
fine-tuning schedules; `build_student`, `student_config`, `student_like`, `trim_vocabulary`
and `trim_lm_vocabulary` (causal LMs) shrink a model for distillation
(`project_embeddings` starts a narrower student from its teacher's embeddings).
`load_causal_lm` loads a keras-hub `CausalLM` true to its checkpoint
(`set_sampler` and `generation_settings` change how it generates);
importing the package applies `keras_hub_fixes` (Llama configs that keras-hub
0.32 saves incompletely, and its byte-level BPE tokenizer's two paths).
`load_finetune_model` loads a saved `FinetuneModel` in Keras's safe mode;
`check_finetune_preset` checks a preset and its settings before any weights
load.
"""

from keras_kd.transfer.causal_lm import finetune_causal_lm
from keras_kd.transfer.causal_lm import load_causal_lm
from keras_kd.transfer.causal_lm import generation_settings
from keras_kd.transfer.causal_lm import set_sampler
from keras_kd.transfer.embedding_projection import project_embeddings
from keras_kd.transfer.finetune_model import FinetuneModel
from keras_kd.transfer.finetune_model_builder import build_finetune_model
from keras_kd.transfer.finetune_model_builder import check_finetune_preset
from keras_kd.transfer.freezing import check_freeze
from keras_kd.transfer.freezing import backbone_layer_groups
from keras_kd.transfer.freezing import resolve_freeze
from keras_kd.transfer.heads import Head
from keras_kd.transfer.heads import MaskedSparseCategoricalAccuracy
from keras_kd.transfer.heads import get_head
from keras_kd.transfer.lm_vocabulary import trim_lm_vocabulary
from keras_kd.transfer.loading import load_finetune_model
from keras_kd.transfer.schedules import GradualUnfreezing
from keras_kd.transfer.schedules import layerwise_lr_decay
from keras_kd.transfer.schedules import warmup_cosine_adamw
from keras_kd.transfer.student import build_student
from keras_kd.transfer.student import student_config
from keras_kd.transfer.student import student_like
from keras_kd.transfer.summary import trainable_summary
from keras_kd.transfer.vocabulary import trim_vocabulary
