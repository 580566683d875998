"""One int8 copy of a tied embedding table in a dynamic-int8 `.tflite`.

TFLite's dynamic-range quantizer quantizes a tied table twice: for the
lookup (GATHER of int8 rows, then DEQUANTIZE with one scale for the whole
table) and for the output layer (FULLY_CONNECTED's weights, one scale per
row). `share_int8_embedding` rewrites the converted model so that the
lookup reads the output layer's table: the GATHER takes its int8 rows, a
CAST to float32 and a MUL by the rows' own scales (a GATHER from a
`[vocabulary, 1]` float32 tensor of the scales) replace the DEQUANTIZE, and
the lookup's copy is dropped. Builtin ops only; the lookup is dequantized
per row, more exactly than with the single scale.
"""

import numpy as np

# Constant data is aligned as the converter aligns it (the schema's
# `force_align: 16`), so kernels may read it in place.
_ALIGNMENT = 16


def _schema():
    from tensorflow.lite.tools import flatbuffer_utils

    return flatbuffer_utils


def _code(model, op):
    code = model.operatorCodes[op.opcodeIndex]
    return max(code.builtinCode, code.deprecatedBuiltinCode)


def _opcode_index(model, builtin):
    schema = _schema().schema_fb
    for i, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin:
            return i
    code = schema.OperatorCodeT()
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(builtin, schema.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES)
    code.version = 1
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _has_data(model, tensor):
    data = model.buffers[tensor.buffer].data
    return data is not None and len(data) > 0


def _is_table(model, tensor, shape, per_row):
    schema = _schema().schema_fb
    quantization = tensor.quantization
    if (
        tensor.type != schema.TensorType.INT8
        or tuple(tensor.shape if tensor.shape is not None else ()) != shape
        or quantization is None
        or quantization.scale is None
        or not _has_data(model, tensor)
    ):
        return False
    return (len(quantization.scale) == shape[0]) == per_row


def _tensor(subgraph, name, shape, dtype, buffer, signature=None, quantization=None):
    schema = _schema().schema_fb
    tensor = schema.TensorT()
    tensor.name = name.encode()
    tensor.shape = np.asarray(shape, dtype=np.int32)
    tensor.shapeSignature = None if signature is None else np.asarray(signature, dtype=np.int32)
    tensor.type = dtype
    tensor.buffer = buffer
    tensor.quantization = quantization
    subgraph.tensors.append(tensor)
    return len(subgraph.tensors) - 1


def _table_in(subgraph, table, shape):
    """The index of a tensor of `subgraph` on the output layer's table:
    the output layer's own where the subgraph has it, else a new one
    without quantization parameters (the CAST and MUL dequantize; a copy of
    the per-row parameters would cost 12 bytes a row)."""
    schema = _schema().schema_fb
    for i, tensor in enumerate(subgraph.tensors):
        if tensor is table:
            tensor.name = b"shared_embedding"
            return i
    return _tensor(subgraph, "shared_embedding", shape, schema.TensorType.INT8, table.buffer)


def _op(model, builtin, inputs, outputs, options_type=0, options=None):
    schema = _schema().schema_fb
    op = schema.OperatorT()
    op.opcodeIndex = _opcode_index(model, builtin)
    op.inputs = np.asarray(inputs, dtype=np.int32)
    op.outputs = np.asarray(outputs, dtype=np.int32)
    op.builtinOptionsType = options_type
    op.builtinOptions = options
    return op


def _last_dim_one(shape):
    return None if shape is None else list(shape[:-1]) + [1]


def _lookups(model, subgraph, shape):
    """`{GATHER index: DEQUANTIZE index}` of the lookups of a per-tensor
    int8 `shape` table whose rows are only dequantized."""
    ops = _schema().schema_fb.BuiltinOperator
    consumers = {}
    for i, op in enumerate(subgraph.operators):
        for tensor in op.inputs:
            consumers.setdefault(int(tensor), []).append(i)
    pairs = {}
    for i, op in enumerate(subgraph.operators):
        if _code(model, op) != ops.GATHER or not _is_table(
            model, subgraph.tensors[op.inputs[0]], shape, per_row=False
        ):
            continue
        users = consumers.get(int(op.outputs[0]), [])
        if len(users) == 1 and _code(model, subgraph.operators[users[0]]) == ops.DEQUANTIZE:
            pairs[i] = users[0]
    return pairs


