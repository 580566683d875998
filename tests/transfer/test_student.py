"""Students: build_student from a teacher's layers or from scratch, and
student_like models that plug into the Distiller."""

import keras
import numpy as np
import pytest

from keras_kd import transfer


def reference_hidden_states(teacher, x, layers):
    """The teacher's embeddings followed by its blocks `layers`, by hand."""
    get = teacher.get_layer
    tokens = get("token_embedding")(x["token_ids"])
    h = get("embeddings_add")((tokens, get("position_embedding")(tokens), get("segment_embedding")(x["segment_ids"])))
    h = get("embeddings_layer_norm")(h)
    for i in layers:
        h = teacher.transformer_layers[i](h, padding_mask=x["padding_mask"])
    return keras.ops.convert_to_numpy(h)


def test_student_from_layers_1_3_5_matches_the_teacher(minilm):
    teacher = minilm.backbone
    x = minilm.preprocessor(["a fine film", "a dull, overlong one"])
    expected = reference_hidden_states(teacher, x, [1, 3, 5])
    for student in (
        transfer.build_student(teacher, layer_map=[1, 3, 5]),
        transfer.build_student(teacher, num_layers=3),
    ):
        out = student(x)
        assert student.num_layers == 3
        np.testing.assert_allclose(keras.ops.convert_to_numpy(out["sequence_output"]), expected, atol=1e-5)
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(out["pooled_output"]),
            keras.ops.convert_to_numpy(teacher.get_layer("pooled_dense")(expected[:, 0])),
            atol=1e-5,
        )


def test_student_from_scratch_has_the_requested_widths(tiny_backbone, token_batch):
    teacher = tiny_backbone(num_layers=4)
    student = transfer.build_student(teacher, num_layers=2, hidden_dim=4, num_heads=1, intermediate_dim=8)
    assert (student.num_layers, student.hidden_dim, student.intermediate_dim) == (2, 4, 8)
    assert student(token_batch())["sequence_output"].shape == (4, 6, 4)


def test_a_narrower_student_like_gets_new_heads(tiny_backbone, token_batch):
    teacher = transfer.build_finetune_model(tiny_backbone(num_layers=2), num_classes=3, preprocessor=None)
    same = transfer.student_like(teacher, num_layers=1)
    narrow = transfer.student_like(teacher, num_layers=1, hidden_dim=4, num_heads=1, intermediate_dim=8)
    for a, b in zip(same.heads["logits"].get_weights(), teacher.heads["logits"].get_weights()):
        np.testing.assert_array_equal(a, b)
    assert narrow.heads["logits"].get_weights()[0].shape == (4, 3)
    assert narrow(token_batch()).shape == (4, 3)


def test_bad_students(tiny_backbone):
    teacher = tiny_backbone(num_layers=4)
    with pytest.raises(ValueError, match=r"num_layers=5.*4 layers"):
        transfer.build_student(teacher, num_layers=5)
    with pytest.raises(ValueError, match=r"out of range: \[4\].*0 to 3"):
        transfer.build_student(teacher, layer_map=[0, 4])
    with pytest.raises(ValueError, match=r"hidden_dim.*init='scratch'"):
        transfer.build_student(teacher, num_layers=2, hidden_dim=4, init="teacher")
    with pytest.raises(ValueError, match=r"`num_layers` must be an int >= 1, e\.g\. 2\. Received: num_layers=0"):
        transfer.build_student(teacher, num_layers=0)
    with pytest.raises(ValueError, match=r"`init` must be one of 'auto', 'teacher', 'embeddings', 'scratch'.*init='copy'"):
        transfer.build_student(teacher, init="copy")
    with pytest.raises(ValueError, match=r"`hidden_dim` must be None or an int >= 1.*hidden_dim=0"):
        transfer.build_student(teacher, hidden_dim=0)
    with pytest.raises(TypeError, match=r"needs a FinetuneModel teacher.*Received: BertBackbone"):
        transfer.student_like(teacher)


