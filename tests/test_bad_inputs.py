"""The catalogue of bad inputs: each is refused at once, before any data or
model loads, with an error that names the bad value.

API cases assert the exception type; command-line cases run
`keras_kd.cli.main` in this process and assert exit status 2 and one line
on stderr without a traceback. Each must fail within `SECONDS`. The
README's Troubleshooting table quotes these messages
(`test_readme_troubleshooting_quotes_the_catalogue`).
"""

import os
import re
import time
from pathlib import Path

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from keras_kd import datasets, export, losses, pipeline, transfer
from keras_kd.cli import main
from keras_kd.distillation import Distiller, TeacherCache
from keras_kd.utils.io import atomic_write_text

SECONDS = 10
README = Path(__file__).resolve().parents[1] / "README.md"


def _linear():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])


def _softmax_bert_classifier():
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=10, num_layers=1, num_heads=2, hidden_dim=8,
        intermediate_dim=16, max_sequence_length=8)
    return keras_hub.models.BertTextClassifier(
        backbone, num_classes=2, activation="softmax", preprocessor=None)


def _regression_bert():
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=10, num_layers=1, num_heads=2, hidden_dim=8,
        intermediate_dim=16, max_sequence_length=8)
    return transfer.build_finetune_model(backbone, head="regression", num_classes=1)


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_preset):
    """Paths the cases refer to as `{name}`: bad models, data, folders."""
    root = tmp_path_factory.mktemp("bad_inputs")
    paths = {
        "out": root / "runs",
        "not_model": root / "notes.keras",
        "plain": root / "plain.keras",
        "lambda_model": root / "lambda.keras",
        "missing_csv": root / "missing.csv",
        "text_file": root / "reviews.txt",
        "test_csv": root / "test.csv",
        "other_labels_csv": root / "other_labels.csv",
        "a_file": root / "a_file",
        "missing_cache": root / "no_cache",
        "existing": root / "existing.tflite",
        "classifier": root / "classifier.keras",
        "partial_runs": root / "partial_runs",
        "roberta_preset": root / "roberta_preset",
        "roberta_classifier": root / "roberta.keras",
        "distill_runs": root / "distill_runs",
        "onnx_model": root / "model.onnx",
    }
    paths["not_model"].write_text("not a model")
    paths["text_file"].write_text("good\n")
    paths["test_csv"].write_text("text,label\ngood,1\nbad,0\n")
    paths["other_labels_csv"].write_text("text,label\nfine,good\nawful,bad\n")
    paths["a_file"].write_text("")
    paths["existing"].write_bytes(b"old")
    paths["onnx_model"].write_bytes(b"onnx")
    # A finished run: `keras-kd export --run-name student --overwrite` over
    # it deleted the model being exported.
    (paths["distill_runs"] / "student").mkdir(parents=True)
    (paths["distill_runs"] / "student" / "model.keras").write_bytes(b"weights")
    _linear().save(paths["plain"])
    # A real keras-kd classifier: the tiny preset's 2 layers, 128 positions,
    # the movie reviews' classes.
    transfer.build_finetune_model(
        tiny_preset, class_names=["negative", "positive"], sequence_length=16
    ).save(paths["classifier"])
    keras.Sequential(
        [keras.Input((2,)), keras.layers.Lambda(lambda x: x * 2)]
    ).save(paths["lambda_model"])
    _interrupted_distill(paths["classifier"], paths["partial_runs"])
    _tiny_roberta_classifier().save_to_preset(str(paths["roberta_preset"]))
    transfer.build_finetune_model(
        str(paths["roberta_preset"]), class_names=["negative", "positive"], sequence_length=16
    ).save(paths["roberta_classifier"])
    return {name: str(path) for name, path in paths.items()}


def _tiny_roberta_classifier():
    """A RoBERTa classifier (byte-level BPE, not WordPiece; no segment ids)
    of random weights: a text classifier keras-kd trains but cannot export."""
    vocabulary = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4, "Ġ": 5,
                  "f": 6, "i": 7, "n": 8, "e": 9, "Ġf": 10, "in": 11, "Ġfin": 12, "Ġfine": 13}
    tokenizer = keras_hub.models.RobertaTokenizer(
        vocabulary=vocabulary, merges=["Ġ f", "i n", "Ġf in", "Ġfin e"]
    )
    backbone = keras_hub.models.RobertaBackbone(
        vocabulary_size=len(vocabulary), num_layers=1, num_heads=2, hidden_dim=8,
        intermediate_dim=16, max_sequence_length=32,
    )
    preprocessor = keras_hub.models.RobertaTextClassifierPreprocessor(tokenizer, sequence_length=16)
    return keras_hub.models.RobertaTextClassifier(backbone, num_classes=2, preprocessor=preprocessor)


