"""Named offline presets: pretrained weights that ship as pip packages.

`registry.py` names them, checks and resolves any preset argument before
weights load, and reads a preset's depth and positions from its config;
`gguf_llama.py` converts llama.cpp GGUF files into Hugging Face folders that keras-hub loads, `whisper_ct2.py`
CTranslate2 Whisper models into keras-hub presets.
"""

from keras_kd.presets.registry import (
    PRESETS,
    check_preset,
    check_preset_task,
    list_presets,
    preset_backbone_class,
    preset_dimensions,
    resolve_preset,
)

__all__ = [
    "PRESETS",
    "check_preset",
    "check_preset_task",
    "list_presets",
    "preset_backbone_class",
    "preset_dimensions",
    "resolve_preset",
]
