"""The main job, from raw text to a verified on-device student with a report:
`run(PipelineConfig(...))`, and its steps for use alone.

Modules: `config` (PipelineConfig), `budget` (the sequence length and
epochs from the data, best-epoch training: resolve_budget, fit_best_epoch),
`step_curve` (StepCurve), `steps` (the steps and the checks run before any
work), `runner` (run, load_data), `report` (the report's content),
`report_card` (report.json/.md/.png), `student_search` (a student shape
chosen to fit a size or latency budget: search_student). The generative job:
`generation_config` (GenerationConfig), `generation_runner`
(run_generation), `generation_report` (its report's content). The speech
job: `speech_config` (SpeechConfig), `speech_runner` (run_speech),
`speech_report` (its report card).

The names load on first use (PEP 562), as in `keras_kd` itself: the
`keras-kd` command reads `PipelineConfig`'s defaults for its `--help`
without starting TensorFlow.
"""

import importlib

# Public name -> the module that holds it.
_OBJECTS = {
    "Budget": "keras_kd.pipeline.budget",
    "GenerationConfig": "keras_kd.pipeline.generation_config",
    "PipelineConfig": "keras_kd.pipeline.config",
    "SpeechConfig": "keras_kd.pipeline.speech_config",
    "StepCurve": "keras_kd.pipeline.step_curve",
    "StudentSearch": "keras_kd.pipeline.student_search",
    "check_config": "keras_kd.pipeline.steps",
    "check_few_labels": "keras_kd.pipeline.steps",
    "check_generation_config": "keras_kd.pipeline.generation_runner",
    "check_run_dir": "keras_kd.pipeline.steps",
    "check_speech_config": "keras_kd.pipeline.speech_runner",
    "distill_students": "keras_kd.pipeline.steps",
    "evaluate_accuracy": "keras_kd.pipeline.steps",
    "few_label_experiment": "keras_kd.pipeline.steps",
    "finetune_teacher": "keras_kd.pipeline.steps",
    "fit_best_epoch": "keras_kd.pipeline.budget",
    "generated_texts": "keras_kd.pipeline.steps",
    "generation_texts": "keras_kd.pipeline.generation_runner",
    "joined": "keras_kd.pipeline.steps",
    "load_data": "keras_kd.pipeline.runner",
    "resolve_budget": "keras_kd.pipeline.budget",
    "search_student": "keras_kd.pipeline.student_search",
    "new_texts": "keras_kd.pipeline.steps",
    "teacher_labelled": "keras_kd.pipeline.steps",
    "unlabelled_texts": "keras_kd.pipeline.steps",
    "vocabulary_texts": "keras_kd.pipeline.steps",
    "run": "keras_kd.pipeline.runner",
    "run_generation": "keras_kd.pipeline.generation_runner",
    "run_speech": "keras_kd.pipeline.speech_runner",
    "write_report": "keras_kd.pipeline.report_card",
}

__all__ = sorted(_OBJECTS)


def __getattr__(name):
    if name in _OBJECTS:
        return getattr(importlib.import_module(_OBJECTS[name]), name)
    raise AttributeError(f"module 'keras_kd.pipeline' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
