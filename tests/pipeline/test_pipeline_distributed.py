"""`keras_kd.pipeline.run` under `MultiWorkerMirroredStrategy`: the whole
run on a tiny teacher in two worker processes (the script:
distributed_pipeline_run.py). A file of its own, so that `make
test-large`'s processes run it beside the run of test_pipeline.py."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_kd import transfer
from keras_kd.utils.testing import free_ports


@pytest.mark.large
def test_pipeline_runs_on_two_workers(tmp_path, tiny_preset, tiny_llama_preset):
    """`run(config, strategy=MultiWorkerMirroredStrategy())` in two worker
    processes on 127.0.0.1, with 4 generated texts: each training (the
    teacher and both students) runs on the 2 replicas, both workers end
    with the same teacher, the same generated texts and the same report,
    and the files exported from the saved models match them (the run's
    TFLite checks)."""
    script = os.path.join(os.path.dirname(__file__), "distributed_pipeline_run.py")
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_CONFIG=json.dumps(tf_config))
        processes.append(subprocess.Popen(
            [sys.executable, script, str(tmp_path / f"worker{index}.json"), tiny_preset,
             str(tmp_path / f"worker{index}"), tiny_llama_preset],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        ))
    try:
        for process in processes:
            process.wait(timeout=600)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    for process in processes:
        assert process.returncode == 0, process.stdout.read()[-3000:]
    results = [json.loads((tmp_path / f"worker{i}.json").read_text()) for i in range(2)]
    for result in results:
        assert result["fit_replicas"] == [2] * 3
        report = result["report"]
        assert report["replicas"] == 2
        checks = report["checks"]
        assert checks["teacher"]["argmax_agreement"] == 1.0
        assert checks["teacher"]["max_abs_diff"] < 1e-4
        assert checks["student"]["argmax_agreement"] >= 0.9
    first, second = (result["report"] for result in results)
    assert 1 <= first["generated_texts"]["texts"] <= 4
    assert second["generated_texts"] == first["generated_texts"]
    for name, model in first["models"].items():
        assert second["models"][name]["test_accuracy"] == model["test_accuracy"], name
    teachers = [
        transfer.load_finetune_model(str(tmp_path / f"worker{i}" / "run" / "teacher.keras"))
        for i in range(2)
    ]
    for a, b in zip(*(t.get_weights() for t in teachers)):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
