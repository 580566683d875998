"""The content of a generative run's report: the dict that `report_card`
writes as `report.json`, `report.md` and `report.png`.

File sizes are in MB of 10^6 bytes (`keras_kd.utils.units.megabytes`).
"""

from keras_kd.utils.units import megabytes


def bundle_label(quantization):
    """The name a quantization goes by in file names and the report.

    >>> bundle_label("none"), bundle_label("dynamic_int8")
    ('float32', 'dynamic_int8')
    """
    return "float32" if quantization == "none" else quantization


def _bundle_row(export):
    check = export.verification
    identical = sum(p.identical and p.prompt_ids_match for p in check.prompts)
    return {
        "size_mb": megabytes(export.size_bytes),
        "identical_prompts": f"{identical}/{len(check.prompts)}",
        "token_agreement": check.token_agreement,
        "prefill_tokens_per_s": check.prefill_tokens_per_second,
        "decode_tokens_per_s": check.decode_tokens_per_second,
    }


def _continuation(export, index):
    return export.verification.prompts[index].litert_text


def build_generation_report(
    config, models, scores, exports, keras_speed, curves, cache_bytes_per_token
):
    """The report dict of a generative run.

    Args:
        config: the run's `GenerationConfig`.
        models: the keras-hub `CausalLM`s keyed `teacher`, `student` (as
            distilled) and `shipped` (its trimmed form, or the same model).
        scores: `evaluate_causal_lm` results keyed `teacher_before`,
            `teacher`, `student_before`, `student`.
        exports: the `LiteRTLMExport`s keyed `teacher_float32`,
            `student_float32` and `student_<quantization>`.
        keras_speed: Keras greedy tokens per second keyed like `models`.
        curves: `StepCurve` curves by display name.
        cache_bytes_per_token: the teacher cache's bytes per token.

    Returns:
        A JSON-able dict: `title`, `models` (the table's rows), `summary`,
        `samples` (the same prompts continued on-device by the teacher's
        and the shipped student's bundles), `curves`, `checks`, `scatter`
        and `notes`.
    """
    shipped_name = f"student_{bundle_label(config.quantization)}"
    teacher_bundle, shipped_bundle = exports["teacher_float32"], exports[shipped_name]
    trimmed = models["shipped"] is not models["student"]
    rows = {
        "teacher (Keras)": {
            "perplexity": scores["teacher"]["perplexity"],
            "parameters": int(models["teacher"].count_params()),
            "keras_tokens_per_s": keras_speed["teacher"],
        },
        f"student, {config.student_layers} layers, distilled (Keras)": {
            "perplexity": scores["student"]["perplexity"],
            "top1_agreement": scores["student"]["top1_agreement"],
            "parameters": int(models["student"].count_params()),
            "keras_tokens_per_s": keras_speed["student"],
        },
    }
    if trimmed:
        rows["student, trimmed vocabulary (Keras)"] = {
            "parameters": int(models["shipped"].count_params()),
            "keras_tokens_per_s": keras_speed["shipped"],
        }
    for name, export in exports.items():
        who, label = name.split("_", 1)
        rows[f"{who} (LiteRT-LM {label})"] = _bundle_row(export)
    teacher_ppl = scores["teacher"]["perplexity"]
    summary = {
        "teacher perplexity before fine-tuning": scores["teacher_before"]["perplexity"],
        f"teacher perplexity after {config.teacher_steps} fine-tuning steps": teacher_ppl,
        "student perplexity before distillation": scores["student_before"]["perplexity"],
        f"student perplexity after {config.steps} distillation steps": (
            scores["student"]["perplexity"]
        ),
        "student / teacher perplexity": scores["student"]["perplexity"] / teacher_ppl,
        f"size: student {bundle_label(config.quantization)} / teacher float32": (
            shipped_bundle.size_bytes / teacher_bundle.size_bytes
        ),
        f"decode speed-up on-device: student {bundle_label(config.quantization)} "
        "/ teacher float32": (
            shipped_bundle.verification.decode_tokens_per_second
            / teacher_bundle.verification.decode_tokens_per_second
        ),
        "Keras greedy speed-up: student / teacher": (
            keras_speed["student"] / keras_speed["teacher"]
        ),
        "float32 bundles token-identical to Keras on every prompt": all(
            exports[n].verification.all_identical
            for n in ("teacher_float32", "student_float32")
        ),
        "teacher cache (bytes per token)": cache_bytes_per_token,
    }
    samples = [
        {
            "prompt": prompt.prompt,
            "teacher (float32 bundle)": _continuation(teacher_bundle, i),
            f"student ({bundle_label(config.quantization)} bundle)": (
                _continuation(shipped_bundle, i)
            ),
        }
        for i, prompt in enumerate(teacher_bundle.verification.prompts[: config.samples])
    ]
    vocabulary = (
        f"{models['shipped'].backbone.vocabulary_size:,} of "
        f"{models['student'].backbone.vocabulary_size:,} tokens kept"
        if trimmed else "full vocabulary"
    )
    threads = teacher_bundle.verification.num_threads
    return {
        "title": f"keras-kd: {config.teacher} -> {config.student_layers}-layer "
                 "student, on-device generation",
        "models": rows,
        "summary": summary,
        "samples": samples,
        "curves": curves,
        "checks": {name: export.verification.to_dict() for name, export in exports.items()},
        "scatter": {
            "y": "decode_tokens_per_s",
            "y_scale": 1,
            "y_label": "decode tokens/s (LiteRT-LM runtime, this CPU)",
            "area": None,
            "title": "Decode speed vs bundle size",
        },
        "notes": [
            f"Perplexity: {scores['teacher']['tokens']:,} tokens of held-out "
            f"{'responses (after their prompts)' if config.prompt_responses else 'texts'}, "
            f"at most {config.sequence_length} tokens a row; top-1 "
            "agreement: share of positions where the student's most likely "
            "next token is the teacher's.",
            f"Bundles: greedy generation from raw text in the LiteRT-LM "
            f"runtime, {len(teacher_bundle.verification.prompts)} prompts "
            f"({'held-out prompts' if config.prompt_responses else 'the first words of held-out texts'}), up to "
            f"{config.max_new_tokens} new tokens, compared token by token "
            "with the Keras model's `generate`; speeds are the medians of "
            "the runtime's own figures over the prompts "
            f"({threads or 'default'} CPU threads). Quantized bundles round "
            "the weights, so their greedy tokens drift from Keras after the "
            "first near-tie.",
            f"Shipped student: {vocabulary}. Samples are the bundles' own "
            "continuations.",
            "File sizes in MB (10^6 bytes).",
        ],
    }
