"""Loading keras-hub causal language models the way their checkpoints mean.

`load_causal_lm(preset)` returns a keras-hub `CausalLM` (for example a
`Llama3CausalLM`) from any preset keras-kd resolves, then applies what
keras-hub 0.32's Hugging Face conversion leaves out: the checkpoint's RMS
norm epsilon (keras-hub keeps its 1e-6 default; SmolLM2 has 1e-5), whether
the tokenizer adds a start token (keras-hub's preprocessor prepends one;
SmolLM2's tokenizer does not) and greedy decoding as the default sampler.

Importing this module also applies `keras_hub_fixes`: without them a saved
Llama model reloads untied (`Layer 'token_embedding' expected 2
variables`), a SmolLM2 tokenizer does not reload at all, and every saved
`CausalLM` reloads with keras-hub's sampling default, `top_k`, instead of
the sampler it generated with; and SmolLM2's tokenizer would tokenize text
one way in `fit` (special tokens mangled) and another in `generate`.
"""

import contextlib
import json
import os

import keras
import keras_hub

from keras_kd.datasets.prompt_responses import start_token_ids
from keras_kd.presets import resolve_preset
from keras_kd.transfer import keras_hub_fixes  # patches keras-hub on import



def _read_json(folder, name):
    path = os.path.join(folder, name)
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)


def set_norm_epsilon(backbone, epsilon):
    """Sets the epsilon of every RMS/layer norm in `backbone` (and the
    backbone's `layer_norm_epsilon`, so it is saved with the model).

    Call it before the model is traced (compiled functions keep the old
    value).

    Args:
        backbone: a keras-hub decoder backbone.
        epsilon: the new epsilon.

    Returns:
        The number of norm layers changed.
    """
    changed = 0
    for layer in backbone._flatten_layers(include_self=False):
        if "norm" in type(layer).__name__.lower() and hasattr(layer, "epsilon"):
            layer.epsilon = epsilon
            changed += 1
    for layer in backbone.transformer_layers:
        if hasattr(layer, "layer_norm_epsilon"):
            layer.layer_norm_epsilon = epsilon
    if hasattr(backbone, "layer_norm_epsilon"):
        backbone.layer_norm_epsilon = epsilon
    return changed


def load_causal_lm(preset, sampler=None, **kwargs):
    """Loads a keras-hub `CausalLM`, true to its checkpoint.

    Args:
        preset: a keras-kd offline preset (`"smollm2_135m"`), a keras-hub
            preset name, a keras-hub preset folder, or a Hugging Face folder
            of a decoder keras-hub converts (Llama, Gemma, Qwen, GPT-2,
            Mistral).
        sampler: the sampler `generate` uses; None: the one the preset
            was saved with by a model of keras-kd's
            (`keras_hub_fixes.SAMPLER_FILE`), else greedy decoding
            (keras-hub's default is `"top_k"`, which samples).
        **kwargs: passed to `keras_hub.models.CausalLM.from_preset`.

    Returns:
        The `CausalLM`, generating with `sampler`.

    Example (a tiny Llama saved as a preset folder; `load_causal_lm(
    "smollm2_135m")` loads the real SmolLM2 offline the same way, and
    `tests/transfer/test_smollm2.py` checks that it answers "Paris"):

    >>> import tempfile
    >>> from keras_kd.utils.testing import tiny_llama3_causal_lm
    >>> folder = tempfile.mkdtemp() + "/lm"
    >>> tiny_llama3_causal_lm().save_to_preset(folder)
    >>> lm = load_causal_lm(folder)
    >>> type(lm).__name__, lm.backbone.tie_word_embeddings, type(lm.sampler).__name__
    ('Llama3CausalLM', True, 'GreedySampler')
    """
    folder = resolve_preset(preset)
    model = keras_hub.models.CausalLM.from_preset(folder, **kwargs)
    if os.path.isdir(folder):
        hf_config = _read_json(folder, "config.json")
        # A Hugging Face folder (a keras-hub preset's config carries
        # "registered_name" and is loaded exactly).
        if "registered_name" not in hf_config:
            epsilon = hf_config.get("rms_norm_eps")
            if epsilon is not None:
                set_norm_epsilon(model.backbone, float(epsilon))
            tokenizer_config = _read_json(folder, "tokenizer_config.json")
            if model.preprocessor is not None and "add_bos_token" in tokenizer_config:
                model.preprocessor.add_start_token = bool(
                    tokenizer_config["add_bos_token"]
                )
    saved = os.path.isfile(os.path.join(folder, keras_hub_fixes.SAMPLER_FILE))
    if sampler is not None or not saved:
        set_sampler(model, sampler or "greedy")
    return model


