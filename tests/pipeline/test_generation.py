"""The generative main job (`run_generation`) end to end on a tiny random
Llama saved as a keras-hub preset: fine-tuning, distillation, LiteRT-LM
bundles checked in the runtime, the saved student and the report."""

import dataclasses
import json
import os
import random

import numpy as np
import pytest

from keras_kd import transfer
from keras_kd.cli import main
from keras_kd.distillation import TeacherCache
from keras_kd.export import LiteRTLMGenerator
from keras_kd.pipeline import GenerationConfig, run_generation

WORDS = ["the", "tea", "is", "a", "fine", "cat", "sat", "on", "mat", "and", "ran"]


def _texts(count, seed=0):
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(6, 10))) for _ in range(count)]


def _config(preset, output_dir, **overrides):
    settings = dict(
        data=_texts(120),
        teacher=preset,
        teacher_steps=4,
        teacher_train_layers=2,
        teacher_learning_rate=1e-2,
        student_layers=1,
        steps=6,
        batch_size=4,
        sequence_length=16,
        learning_rate=1e-2,
        top_k=8,
        max_sequence_length=32,
        prefill_length=8,
        prompts=4,
        samples=2,
        max_new_tokens=4,
        eval_texts=12,
        # float32 ships: two bundles instead of three (the quantized export
        # is tested in tests/export).
        quantization="none",
        jit_compile=False,
        verbose=0,
        output_dir=str(output_dir),
        run_name="generation",
    )
    settings.update(overrides)
    return GenerationConfig(**settings)


@pytest.fixture(scope="module")
def interrupted_run(tiny_llama_preset, tmp_path_factory):
    """A run killed while caching the teacher's logits: its config and the
    partial run's recorded progress."""
    config = _config(tiny_llama_preset, tmp_path_factory.mktemp("runs"))

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed while caching the teacher's logits")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TeacherCache, "build", killed)
        with pytest.raises(KeyboardInterrupt):
            run_generation(config)
    partial = os.path.join(config.output_dir, ".generation.partial")
    return config, json.loads(open(os.path.join(partial, "progress.json")).read())


@pytest.fixture(scope="module")
def finished_run(interrupted_run):
    """The interrupted run resumed to the end, its teacher not fine-tuned
    again: every check of the run's products below holds for a resumed run."""
    config, _ = interrupted_run

    def finetuned_again(*args, **kwargs):
        raise AssertionError("the resumed run fine-tuned the teacher again")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(transfer, "finetune_causal_lm", finetuned_again)
        report = run_generation(dataclasses.replace(config, resume=True))
    return config, report


@pytest.mark.large
def test_training_lowers_both_perplexities(finished_run):
    _, report = finished_run
    summary = report["summary"]
    assert summary["teacher perplexity after 4 fine-tuning steps"] < (
        summary["teacher perplexity before fine-tuning"]
    )
    assert summary["student perplexity after 6 distillation steps"] < (
        summary["student perplexity before distillation"]
    )
    assert report["curves"]["student distillation"]["steps"] == [5]


@pytest.mark.large
def test_the_run_folder_holds_the_verified_bundles_and_report(finished_run):
    config, report = finished_run
    names = sorted(os.listdir(config.run_dir))
    assert names == [
        "report.json", "report.md", "report.png", "student",
        "student_float32.litertlm", "student_float32.tflite",
        "teacher_float32.litertlm", "teacher_float32.tflite",
    ]
    rows = report["models"]
    assert rows["teacher (LiteRT-LM float32)"]["identical_prompts"] == "4/4"
    assert rows["student (LiteRT-LM float32)"]["identical_prompts"] == "4/4"
    assert report["summary"]["float32 bundles token-identical to Keras on every prompt"]
    assert rows["student (LiteRT-LM float32)"]["size_mb"] == pytest.approx(
        os.path.getsize(os.path.join(config.run_dir, "student_float32.litertlm")) / 1e6
    )
    # The report's samples are what the written bundles generate.
    sample = report["samples"][0]
    for path, key in (
        ("teacher_float32.litertlm", "teacher (float32 bundle)"),
        ("student_float32.litertlm", "student (float32 bundle)"),
    ):
        with LiteRTLMGenerator(os.path.join(config.run_dir, path)) as generator:
            generation = generator.generate(sample["prompt"], max_new_tokens=4)
        assert generation.text == sample[key]
    saved = json.loads(open(os.path.join(config.run_dir, "report.json")).read())
    assert saved["summary"] == pytest.approx(report["summary"])
    markdown = open(os.path.join(config.run_dir, "report.md")).read()
    assert f"| {sample['prompt']} |" in markdown


