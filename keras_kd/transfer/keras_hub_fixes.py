"""Fixes of keras-hub 0.32, applied on import: of its saving (without
them a model or tokenizer rebuilt from its config, by `from_config`, a
saved preset or a `.keras` file, differs from the original) and of its
byte-level BPE tokenizer (two paths that tokenize alike).

- `LlamaBackbone.get_config` (and so `Llama3Backbone`'s) drops
  `tie_word_embeddings`: the rebuilt model would have an untied output
  layer.
- `Llama3Tokenizer.get_config` drops its start, end and other special
  tokens (SmolLM2's `<|im_start|>`, `<|im_end|>`, ...): the rebuilt
  tokenizer would look for Llama 3's own and fail to load.
- `BytePairTokenizer` (GPT-2's, Llama 3's, SmolLM2's, Whisper's) keeps
  special tokens whole on its TensorFlow path (tf.data, `fit`) by
  swapping each for a placeholder, `"Ĵ"` and the letters of its index
  (`ĴA`, `ĴB`, ..., `ĴBA`), and back in index order: with more than ten
  special tokens, the eleventh's to the twentieth's placeholders (`ĴBA`
  to `ĴBJ`) hold the second's (`ĴB`), and those tokens come out as
  characters (`<`, `|`, `im`, ...). SmolLM2 has 17, kept in a set, whose
  order changes from process to process: each process mangled 7, and
  which 7 changed (`<|im_start|>`, `<|im_end|>` or `<|endoftext|>` among
  them in most). Placeholders of one length keep every one whole.
- `BytePairTokenizer`'s eager path (Python, HF `tokenizers`) splits words
  with Llama 3's pattern, its TensorFlow path with GPT-2's: `fit` and
  `generate` tokenized the same text differently (runs of spaces, for
  one). The eager path splits with GPT-2's pattern too, as SmolLM2's and
  GPT-2's own tokenizers do (a Llama 3 checkpoint, whose own pattern is
  Llama 3's, is then tokenized alike on both paths, as keras-hub trains
  it). Spaces that end a text still differ: the TensorFlow path gives
  each its own token.
- `CausalLM` saves no sampler: a `.keras` file (whose compile settings
  keras-hub's own `compile` makes Keras skip) and a preset (which keeps no
  compile settings) reload with keras-hub's default, `top_k`, which
  samples, whatever the model generated with. The sampler goes into the
  compile settings of a `.keras` file, which compile the loaded model, and
  into `SAMPLER_FILE` of a preset folder, which `from_preset` reads.
"""

import functools
import json
import os

import keras_hub
from keras_hub.src.tokenizers import byte_pair_tokenizer
from tokenizers import pre_tokenizers

from keras_kd.utils.compile_config import compile_saved, with_optimizer_state
from keras_kd.utils.io import atomic_write_json

# The sampler of a `CausalLM` preset folder, as `keras_hub.samplers.serialize`
# gives it (keras-hub ignores the file).
SAMPLER_FILE = "keras_kd_sampler.json"


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


def _keep_sampler():
    cls = keras_hub.models.CausalLM
    if getattr(cls.save_to_preset, "_keras_kd_fix", False):
        return
    original_get_compile_config = cls.get_compile_config
    original_save_to_preset = cls.save_to_preset
    original_from_preset = cls.from_preset.__func__

    def get_compile_config(self):
        config = with_optimizer_state(self, original_get_compile_config(self))
        if config and getattr(self, "sampler", None) is not None:
            config["sampler"] = keras_hub.samplers.serialize(self.sampler)
        return config

    def compile_from_config(self, config):
        # A file saved without the sampler compiles with `compile`'s
        # default, as keras-hub does.
        compile_saved(self, config)

    @functools.wraps(original_save_to_preset)
    def save_to_preset(self, preset_dir, *args, **kwargs):
        original_save_to_preset(self, preset_dir, *args, **kwargs)
        if getattr(self, "sampler", None) is not None:
            # keras-hub overwrites a preset's files; so does this one.
            atomic_write_json(
                os.path.join(preset_dir, SAMPLER_FILE),
                keras_hub.samplers.serialize(self.sampler),
                overwrite=True,
            )

    @functools.wraps(original_from_preset)
    def from_preset(klass, preset, *args, **kwargs):
        model = original_from_preset(klass, preset, *args, **kwargs)
        path = os.path.join(str(preset), SAMPLER_FILE)
        if isinstance(model, cls) and os.path.isfile(path):
            with open(path) as f:
                model.sampler = keras_hub.samplers.deserialize(json.load(f))
            # keras-hub caches the compiled generate function with its sampler.
            model.generate_function = None
        return model

    save_to_preset._keras_kd_fix = True
    cls.get_compile_config = get_compile_config
    cls.compile_from_config = compile_from_config
    cls.save_to_preset = save_to_preset
    cls.from_preset = classmethod(from_preset)


def _placeholders_of_equal_length():
    if getattr(byte_pair_tokenizer.create_alts_for_unsplittable_tokens, "_keras_kd_fix", False):
        return

    def create_alts_for_unsplittable_tokens(unsplittable_tokens):
        width = len(str(max(len(unsplittable_tokens) - 1, 0)))
        return [
            "Ĵ" + "".join(chr(ord("A") + int(d)) for d in str(index).zfill(width))
            for index in range(len(unsplittable_tokens))
        ]

    create_alts_for_unsplittable_tokens._keras_kd_fix = True
    # `split_strings_for_bpe` looks the function up in its module.
    byte_pair_tokenizer.create_alts_for_unsplittable_tokens = create_alts_for_unsplittable_tokens


def _one_split_pattern():
    cls = byte_pair_tokenizer.BytePairTokenizer
    original = cls._set_vocabulary_and_merges_tokenizers
    if getattr(original, "_keras_kd_fix", False):
        return

    def _set_vocabulary_and_merges_tokenizers(self, vocabulary, merges):
        original(self, vocabulary, merges)
        # GPT-2's pattern, as the TensorFlow path's `split_strings_for_bpe`.
        self._tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(
            add_prefix_space=self.add_prefix_space, use_regex=True
        )

    _set_vocabulary_and_merges_tokenizers._keras_kd_fix = True
    cls._set_vocabulary_and_merges_tokenizers = _set_vocabulary_and_merges_tokenizers


_keep_tied_embeddings()
_keep_special_tokens()
_placeholders_of_equal_length()
_one_split_pattern()
_keep_sampler()
