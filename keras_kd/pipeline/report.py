"""The content of a pipeline run's report: the dict that `report_card`
writes as `report.json`, `report.md` and `report.png`.

File sizes are in MB of 10^6 bytes (`keras_kd.utils.units.megabytes`).
"""

import dataclasses

import numpy as np

from keras_kd.utils.units import megabytes


def _mean_std(values):
    """Mean and standard deviation; no spread from a single value.

    >>> _mean_std([0.5, 1.0])
    (0.75, 0.25)
    >>> _mean_std([0.8])
    (0.8, None)
    """
    return float(np.mean(values)), float(np.std(values)) if len(values) > 1 else None


# The report's names of the trainings, keyed as `histories`.
_TRAINED = {
    "teacher": "teacher", "distilled": "student with KD", "baseline": "student without KD",
}


def _budget_notes(chosen, trained):
    """The report's lines on the sequence length and the epochs: how each
    was chosen, and which epoch each training kept.

    >>> chosen = {
    ...     "sequence_length": {"value": 48, "rule": "given"},
    ...     "teacher_epochs": {"value": 3, "rule": "given", "steps": 30},
    ...     "epochs": {"value": 3, "rule": "given", "steps": 30}}
    >>> trained = {"teacher": {"epochs": 3, "trained_epochs": 3, "best_epoch": 1},
    ...            "student with KD": {"epochs": 3, "trained_epochs": 3, "best_epoch": None}}
    >>> for line in _budget_notes(chosen, trained): print(line)
    Sequence length 48 (given).
    Epochs: teacher at most 3 (given), students at most 3 (given). Kept: teacher epoch 1 of 3 trained (best validation accuracy), student with KD epoch 3 of 3 trained (no validation split: the last).
    """
    kept = ", ".join(
        f"{name} epoch {run['best_epoch']} of {run['trained_epochs']} trained "
        "(best validation accuracy)" if run["best_epoch"] is not None
        else f"{name} epoch {run['trained_epochs']} of {run['trained_epochs']} "
        "trained (no validation split: the last)"
        for name, run in trained.items()
    )
    length, teacher, students = (
        chosen["sequence_length"], chosen["teacher_epochs"], chosen["epochs"]
    )
    return [
        f"Sequence length {length['value']} ({length['rule']}).",
        f"Epochs: teacher at most {teacher['value']} ({teacher['rule']}), "
        f"students at most {students['value']} ({students['rule']}). Kept: {kept}.",
    ]


