"""Smaller models made from a teacher.

`build_student` builds a shallower (or narrower) backbone of the teacher's
family, by default initialised from the teacher's layers (a narrower one
from its projected embeddings); `student_config` gives the settings of a
narrower one of a chosen width; `student_like` wraps one in a
`FinetuneModel` with the teacher's heads and preprocessor.
"""

import numpy as np

from keras_kd.transfer.causal_lm import is_causal_lm, is_decoder_backbone
from keras_kd.transfer.causal_lm import set_sampler
from keras_kd.transfer.embedding_projection import project_embeddings
from keras_kd.transfer.finetune_model import FinetuneModel
from keras_kd.transfer.freezing import resolve_freeze
from keras_kd.transfer.weight_copy import copy_except_blocks
from keras_kd.transfer.weight_copy import copy_weights
from keras_kd.transfer.weight_copy import encoder_blocks
from keras_kd.utils.validation import check_choice
from keras_kd.utils.validation import check_int
from keras_kd.utils.validation import check_not_a_distiller
from keras_kd.utils.validation import check_number

INITS = ("auto", "teacher", "embeddings", "scratch")


def _default_layer_map(teacher_depth, num_layers, decoder=False):
    if decoder:
        # The bottom and top layers of a deep decoder: measured on SmolLM2
        # (30 -> 6 layers), [0, 1, 2, 27, 28, 29] starts at perplexity 0.32
        # million against 19 million for every 5th layer, and after 40
        # training steps reaches 1,150 against 2,504.
        bottom = (num_layers + 1) // 2
        top = num_layers - bottom
        return list(range(bottom)) + list(range(teacher_depth - top, teacher_depth))
    return evenly_spaced_layers(teacher_depth, num_layers)


def evenly_spaced_layers(teacher_depth, num_layers):
    """Teacher layer `round((i + 1) * teacher_depth / num_layers) - 1` for
    each layer `i` of a student of `num_layers <= teacher_depth` layers:
    every k-th teacher layer, ending at the top one, whose features are
    those the heads and the distillation loss see.

    Example:

    >>> evenly_spaced_layers(6, 2), evenly_spaced_layers(6, 3)
    ([2, 5], [1, 3, 5])
    """
    stride = teacher_depth / num_layers
    return [round(stride * (i + 1)) - 1 for i in range(num_layers)]