def test_token_id_models_plug_into_the_distiller(tiny_backbone, token_batch):
    import keras_kd

    teacher = transfer.build_finetune_model(tiny_backbone(num_layers=2), num_classes=2, preprocessor=None)
    student = transfer.student_like(teacher, num_layers=1)
    assert student.backbone.num_layers == 1
    np.testing.assert_array_equal(student.heads["logits"].get_weights()[0], teacher.heads["logits"].get_weights()[0])
    distiller = keras_kd.Distiller(student=student.token_id_model, teacher=teacher.token_id_model)
    distiller.compile(optimizer="adam", alpha=0.5, temperature=2.0, jit_compile=False)
    before = [w.numpy().copy() for w in student.backbone.weights]
    history = distiller.fit(token_batch(8), np.array([0, 1] * 4), epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["distillation_loss"][0])
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, student.backbone.weights))
    assert teacher.token_id_model.input.keys() == {"token_ids", "padding_mask", "segment_ids"}


def test_a_narrower_student_starts_from_the_projected_embeddings(tiny_backbone):
    from keras_kd.transfer.embedding_projection import principal_directions

    teacher = tiny_backbone(num_layers=2)
    student = transfer.build_student(teacher, num_layers=1, hidden_dim=4, num_heads=1, intermediate_dim=8)
    table = teacher.token_embedding.embeddings.numpy()
    # The reference: the 4 leading right singular vectors of the centred
    # table, up to sign, and the tables projected onto them.
    _, _, vt = np.linalg.svd(table - table.mean(0))
    directions = principal_directions(table, 4)
    np.testing.assert_allclose(np.abs(directions), np.abs(vt[:4].T), atol=1e-5)
    np.testing.assert_allclose(directions.T @ directions, np.eye(4), atol=1e-5)
    np.testing.assert_allclose(student.token_embedding.embeddings.numpy(), table @ directions, atol=1e-5)
    np.testing.assert_allclose(
        student.position_embedding.position_embeddings.numpy(),
        teacher.position_embedding.position_embeddings.numpy() @ directions,
        atol=1e-5,
    )
    # The projection keeps the variance of the leading directions.
    kept = np.var(student.token_embedding.embeddings.numpy(), axis=0).sum()
    s = np.linalg.svd(table - table.mean(0), compute_uv=False)
    np.testing.assert_allclose(kept, (s[:4] ** 2).sum() / len(table), rtol=1e-4)
    scratch = transfer.build_student(
        teacher, num_layers=1, hidden_dim=4, num_heads=1, intermediate_dim=8, init="scratch"
    )
    assert not np.allclose(scratch.token_embedding.embeddings.numpy(), table @ directions, atol=1e-3)


def test_a_wider_student_cannot_take_projected_embeddings(tiny_backbone):
    teacher = tiny_backbone(num_layers=2)
    wide = transfer.build_student(teacher, num_layers=1, hidden_dim=16, num_heads=2, intermediate_dim=32)
    assert wide.hidden_dim == 16  # auto: from scratch
    with pytest.raises(ValueError, match=r"teacher's 8-wide embeddings.*hidden_dim=16 is wider"):
        transfer.build_student(teacher, hidden_dim=16, num_heads=2, init="embeddings")


def test_projecting_onto_a_wider_student_names_both_widths(tiny_backbone):
    from keras_kd.transfer.embedding_projection import principal_directions

    teacher = tiny_backbone(num_layers=1)
    wide = transfer.build_student(teacher, num_layers=1, hidden_dim=16, num_heads=2, init="scratch")
    with pytest.raises(ValueError, match=r"Cannot project 8-wide embeddings onto width=16: the width must be from 1 to 8"):
        transfer.project_embeddings(teacher, wide)
    with pytest.raises(ValueError, match=r"width=0"):
        principal_directions(np.ones((3, 8)), 0)