def _pack(model):
    """The model as `.tflite` bytes, each constant buffer 16-byte aligned."""
    import flatbuffers

    schema = _schema().schema_fb

    class AlignedBuffer(schema.BufferT):
        def Pack(self, builder):
            if self.data is not None and len(self.data):
                builder.Prep(_ALIGNMENT, len(self.data))
            return super().Pack(builder)

    for i, buffer in enumerate(model.buffers):
        aligned = AlignedBuffer()
        aligned.__dict__.update(buffer.__dict__)
        model.buffers[i] = aligned
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def share_int8_embedding(buffer, vocabulary_size, hidden_dim):
    """Rewrites a dynamic-int8 `.tflite` so that a tied embedding table is
    stored once (see the module's docstring).

    Args:
        buffer: the converted model's bytes.
        vocabulary_size, hidden_dim: the table's shape.

    Returns:
        The rewritten model's bytes; `buffer` itself when there is nothing
        to share (no per-row int8 output layer of that shape, or no
        per-tensor int8 lookup of it).

    Example, with `int8_tflite` the bytes of a tied causal LM converted
    with dynamic-range quantization (its vocabulary 42, hidden 64):

    >>> from keras_kd.export.litert_lm import embedding_copies
    >>> embedding_copies(int8_tflite, 42, 64)
    2
    >>> embedding_copies(share_int8_embedding(int8_tflite, 42, 64), 42, 64)
    1
    """
    utils = _schema()
    schema = utils.schema_fb
    ops = schema.BuiltinOperator
    shape = (vocabulary_size, hidden_dim)
    model = utils.convert_bytearray_to_object(bytearray(buffer))
    if any(b.offset for b in model.buffers):
        # Models past 2 GB keep their buffers outside the flatbuffer.
        return buffer
    table = None
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            if _code(model, op) == ops.FULLY_CONNECTED and _is_table(
                model, subgraph.tensors[op.inputs[1]], shape, per_row=True
            ):
                table = subgraph.tensors[op.inputs[1]]
    lookups = [_lookups(model, subgraph, shape) for subgraph in model.subgraphs]
    if table is None or not any(lookups):
        return buffer
    scales = np.asarray(table.quantization.scale, dtype="<f4")
    if np.any(np.asarray(table.quantization.zeroPoint)):
        # Dynamic-range weights are symmetric; anything else is not ours.
        return buffer
    scale_buffer = schema.BufferT()
    scale_buffer.data = np.frombuffer(scales.tobytes(), dtype=np.uint8)
    model.buffers.append(scale_buffer)
    scale_data = len(model.buffers) - 1
    replaced = set()
    for subgraph, pairs in zip(model.subgraphs, lookups):
        if not pairs:
            continue
        rows = _table_in(subgraph, table, shape)
        row_scales = _tensor(
            subgraph, "shared_embedding_row_scales", (vocabulary_size, 1),
            schema.TensorType.FLOAT32, scale_data,
        )
        gathers = {dequantize: gather for gather, dequantize in pairs.items()}
        rewritten = []
        for i, op in enumerate(subgraph.operators):
            if i in pairs:
                replaced.add(subgraph.tensors[op.inputs[0]].buffer)
                op.inputs[0] = rows
                rewritten.append(op)
                continue
            gather = gathers.get(i)
            if gather is None:
                rewritten.append(op)
                continue
            indices = int(subgraph.operators[gather].inputs[1])
            quantized = int(op.inputs[0])
            out = subgraph.tensors[int(op.outputs[0])]
            values = _tensor(
                subgraph, f"{out.name.decode()}/rows", out.shape, schema.TensorType.FLOAT32, 0,
                signature=out.shapeSignature,
            )
            factors = _tensor(
                subgraph, f"{out.name.decode()}/row_scales", _last_dim_one(out.shape),
                schema.TensorType.FLOAT32, 0, signature=_last_dim_one(out.shapeSignature),
            )
            gather_options = schema.GatherOptionsT()
            cast_options = schema.CastOptionsT()
            cast_options.inDataType = schema.TensorType.INT8
            cast_options.outDataType = schema.TensorType.FLOAT32
            rewritten += [
                _op(model, ops.GATHER, [row_scales, indices], [factors],
                    schema.BuiltinOptions.GatherOptions, gather_options),
                _op(model, ops.CAST, [quantized], [values],
                    schema.BuiltinOptions.CastOptions, cast_options),
                _op(model, ops.MUL, [values, factors], [int(op.outputs[0])],
                    schema.BuiltinOptions.MulOptions, schema.MulOptionsT()),
            ]
        subgraph.operators = rewritten
    still_read = {
        subgraph.tensors[int(t)].buffer
        for subgraph in model.subgraphs
        for op in subgraph.operators
        for t in op.inputs
        if t >= 0
    }
    for index in replaced - still_read:
        model.buffers[index].data = None
    return _pack(model)
