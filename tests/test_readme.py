"""The README's Python snippets run, in order, and show what they say.

Every ```python block of README.md runs in one namespace, in the order of
the file: the README reads as one session, where later sections use the
`model`, `data` and `distiller` of earlier ones. Each block's top-level
statements run as in an interactive session, which keeps the value of each
expression and simple assignment; a trailing `# <Python literal>` comment
on an expression (`data.class_names  # ['negative', 'positive']`) is
checked against its value, and each block has a check of its own in
`CHECKS` below, on what it shows (printed tables, shapes, copied layers,
the predictions of an exported file). ```bash blocks are not executed, but every
`keras-kd` command line in them must parse; output samples (``` with no
language) are read by the checks only.

A block preceded directly by `<!-- not run: reason -->` is not run; such
blocks are listed in `NOT_RUN` below, so a new exception is a deliberate
change of this file.

What the test substitutes, so that the whole README runs in well under a
minute on two cores instead of hours (each entry must be used at least
once, or the test fails as stale):

| README | in this test | why |
| --- | --- | --- |
| `"minilm_l6"` (22.7M parameters) | a 6-layer, 16-wide BERT preset folder with MiniLM's vocabulary (`tiny_minilm_preset`) | the real loading path; 6 layers as MiniLM, so `freeze=4` and `layer_map=[0, 2, 5]` mean what the README says |
| `datasets.load("movie_reviews")` (10,566 sentences) | a seeded sample of the real splits: 64 train, 32 validation, 32 test | the real texts and labels at 1% of the cost |
| `epochs=N` | `epochs=1` | one epoch shows the call works |
| XLA and graph tracing: the defaults of `FinetuneModel.compile` (`jit_compile=True`), `Distiller.compile` (`"auto"`), `TeacherCache.build` (`jit_compile=True`) | `run_eagerly=True, jit_compile=False` for the two `compile`s, `jit_compile=False` for `build`, where a call does not pass them (`eager_training`) | tracing and compiling a tiny model costs far more than its two steps; tests/distillation and tests/transfer cover the compiled paths |
| `teacher`, `student`, `train_ds`, `val_ds` in "Distillation" (the README says it takes them as given) | the tiny preset's `build_finetune_model(..., sequence_length=64)`, its `student_like(num_layers=2)`, the sample's train and validation texts with labels, batched by 32 | the README's own kind of models and data |
| files the snippets write (`saved_models/`, `runs/`, `*.tflite`) | written under a temporary working directory | the repository stays clean |
"""

import ast
import contextlib
import dataclasses
import functools
import importlib
import io
import os
import re
import shlex
import tokenize

import keras
import numpy as np
import pytest

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "README.md")
README = os.path.normpath(README)
ROOT = os.path.dirname(README)

# The Python blocks marked `<!-- not run: ... -->`, by a fragment of their
# source; keep this list short and change it deliberately.
NOT_RUN = {
    # The full demo (15 minutes); tests/pipeline/test_pipeline.py runs
    # pipeline.run on a tiny teacher.
    "keras_kd.pipeline.run(",
    # The generative main job (about 25 minutes);
    # tests/pipeline/test_generation.py runs run_generation on a tiny Llama.
    "keras_kd.pipeline.run_generation(",
    # The real 135M-parameter SmolLM2 (minutes); the causal-LM tests make
    # the same calls on a tiny Llama3CausalLM.
    'transfer.load_causal_lm("smollm2_135m")',
    # Exports that SmolLM2 student to LiteRT-LM (minutes);
    # tests/export/test_litert_lm.py makes the same calls on a tiny Llama.
    "export_litert_lm(",
    # The real Whisper tiny.en (about 15 s);
    # tests/speech/test_whisper_audio_to_text.py makes the same calls on it.
    "WhisperAudioToText.from_preset(",
    # Encoding and distilling on the real Whisper tiny.en (minutes);
    # tests/speech/test_distil_whisper.py makes the same calls on a tiny one.
    "distil_whisper(whisper,",
    # Measures and distills nine MiniLM students (minutes);
    # tests/pipeline/test_student_search.py runs it on a tiny teacher.
    "keras_kd.pipeline.search_student(",
    # Generates with the real SmolLM2 and distills MiniLM (minutes);
    # tests/cli/test_cli.py runs --generated-texts with a tiny Llama.
    "in_domain_texts(generator,",
}