def build_student(
    teacher_backbone,
    num_layers=None,
    *,
    layer_map=None,
    hidden_dim=None,
    num_heads=None,
    num_key_value_heads=None,
    intermediate_dim=None,
    init="auto",
    dropout=None,
):
    """Builds a smaller backbone of the teacher's family.

    Works on keras-hub encoders (BERT, RoBERTa, DistilBERT, ...) and
    decoders (Llama, Gemma, Qwen, GPT-2, Mistral, ...): any backbone with
    `transformer_layers` and a `num_layers` config entry. A decoder student
    keeps the teacher's embeddings, final norm and (tied) output layer.

    With the teacher's widths, the student starts from the teacher
    (DistilBERT's recipe): the embeddings, the layers after the blocks
    (BERT's pooler), and transformer layer `layer_map[i]` of the teacher as
    its layer `i`. By default `layer_map` takes, for an encoder, every k-th
    layer ending at the top one (6 -> 3 layers: `[1, 3, 5]`), and for a
    decoder the bottom and top layers (30 -> 6 layers: `[0, 1, 2, 27, 28,
    29]`), which a layer-dropped decoder survives best.

    A narrower student (`init="embeddings"`) starts from the teacher's
    embedding tables projected onto their leading principal directions
    (`keras_kd.transfer.project_embeddings`) and new transformer layers: on
    the movie reviews a 1-layer, 128-wide MiniLM student distilled for one
    epoch reached 0.793 test accuracy this way against 0.767 from scratch
    (one seed).

    Args:
        teacher_backbone: a keras-hub encoder (the BERT family) or decoder
            backbone with `transformer_layers`.
        num_layers: the number of transformer layers of the student;
            defaults to `len(layer_map)`, or half the teacher's (at least 1).
        layer_map: teacher layer index for each student layer.
        hidden_dim: width of the student (default: the teacher's).
        num_heads: attention heads (default: the teacher's; the query
            heads of decoders with grouped-query attention).
        num_key_value_heads: key-value heads of a grouped-query-attention
            decoder (default: the teacher's).
        intermediate_dim: feed-forward width (default: the teacher's).
        init: `"auto"` (`"teacher"` when the widths match, else
            `"embeddings"`, or `"scratch"` for a wider student),
            `"teacher"` (embeddings and layers copied), `"embeddings"`
            (projected embeddings, new layers) or `"scratch"`.
        dropout: the student's dropout (default: the teacher's).

    Returns:
        A new backbone of the teacher's class.

    Example:

    >>> import keras_hub
    >>> from keras_kd.transfer import build_student
    >>> teacher = keras_hub.models.BertBackbone(
    ...     vocabulary_size=10, num_layers=6, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=8)
    >>> student = build_student(teacher, num_layers=3)  # teacher layers 1, 3, 5
    >>> student.num_layers
    3
    >>> bool((student.transformer_layers[2].get_weights()[0]
    ...       == teacher.transformer_layers[5].get_weights()[0]).all())
    True
    >>> build_student(teacher, num_layers=0)
    Traceback (most recent call last):
    ...
    ValueError: `num_layers` must be an int >= 1, e.g. 3. Received: num_layers=0
    """
    blocks = encoder_blocks(teacher_backbone)
    depth = len(blocks)
    if layer_map is not None and not hasattr(layer_map, "__len__") or isinstance(layer_map, str):
        raise ValueError(
            "`layer_map` is a list of teacher layer indices, one per student "
            f"layer, e.g. layer_map=[0, {depth - 1}]; for a number of layers "
            f"pass num_layers=. Received: layer_map={layer_map!r}"
        )
    if num_layers is None:
        num_layers = len(layer_map) if layer_map is not None else max(1, depth // 2)
    check_int("num_layers", num_layers, example=max(1, depth // 2))
    check_choice("init", init, INITS)
    for name, value in (
        ("hidden_dim", hidden_dim),
        ("num_heads", num_heads),
        ("num_key_value_heads", num_key_value_heads),
        ("intermediate_dim", intermediate_dim),
    ):
        check_int(name, value, allow_none=True)
    if dropout is not None:
        check_number("dropout", dropout, 0, 1, high_open=True, example=0.1)
    config = teacher_backbone.get_config()
    # Grouped-query-attention decoders name their query heads differently.
    heads_key = "num_heads" if "num_heads" in config else "num_query_heads"
    if num_key_value_heads is not None and "num_key_value_heads" not in config:
        raise ValueError(
            f"num_key_value_heads={num_key_value_heads} needs a backbone with "
            f"grouped-query attention; a {type(teacher_backbone).__name__} has "
            "none. Leave it unset."
        )
    overrides = {
        "hidden_dim": hidden_dim,
        heads_key: num_heads,
        "num_key_value_heads": num_key_value_heads,
        "intermediate_dim": intermediate_dim,
    }
    widened = {
        key: value
        for key, value in overrides.items()
        if value is not None and value != config[key]
    }
    width = overrides["hidden_dim"] or config["hidden_dim"]
    if widened:
        _check_head_shapes(config, width, overrides[heads_key] or config[heads_key],
                           num_key_value_heads or config.get("num_key_value_heads"))
    if init == "auto":
        if not widened:
            init = "teacher"
        else:
            init = "embeddings" if width <= config["hidden_dim"] else "scratch"
    if init == "embeddings" and width > config["hidden_dim"]:
        raise ValueError(
            f"init='embeddings' projects the teacher's {config['hidden_dim']}-wide "
            f"embeddings onto the student's width, but hidden_dim={width} is "
            "wider. Use init='scratch' or a hidden_dim <= "
            f"{config['hidden_dim']}."
        )
    if init == "teacher":
        if widened:
            raise ValueError(
                f"init='teacher' copies the teacher's weights, which needs the "
                f"teacher's widths, but {widened} differ from "
                f"{ {k: config[k] for k in widened} }. Use init='embeddings' "
                "(projected embeddings, new layers), init='scratch', or keep "
                "the teacher's widths."
            )
        if num_layers > depth:
            raise ValueError(
                f"The student (num_layers={num_layers}) cannot be deeper than "
                f"its teacher ({depth} layers) when initialised from it. Pass "
                f"num_layers <= {depth}, or init='scratch'."
            )
        if layer_map is None:
            layer_map = _default_layer_map(
                depth, num_layers, decoder=is_decoder_backbone(teacher_backbone)
            )
        layer_map = list(layer_map)
        if len(layer_map) != num_layers:
            raise ValueError(
                f"layer_map={layer_map} has {len(layer_map)} entries but "
                f"num_layers={num_layers}: give one teacher layer per student "
                "layer."
            )
        bad = [
            i for i in layer_map
            if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < depth
        ]
        if bad:
            raise ValueError(
                f"layer_map={layer_map} has indices out of range: {bad}. The "
                f"teacher has {depth} transformer layers, indices 0 to "
                f"{depth - 1}."
            )
    elif layer_map is not None:
        raise ValueError(
            "layer_map picks teacher layers to copy, which needs "
            f"init='teacher' and the teacher's widths (init={init!r})."
        )
    config.update({k: v for k, v in overrides.items() if v is not None})
    config["num_layers"] = num_layers
    if dropout is not None:
        config["dropout"] = dropout
    config.pop("name", None)
    # A teacher frozen by a Distiller must not hand its flag to the student.
    config["trainable"] = True
    student = type(teacher_backbone).from_config(config)
    if init == "teacher":
        copy_except_blocks(teacher_backbone, student)
        for i, source in enumerate(layer_map):
            copy_weights(blocks[source], student.transformer_layers[i])
    elif init == "embeddings":
        project_embeddings(teacher_backbone, student)
    return student


def _check_head_shapes(config, width, heads, key_value_heads):
    """Refuses widths the backbone cannot build or run: heads that do not
    divide the width (a backbone without its own `head_dim`), key-value
    heads that do not divide the query heads, and an odd head size under
    rotary position embeddings (keras-hub fails only at the first call).

    Example:

    >>> _check_head_shapes({"hidden_dim": 576}, 256, 9, 3)
    Traceback (most recent call last):
    ...
    ValueError: hidden_dim=256 is not a multiple of num_heads=9 (the teacher's unless given): each head takes hidden_dim / num_heads dimensions. Pass num_heads= dividing 256, e.g. num_heads=8 (heads of 32).
    """
    if "head_dim" not in config and width % heads:
        divisor = next(n for n in range(min(heads, width), 0, -1) if width % n == 0)
        raise ValueError(
            f"hidden_dim={width} is not a multiple of num_heads={heads} (the "
            "teacher's unless given): each head takes hidden_dim / num_heads "
            f"dimensions. Pass num_heads= dividing {width}, e.g. "
            f"num_heads={divisor} (heads of {width // divisor})."
        )
    if key_value_heads and heads % key_value_heads:
        raise ValueError(
            f"num_heads={heads} is not a multiple of num_key_value_heads="
            f"{key_value_heads} (the teacher's unless given): each key-value "
            "head serves a group of query heads. Pass num_key_value_heads= "
            f"dividing {heads}, e.g. 1."
        )
    head_size = config.get("head_dim") or width // heads
    if "rope_max_wavelength" in config and head_size % 2:
        raise ValueError(
            f"Heads of {head_size} dimensions (hidden_dim={width} / "
            f"num_heads={heads}): rotary position embeddings rotate pairs of "
            "dimensions, so a head needs an even size. Choose hidden_dim and "
            "num_heads whose quotient is even."
        )


def student_config(teacher_backbone, num_layers, hidden_dim):
    """The `keras_kd.transfer.student_like` arguments of a shape: heads of
    the teacher's head size and the teacher's feed-forward ratio; a shape of
    the teacher's width starts from its layers, a narrower one from its
    projected embeddings.

    Example:

    >>> import keras_hub
    >>> from keras_kd.transfer import student_config
    >>> teacher = keras_hub.models.BertBackbone(
    ...     vocabulary_size=10, num_layers=2, num_heads=12, hidden_dim=384,
    ...     intermediate_dim=1536, max_sequence_length=8)
    >>> student_config(teacher, 2, 128)
    {'num_layers': 2, 'hidden_dim': 128, 'num_heads': 4, 'intermediate_dim': 512}
    """
    config = teacher_backbone.get_config()
    head_size = config["hidden_dim"] // config["num_heads"]
    return {
        "num_layers": num_layers,
        "hidden_dim": hidden_dim,
        "num_heads": max(1, hidden_dim // head_size),
        "intermediate_dim": config["intermediate_dim"] * hidden_dim // config["hidden_dim"],
    }


def student_like(teacher, num_layers=None, *, freeze="none", name=None, **kwargs):
    """Returns a smaller model of the teacher's kind: a `FinetuneModel`
    from a `FinetuneModel`, a keras-hub `CausalLM` from a `CausalLM`.

    For a `CausalLM` (`Llama3CausalLM`, `GemmaCausalLM`, ...), the student
    is the same task class on `build_student(teacher.backbone, num_layers,
    **kwargs)` (by default the teacher's bottom and top layers) with the
    teacher's preprocessor (so the same tokenizer) and sampler.

    For a `FinetuneModel`, the student's backbone comes from
    `build_student(teacher.backbone, num_layers, **kwargs)` (by default
    every other teacher layer, ending at the top one); it keeps the teacher's preprocessor, pooling, layer-wise
    learning-rate decay and heads, with the heads' weights copied as a
    starting point (new heads for a narrower student). It is compiled with the defaults.

    Args:
        teacher: a `FinetuneModel` or a keras-hub `CausalLM`.
        num_layers: the number of transformer layers of the student
            (default: half the teacher's).
        freeze: the student's freeze spec.
        name: the student's name (default: `"<teacher name>_student"`).
        **kwargs: further `build_student` arguments (`layer_map`,
            `hidden_dim`, `num_heads`, `intermediate_dim`, `init`,
            `dropout`).

    Returns:
        A compiled `FinetuneModel`, or an uncompiled `CausalLM` of the
        teacher's class.

    Example:

    >>> import keras_hub
    >>> from keras_kd.transfer import build_finetune_model, student_like
    >>> backbone = keras_hub.models.BertBackbone(
    ...     vocabulary_size=10, num_layers=4, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=8)
    >>> teacher = build_finetune_model(backbone, num_classes=2, compile=False,
    ...                                name="teacher")
    >>> student = student_like(teacher)
    >>> student.name, student.backbone.num_layers, tuple(student.output.shape)
    ('teacher_student', 2, (None, 2))
    """
    check_not_a_distiller(teacher, "teacher", "student_like")
    if is_causal_lm(teacher):
        backbone = build_student(teacher.backbone, num_layers, **kwargs)
        frozen = set(resolve_freeze(freeze, backbone))
        for layer in backbone.layers:
            if layer.name in frozen:
                layer.trainable = False
        student = type(teacher)(
            backbone=backbone,
            preprocessor=teacher.preprocessor,
            name=name or f"{teacher.name}_student",
        )
        set_sampler(student, getattr(teacher, "sampler", None) or "greedy")
        return student
    if not isinstance(teacher, FinetuneModel):
        raise TypeError(
            "student_like needs a FinetuneModel teacher (from "
            "build_finetune_model) or a keras-hub CausalLM; for a bare "
            f"backbone use build_student. Received: {type(teacher).__name__}"
        )
    backbone = build_student(teacher.backbone, num_layers, **kwargs)
    return teacher._with_backbone(
        backbone,
        teacher.preprocessor,
        freeze=freeze,
        name=name or f"{teacher.name}_student",
    )