@pytest.mark.large
def test_the_saved_student_is_the_shipped_model(finished_run):
    config, report = finished_run
    student = transfer.load_causal_lm(os.path.join(config.run_dir, "student"))
    rows = report["models"]
    shipped_row = rows.get("student, trimmed vocabulary (Keras)") or rows[
        "student, 1 layers, distilled (Keras)"
    ]
    assert student.count_params() == shipped_row["parameters"]
    assert student.backbone.num_layers == 1
    # The bundle was verified against the shipped model: the reloaded one
    # generates the same greedy tokens as the float32 bundle did in Keras.
    check = report["checks"]["student_float32"]["prompts"][0]
    ids = student.preprocessor.tokenizer(check["prompt"])
    logits = student.backbone.token_embedding(
        student.backbone(
            {"token_ids": np.array([ids]), "padding_mask": np.ones((1, len(ids)))}
        ),
        reverse=True,
    )
    assert int(np.argmax(logits[0, -1])) == check["keras_tokens"][0]


@pytest.mark.large
def test_the_killed_run_kept_its_teacher_and_the_resumed_one_cleaned_up(
    interrupted_run, finished_run
):
    _, progress = interrupted_run
    assert list(progress["steps"]) == ["teacher"]
    config, report = finished_run
    assert sorted(os.listdir(config.output_dir)) == ["generation"]
    assert "resume" not in report["settings"]


def test_an_existing_run_folder_is_refused_before_any_work(tiny_llama_preset, tmp_path):
    config = _config(tiny_llama_preset, tmp_path)
    os.mkdir(config.run_dir)
    marker = os.path.join(config.run_dir, "mine.txt")
    open(marker, "w").write("keep")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        run_generation(config)
    assert open(marker).read() == "keep"