# Text substitutions in the blocks' source: (pattern, replacement, why).
# `{tiny_minilm_preset}` is filled with the fixture's folder.
SOURCE_SUBSTITUTIONS = [
    (r'"minilm_l6"', "{tiny_minilm_preset!r}", "MiniLM -> the tiny 6-layer preset"),
    (r"\bepochs=\d+", "epochs=1", "one epoch"),
]
SAMPLE_SIZES = {"train": 64, "validation": 32, "test": 32}


@dataclasses.dataclass
class Block:
    line: int  # 1-based line of the block's first source line
    section: str
    language: str
    source: str
    not_run: str = None  # the reason, for a block marked not run
    output: str = None  # an output sample (``` block) right after it


def readme_blocks(text):
    """The fenced blocks of `text`, with their section and markers."""
    blocks, lines, section = [], text.splitlines(), ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if re.match(r"^#{1,6} ", line):
            section = line.lstrip("#").strip()
        fence = re.match(r"^```(\S*)\s*$", line)
        if not fence:
            i += 1
            continue
        end = lines.index("```", i + 1)
        marker = re.match(r"^<!-- not run: (.+?) -->$", lines[i - 1]) if i else None
        block = Block(
            line=i + 2,
            section=section,
            language=fence.group(1),
            source="\n".join(lines[i + 1 : end]) + "\n",
            not_run=marker.group(1) if marker else None,
        )
        if blocks and blocks[-1].language == "python" and block.language == "" \
                and blocks[-1].line + blocks[-1].source.count("\n") == i:
            blocks[-1].output = block.source
        blocks.append(block)
        i = end + 1
    return blocks


def read_readme():
    with open(README, encoding="utf-8") as f:
        return f.read()


def python_blocks():
    return [b for b in readme_blocks(read_readme()) if b.language == "python"]


# --- the checks of each block, keyed by a fragment of its source ----------