def _interrupted_distill(teacher, output_dir):
    """Leaves the partial run of a `keras-kd distill` interrupted before
    its training, as a kill would."""

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline, "distill_students", interrupted)
        argv = ["distill", "--teacher", str(teacher), "--output-dir", str(output_dir)]
        assert main(argv + ["--run-name", "student"]) == 130
    assert (output_dir / ".student.partial" / "progress.json").is_file()


def _compile(**kwargs):
    Distiller(student=_linear(), teacher=_linear()).compile(optimizer="adam", **kwargs)


def _fit_with_keras_backup(folder):
    distiller = Distiller(student=_linear(), teacher=_linear())
    distiller.compile(optimizer="adam", jit_compile=False)
    x, y = np.zeros((4, 4), "float32"), np.zeros((4,), "int32")
    backup = keras.callbacks.BackupAndRestore(folder, save_freq=2)
    distiller.fit(x, y, epochs=1, verbose=0, callbacks=[backup])


def _same_model_twice():
    model = _linear()
    Distiller(student=model, teacher=model)


def _fit_fractional_labels():
    distiller = Distiller(student=_linear(), teacher=_linear())
    distiller.compile(optimizer="adam", jit_compile=False)
    distiller.fit(np.zeros((2, 4), "float32"), np.array([0.0, 1.7]), verbose=0)


def _fit_token_ids_beyond_the_vocabulary():
    def classifier():
        backbone = keras_hub.models.BertBackbone(
            vocabulary_size=10, num_layers=1, num_heads=1, hidden_dim=4,
            intermediate_dim=8, max_sequence_length=4,
        )
        return keras.Model(backbone.input, keras.layers.Dense(2)(backbone.output["pooled_output"]))

    x = {
        "token_ids": np.array([[2, 5, 3, 0], [2, 12, 3, 0]], "int32"),
        "padding_mask": np.array([[1, 1, 1, 0]] * 2, "int32"),
        "segment_ids": np.zeros((2, 4), "int32"),
    }
    distiller = Distiller(student=classifier(), teacher=classifier())
    distiller.compile(optimizer="adam")
    distiller.fit(x, np.array([0, 1]), verbose=0)


def _fit_on_a_cache_of_another_teacher(folder):
    data = tf.data.Dataset.from_tensor_slices(
        (np.eye(4, dtype="float32"), np.array([0, 1, 0, 1])))
    teacher, other = _linear(), _linear()
    for model, sign in ((teacher, 1), (other, -1)):
        model.set_weights([sign * 5 * np.eye(4, 2, dtype="float32"), np.zeros(2, "float32")])
    cache = TeacherCache.build(teacher, data, f"{folder}_cache", verbose=0)
    distiller = Distiller(student=_linear(), teacher=other)
    distiller.compile(optimizer="sgd")
    distiller.fit(cache.dataset(batch_size=4), verbose=0)


def _fit_on_a_cache_of_two_teachers_at_other_weights(folder):
    data = tf.data.Dataset.from_tensor_slices(
        (np.eye(4, dtype="float32"), np.array([0, 1, 0, 1])))
    teachers = [_linear(), _linear()]
    for model, sign in zip(teachers, (1, -1)):
        model.set_weights([sign * 5 * np.eye(4, 2, dtype="float32"), np.zeros(2, "float32")])
    cache = TeacherCache.build(teachers, data, f"{folder}_cache2", teacher_weights=[1, 3],
                               temperature=2.0, verbose=0)
    distiller = Distiller(student=_linear(), teacher=teachers)
    distiller.compile(optimizer="sgd", temperature=2.0)
    distiller.fit(cache.dataset(batch_size=4), verbose=0)


def _compile_sigmoid_student():
    student = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="sigmoid")])
    Distiller(student=student, teacher=_linear()).compile(optimizer="adam")


def _trim_keeping_a_string():
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "film", "f", "i", "l", "m"]
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(vocabulary), num_layers=1, num_heads=1, hidden_dim=4,
        intermediate_dim=8, max_sequence_length=8,
    )
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocabulary)
    transfer.trim_vocabulary(backbone, tokenizer, ["a film"], keep_tokens="film")


def _export_litert_lm_prompt_over_context(path):
    from keras_kd.utils.testing import tiny_llama3_causal_lm

    export.export_litert_lm(
        tiny_llama3_causal_lm(num_layers=1), path, max_sequence_length=4,
        prefill_lengths=(4,), verification_prompts=["the cat sat on the mat"],
    )


def _finetune_causal_lm_other_lora_rank():
    from keras_kd.utils.testing import tiny_llama3_causal_lm

    model = tiny_llama3_causal_lm(num_layers=1)
    model.backbone.enable_lora(2)
    transfer.finetune_causal_lm(model, ["the cat sat."], lora_rank=4)


def _causal_lm_on(data):
    """`finetune_causal_lm` on `data`, rows of 4 tokens."""
    from keras_kd.utils.testing import tiny_llama3_causal_lm

    transfer.finetune_causal_lm(
        tiny_llama3_causal_lm(num_layers=1), data, steps=1, sequence_length=4, verbose=0
    )


