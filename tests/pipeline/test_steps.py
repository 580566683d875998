"""`keras_kd.pipeline.steps`: `distill_student` with feature losses (the
live teacher on the cache's batches) and `unlabelled_texts`, on the
session's tiny BERT."""

import keras
import numpy as np
import pytest

from keras_kd import TeacherCache, pipeline, transfer
from keras_kd.distillation import HiddenStateLoss
from keras_kd.pipeline import steps


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