def printed_table(text):
    """Rows of the `trainable_summary` table in `text` (from its `layer`
    header to its `total` row): {layer: other columns}."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == ["layer"])
    rows = {}
    for line in lines[start + 1 :]:
        name, *rest = line.split()
        rows[name] = rest
        if name == "total":
            return rows
    raise AssertionError(f"no total row in {text!r}")


def value_of(values, name=None, index=-1):
    """The `index`th value of the block's expressions (`name=None`) or of
    its assignments to `name`."""
    return [value for _, n, value in values if n == name][index]


def check_distiller(ns, values, printed, block):
    history = ns["history"].history
    assert {"loss", "student_loss", "distillation_loss", "accuracy"} <= set(history)
    assert {"val_loss", "val_accuracy"} <= set(history)
    assert len(history["loss"]) == 1  # epochs=3 -> 1
    assert ns["distiller"].alpha == 0.5
    saved = keras.models.load_model("saved_models/student.keras", compile=False)
    assert saved.count_params() == ns["distiller"].student.count_params()


def check_feature_distillation(ns, values, printed, block):
    history = ns["history"].history
    assert {"hidden_state_loss", "attention_relation_loss", "distillation_loss"} <= set(history)
    hidden, relations = ns["kd"].feature_losses
    # The comment's layer map: the 2-layer student on the 6-layer teacher.
    assert hidden.resolved_map == {0: 2, 1: 5}
    assert len(hidden.projections) == 2  # 128 -> the teacher's width
    # The projections are the distiller's: the student holds none of them.
    student_ids = {id(w) for w in ns["narrow"].weights}
    assert not any(id(w) in student_ids for w in hidden.weights)


def check_several_teachers(ns, values, printed, block):
    assert ns["ensemble"].teacher_weights == pytest.approx([2 / 3, 1 / 3])
    assert len(ns["history"].history["distillation_loss"]) == 1  # epochs=3 -> 1


def check_finetune(ns, values, printed, block):
    # The printed summary has the README's rows, with the same statuses;
    # only the counts differ (a 16-wide model instead of MiniLM's 384).
    shown, expected = printed_table(printed), printed_table(block.output)
    assert list(shown) == list(expected)
    for name in expected:
        if name != "total":
            assert shown[name][0] == expected[name][0], name
    trainable, frozen = (int(n.replace(",", "")) for n in shown["total"])
    assert trainable == sum(int(np.prod(w.shape)) for w in ns["model"].trainable_weights)
    assert frozen > 0
    loss, accuracy = value_of(values)  # model.evaluate(...)
    assert 0.0 <= accuracy <= 1.0 and np.isfinite(loss)


def _layer_weights(backbone, index):
    return backbone.get_layer(f"transformer_layer_{index}").get_weights()


def check_students(ns, values, printed, block):
    teacher = ns["model"].backbone

    def copies(student, layer_map):
        assert student.num_layers == len(layer_map)
        for i, j in enumerate(layer_map):
            for a, b in zip(_layer_weights(student, i), _layer_weights(teacher, j)):
                np.testing.assert_array_equal(a, b)
        return True

    # The comment says which teacher layers the default 3-layer student takes.
    assert copies(value_of(values, "student", 0), [1, 3, 5])
    assert copies(value_of(values, "student", 1), [0, 2, 5])
    narrow = ns["narrow"]
    assert (narrow.num_layers, narrow.hidden_dim) == (2, 256)
    small = ns["small"]
    assert small.backbone.num_layers == 3
    assert (
        small.preprocessor.tokenizer.get_vocabulary()
        == ns["model"].preprocessor.tokenizer.get_vocabulary()
    )
    # Trimming shrinks the vocabulary and keeps the predictions.
    model, trimmed, data = ns["model"], ns["trimmed"], ns["data"]
    full = model.preprocessor.tokenizer.vocabulary_size()
    assert full == 30522
    assert trimmed.preprocessor.tokenizer.vocabulary_size() < full
    assert trimmed.count_params() < model.count_params()
    np.testing.assert_allclose(
        trimmed.predict(data.test.texts, verbose=0),
        model.predict(data.test.texts, verbose=0),
        atol=1e-5,
    )


def check_data(ns, values, printed, block):
    x, y = next(iter(ns["train"]))
    assert tuple(x["token_ids"].shape) == (32, ns["preprocessor"].sequence_length)
    assert tuple(y.shape) == (32,)


def check_teacher_cache(ns, values, printed, block):
    cache = ns["cache"]
    assert len(cache) == SAMPLE_SIZES["train"]
    assert cache.top_k is None
    assert cache.bytes_per_position() == 4 * 2  # dense float32, 2 classes
    assert len(ns["distiller"].history.history["loss"]) == 1  # epochs=5 -> 1


def check_export(ns, values, printed, block):
    verification = ns["result"].verification
    assert "argmax_agreement" in printed and "max_abs_diff" in printed
    assert verification.argmax_agreement >= 0.9
    assert os.path.isfile("minilm_sentiment.tflite")
    classified = value_of(values)
    assert [label for label, _ in classified] in (
        ["positive", "negative"], ["negative", "positive"]
    )
    assert sum(p for _, p in classified) == pytest.approx(1.0, abs=1e-4)
    ns["_classified_by_litert"] = dict(classified)


def check_mediapipe(ns, values, printed, block):
    # MediaPipe reads the file's own metadata and agrees with LiteRT.
    categories = value_of(values).classifications[0].categories
    scores = {c.category_name: c.score for c in categories}
    assert set(scores) == {"negative", "positive"}
    for label, probability in ns["_classified_by_litert"].items():
        assert scores[label] == pytest.approx(probability, abs=1e-3)
    ns["clf"].close()


def check_backup(ns, values, printed, block):
    # A completed fit deletes its backup (tests/utils/test_backup.py kills
    # and resumes trainings).
    assert not os.path.exists("runs/distill_backup")
    assert len(ns["history"].history["loss"]) == 1  # epochs=3 -> 1


CHECKS = {
    "distiller = keras_kd.Distiller(": check_distiller,
    "feature_losses=[": check_feature_distillation,
    "teacher=[teacher, second]": check_several_teachers,
    "transfer.trainable_summary(model)": check_finetune,
    "transfer.build_student(model.backbone": check_students,
    "train = data.train.tokenize(": check_data,
    "keras_kd.TeacherCache.build(": check_teacher_cache,
    "result = export_tflite(": check_export,
    "text.TextClassifier.create_from_options": check_mediapipe,
    "keras_kd.BackupAndRestore(": check_backup,
}


# --- running a block -------------------------------------------------------


def substitute(source, fields, used):
    for pattern, replacement, _ in SOURCE_SUBSTITUTIONS:
        source, count = re.subn(pattern, replacement.format(**fields), source)
        used[pattern] += count
    return source


def literal_comments(source):
    """{line: value} of `# <Python literal>` comments in `source`."""
    found = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            try:
                found[token.start[0]] = ast.literal_eval(token.string[1:].strip())
            except (ValueError, SyntaxError):
                pass
    return found


def run_block(block, source, namespace):
    """Runs `source` like an interactive session; returns `(README line,
    name, value)` of its top-level expressions (name None) and simple
    assignments, and what the block printed."""
    tree = ast.parse(source)
    comments = literal_comments(source)
    values, printed = [], io.StringIO()
    with contextlib.redirect_stdout(printed):
        for statement in tree.body:
            # Line numbers of the README, for tracebacks.
            ast.increment_lineno(statement, block.line - 1)
            if isinstance(statement, ast.Expr):
                code = compile(ast.Expression(statement.value), README, "eval")
                value = eval(code, namespace)  # noqa: S307
                values.append((statement.lineno, None, value))
                expected = comments.get(statement.end_lineno - block.line + 1)
                if expected is not None:
                    assert value == expected, (
                        f"README.md:{statement.lineno}: {value!r} != {expected!r}"
                    )
            else:
                module = ast.Module([statement], type_ignores=[])
                exec(compile(module, README, "exec"), namespace)  # noqa: S102
                if isinstance(statement, ast.Assign):
                    for target in statement.targets:
                        if isinstance(target, ast.Name):
                            values.append(
                                (statement.lineno, target.id, namespace[target.id])
                            )
    return values, printed.getvalue()


# --- fixtures --------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_minilm_preset(tmp_path_factory, write_tiny_bert_preset):
    """A keras-hub preset folder of a random BERT with MiniLM's 6 layers and
    WordPiece vocabulary, 16 wide: the real loading path, cheaply."""
    folder = tmp_path_factory.mktemp("tiny_minilm_preset")
    return write_tiny_bert_preset(folder, num_layers=6)


@pytest.fixture
def sampled_movie_reviews(monkeypatch, movie_reviews):
    """`keras_kd.datasets.load("movie_reviews")` returns a seeded sample of
    the real splits; returns the list of calls it answered."""
    from keras_kd import datasets

    real_load, calls = datasets.load, []

    def load(source="movie_reviews", **kwargs):
        if source != "movie_reviews" or kwargs:
            return real_load(source, **kwargs)
        calls.append(source)
        return datasets.TextClassificationData(
            movie_reviews.class_names,
            **{name: getattr(movie_reviews, name).sample(size, seed=0)
               for name, size in SAMPLE_SIZES.items()},
            name="movie_reviews (sample)",
        )

    monkeypatch.setattr(datasets, "load", load)
    return calls


@pytest.fixture
def eager_training(monkeypatch):
    """Training without graph tracing or XLA where a call does not ask for
    them: `FinetuneModel.compile` and `Distiller.compile` default to
    `run_eagerly=True, jit_compile=False`, `TeacherCache.build` to
    `jit_compile=False`."""
    from keras_kd import Distiller, TeacherCache
    from keras_kd.transfer import FinetuneModel

    def without_xla(function):
        @functools.wraps(function)
        def call(*args, **kwargs):
            kwargs.setdefault("jit_compile", False)
            if function.__name__ == "compile":
                kwargs.setdefault("run_eagerly", True)
            return function(*args, **kwargs)

        return call

    monkeypatch.setattr(FinetuneModel, "compile", without_xla(FinetuneModel.compile))
    monkeypatch.setattr(Distiller, "compile", without_xla(Distiller.compile))
    monkeypatch.setattr(
        TeacherCache, "build", classmethod(without_xla(TeacherCache.build.__func__))
    )


def given_names(preset, data):
    """What the "Distillation" section takes as given."""
    import tensorflow as tf

    from keras_kd import transfer

    teacher = transfer.build_finetune_model(preset, num_classes=2, sequence_length=64)
    student = transfer.student_like(teacher, num_layers=2)

    def batches(split):
        return tf.data.Dataset.from_tensor_slices((split.texts, split.labels)).batch(32)

    return {
        "teacher": teacher,
        "student": student,
        "train_ds": batches(data.train),
        "val_ds": batches(data.validation),
    }


# --- tests -----------------------------------------------------------------


@pytest.mark.large
def test_readme_python_blocks_run_in_order(
    tmp_path, monkeypatch, tiny_minilm_preset, sampled_movie_reviews, eager_training
):
    from keras_kd import datasets

    blocks = [b for b in python_blocks() if b.not_run is None]
    monkeypatch.chdir(tmp_path)
    os.mkdir("saved_models")  # as in the repository
    namespace = {"__name__": "readme"}
    namespace.update(given_names(tiny_minilm_preset, datasets.load("movie_reviews")))
    sampled_movie_reviews.clear()
    fields = {"tiny_minilm_preset": tiny_minilm_preset}
    used = {pattern: 0 for pattern, _, _ in SOURCE_SUBSTITUTIONS}
    checked = set()
    for block in blocks:
        source = substitute(block.source, fields, used)
        values, printed = run_block(block, source, namespace)
        keys = [key for key in CHECKS if key in block.source]
        assert len(keys) == 1, (
            f"README.md:{block.line} ({block.section}): one check per block, "
            f"found {keys}; add one to CHECKS in {__file__}"
        )
        CHECKS[keys[0]](namespace, values, printed, block)
        checked.add(keys[0])
    assert checked == set(CHECKS), f"checks of no README block: {set(CHECKS) - checked}"
    stale = [pattern for pattern, count in used.items() if not count]
    assert not stale, f"substitutions that no longer apply: {stale}"
    assert sampled_movie_reviews, "no block loaded the movie reviews"


def test_readme_not_run_blocks_are_few_and_explained():
    not_run = [b for b in python_blocks() if b.not_run is not None]
    found = {key for key in NOT_RUN for b in not_run if key in b.source}
    assert len(not_run) == len(NOT_RUN) and found == NOT_RUN, (
        f"blocks marked not run: {[(b.line, b.not_run) for b in not_run]}; "
        f"expected those of NOT_RUN in {__file__}: {sorted(NOT_RUN)}"
    )
    for block in not_run:
        assert len(block.not_run) > 20, f"README.md:{block.line}: say why it is not run"


def test_readme_command_lines_parse():
    """Every `keras-kd` command line of the ```bash blocks parses, with the
    options and defaults the README describes."""
    from keras_kd.cli.parser import build_parser
    from keras_kd.pipeline.config import PipelineConfig

    commands = []
    for block in readme_blocks(read_readme()):
        if block.language != "bash":
            continue
        for line in block.source.replace("\\\n", " ").splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("keras-kd "):
                commands.append(shlex.split(line)[1:])
    assert {c[0] for c in commands} == {"demo", "finetune", "distill", "export", "evaluate"}
    for argv in commands:
        args = build_parser().parse_args(argv)
        # None: auto, decided from the data; the layers: PipelineConfig's 2.
        if args.command == "distill":
            assert (args.student_layers, args.epochs, args.learning_rate) == (None, None, 6e-4)
        if args.command == "finetune":
            assert (args.epochs, args.sequence_length, args.patience) == (None, None, 2)
    assert PipelineConfig.student_layers == 2


def test_readme_names_and_paths_exist():
    """Every dotted `keras_kd.` name and every `tests/` path the README
    mentions exists."""
    text = read_readme()
    for name in sorted(set(re.findall(r"\bkeras_kd(?:\.[A-Za-z_]\w*)+", text))):
        parts = name.split(".")
        for i in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:i]))
                break
            except ModuleNotFoundError:
                continue
        for attribute in parts[i:]:
            assert hasattr(obj, attribute), f"README names {name}, which does not exist"
            obj = getattr(obj, attribute)
    for path in sorted(set(re.findall(r"\btests/[\w/]+\.py\b", text))):
        assert os.path.isfile(os.path.join(ROOT, path)), f"README names {path}"


def test_readme_layout_has_one_line_per_folder():
    text = read_readme()
    section = text[text.index("## Layout\n") :]
    start = section.index("\n```\n") + 5
    tree = section[start : section.index("\n```", start)]
    listed, top = [], None
    for line in tree.splitlines():
        child = re.match(r"^[│ ]*[├└]── (\S+)/\s", line + " ")
        if child:
            listed.append(f"{top}/{child.group(1)}")
        else:
            top = line.split()[0].rstrip("/")
            listed.append(top)
    expected = []
    for top in ("keras_kd", "tests", "bench", "examples", "saved_models"):
        expected.append(top)
        if top == "saved_models":  # its folders are runs' outputs
            continue
        for entry in sorted(os.listdir(os.path.join(ROOT, top))):
            if os.path.isdir(os.path.join(ROOT, top, entry)) and not entry.startswith(
                ("_", ".")
            ):
                expected.append(f"{top}/{entry}")
    assert sorted(listed) == sorted(expected)