def _evaluate_causal_lm_trimmed_student():
    from keras_kd.distillation import evaluate_causal_lm
    from keras_kd.utils.testing import tiny_llama3_causal_lm

    teacher = tiny_llama3_causal_lm(num_layers=1)
    student = transfer.trim_lm_vocabulary(teacher, ["the cat sat."])
    evaluate_causal_lm(student, ["the cat sat."], teacher=teacher, jit_compile=False)


def _cache_unpadded_token_ids(path):
    tokenizer = keras_hub.models.BertTokenizer(
        vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "fine", "film"]
    )
    texts = tf.data.Dataset.from_tensor_slices((["a fine film", "a film"], [1, 0]))
    TeacherCache.build(_linear(), texts.map(lambda text, label: (tokenizer(text), label)), path)


def _transcribe_a_path():
    from keras_kd.utils.testing import tiny_whisper_audio_to_text

    tiny_whisper_audio_to_text(num_layers=1).transcribe("talk.wav")


# (id, call taking the `files` dict, exception type, fragments of the message)
API_CASES = [
    ("kl-temperature-0", lambda f: losses.KLDivergence(temperature=0),
     ValueError, ["temperature=0"]),
    ("unknown-distillation-loss", lambda f: losses.get("kl"),
     ValueError, ["'kl'", "kl_divergence"]),
    ("distiller-student-not-a-model",
     lambda f: Distiller(student="student.keras", teacher=_linear()),
     TypeError, ["student='student.keras'"]),
    ("distiller-same-model", lambda f: _same_model_twice(),
     ValueError, ["`student` and `teacher` are the same model"]),
    ("distiller-alpha", lambda f: _compile(alpha=1.5), ValueError, ["alpha=1.5"]),
    # The instance's temperature was used and temperature=4.0 dropped unsaid.
    ("distiller-temperature-beside-a-loss-instance",
     lambda f: _compile(distillation_loss_fn=losses.KLDivergence(temperature=1.0), temperature=4.0),
     ValueError, ["temperature=4.0 contradicts", "own temperature=1.0", "KLDivergence(temperature=4.0)"]),
    ("distiller-jit-compile", lambda f: _compile(jit_compile="yes"),
     ValueError, ["jit_compile='yes'"]),
    ("distiller-loss-argument", lambda f: _compile(loss="mse"),
     ValueError, ["loss='mse'", "student_loss_fn"]),
    ("distiller-fractional-class-id", lambda f: _fit_fractional_labels(),
     ValueError, ["Label (class id) 1.7 is not a whole number", "np.round(labels)"]),
    ("distiller-token-id-beyond-the-vocabulary",
     lambda f: _fit_token_ids_beyond_the_vocabulary(),
     ValueError, ["Token id 12 is out of range", "has 10 tokens", "student.preprocessor"]),
    ("distiller-multilabel-softmax-loss", lambda f: _compile_sigmoid_student(),
     ValueError, ["scores each class on its own", "has a sigmoid activation",
                  "mutually exclusive", "keras_kd.losses.LogitsMSE()"]),
    ("distiller-keras-backup-every-n-steps",
     lambda f: _fit_with_keras_backup(f["partial_runs"]),
     ValueError, ["BackupAndRestore(save_freq=2)", "keras_kd.BackupAndRestore"]),
    ("preset-unknown", lambda f: transfer.build_finetune_model("bogus", num_classes=2),
     ValueError, ["preset='bogus'", "minilm_l6"]),
    ("preset-freeze-too-deep",
     lambda f: transfer.build_finetune_model("minilm_l6", num_classes=2, freeze=9),
     ValueError, ["freeze=9", "has 6"]),
    ("preset-sequence-too-long",
     lambda f: transfer.build_finetune_model(
         "minilm_l6", num_classes=2, sequence_length=1000),
     ValueError, ["sequence_length=1000", "512 positions"]),
    ("pooling", lambda f: transfer.build_finetune_model(
        "minilm_l6", num_classes=2, pooling="max"),
     ValueError, ["pooling='max'"]),
    ("class-names-for-other-classes", lambda f: transfer.build_finetune_model(
        "minilm_l6", num_classes=3, class_names=["negative", "positive"]),
     ValueError, ["class_names=['negative', 'positive']", "num_classes=3"]),
    ("distiller-cache-of-another-teacher", lambda f: _fit_on_a_cache_of_another_teacher(f["out"]),
     ValueError, ["are not this Distiller's teacher's", "TeacherCache.build(distiller.teacher, data, directory)"]),
    ("distiller-cache-of-the-teachers-at-other-weights",
     lambda f: _fit_on_a_cache_of_two_teachers_at_other_weights(f["out"]),
     ValueError, ["not the combined target of this Distiller's teachers",
                  "teacher_weights=[0.5, 0.5], temperature=2.0)`"]),
    ("finetune-labels-keyed-by-another-name",
     lambda f: transfer.load_finetune_model(f["classifier"]).fit(["a fine film"], {"label": [1]}),
     ValueError, ["dict keyed ['label']", "one output, 'logits'", "`y=labels`"]),
    ("trim-vocabulary-keep-tokens-string", lambda f: _trim_keeping_a_string(),
     TypeError, ["keep_tokens='film' is one string", "keep_tokens=['film']"]),
    ("freeze-type", lambda f: transfer.check_freeze(True),
     TypeError, ["freeze=True"]),
    ("freeze-bad-regex", lambda f: transfer.check_freeze("layer_("),
     ValueError, ["freeze='layer_('"]),
    ("schedule-learning-rate", lambda f: transfer.warmup_cosine_adamw(-1, 100),
     ValueError, ["learning_rate=-1"]),
    ("load-not-a-model", lambda f: transfer.load_finetune_model(f["not_model"]),
     ValueError, ["notes.keras", "not a Keras model"]),
    ("load-not-a-classifier", lambda f: transfer.load_finetune_model(f["plain"]),
     TypeError, ["plain.keras", "Sequential", "not a keras-kd FinetuneModel"]),
    ("load-lambda-layer", lambda f: transfer.load_finetune_model(f["lambda_model"]),
     ValueError, ["lambda.keras", "safe_mode=False"]),
    ("data-pair-lengths", lambda f: datasets.load((["a", "b"], [0])),
     ValueError, ["length 2", "length 1"]),
    ("data-extension", lambda f: datasets.load(f["text_file"]),
     ValueError, ["reviews.txt", "'.txt'"]),
    ("data-missing-file", lambda f: datasets.load(f["missing_csv"]),
     FileNotFoundError, ["missing.csv"]),
    ("data-splits", lambda f: datasets.load((["a", "b"], [0, 1]), splits=(0.5, 0.5, 0.5)),
     ValueError, ["splits=(0.5, 0.5, 0.5)"]),
    ("data-test-split-on-builtin",
     lambda f: datasets.load("movie_reviews", test_data=f["test_csv"]),
     ValueError, ["source='movie_reviews'"]),
    ("data-split-name", lambda f: datasets.load({"train": f["test_csv"], "dev": f["test_csv"]}),
     ValueError, ["'dev'"]),
    ("cache-missing", lambda f: TeacherCache(f["missing_cache"]),
     FileNotFoundError, ["no_cache"]),
    ("cache-top-k", lambda f: TeacherCache.build(_linear(), None, f["missing_cache"], top_k=0),
     ValueError, ["top_k=0"]),
    ("cache-teacher-not-a-model",
     lambda f: TeacherCache.build("teacher.keras", None, f["missing_cache"]),
     ValueError, ["str"]),
    ("cache-batch-size", lambda f: TeacherCache.build(_linear(), None, f["missing_cache"], batch_size=0),
     ValueError, ["batch_size=0"]),
    ("cache-string-labels", lambda f: TeacherCache.build(
        _linear(), tf.data.Dataset.from_tensor_slices((np.zeros((2, 4), "float32"), ["good", "bad"])),
        f["missing_cache"]),
     ValueError, ["labels of `data` are string values", "keras.layers.StringLookup("]),
    # Both refused before the teacher ran: tf.data's "Cannot batch tensors
    # with different shapes"; "[Errno 17] File exists" for the cache.
    ("cache-examples-of-different-lengths", lambda f: _cache_unpadded_token_ids(f["missing_cache"]),
     ValueError, ["`x` of example 0 has shape (3,), of example 1 (2,)", "pad them to one length",
                  "pass the texts with `preprocessor=`"]),
    ("cache-below-a-file", lambda f: TeacherCache.build(_linear(), None, os.path.join(f["a_file"], "cache")),
     NotADirectoryError, ["a_file/cache' cannot be created", "a_file' is a file",
                          "Pass a folder path that is not below a file"]),
    ("transcribe-a-file-path", lambda f: _transcribe_a_path(),
     TypeError, ["Received: 'talk.wav'", "keras_kd.speech.load_wav(path)"]),
    ("export-bundle-over-a-run-folder", lambda f: export.export_bundle(
        _linear(), f["partial_runs"], labels=["negative", "positive"], overwrite=True),
     FileExistsError, ["partial_runs' is a folder without model_card.json",
                       "not a bundle of export_bundle; it is left untouched"]),
    ("export-quantization", lambda f: export.export_tflite(
        _linear(), f["out"] + ".tflite", quantization="int4"),
     ValueError, ["quantization='int4'"]),
    ("export-lowercase-against-the-tokenizer", lambda f: export.export_tflite(
        transfer.load_finetune_model(f["classifier"]), f["out"] + ".tflite", lowercase=False),
     ValueError, ["lowercase=False contradicts the model's tokenizer", "Leave `lowercase` out"]),
    # The file scored softmax(probabilities): 0.73 at most for two classes.
    ("export-softmax-model-from-logits", lambda f: export.export_tflite(
        _softmax_bert_classifier(), f["out"] + ".tflite", vocabulary=["[PAD]"]),
     ValueError, ["from_logits=True appends a softmax", "output layer 'logits' has a softmax activation",
                  "Pass from_logits=False"]),
    # A regression's one output came out 1.0 for every text.
    ("export-regression-head", lambda f: export.export_tflite(
        _regression_bert(), f["out"] + ".tflite", vocabulary=["[PAD]"]),
     ValueError, ["is Head('regression'): real values, not class scores",
                  "model.token_id_model.export(folder"]),
    ("export-a-distiller", lambda f: export.export_tflite(
        Distiller(student=_linear(), teacher=_linear()), f["existing"].replace("existing", "distilled")),
     TypeError, ["`model` is a Distiller", "Pass `distiller.student`"]),
    ("export-existing-file", lambda f: export.export_tflite(_linear(), f["existing"]),
     FileExistsError, ["existing.tflite", "overwrite=True"]),
    ("write-existing-file", lambda f: atomic_write_text(f["existing"], "new"),
     FileExistsError, ["existing.tflite", "overwrite=True"]),
    ("config-alpha", lambda f: pipeline.PipelineConfig(alpha=2),
     ValueError, ["alpha=2"]),
    # Joined to output_dir, an absolute run name replaced it.
    ("config-run-name-a-path", lambda f: pipeline.PipelineConfig(run_name="/tmp/student"),
     ValueError, ["run_name='/tmp/student'", "not a path", "output_dir (--output-dir)"]),
    ("generation-config-run-name-up", lambda f: pipeline.GenerationConfig(run_name=".."),
     ValueError, ["run_name='..'", "not a path"]),
    ("config-batch-size", lambda f: pipeline.PipelineConfig(batch_size=0),
     ValueError, ["batch_size=0"]),
    ("config-teacher", lambda f: pipeline.check_config(
        pipeline.PipelineConfig(teacher="bogus", output_dir=f["out"])),
     ValueError, ["preset='bogus'"]),
    ("config-quantization", lambda f: pipeline.check_config(
        pipeline.PipelineConfig(quantization="int4", output_dir=f["out"])),
     ValueError, ["quantization='int4'"]),
    ("config-output-dir-empty", lambda f: pipeline.GenerationConfig(output_dir=""),
     ValueError, ["`output_dir` is empty", "output_dir='.'", "Received: output_dir=''"]),
    ("config-output-below-a-file", lambda f: pipeline.check_config(
        pipeline.PipelineConfig(output_dir=os.path.join(f["a_file"], "runs"))),
     NotADirectoryError, ["a_file"]),
    ("litert-lm-verification-prompt-over-context",
     lambda f: _export_litert_lm_prompt_over_context(f["out"] + ".litertlm"),
     ValueError, ["['the cat sat on the mat']", "do not fit a context of max_sequence_length=4"]),
    ("finetune-causal-lm-other-lora-rank", lambda f: _finetune_causal_lm_other_lora_rank(),
     ValueError, ["lora_rank=4", "LoRA adapters of rank 2", "Pass lora_rank=2"]),
    ("evaluate-causal-lm-trimmed-student", lambda f: _evaluate_causal_lm_trimmed_student(),
     ValueError, ["must share the tokenizer: evaluate_causal_lm", "trim_lm_vocabulary"]),
    ("causal-lm-texts-a-dict", lambda f: _causal_lm_on({"text": ["the cat sat."]}),
     ValueError, ["keys ['text']", '{"prompts": [...], "responses": [...]}']),
    ("causal-lm-trl-prompt-completion", lambda f: _causal_lm_on(
        {"prompt": ["the cat"], "completion": [" sat."]}),
     ValueError, ["keys ['completion', 'prompt']", "TRL's \"prompt\" and \"completion\" columns"]),
    ("causal-lm-texts-all-empty", lambda f: _causal_lm_on(["", ""]),
     ValueError, ["`texts` holds 2 texts, all empty", "no tokens to learn from"]),
    ("causal-lm-responses-all-empty", lambda f: _causal_lm_on(
        {"prompts": ["the cat", "a dog"], "responses": ["", ""]}),
     ValueError, ["`texts['responses']` holds 2 texts, all empty"]),
    ("causal-lm-responses-unequal", lambda f: _causal_lm_on(
        {"prompts": ["the cat", "a dog"], "responses": [" sat."]}),
     ValueError, ["2 prompts and 1 responses"]),
    ("causal-lm-prompts-fill-the-rows", lambda f: _causal_lm_on(
        {"prompts": ["the cat sat on the mat"], "responses": [" and slept."]}),
     ValueError, ["None of the 1 responses has a token", "the prompts fill the rows"]),
    ("pack-texts-a-dict", lambda f: datasets.pack_texts(
        {"prompts": ["the cat"], "responses": [" sat."]}, None),
     ValueError, ["`texts` must be a list of strings, not a dict", "texts=data['prompts']"]),
]