def set_sampler(model, sampler):
    """Sets the sampler a keras-hub `CausalLM`'s `generate` uses, without
    `compile` (which would also reset the optimizer and loss).

    Args:
        model: a keras-hub `CausalLM`.
        sampler: a sampler name (`"greedy"`, `"top_k"`, ...) or a
            `keras_hub.samplers.Sampler`.

    Returns:
        The sampler.

    Example:

    >>> from keras_kd.utils.testing import tiny_llama3_causal_lm
    >>> model = tiny_llama3_causal_lm(num_layers=1)
    >>> type(set_sampler(model, "top_k")).__name__, model.sampler.k
    ('TopKSampler', 5)
    """
    model.sampler = keras_hub.samplers.get(sampler)
    # keras-hub caches the compiled generate function with its sampler.
    model.generate_function = None
    return model.sampler


def prompt_token_ids(causal_lm, prompts):
    """The token ids a keras-hub `CausalLM`'s `generate` starts from for
    each prompt: its tokenizer's, after the start token where its
    preprocessor adds one.

    Args:
        causal_lm: a keras-hub `CausalLM` with its preprocessor.
        prompts: a list of strings.

    Returns:
        A list of lists of ints, one per prompt.

    Example:

    >>> from keras_kd.utils.testing import tiny_llama3_causal_lm
    >>> prompt_token_ids(tiny_llama3_causal_lm(num_layers=1), ["the tea", "a"])
    [[22, 33, 32, 7, 3], [3]]
    """
    preprocessor = causal_lm.preprocessor
    start = start_token_ids(preprocessor)
    return [start + [int(i) for i in ids] for ids in preprocessor.tokenizer(list(prompts))]


@contextlib.contextmanager
def generation_settings(model, **settings):
    """Sets attributes that a keras-hub `CausalLM`'s compiled generate
    function captures (`sampler`, `jit_compile`) for the body of a `with`,
    then restores them and the model's own compiled function.

    Args:
        model: a keras-hub `CausalLM`.
        **settings: attribute values, such as `jit_compile=True`.

    Returns:
        A context manager that yields the model.

    Example:

    >>> from keras_kd.utils.testing import tiny_llama3_causal_lm
    >>> model = tiny_llama3_causal_lm()
    >>> model.jit_compile = False
    >>> with generation_settings(model, jit_compile=True):
    ...     model.jit_compile
    True
    >>> model.jit_compile
    False
    """
    saved = {name: getattr(model, name) for name in settings}, model.generate_function
    for name, value in settings.items():
        setattr(model, name, value)
    # keras-hub caches the compiled generate function with these settings.
    model.generate_function = None
    try:
        yield model
    finally:
        for name, value in saved[0].items():
            setattr(model, name, value)
        model.generate_function = saved[1]


def is_causal_lm(model):
    """Whether `model` is a keras-hub `CausalLM` (a task with a decoder)."""
    return isinstance(model, keras_hub.models.CausalLM)


def _subclasses(cls):
    for subclass in cls.__subclasses__():
        yield subclass
        yield from _subclasses(subclass)


def is_decoder_backbone(backbone):
    """Whether `backbone` is the backbone of a keras-hub `CausalLM` class
    (Llama, Gemma, Qwen, GPT-2, Mistral, ...).

    Example:

    >>> import keras_hub
    >>> bert = keras_hub.models.BertBackbone(
    ...     vocabulary_size=10, num_layers=1, num_heads=1, hidden_dim=4,
    ...     intermediate_dim=8, max_sequence_length=4)
    >>> llama = keras_hub.models.Llama3Backbone(
    ...     vocabulary_size=10, num_layers=1, num_query_heads=1,
    ...     num_key_value_heads=1, hidden_dim=4, intermediate_dim=8)
    >>> is_decoder_backbone(llama), is_decoder_backbone(bert)
    (True, False)
    """
    return any(
        isinstance(backbone, cls.backbone_cls)
        for cls in _subclasses(keras_hub.models.CausalLM)
        if getattr(cls, "backbone_cls", None) is not None
    )


