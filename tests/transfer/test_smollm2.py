"""The real SmolLM2-135M-Instruct of the offline `smollm2_135m` preset
(large: it converts or loads 135M parameters): the checkpoint's settings
survive the conversion, and it answers a chat prompt."""

import pytest

from keras_kd.transfer import load_causal_lm


@pytest.mark.large
def test_smollm2_loads_true_to_its_checkpoint_and_answers_paris():
    lm = load_causal_lm("smollm2_135m")
    backbone = lm.backbone
    assert (type(lm).__name__, backbone.num_layers, backbone.tie_word_embeddings) == (
        "Llama3CausalLM", 30, True
    )
    # keras-hub 0.32 uses 1e-6 and prepends a start token SmolLM2 has not.
    assert (backbone.layer_norm_epsilon, lm.preprocessor.add_start_token) == (1e-05, False)
    answer = lm.generate(
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
        max_length=64, strip_prompt=True,
    )
    assert answer == "The capital of France is Paris."