# (id, argv with `{name}` for the `files` paths, fragments of the message)
CLI_CASES = [
    ("export-over-a-run-folder",
     ["export", "--model", "{classifier}", "--output-dir", "{distill_runs}",
      "--run-name", "student", "--overwrite"],
     ["--overwrite:", "student' is a folder without model_card.json", "it is left untouched"]),
    ("finetune-preset", ["finetune", "--preset", "bogus"],
     ["--preset:", "preset='bogus'", "minilm_l6"]),
    ("finetune-freeze-regex", ["finetune", "--preset", "{tiny_preset}", "--freeze", "nope"],
     ["--freeze:", "freeze='nope'", "transformer_layer_0"]),
    ("finetune-freeze-too-deep", ["finetune", "--freeze", "9"],
     ["--freeze:", "freeze=9", "has 6"]),
    ("finetune-freeze-negative", ["finetune", "--freeze=-1"],
     ["--freeze:", "freeze=-1 is negative", "an integer N in [0, 6]", "'embeddings'"]),
    # A preset of the wrong architecture, from its config, before a run
    # folder or any weights (the GGUF's conversion included).
    ("demo-teacher-decoder", ["demo", "--teacher", "smollm2_135m"],
     ["--teacher:", "is a Llama3Backbone", "minilm_l6"]),
    ("demo-speech-teacher-encoder", ["demo", "--task", "speech", "--teacher", "minilm_l6"],
     ["is a BertBackbone", "Whisper", "whisper_tiny_en"]),
    ("demo-generation-teacher-whisper", ["demo", "--task", "generation", "--teacher", "whisper_tiny_en"],
     ["is a WhisperBackbone", "Llama-family", "smollm2_135m"]),
    ("demo-generator-encoder", ["demo", "--generated-texts", "10", "--generator", "minilm_l6"],
     ["--generator:", "is a BertBackbone", "causal LM"]),
    ("demo-teacher-not-bert", ["demo", "--teacher", "{roberta_preset}"],
     ["--teacher", "RobertaBackbone", "BERT text encoder", "keras-kd finetune"]),
    ("distill-size-budget-teacher-not-bert",
     ["distill", "--teacher", "{roberta_classifier}", "--max-size-mb", "4"],
     ["--max-size-mb", "RobertaBackbone with a RobertaTokenizer", "WordPiece"]),
    ("export-not-bert", ["export", "--model", "{roberta_classifier}"],
     ["--model", "RobertaBackbone with a RobertaTokenizer", "BERT's inputs"]),
    # Taken for the default teacher (an unset shell variable, say).
    ("demo-teacher-empty", ["demo", "--teacher", ""],
     ["--teacher:", "preset=''", "a non-empty string"]),
    ("demo-teacher", ["demo", "--teacher", "bogus"],
     ["--teacher:", "preset='bogus'", "minilm_l6"]),
    ("finetune-batch-size", ["finetune", "--batch-size", "0"],
     ["--batch-size:", "batch_size=0"]),
    ("finetune-sequence-length", ["finetune", "--sequence-length", "1000"],
     ["--sequence-length:", "sequence_length=1000", "512 positions"]),
    # [CLS] and [SEP] fill 2 tokens: no text would be read.
    ("finetune-sequence-length-too-short", ["finetune", "--sequence-length", "2"],
     ["--sequence-length:", "a start token, an end token and at least one of the text", "sequence_length=2"]),
    ("finetune-epochs", ["finetune", "--epochs", "0"],
     ["--epochs:", "teacher_epochs=0"]),
    ("finetune-learning-rate", ["finetune", "--learning-rate", "-1"],
     ["--learning-rate:", "teacher_learning_rate=-1"]),
    # 5 for 5e-5: AdamW diverges.
    ("distill-learning-rate-above-one", ["distill", "--teacher", "{classifier}", "--learning-rate", "5"],
     ["--learning-rate:", "> 0 and <= 1", "learning_rate=5.0"]),
    ("demo-seeds", ["demo", "--seeds", "-1"], ["--seeds:", "seeds[0]=-1"]),
    # The same student trained twice, its spread reported over copies.
    ("demo-seeds-repeated", ["demo", "--seeds", "0", "1", "0"],
     ["argument --seeds: 0 given more than once", "give each value once: --seeds 0 1"]),
    ("distill-teacher-not-a-model", ["distill", "--teacher", "{not_model}"],
     ["--teacher:", "notes.keras", "not a Keras model"]),
    ("distill-teacher-folder", ["distill", "--teacher", "{tiny_preset}"],
     ["--teacher:", "is not a file"]),
    ("distill-alpha", ["distill", "--teacher", "{plain}", "--alpha", "2"],
     ["--alpha:", "alpha=2"]),
    ("distill-temperature", ["distill", "--teacher", "{plain}", "--temperature", "0"],
     ["--temperature:", "temperature=0"]),
    ("export-not-a-classifier", ["export", "--model", "{plain}"],
     ["--model:", "plain.keras", "not a keras-kd FinetuneModel"]),
    ("distill-student-deeper-than-teacher",
     ["distill", "--teacher", "{classifier}", "--student-layers", "9"],
     ["--student-layers 9", "teacher's transformer layers", "(2)"]),
    # 0 gave the default student of 2 layers.
    ("distill-student-layers-zero",
     ["distill", "--teacher", "{classifier}", "--student-layers", "0"],
     ["--student-layers:", "student_layers=0", "int >= 1"]),
    ("distill-student-wider-than-teacher",
     ["distill", "--teacher", "{classifier}", "--student-hidden-dim", "64"],
     ["--student-hidden-dim 64", "teacher's width", "(16)"]),
    ("distill-size-budget-not-positive",
     ["distill", "--teacher", "{classifier}", "--max-size-mb", "0"],
     ["--max-size-mb:", "must be a finite number > 0", "max_size_mb=0.0"]),
    ("distill-latency-budget-infinite",
     ["distill", "--teacher", "{classifier}", "--max-latency-ms", "inf"],
     ["--max-latency-ms:", "must be a finite number > 0", "max_latency_ms=inf"]),
    ("distill-budget-and-shape",
     ["distill", "--teacher", "{classifier}", "--max-latency-ms", "5", "--student-layers", "1"],
     ["--max-latency-ms choose", "remove --student-layers"]),
    ("distill-generated-texts-zero",
     ["distill", "--teacher", "{classifier}", "--generated-texts", "0"],
     ["--generated-texts:", "generated_texts=0"]),
    ("distill-unlabelled-data-missing",
     ["distill", "--teacher", "{classifier}", "--unlabelled-data", "nope.txt"],
     ["--unlabelled-data:", "unlabelled_data='nope.txt'", "No text file at 'nope.txt'"]),
    ("distill-unlabelled-data-format",
     ["distill", "--teacher", "{classifier}", "--unlabelled-data", "notes.xlsx"],
     ["--unlabelled-data:", "notes.xlsx", ".txt file (one text per line)"]),
    ("demo-speech-unlabelled-data",
     ["demo", "--task", "speech", "--unlabelled-data", "more.txt"],
     ["--unlabelled-data applies to --task classification only; remove it"]),
    ("distill-generator-unknown",
     ["distill", "--teacher", "{classifier}", "--generated-texts", "100", "--generator", "bogus"],
     ["--generator:", "generator='bogus'", "smollm2_135m"]),
    # 0 gave the model's length; -1 failed with a traceback once the model and data loaded.
    ("export-sequence-length-zero",
     ["export", "--model", "{classifier}", "--sequence-length", "0"],
     ["--sequence-length:", "sequence_length=0", "a start token, an end token"]),
    ("export-sequence-length-over-positions",
     ["export", "--model", "{classifier}", "--sequence-length", "5000"],
     ["--sequence-length 5000", "model's positions", "(128)"]),
    ("export-quantization", ["export", "--model", "{plain}", "--quantization", "int4"],
     ["--quantization", "'int4'"]),
    # Accepted before, though each value names one .tflite file.
    ("export-quantization-repeated",
     ["export", "--model", "{plain}", "--quantization", "none", "none"],
     ["argument --quantization: 'none' given more than once", "--quantization none"]),
    # Read as a .keras file: "is not a Keras model".
    ("evaluate-model-format", ["evaluate", "--model", "{onnx_model}"],
     ["model.onnx'", "'.onnx' files are not supported", "a .keras model", "a .tflite file"]),
    ("evaluate-not-a-classifier", ["evaluate", "--model", "{plain}"],
     ["--model:", "plain.keras", "not a keras-kd FinetuneModel"]),
    ("evaluate-lambda-layer", ["evaluate", "--model", "{lambda_model}"],
     ["--model:", "lambda.keras", "--unsafe"]),
    ("evaluate-labels-the-model-does-not-name",
     ["evaluate", "--model", "{classifier}", "--data", "{other_labels_csv}", "--split", "all"],
     ["labels ['bad', 'good'] outside the classes ['negative', 'positive']"]),
    ("data-missing-file", ["finetune", "--data", "{missing_csv}"],
     ["missing.csv"]),
    ("data-extension", ["finetune", "--data", "{text_file}"],
     ["reviews.txt", "'.txt'"]),
    ("data-tfds-misspelled", ["finetune", "--data", "tfds:imbd_reviews"],
     ["'imbd_reviews' is not a TensorFlow Datasets name", "Did you mean 'imdb_reviews'"]),
    ("test-data-on-builtin", ["finetune", "--test-data", "{test_csv}"],
     ["source='movie_reviews'"]),
    # The run went into the current folder.
    ("output-dir-empty", ["finetune", "--output-dir", ""],
     ["`output_dir` is empty", "is empty, which would put the run in the current folder",
      "(--output-dir .) for the current folder", "output_dir=''"]),
    ("output-dir-below-a-file", ["finetune", "--output-dir", "{a_file}/runs"],
     ["a_file", "is a file"]),
    ("resume-without-a-partial-run", ["demo", "--resume"],
     ["resume=True (--resume)", "has none"]),
    ("resume-with-other-settings",
     ["distill", "--teacher", "{classifier}", "--output-dir", "{partial_runs}",
      "--run-name", "student", "--resume", "--epochs", "2"],
     ["--epochs:", "epochs=2 (started with None)"]),
    ("partial-run-exists",
     ["distill", "--teacher", "{classifier}", "--output-dir", "{partial_runs}",
      "--run-name", "student"],
     ["partial run", "--resume", "--overwrite"]),
    # The run went to that absolute path, --output-dir ignored.
    ("run-name-a-path", ["finetune", "--run-name", "{out}_elsewhere"],
     ["run_name='", "_elsewhere'", "not a path", "--output-dir"]),
    # An empty --run-name fell back to the PipelineConfig default 'demo'.
    ("run-name-empty", ["distill", "--teacher", "{classifier}", "--run-name", ""],
     ["run_name=''", "--run-name"]),
    # --generator was ignored and the whole generation demo ran.
    ("demo-generation-generator", ["demo", "--task", "generation", "--generator", "minilm_l6"],
     ["--generator applies to --task classification only"]),
    # The column was ignored and the run trained on the movie reviews.
    ("demo-text-column-offline-set", ["demo", "--task", "generation", "--text-column", "review"],
     ["text_column='review' (--text-column) names a column of a file", "offline set"]),
    ("finetune-label-column-offline-set", ["finetune", "--label-column", "stars"],
     ["label_column='stars' (--label-column)", "--data FILE"]),
    ("demo-response-column-classification", ["demo", "--response-column", "completion"],
     ["--response-column applies to --task generation only"]),
    ("demo-prompt-column-alone", ["demo", "--task", "generation", "--prompt-column", "question"],
     ["--prompt-column names the prompts", "add --response-column"]),
    ("demo-response-column-missing", ["demo", "--task", "generation", "--data", "{test_csv}",
                                      "--response-column", "answer"],
     ["has no prompt column 'prompt'", "--prompt-column"]),
]