def check_same_tokenizer(teacher, student, reader="The Distiller"):
    """Refuses causal LMs whose vocabulary sizes differ.

    `reader` (the Distiller, `evaluate_causal_lm`) compares the two models'
    next-token distributions token id by token id, so both must use the
    same tokenizer. The sizes are checked here, from the backbones (models
    without a preprocessor have no tokenizer); the tokens themselves, where
    both have one, by `check_same_vocabulary`.

    Raises:
        ValueError: naming both vocabulary sizes.
    """
    sizes = (
        teacher.backbone.vocabulary_size,
        student.backbone.vocabulary_size,
    )
    if sizes[0] != sizes[1]:
        raise ValueError(
            f"Teacher and student must share the tokenizer: {reader} "
            "compares their predictions token id by token id. Received: a "
            f"teacher vocabulary of {sizes[0]:,} tokens and a student "
            f"vocabulary of {sizes[1]:,}. Build the student from the teacher "
            "(`keras_kd.transfer.student_like`) or give it the teacher's "
            "tokenizer, and trim the student's vocabulary last "
            "(`keras_kd.transfer.trim_lm_vocabulary`), after distilling and "
            "scoring it against the teacher."
        )


def check_same_vocabulary(teacher, student, role="teacher", reader="The Distiller"):
    """Refuses a teacher whose tokenizer differs from the student's: the
    Distiller and `evaluate_causal_lm` (`reader`) tokenize raw texts with
    the student's preprocessor and hand the same token ids to the teacher,
    which would read other words, and compare predictions id by id. Causal
    LMs must also have as many tokens (`check_same_tokenizer`: models
    without a tokenizer are compared by their backbones).

    Args:
        teacher: the teacher model.
        student: the student model.
        role: the teacher's name in the message (`"teacher[1]"`, ...).
        reader: who compares them, in the message.

    Raises:
        ValueError: naming the first token id whose tokens differ, or both
            vocabulary sizes.

    Example:

    >>> from keras_kd.utils.testing import tiny_bert_text_classifier
    >>> teacher = tiny_bert_text_classifier()
    >>> check_same_vocabulary(teacher, teacher.trim_vocabulary(["a dull plot"], keep_characters=False))
    Traceback (most recent call last):
    ...
    ValueError: The teacher's tokenizer differs from the student's (token id 6 is 'fine' for the teacher, 'dull' for the student). The Distiller tokenizes texts with the student's preprocessor and gives the teacher the same token ids, so it would read other words. Build the student from the teacher (`keras_kd.transfer.student_like` keeps its tokenizer) and trim the student's vocabulary last (`FinetuneModel.trim_vocabulary`, `keras_kd.transfer.trim_lm_vocabulary`), after distilling and scoring it against the teacher.
    """
    from keras_kd.transfer.vocabulary import vocabulary_difference

    if is_causal_lm(teacher) and is_causal_lm(student):
        check_same_tokenizer(teacher, student, reader)
    difference = vocabulary_difference(teacher, student)
    if difference is not None:
        index, theirs, ours = difference
        raise ValueError(
            f"The {role}'s tokenizer differs from the student's (token id "
            f"{index} is {theirs!r} for the {role}, {ours!r} for the "
            f"student). {reader} tokenizes texts with the student's "
            f"preprocessor and gives the {role} the same token ids, so it "
            "would read other words. Build the student from the teacher "
            "(`keras_kd.transfer.student_like` keeps its tokenizer) and trim "
            "the student's vocabulary last (`FinetuneModel.trim_vocabulary`, "
            "`keras_kd.transfer.trim_lm_vocabulary`), after distilling and "
            "scoring it against the teacher."
        )