def build_report(config, labels, models, accuracy, checks, latency, histories, chosen):
    """The report dict of a run.

    Args:
        config: the run's `PipelineConfig`, its auto fields decided.
        labels: the class names.
        models: the `FinetuneModel`s keyed `teacher`, `distilled` (first
            seed) and `shipped` (its exported form).
        accuracy: the teacher's test accuracy (`teacher`), the students'
            per seed (lists `distilled`, `baseline`) and the few-labels
            results (`few_labels`, or None).
        checks: the `VerificationReport`s of the `.tflite` files, keyed
            `student` and `teacher`.
        latency: median single-example latency (ms) of both files, keyed
            likewise (`keras_kd.export.compare_latency`).
        histories: Keras `History`s with a `curve` (`StepCurve`) and a
            `budget` (`keras_kd.pipeline.budget.fit_best_epoch`), keyed
            `teacher`, `distilled`, `baseline`.
        chosen: how the sequence length and the epochs were chosen
            (`keras_kd.pipeline.budget.Budget.chosen`).

    Returns:
        A JSON-able dict: `title`, `models` (the table's rows), `summary`
        (headline figures), `seeds`, `few_labels`, `curves`, `budget`
        (`chosen` and, under `trained`, each training's epochs: at most,
        trained, best), `checks`, `settings` and `notes`.
    """
    teacher, distilled, shipped = (
        models["teacher"], models["distilled"], models["shipped"]
    )
    per_seed = {name: accuracy[name] for name in ("distilled", "baseline")}
    few_labels = accuracy["few_labels"]
    student_check, teacher_check = checks["student"], checks["teacher"]
    student_params = int(distilled.token_id_model.count_params())
    (kd_mean, kd_std), (base_mean, base_std) = (
        _mean_std(per_seed["distilled"]),
        _mean_std(per_seed["baseline"]),
    )
    gains = 100 * (np.array(per_seed["distilled"]) - np.array(per_seed["baseline"]))
    models = {
        "teacher (Keras)": {
            "test_accuracy": accuracy["teacher"],
            "parameters": int(teacher.token_id_model.count_params()),
        },
        "student without KD (Keras)": {
            "test_accuracy": base_mean,
            "test_accuracy_std": base_std,
            "parameters": student_params,
        },
        "student with KD (Keras)": {
            "test_accuracy": kd_mean,
            "test_accuracy_std": kd_std,
            "parameters": student_params,
        },
        "teacher (TFLite float32)": {
            "test_accuracy": teacher_check.litert_accuracy,
            "size_mb": megabytes(teacher_check.size_bytes),
            "latency_ms": latency["teacher"],
        },
        f"student (TFLite {config.quantization})": {
            "test_accuracy": student_check.litert_accuracy,
            "parameters": int(shipped.token_id_model.count_params()),
            "size_mb": megabytes(student_check.size_bytes),
            "latency_ms": latency["student"],
        },
    }
    seeds = len(config.seeds)
    over = f"mean of {seeds} seeds" if seeds > 1 else "1 seed"
    summary = {
        "accuracy retention (TFLite student / teacher)": (
            student_check.litert_accuracy / accuracy["teacher"]
        ),
        f"accuracy retention (Keras student with KD / teacher, {over})": (
            kd_mean / accuracy["teacher"]
        ),
        f"KD gain over the same student without KD (points, {over})": (
            float(np.mean(gains))
        ),
        "TFLite size compression (teacher / student)": (
            teacher_check.size_bytes / student_check.size_bytes
        ),
        "TFLite latency speed-up (teacher / student)": (
            latency["teacher"] / latency["student"]
        ),
        "TFLite student vs its Keras model (points)": (
            100 * (student_check.litert_accuracy - student_check.keras_accuracy)
        ),
    }
    if config.trim_vocabulary:
        # Words the trimmed vocabulary lacks split into smaller pieces: on
        # little training text that can cost points the other lines hide.
        summary["vocabulary trimming: shipped Keras student vs the same untrimmed (points)"] = (
            100 * (student_check.keras_accuracy - per_seed["distilled"][0])
        )
    if seeds > 1:
        summary[f"KD gain std over {seeds} seeds (points)"] = float(np.std(gains))
    if few_labels is not None:
        n = few_labels["labelled_texts"]
        few_gains = 100 * (
            np.array(few_labels["distilled"]) - np.array(few_labels["labels_only"])
        )
        for name, key in (
            (f"few labels: teacher on {n} labels (Keras)", "teacher"),
            (f"few labels: student on the {n} labels alone (Keras)", "labels_only"),
            (
                f"few labels: student distilled on all {n + few_labels['unlabelled_texts']} texts (Keras)",
                "distilled",
            ),
        ):
            values = np.atleast_1d(few_labels[key])
            models[name] = {
                "test_accuracy": float(np.mean(values)),
                "test_accuracy_std": _mean_std(values)[1],
                "parameters": student_params if key != "teacher" else models["teacher (Keras)"]["parameters"],
            }
        summary[f"few labels: KD gain (points, {over})"] = float(np.mean(few_gains))
        if seeds > 1:
            summary[f"few labels: KD gain std over {seeds} seeds (points)"] = float(
                np.std(few_gains)
            )
    curves = {_TRAINED[name]: history.curve for name, history in histories.items()}
    trained = {_TRAINED[name]: history.budget for name, history in histories.items()}
    return {
        "title": f"keras-kd: {config.teacher} -> {config.student_layers}-layer student",
        "models": models,
        "summary": summary,
        "seeds": {"seeds": list(config.seeds), **per_seed},
        "few_labels": few_labels,
        "curves": curves,
        "budget": {**chosen, "trained": trained},
        "checks": {name: check.to_dict() for name, check in checks.items()},
        "settings": {
            **{k: v for k, v in dataclasses.asdict(config).items()
               if k not in ("data", "resume")},
            "data": str(config.data),
            "labels": labels,
            "latency_threads": student_check.num_threads,
        },
        "notes": [
            "Latency: median single-example LiteRT invoke on this CPU, "
            f"{student_check.num_threads} threads, sequence length "
            f"{config.sequence_length}, tokenized input; teacher and student "
            f"take turns in blocks ({config.latency_runs} runs each).",
            f"Students: mean ± std over seeds {list(config.seeds)} (the "
            "teacher and the shipped student use the first); differences "
            "of about one point are inside the noise of a ~1,000-sentence "
            "test set.",
            "File sizes in MB (10^6 bytes).",
            *_budget_notes(chosen, trained),
        ],
    }
