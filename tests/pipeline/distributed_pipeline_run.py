"""`keras_kd.pipeline.run` on a tiny preset as one worker of
`MultiWorkerMirroredStrategy`; writes the report and the number of
replicas each training ran on as JSON. tests/pipeline/test_pipeline.py
runs it in two new processes (TensorFlow fixes its collectives at
start-up):

    TF_CONFIG=... python distributed_pipeline_run.py OUT.json PRESET_FOLDER RUN_FOLDER GENERATOR_FOLDER

The distilled student also trains on 4 texts that the causal LM of
GENERATOR_FOLDER writes (`generated_texts`), generated in the strategy's
scope like the trainings.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(out, preset, output_dir, generator):
    from keras_kd.utils.devices import make_strategy

    # First: the strategy sets up TensorFlow's collectives.
    strategy = make_strategy("multi_worker")

    from keras_kd import pipeline
    from keras_kd.pipeline import steps

    replicas = []
    fit = steps._fit

    def recorded_fit(model, *args, **kwargs):
        replicas.append(model.distribute_strategy.num_replicas_in_sync)
        return fit(model, *args, **kwargs)

    steps._fit = recorded_fit
    config = pipeline.PipelineConfig.quick(
        teacher=preset,
        student_layers=1,
        sequence_length=32,
        teacher_epochs=1,
        max_train=64,
        max_test=32,
        latency_runs=1,
        seeds=(0,),
        few_labels=None,
        generated_texts=4,
        generator=generator,
        jit_compile=False,
        output_dir=output_dir,
        run_name="run",
        verbose=0,
    )
    report = pipeline.run(config, strategy=strategy)
    with open(out, "w") as f:
        json.dump({"report": report, "fit_replicas": replicas}, f, default=str)


if __name__ == "__main__":
    main(*sys.argv[1:])
