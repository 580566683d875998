"""`keras_kd.pipeline.steps`: `distill_student` with feature losses (the
live teacher on the cache's batches), `unlabelled_texts` and `extra_texts`, on the
session's tiny BERT."""

import keras
import numpy as np
import pytest

from keras_kd import TeacherCache, pipeline, transfer
from keras_kd.distillation import HiddenStateLoss
from keras_kd.pipeline import steps
from keras_kd.utils.io import RunProgress


@pytest.mark.large  # several trainings: 30-50 s on 2 cores
def test_feature_losses_train_on_the_cache_batches(tiny_preset, movie_reviews, tmp_path):
    keras.utils.set_random_seed(0)
    teacher = transfer.build_finetune_model(tiny_preset, num_classes=2, sequence_length=16)
    train = movie_reviews.train.sample(48, seed=0)
    config = pipeline.PipelineConfig(
        teacher=tiny_preset, batch_size=16, epochs=1, jit_compile=False, verbose=0,
    )
    cache = TeacherCache.build(
        teacher.token_id_model, train, str(tmp_path / "cache"),
        preprocessor=teacher.preprocessor, jit_compile=False, verbose=0,
    )

    def trained(feature_losses):
        keras.utils.set_random_seed(1)
        student = transfer.student_like(teacher, num_layers=1)
        history = steps.distill_student(
            config, student, teacher, cache, 0.5, 0, None, feature_losses=feature_losses,
        )
        return [w.numpy() for w in student.token_id_model.weights], history.history

    from_cache, _ = trained(None)
    # A feature loss of weight 0 leaves the loss as it was, with the live
    # teacher's logits in place of the cached ones: the same weights come
    # out only if the batches are the cache's, in the cache's order.
    unweighted, logs = trained([HiddenStateLoss(weight=0.0)])
    assert len(logs["hidden_state_loss"]) == 1 and logs["hidden_state_loss"][0] > 0
    for cached, live in zip(from_cache, unweighted):
        np.testing.assert_allclose(live, cached, atol=2e-5)
    weighted, _ = trained([HiddenStateLoss(weight=1.0)])
    assert max(np.abs(w - c).max() for w, c in zip(weighted, from_cache)) > 1e-3


def test_unlabelled_texts_are_new_texts_with_the_teachers_top_class(tiny_preset, tmp_path):
    keras.utils.set_random_seed(0)
    teacher = transfer.build_finetune_model(tiny_preset, num_classes=3, sequence_length=16)
    known = ["a fine film", "a dull plot"]
    path = tmp_path / "more.txt"
    # A copy of a known text (white space aside), a repeat, two new texts.
    path.write_text("the acting\n a  fine film\nthe acting\nsome plot\n", encoding="utf-8")
    config = pipeline.PipelineConfig(unlabelled_data=str(path), batch_size=2)
    split, counts = pipeline.unlabelled_texts(config, teacher, known)
    assert counts == {"texts": 2, "dropped_known": 1, "dropped_repeats": 1}
    assert split.texts == ["the acting", "some plot"]
    expected = np.argmax(teacher.predict(np.array(split.texts), verbose=0), axis=-1)
    assert split.labels.tolist() == expected.tolist()
    assert pipeline.unlabelled_texts(pipeline.PipelineConfig(), teacher, known) == (None, None)
    path.write_text("a fine film\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"more\.txt.*all 1 texts are copies"):
        pipeline.unlabelled_texts(config, teacher, known)


def test_extra_texts_drop_generated_and_unlabelled_copies_of_the_runs_texts(
    tiny_preset, tmp_path, monkeypatch
):
    keras.utils.set_random_seed(0)
    teacher = transfer.build_finetune_model(tiny_preset, num_classes=2, sequence_length=16)
    known = ["a fine film", "a dull plot"]
    # A run whose texts were generated before it was killed: no generator loads.
    progress = RunProgress(tmp_path / "run", {})
    progress.complete("generated", {"texts": ["a  dull plot", "new words", "new words", "more words"]})
    path = tmp_path / "more.txt"
    path.write_text("some plot\na fine film\n", encoding="utf-8")
    config = pipeline.PipelineConfig(generated_texts=4, unlabelled_data=str(path), batch_size=2)
    extra, counts = steps.extra_texts(progress, config, teacher, None, known)
    # The generated copy of a scored text and the repeat are gone.
    assert extra.texts == ["new words", "more words", "some plot"]
    assert counts == {
        "generated": {"texts": 2, "dropped_known": 1, "dropped_repeats": 1},
        "unlabelled": {"texts": 1, "dropped_known": 1, "dropped_repeats": 0},
    }
    expected = np.argmax(teacher.predict(np.array(extra.texts), verbose=0), axis=-1)
    assert extra.labels.tolist() == expected.tolist()

    # Resumed, the run takes the recorded texts and labels: the teacher
    # labels nothing again and the file is not read again.
    def labelled_again(*args, **kwargs):
        raise AssertionError("the resumed run labelled its extra texts again")

    monkeypatch.setattr(steps, "teacher_labelled", labelled_again)
    path.unlink()
    resumed, resumed_counts = steps.extra_texts(
        RunProgress(tmp_path / "run", {}), config, teacher, None, known
    )
    assert resumed.texts == extra.texts and resumed.labels.tolist() == expected.tolist()
    assert resumed.labels.dtype == np.int32 and resumed_counts == counts
    monkeypatch.undo()

    progress = RunProgress(tmp_path / "run2", {})
    progress.complete("generated", {"texts": ["a fine film"]})
    path.write_text("some plot\n", encoding="utf-8")
    with pytest.warns(UserWarning, match=r"None of the generated texts is new \({'texts': 0, 'dropped_known': 1"):
        extra, counts = steps.extra_texts(progress, config, teacher, None, known)
    assert extra.texts == ["some plot"]
    assert counts["generated"] == {"texts": 0, "dropped_known": 1, "dropped_repeats": 0}
    assert steps.extra_texts(
        RunProgress(tmp_path / "run3", {}), pipeline.PipelineConfig(), teacher, None, known
    ) == (None, {"generated": None, "unlabelled": None})
