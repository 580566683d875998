"""`speech_markdown`: the report card of a speech run (`run_speech`) as
Markdown."""


def _percent(value):
    return "n/a" if value is None else f"{100 * value:.1f}%"


def speech_markdown(report):
    """The report of `keras_kd.pipeline.run_speech` as Markdown: teacher and
    student side by side, then the pseudo-labels and the real recordings.

    Example:

    >>> row = {"synthetic_wer": 0.5, "synthetic_cer": 0.3, "decode_ms_per_token": 10.0,
    ...        "real_time_factor": 0.1, "real_texts": {"a.wav": "hello"}}
    >>> report = {
    ...     "teacher": "whisper_tiny_en", "train_utterances": 10, "test_utterances": 2,
    ...     "held_out_voices": ["en+m2"], "seconds": 60.0,
    ...     "distillation": {"pseudo_labels": {"utterances": 10, "kept": 6,
    ...                      "teacher_wer": 0.4, "kept_teacher_wer": 0.2}},
    ...     "scores": {"teacher": row, "student": {**row, "synthetic_wer": 0.52,
    ...                "real_wer_against_teacher": 0.05}},
    ...     "exports": {"teacher_float32": {"size_mb": 151.0, "decode_ms_per_token": 20.0},
    ...                 "student_dynamic_int8": {"size_mb": 55.0, "decode_ms_per_token": 8.0}},
    ...     "tflite_decode_speedup": 2.5, "keras_decode_speedup": 1.4, "wer_gap_points": 2.0}
    >>> print(speech_markdown(report).splitlines()[7])
    | student | 52.0% | 30.0% | 5.0% | 10.0 | 0.10 | student_dynamic_int8 | 55.0 | 8.0 |
    """
    scores, exports = report["scores"], report["exports"]
    files = {name.split("_")[0]: (name, value) for name, value in exports.items()}
    lines = [
        f"# Speech: {report['teacher']} distilled ({report['seconds'] / 60:.1f} min)",
        "",
        f"Test: {report['test_utterances']} synthetic utterances of voices not heard in "
        f"training ({', '.join(report['held_out_voices'])}).",
        "",
        "| model | WER | CER | WER against the teacher, real recordings | Keras ms/token | "
        "real-time factor | file | MB | TFLite ms/token |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in ("teacher", "student"):
        row = scores[name]
        file_name, file = files[name]
        lines.append(
            f"| {name} | {_percent(row['synthetic_wer'])} | {_percent(row['synthetic_cer'])} | "
            f"{_percent(row.get('real_wer_against_teacher'))} | "
            f"{row['decode_ms_per_token']:.1f} | {row['real_time_factor']:.2f} | {file_name} | "
            f"{file['size_mb']:.1f} | {file['decode_ms_per_token']:.1f} |"
        )
    labels = report["distillation"]["pseudo_labels"]
    lines += [
        "",
        f"Student against teacher: WER {report['wer_gap_points']:+.1f} points; decoding "
        f"{report['keras_decode_speedup']:.2f}x as fast in Keras, "
        f"{report['tflite_decode_speedup']:.2f}x in TFLite.",
        "",
        f"Pseudo-labels: {labels['kept']} of {labels['utterances']} training utterances kept "
        f"(teacher WER {_percent(labels['teacher_wer'])} on all, "
        f"{_percent(labels['kept_teacher_wer'])} on those kept).",
        "",
        "## Real recordings",
        "",
        "| recording | teacher | student |",
        "|---|---|---|",
    ]
    for label, text in scores["teacher"]["real_texts"].items():
        lines.append(f"| {label} | {text} | {scores['student']['real_texts'].get(label, '')} |")
    return "\n".join(lines) + "\n"
