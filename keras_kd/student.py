"""Smaller backbones made from a teacher: `build_student`, `trim_vocabulary`."""

import keras
import numpy as np

# The WordPiece special tokens that a BERT-family vocabulary must keep for
# keras-hub, TFLite and MediaPipe tokenizers to work.
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

_SHAPE_KEYS = ("hidden_dim", "num_heads", "intermediate_dim")


def _transformer_layers(backbone):
    blocks = list(getattr(backbone, "transformer_layers", None) or [])
    if not blocks or "num_layers" not in backbone.get_config():
        raise ValueError(
            "build_student and trim_vocabulary work on keras-hub encoder "
            "backbones with `transformer_layers` and a `num_layers` config "
            f"(the BERT family). Received: {type(backbone).__name__}"
        )
    return blocks


def _copy_weights(source, target):
    source_weights = source.get_weights()
    target_shapes = [w.shape for w in target.get_weights()]
    if [w.shape for w in source_weights] != target_shapes:
        raise ValueError(
            f"Cannot copy layer {source.name!r} into {target.name!r}: weight "
            f"shapes differ ({[w.shape for w in source_weights]} vs "
            f"{target_shapes})."
        )
    target.set_weights(source_weights)


def _default_layer_map(teacher_depth, num_layers):
    # Every k-th layer, ending at the top one: the top layer's features
    # are the ones the heads and the distillation loss see.
    stride = teacher_depth / num_layers
    return [round(stride * (i + 1)) - 1 for i in range(num_layers)]


def build_student(
    teacher_backbone,
    num_layers=None,
    *,
    layer_map=None,
    hidden_dim=None,
    num_heads=None,
    intermediate_dim=None,
    init="auto",
    dropout=None,
):
    """Builds a smaller backbone of the teacher's family.

    With the teacher's widths, the student starts from the teacher
    (DistilBERT's recipe): the embeddings, the layers after the blocks
    (BERT's pooler), and transformer layer `layer_map[i]` of the teacher as
    its layer `i`. By default `layer_map` takes every k-th layer ending at
    the top one (6 -> 3 layers: `[1, 3, 5]`). With other widths the student
    starts from scratch.

    Args:
        teacher_backbone: a keras-hub encoder backbone (the BERT family).
        num_layers: transformer layers of the student; defaults to
            `len(layer_map)`, or half the teacher's.
        layer_map: teacher layer index for each student layer.
        hidden_dim: width of the student (default: the teacher's).
        num_heads: attention heads (default: the teacher's).
        intermediate_dim: feed-forward width (default: the teacher's).
        init: `"auto"` (from the teacher when the widths match, else from
            scratch), `"teacher"` or `"scratch"`.
        dropout: the student's dropout (default: the teacher's).

    Returns:
        A new backbone of the teacher's class.

    Example:

    ```python
    import keras_hub, keras_kd
    teacher = keras_hub.models.BertBackbone(
        vocabulary_size=100, num_layers=4, num_heads=2, hidden_dim=8,
        intermediate_dim=16)
    student = keras_kd.transfer.build_student(teacher, num_layers=2)
    student.num_layers
    # 2
    ```
    """
    blocks = _transformer_layers(teacher_backbone)
    depth = len(blocks)
    if num_layers is None:
        num_layers = len(layer_map) if layer_map is not None else max(1, depth // 2)
    if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
        raise ValueError(
            f"`num_layers` must be a positive integer. Received: num_layers={num_layers!r}"
        )
    if init not in ("auto", "teacher", "scratch"):
        raise ValueError(
            f"Unknown init={init!r}. Expected 'auto', 'teacher' or 'scratch'."
        )
    config = teacher_backbone.get_config()
    overrides = {
        "hidden_dim": hidden_dim,
        "num_heads": num_heads,
        "intermediate_dim": intermediate_dim,
    }
    widened = {
        key: value
        for key, value in overrides.items()
        if value is not None and value != config[key]
    }
    if init == "auto":
        init = "scratch" if widened else "teacher"
    if init == "teacher":
        if widened:
            raise ValueError(
                f"init='teacher' copies the teacher's weights, which needs the "
                f"teacher's widths, but {widened} differ from "
                f"{ {k: config[k] for k in widened} }. Use init='scratch' or "
                "keep the teacher's widths."
            )
        if num_layers > depth:
            raise ValueError(
                f"The student (num_layers={num_layers}) cannot be deeper than "
                f"its teacher ({depth} layers) when initialised from it. Pass "
                f"num_layers <= {depth}, or init='scratch'."
            )
        if layer_map is None:
            layer_map = _default_layer_map(depth, num_layers)
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
            "init='teacher' and the teacher's widths."
        )
    config.update({k: v for k, v in overrides.items() if v is not None})
    config["num_layers"] = num_layers
    if dropout is not None:
        config["dropout"] = dropout
    config.pop("name", None)
    student = type(teacher_backbone).from_config(config)
    if init == "teacher":
        _copy_except_blocks(teacher_backbone, student)
        for i, source in enumerate(layer_map):
            _copy_weights(blocks[source], student.transformer_layers[i])
    return student


