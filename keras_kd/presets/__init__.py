"""Named offline presets: pretrained weights that ship as pip packages.

`registry.py` names them and resolves any preset argument before weights
load; `gguf_llama.py` converts llama.cpp GGUF files into Hugging Face folders
that keras-hub loads.
"""

from keras_kd.presets.registry import PRESETS, list_presets, resolve_preset

__all__ = ["PRESETS", "list_presets", "resolve_preset"]
