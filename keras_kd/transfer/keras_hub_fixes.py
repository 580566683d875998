"""Fixes of keras-hub 0.32's Llama configs, applied on import: without
them a model or tokenizer rebuilt from its config (`from_config`, a saved
preset or `.keras` file) differs from the original.

- `LlamaBackbone.get_config` (and so `Llama3Backbone`'s) drops
  `tie_word_embeddings`: the rebuilt model would have an untied output
  layer.
- `Llama3Tokenizer.get_config` drops its start, end and other special
  tokens (SmolLM2's `<|im_start|>`, `<|im_end|>`, ...): the rebuilt
  tokenizer would look for Llama 3's own and fail to load.
"""

import keras_hub


def _keep_tied_embeddings():
    cls = keras_hub.models.LlamaBackbone
    original = cls.get_config
    if getattr(original, "_keras_kd_fix", False):
        return

    def get_config(self):
        config = original(self)
        config.setdefault("tie_word_embeddings", self.tie_word_embeddings)
        return config

    get_config._keras_kd_fix = True
    cls.get_config = get_config


def _keep_special_tokens():
    cls = keras_hub.models.Llama3Tokenizer
    original_init, original_get_config = cls.__init__, cls.get_config
    if getattr(original_get_config, "_keras_kd_fix", False):
        return

    def __init__(self, *args, misc_special_tokens=None, **kwargs):
        # A config holds a JSON list; `__init__` takes set differences.
        if misc_special_tokens is not None:
            kwargs["misc_special_tokens"] = set(misc_special_tokens)
        original_init(self, *args, **kwargs)

    def get_config(self):
        config = original_get_config(self)
        tokens = {a: getattr(self, a) for a in getattr(self, "_special_token_attrs", [])}
        config.setdefault("bos_token", tokens.get("start_token"))
        config.setdefault("eos_token", tokens.get("end_token"))
        config.setdefault(
            "misc_special_tokens",
            sorted(v for a, v in tokens.items() if a.startswith("special_token_")),
        )
        return config

    get_config._keras_kd_fix = True
    cls.__init__ = __init__
    cls.get_config = get_config


_keep_tied_embeddings()
_keep_special_tokens()