def _copy_except_blocks(source, target, skip=()):
    source_blocks = {id(b) for b in source.transformer_layers}
    for layer in source.layers:
        if id(layer) in source_blocks or layer.name in skip or not layer.weights:
            continue
        _copy_weights(layer, target.get_layer(layer.name))


def trim_vocabulary(backbone, tokenizer, corpus, keep_tokens=(), keep_characters=True):
    """Keeps only the vocabulary that a corpus uses, shrinking the embeddings.

    The new vocabulary holds the special tokens, `keep_tokens`, every
    token the tokenizer produces on `corpus` and (with `keep_characters`)
    every single-character piece (`a`, `##a`), in their original order, so
    `[PAD]` stays id 0 and the list stays a valid WordPiece vocabulary.
    WordPiece picks the longest matching piece, and every piece it picked
    on the corpus is kept, so the corpus tokenizes to the same pieces and
    the model's outputs on it do not change. A word the corpus lacks
    splits into smaller kept pieces, down to characters, where without
    them WordPiece maps the whole word to `[UNK]`.

    Args:
        backbone: a keras-hub encoder backbone with a `token_embedding`.
        tokenizer: its keras-hub WordPiece tokenizer (e.g. `BertTokenizer`).
        corpus: an iterable of strings.
        keep_tokens: further tokens to keep.
        keep_characters: keep the single-character pieces (about 2,000 of
            BERT's 30,522 tokens), so new words do not become `[UNK]`.

    Returns:
        `(backbone, tokenizer)`: new objects; the inputs are unchanged.

    Example:

    ```python
    import keras_kd
    model = keras_kd.transfer.build_finetune_model("minilm_l6", num_classes=2)
    backbone, tokenizer = keras_kd.transfer.trim_vocabulary(
        model.backbone, model.preprocessor.tokenizer, ["a fine film"])
    tokenizer.vocabulary_size()  # 5 special, 2 words, 1,994 characters
    # 2001
    ```
    """
    _transformer_layers(backbone)
    vocabulary = list(tokenizer.get_vocabulary())
    if isinstance(corpus, str):
        raise TypeError(
            "`corpus` must be an iterable of strings, not one string. Wrap "
            f"it in a list: corpus=[{corpus[:30]!r}...]"
        )
    corpus = list(corpus)
    if not corpus:
        raise ValueError("`corpus` is empty; it must hold the texts to keep tokens for.")
    missing = [t for t in SPECIAL_TOKENS if t not in vocabulary]
    if missing:
        raise ValueError(
            f"The tokenizer's vocabulary lacks the special tokens {missing}; "
            "trim_vocabulary supports BERT-style WordPiece vocabularies."
        )
    unknown = [t for t in keep_tokens if t not in vocabulary]
    if unknown:
        raise ValueError(f"keep_tokens not in the vocabulary: {unknown}")
    used = set()
    for start in range(0, len(corpus), 1024):
        # A list in gives ragged lists of ids out.
        for ids in tokenizer(corpus[start : start + 1024]):
            used.update(int(i) for i in ids)
    token_to_id = {token: i for i, token in enumerate(vocabulary)}
    used.update(token_to_id[t] for t in SPECIAL_TOKENS + tuple(keep_tokens))
    if keep_characters:
        used.update(
            i for i, t in enumerate(vocabulary)
            if len(t) == 1 or (len(t) == 3 and t.startswith("##"))
        )
    kept = sorted(used)
    new_vocabulary = [vocabulary[i] for i in kept]

    config = backbone.get_config()
    config["vocabulary_size"] = len(kept)
    config.pop("name", None)
    trimmed = type(backbone).from_config(config)
    _copy_except_blocks(backbone, trimmed, skip=("token_embedding",))
    for source, target in zip(backbone.transformer_layers, trimmed.transformer_layers):
        _copy_weights(source, target)
    table = keras.ops.convert_to_numpy(backbone.get_layer("token_embedding").embeddings)
    trimmed.get_layer("token_embedding").embeddings.assign(table[kept])

    tokenizer_config = tokenizer.get_config()
    tokenizer_config["vocabulary"] = new_vocabulary
    tokenizer_config.pop("name", None)
    new_tokenizer = type(tokenizer).from_config(tokenizer_config)
    return trimmed, new_tokenizer