def test_the_cli_refuses_classification_options_and_bad_data(tmp_path, capsys):
    assert main(["demo", "--task", "generation", "--seeds", "0", "1",
                 "--test-data", "test.csv", "--output-dir", str(tmp_path)]) == 2
    assert "--seeds, --test-data apply to --task classification only" in (
        capsys.readouterr().err
    )
    assert main(["demo", "--task", "generation", "--data", "reviews.xlsx",
                 "--output-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'reviews.xlsx'" in err and ".txt file" in err
    (tmp_path / "reviews.csv").write_text("review,stars\ngood,5\n")
    assert main(["demo", "--task", "generation", "--data", str(tmp_path / "reviews.csv"),
                 "--output-dir", str(tmp_path / "runs")]) == 2
    assert "has no text column 'text'. Its columns are ['review', 'stars']" in (
        capsys.readouterr().err
    )
    assert os.listdir(tmp_path) == ["reviews.csv"]


def test_bad_settings_are_refused_on_creation():
    with pytest.raises(ValueError, match=r"`prefill_length` \(64\) cannot exceed `max_sequence_length` \(32\)"):
        GenerationConfig(prefill_length=64, max_sequence_length=32)
    with pytest.raises(ValueError, match="teacher_steps=-1"):
        GenerationConfig(teacher_steps=-1)
    with pytest.raises(ValueError, match="quantization"):
        GenerationConfig(quantization="int4")


def _chat_file(folder, count=40):
    """A .jsonl file of `count` prompt-response pairs in TRL's columns."""
    path = folder / "chat.jsonl"
    rng = random.Random(1)
    # The tiny tokenizer's characters only: the prompts are words too.
    path.write_text("".join(
        json.dumps({"prompt": " ".join(rng.choices(WORDS, k=3)),
                    "completion": " " + " ".join(rng.choices(WORDS, k=5))}) + "\n"
        for _ in range(count)
    ), encoding="utf-8")
    return path


def test_prompt_response_data_gives_pairs_and_whole_prompts(tiny_causal_lm, tmp_path):
    from keras_kd.datasets import load_prompt_responses
    from keras_kd.pipeline.generation_runner import generation_texts, student_examples

    path = _chat_file(tmp_path)
    config = GenerationConfig(
        data=str(path), response_column="completion",
        prompts=3, samples=2, eval_texts=2, steps=5, batch_size=2, output_dir=str(tmp_path),
    )
    train, scored, prompts = generation_texts(config)
    expected_train, test = load_prompt_responses(path, seed=config.seed)
    assert train == expected_train
    # The verification prompts are held-out prompts, whole; the scored
    # pairs are held-out pairs.
    assert set(prompts) <= set(test["prompts"]) and len(prompts) == 3
    pairs = set(zip(test["prompts"], test["responses"]))
    assert len(scored["prompts"]) == 2 and set(zip(scored["prompts"], scored["responses"])) <= pairs
    # The student's rows: one training pair a row (no packing), 10 of them.
    rows, preprocessor = student_examples(config, train, tiny_causal_lm().preprocessor)
    drawn = [(r["prompts"].numpy().decode(), r["responses"].numpy().decode()) for r in rows]
    assert len(drawn) == 10 and set(drawn) <= set(zip(train["prompts"], train["responses"]))
    assert preprocessor is not None


def test_the_cli_takes_a_response_column_for_generation_only(tmp_path, capsys):
    path = _chat_file(tmp_path)
    assert main(["demo", "--task", "speech", "--response-column", "completion",
                 "--output-dir", str(tmp_path)]) == 2
    assert "--response-column applies to --task generation only" in capsys.readouterr().err
    assert main(["demo", "--task", "generation", "--data", str(path), "--prompt-column",
                 "question", "--response-column", "completion",
                 "--output-dir", str(tmp_path / "runs")]) == 2
    assert ("has no prompt column 'question'. Its columns are ['prompt', 'completion']; "
            "pass one of them as `prompt_column=` (on the command line, --prompt-column)"
            ) in capsys.readouterr().err
    assert main(["demo", "--task", "generation", "--data", str(path), "--prompt-column",
                 "prompt", "--output-dir", str(tmp_path / "runs")]) == 2
    assert "add --response-column" in capsys.readouterr().err
    with pytest.raises(ValueError, match="`response_column` and `prompt_column` are both 'prompt'"):
        GenerationConfig(response_column="prompt")
    with pytest.raises(ValueError, match=r"text_column='question' \(--text-column\) names a column of texts.*prompt_column='question'"):
        GenerationConfig(text_column="question", response_column="answer")
    assert not (tmp_path / "runs").exists()


@pytest.mark.large
def test_a_run_on_prompt_response_pairs_scores_and_ships_on_the_responses(tiny_llama_preset, tmp_path):
    from keras_kd.datasets import preprocess_prompt_responses
    from keras_kd.pipeline.generation_runner import generation_texts

    config = _config(
        tiny_llama_preset, tmp_path / "runs", data=str(_chat_file(tmp_path, count=60)),
        response_column="completion",
    )
    report = run_generation(config)
    # The scored tokens are the held-out responses' (and end tokens), not
    # their prompts'.
    _, scored, prompts = generation_texts(config)
    teacher = transfer.load_causal_lm(tiny_llama_preset)
    _, _, weight = preprocess_prompt_responses(teacher.preprocessor, scored, config.sequence_length)
    tokens = int(np.asarray(weight).sum())
    assert report["notes"][0].startswith(
        f"Perplexity: {tokens:,} tokens of held-out responses (after their prompts)"
    )
    assert tokens < sum(len(teacher.preprocessor.tokenizer([p + r])[0]) for p, r in zip(*scored.values()))
    # The bundles were checked on held-out prompts, whole.
    rows = report["models"]
    assert rows["student (LiteRT-LM float32)"]["identical_prompts"] == "4/4"
    assert [s["prompt"] for s in report["samples"]] == prompts[: config.samples]
    assert report["settings"]["response_column"] == "completion"


@pytest.mark.large
def test_a_qwen_teacher_runs_end_to_end(tmp_path):
    # The run's export takes Qwen 2 as it takes Llama (its byte-level BPE
    # tokenizer, no start token); the rest of the run is family-blind.
    import keras_hub

    from keras_kd.utils.testing import tiny_qwen_causal_lm

    preset = str(tmp_path / "qwen")
    tiny_qwen_causal_lm().save_to_preset(preset)
    config = _config(preset, tmp_path / "runs")
    report = run_generation(config)
    summary = report["summary"]
    assert summary["float32 bundles token-identical to Keras on every prompt"]
    assert summary["student perplexity after 6 distillation steps"] < (
        summary["student perplexity before distillation"]
    )
    student = keras_hub.models.CausalLM.from_preset(os.path.join(config.run_dir, "student"))
    assert isinstance(student.backbone, keras_hub.models.QwenBackbone)
    assert student.backbone.num_layers == 1
    with LiteRTLMGenerator(os.path.join(config.run_dir, "student_float32.litertlm")) as generator:
        sample = report["samples"][0]
        assert generator.generate(sample["prompt"], max_new_tokens=4).text == sample["student (float32 bundle)"]
