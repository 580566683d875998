"""A narrower student's embeddings from its teacher's: the teacher's tables
projected onto the principal directions of its token embeddings.

`build_student`'s `init="embeddings"` (the default for a narrower student)
uses it: transformer layers of another width cannot be copied, but the
embedding tables can keep most of what pre-training put in them. On the
movie reviews, a 1-layer 128-wide MiniLM student distilled for one epoch
scored 0.793 test accuracy with projected embeddings against 0.767 from
scratch (one seed, a script outside bench/; bench/student_search.py
measures the search that uses it).
"""

import numpy as np


def principal_directions(table, width):
    """The `width` leading principal directions of the rows of `table`.

    Args:
        table: a `(rows, hidden)` array, such as a token embedding table.
        width: how many directions, at most `hidden`.

    Returns:
        A `(hidden, width)` float32 array with orthonormal columns, the
        right singular vectors of the mean-centred table, largest first.

    Example:

    >>> import numpy as np
    >>> table = np.array([[3.0, 0.0], [-3.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    >>> principal_directions(table, 1).round(6).tolist()  # the widest axis
    [[1.0], [0.0]]
    """
    table = np.asarray(table, dtype="float64")
    hidden = table.shape[-1]
    if not 1 <= width <= hidden:
        raise ValueError(
            f"Cannot project {hidden}-wide embeddings onto width={width}: "
            f"the width must be from 1 to {hidden}."
        )
    _, _, vt = np.linalg.svd(table - table.mean(axis=0), full_matrices=False)
    # A singular vector's sign is arbitrary: fix it for reproducible students.
    directions = vt[:width].T
    signs = np.sign(directions[np.abs(directions).argmax(axis=0), range(width)])
    return (directions * signs).astype("float32")


def project_embeddings(teacher_backbone, student_backbone):
    """Sets the student's embedding tables to the teacher's, projected.

    Every layer of the teacher whose name contains `"embedding"` (token,
    position and segment embeddings; an untied output table) and that the
    student has under the same name is projected onto the `hidden_dim`
    leading principal directions of the teacher's token embeddings: a
    `(rows, hidden)` table becomes `(rows, width)` (`table @ P`), a
    `(hidden, rows)` one `(width, rows)` (`P.T @ table`). The student's
    other weights (its embedding layer norm's too) keep their
    initialisation. Sums of embeddings project to
    the sums of the projections, so the student's embedding layer sees the
    teacher's inputs in its leading directions.

    Args:
        teacher_backbone: a keras-hub backbone with a `token_embedding`.
        student_backbone: a backbone of the same class, no wider.

    Returns:
        The names of the layers set.

    Example:

    >>> import keras_hub
    >>> teacher = keras_hub.models.BertBackbone(
    ...     vocabulary_size=10, num_layers=1, num_heads=2, hidden_dim=8,
    ...     intermediate_dim=16, max_sequence_length=4)
    >>> student = keras_hub.models.BertBackbone(
    ...     vocabulary_size=10, num_layers=1, num_heads=1, hidden_dim=4,
    ...     intermediate_dim=8, max_sequence_length=4)
    >>> project_embeddings(teacher, student)
    ['token_embedding', 'position_embedding', 'segment_embedding']
    >>> P = principal_directions(teacher.token_embedding.embeddings.numpy(), 4)
    >>> bool(np.allclose(student.token_embedding.embeddings.numpy(),
    ...                  teacher.token_embedding.embeddings.numpy() @ P, atol=1e-6))
    True
    """
    width = student_backbone.hidden_dim
    hidden = teacher_backbone.hidden_dim
    directions = principal_directions(
        teacher_backbone.token_embedding.embeddings.numpy(), width
    )
    names = {layer.name for layer in student_backbone.layers}
    projected = []
    for layer in teacher_backbone.layers:
        if "embedding" not in layer.name or layer.name not in names or not layer.weights:
            continue
        target = student_backbone.get_layer(layer.name)
        current = target.get_weights()
        weights = [
            _projected(source, kept, hidden, width, directions)
            for source, kept in zip(layer.get_weights(), current)
        ]
        # A layer norm's scale and offset are per coordinate: no projection.
        if any(new is not kept for new, kept in zip(weights, current)):
            target.set_weights(weights)
            projected.append(layer.name)
    return projected


def _projected(source, current, hidden, width, directions):
    if source.ndim == 2 and source.shape[1] == hidden and current.shape == (source.shape[0], width):
        return source @ directions
    if source.ndim == 2 and source.shape[0] == hidden and current.shape == (width, source.shape[1]):
        return directions.T @ source
    return current