def finetune_causal_lm(
    model,
    texts,
    *,
    steps=None,
    epochs=1,
    batch_size=8,
    sequence_length=64,
    learning_rate=5e-5,
    warmup=0.1,
    freeze="none",
    lora_rank=None,
    jit_compile=True,
    seed=0,
    verbose=1,
    callbacks=None,
):
    """Fine-tunes a keras-hub `CausalLM` on raw text (next-token
    cross-entropy), fully, with frozen layers, or with LoRA.

    The texts are tokenized once with the model's preprocessor, shuffled
    with `seed`, and trained with AdamW under linear warm-up then cosine
    decay (`keras_kd.transfer.warmup_cosine_adamw`); the loss is averaged
    over unpadded tokens.

    Args:
        model: a keras-hub `CausalLM` with a preprocessor.
        texts: a list of strings, or prompt-response data
            `{"prompts": [...], "responses": [...]}`, whose loss counts the
            responses' tokens alone.
        steps: optimizer steps in all (default: `epochs` passes over the
            texts).
        epochs: passes over the texts when `steps` is None.
        batch_size: texts per step.
        sequence_length: tokens per text (longer texts are cut).
        learning_rate: the peak learning rate.
        warmup: fraction of the steps spent warming up.
        freeze: a freeze spec of `keras_kd.transfer.resolve_freeze`
            (`"none"`, `"embeddings"`, an int `n`: the embeddings and the
            first `n` transformer layers, layer names or a regex).
        lora_rank: if set, train LoRA adapters of this rank on the attention
            projections instead of the weights (keras-hub's `enable_lora`;
            a model that has adapters from an earlier call trains those, and
            must be given their rank).
        jit_compile: compile the training step with XLA.
        seed: seed of the shuffling.
        verbose: Keras verbosity.
        callbacks: Keras callbacks of the training.

    What trains follows this call's `freeze` and `lora_rank` alone, not
    what an earlier call or a `Distiller` (which freezes its teacher) set.

    Returns:
        The `keras.callbacks.History` of one Keras epoch of `steps` steps;
        `history.history["perplexity"]` is the training perplexity.

    Raises:
        ValueError: a bad argument, or a `lora_rank` other than the rank of
            the adapters the model already has (None included).
    """
    from keras_kd.distillation.inputs import preprocessed
    from keras_kd.distillation.lm_metrics import Perplexity
    from keras_kd.transfer.freezing import resolve_freeze
    from keras_kd.transfer.schedules import warmup_cosine_adamw
    from keras_kd.utils.validation import check_causal_lm_texts, check_int, is_prompt_responses

    check_int("batch_size", batch_size)
    check_int("sequence_length", sequence_length, minimum=2)
    check_int("steps", steps, allow_none=True, example=100)
    check_int("epochs", epochs)
    check_int("lora_rank", lora_rank, allow_none=True, example=8)
    texts = check_causal_lm_texts("texts", texts)
    frozen = set(resolve_freeze(freeze, model.backbone))
    adapters_rank = _check_lora_rank(model.backbone, lora_rank)
    if lora_rank is not None and adapters_rank is None:
        model.backbone.enable_lora(lora_rank)
    _set_trainable(model, frozen, lora=lora_rank is not None)
    if steps is None:
        examples = len(texts["prompts"]) if is_prompt_responses(texts) else len(texts)
        steps = epochs * -(-examples // batch_size)
    keras.utils.set_random_seed(seed)
    dataset = preprocessed(
        model.preprocessor,
        texts,
        batch_size=batch_size,
        shuffle=True,
        sequence_length=sequence_length,
    ).repeat()
    model.compile(
        optimizer=warmup_cosine_adamw(learning_rate, steps, warmup=warmup),
        loss=keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, reduction="mean_with_sample_weight"
        ),
        weighted_metrics=[Perplexity()],
        sampler=model.sampler,
        jit_compile=jit_compile,
    )
    # keras.Model.fit: keras-hub's own fit would run the preprocessor again
    # on the tokenized batches.
    return keras.Model.fit(
        model, dataset, steps_per_epoch=steps, epochs=1, shuffle=False,
        verbose=verbose, callbacks=callbacks,
    )


def _lora_layers(backbone):
    return [
        layer for layer in backbone._flatten_layers(include_self=False)
        if getattr(layer, "lora_enabled", False)
    ]


def _check_lora_rank(backbone, lora_rank):
    """The rank of the LoRA adapters `backbone` has (None without any),
    refusing a call whose `lora_rank` is not it: keras-hub enables LoRA
    once, and a full fine-tune would also train the base weights under
    the adapters."""
    ranks = sorted({layer.lora_rank for layer in _lora_layers(backbone)})
    if ranks and ranks != [lora_rank]:
        keep = f"Pass lora_rank={ranks[0]} to train them further, or train" if len(ranks) == 1 else "Train"
        raise ValueError(
            f"lora_rank={lora_rank}, but the model already has LoRA adapters "
            f"of rank {', '.join(map(str, ranks))} (from an earlier "
            "`finetune_causal_lm(lora_rank=...)` or `enable_lora`). "
            f"{keep} a copy with the adapters merged into its weights: "
            "`keras_kd.transfer.student_like(model, num_layers=model.backbone.num_layers)`."
        )
    return ranks[0] if ranks else None


def _set_trainable(model, frozen, lora):
    """Sets what trains from this call's arguments alone, whatever an
    earlier call, a `Distiller` (which freezes its teacher) or the user
    left: every weight but those of the `frozen` backbone layers, and with
    `lora` only the LoRA adapters among them."""
    model.trainable = True
    for layer in model.backbone.layers:
        layer.trainable = layer.name not in frozen
    if lora:
        adapters = {
            id(v) for layer in _lora_layers(model.backbone)
            for v in (layer.lora_kernel_a, layer.lora_kernel_b)
        }
        # Variable flags: a frozen layer's `trainable = False` has already
        # cleared its adapters' flags.
        for variable in model.weights:
            if id(variable) not in adapters:
                variable.trainable = False