# Commands that write take the output folder of the test.
_WRITERS = ("demo", "finetune", "distill", "export")


@pytest.mark.parametrize(
    "call, error, fragments",
    [case[1:] for case in API_CASES],
    ids=[case[0] for case in API_CASES],
)
def test_api_refuses_bad_input_at_once(files, call, error, fragments):
    started = time.perf_counter()
    with pytest.raises(error) as raised:
        call(files)
    seconds = time.perf_counter() - started
    for fragment in fragments:
        assert fragment in str(raised.value)
    assert seconds < SECONDS


@pytest.mark.parametrize(
    "argv, fragments",
    [case[1:] for case in CLI_CASES],
    ids=[case[0] for case in CLI_CASES],
)
def test_command_refuses_bad_input_at_once(files, tiny_preset, capsys, argv, fragments):
    names = {**files, "tiny_preset": tiny_preset}
    argv = [arg.format(**names) for arg in argv]
    if argv[0] in _WRITERS and "--output-dir" not in argv:
        argv += ["--output-dir", files["out"]]
    started = time.perf_counter()
    status = main(argv)
    seconds = time.perf_counter() - started
    stderr = capsys.readouterr().err
    assert status == 2, stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert "Traceback" not in stderr
    assert stderr.startswith(f"keras-kd {argv[0]}:"), stderr
    for fragment in fragments:
        assert fragment in stderr
    assert seconds < SECONDS
    assert not os.path.exists(files["out"])


def test_the_catalogue_is_large_and_distinct():
    for cases in (API_CASES, CLI_CASES):
        assert len({case[0] for case in cases}) == len(cases)
    assert len(API_CASES) + len(CLI_CASES) >= 30


def test_unsafe_loads_past_safe_mode(files, capsys):
    # Past safe mode, the Lambda model is refused for what it is instead.
    with pytest.raises(TypeError, match="holds a Sequential"):
        transfer.load_finetune_model(files["lambda_model"], safe_mode=False)
    status = main(["evaluate", "--model", files["lambda_model"], "--unsafe"])
    stderr = capsys.readouterr().err
    assert status == 2
    assert "holds a Sequential, not a keras-kd FinetuneModel" in stderr


def test_readme_troubleshooting_quotes_the_catalogue():
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Troubleshooting\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `keras-kd")]
    assert len(rows) >= 10
    fragments = {f for case in CLI_CASES for f in case[2]}
    for row in rows:
        # The second cell quotes part of the message, as `...`.
        quoted = re.findall(r"`([^`]+)`", row.split(" | ")[1])
        assert quoted and all(q in fragments for q in quoted), row
