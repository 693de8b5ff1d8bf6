"""Keras -> ONNX with tf2onnx, then the graph pass and the structure gate."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import onnx

from edge_infer.model_folder import FORMAT, FORMAT_VERSION, INPUT_NAME, META_FORMAT, META_VOCAB_SHA256, OUTPUT_NAME
from export.graph import (
    LENGTH_TENSOR,
    GraphPassError,
    recurrent_node,
    rename_output,
    simplify,
    use_final_states,
    use_gru,
)
from export.gru import GruError, check_gru, is_bidirectional_gru, lstm_stand_in, onnx_gru_weights

OPSET = 17
FORBIDDEN_OPS = ("Loop", "Scan", "If")
ONLY_NATIVE = "only a bidirectional LSTM or GRU exports"
EXPORTED_KINDS = ("Bidirectional(LSTM)", "Bidirectional(GRU)")


class StructureError(RuntimeError):
    """The model or its ONNX graph does not run the recurrent layer as one native bidirectional LSTM/GRU node."""


@dataclass(frozen=True)
class Structure:
    """What the structure gate saw."""

    recurrent_op: str
    direction: str
    sequence_lens: bool
    op_counts: dict[str, int]


def check_keras_model(model) -> None:
    """The structure gate before conversion: an ``embedding`` layer and one ``Bidirectional(LSTM|GRU)``.

    Those two have a native ONNX node (the GRU through an LSTM stand-in, ``export/gru.py``); any other
    recurrent layer is refused here, before the conversion.
    """
    import keras

    names = [layer.name for layer in model.layers]
    if "embedding" not in names:
        raise StructureError(f"{ONLY_NATIVE} after a layer named 'embedding'; this model has none ({names})")
    recurrent = [layer for layer in model.layers if isinstance(layer, keras.layers.RNN | keras.layers.Bidirectional)]
    kinds = [_describe(layer) for layer in recurrent]
    if len(recurrent) != 1 or kinds[0] not in EXPORTED_KINDS:
        raise StructureError(f"{ONLY_NATIVE}; this model has {', '.join(kinds) or 'no recurrent layer'}")
    if is_bidirectional_gru(recurrent[0]):
        try:
            check_gru(recurrent[0])
        except GruError as error:
            raise StructureError(str(error)) from None


def _describe(layer) -> str:
    inner = getattr(layer, "forward_layer", None)
    return f"Bidirectional({type(inner).__name__})" if inner is not None else type(layer).__name__


def is_masked(model) -> bool:
    """Whether the Keras model's embedding masks padding (``mask_zero=True``)."""
    return bool(getattr(model.get_layer("embedding"), "mask_zero", False))


def unmasked_twin(model):
    """The same layers and weights with ``mask_zero=False`` and a dynamic sequence axis.

    tf2onnx turns a masked recurrent layer into a ``Loop``; the twin converts to a native node, and the
    graph pass then restores the mask's meaning through ``sequence_lens``. Works for a chain of layers and
    for a graph with branches (the BiLSTM + n-gram bag model). A ``Bidirectional(GRU)`` becomes an LSTM
    stand-in of the same size (``export.gru.lstm_stand_in``), which tf2onnx fuses; its weights are not used.
    """
    import keras

    def clone(layer):
        config = layer.get_config()
        if isinstance(layer, keras.layers.Embedding):
            config["mask_zero"] = False
        return layer.__class__.from_config(config)

    # Each layer (model.layers is in call order) is called again on the copies of its inputs, and nothing
    # else: no mask is passed on (keras.models.clone_model would replay the recorded mask argument).
    token_ids = keras.Input(shape=(None,), dtype="int32", name=INPUT_NAME)
    tensors = {id(model.inputs[0]): token_ids}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        gru = is_bidirectional_gru(layer)
        copy = lstm_stand_in(layer) if gru else clone(layer)
        output = copy(_layer_inputs(layer, tensors))
        if not gru:
            copy.set_weights(layer.get_weights())
        tensors[id(layer.output)] = output
    return keras.Model(token_ids, tensors[id(model.outputs[0])], name=f"{model.name}_unmasked")


def _layer_inputs(layer, copies: dict[int, object]):
    """The copies of ``layer``'s input tensors: one tensor, or a list of them (``Add``).

    Public API only (``layer.input``, the tensors of the layer's call). Keras 3 lists there the mask it
    passed on too (a ``NotEqual`` op's output, not a layer's), so only the outputs of layers already copied
    are kept; ``tests/test_convert.py`` fails if a Keras version changes what ``layer.input`` holds.
    """
    given = layer.input if isinstance(layer.input, list | tuple) else [layer.input]
    kept = [copies[id(tensor)] for tensor in given if id(tensor) in copies]
    if not kept:
        raise StructureError(f"layer {layer.name!r} is not called on the output of another layer")
    return kept[0] if len(kept) == 1 else kept


def to_onnx(model, *, max_len: int, pad_id: int, opset: int = OPSET) -> onnx.ModelProto:
    """Convert a trained classifier; masked models get a dynamic, length-aware graph."""
    import tensorflow as tf
    import tf2onnx

    masked = is_masked(model)
    grus = [layer for layer in model.layers if is_bidirectional_gru(layer)]
    source = unmasked_twin(model) if masked or grus else model
    length = None if masked else max_len
    function = tf.function(lambda ids: source(ids, training=False))
    signature = (tf.TensorSpec((None, length), tf.int32, name=INPUT_NAME),)
    proto, _ = tf2onnx.convert.from_function(function, input_signature=signature, opset=opset)
    try:
        use_final_states(proto, input_name=INPUT_NAME, pad_id=pad_id, with_lengths=masked)
    except GraphPassError as error:
        ops = sorted({n.op_type for n in proto.graph.node} & {"Loop", "Scan", "LSTM"})
        raise StructureError(f"tf2onnx did not give one fused bidirectional LSTM ({error}; saw {ops or 'none'})"
                             ) from None
    simplify(proto, input_name=INPUT_NAME)
    if grus:
        try:
            use_gru(proto, *onnx_gru_weights(grus[0]))
        except GraphPassError as error:
            raise StructureError(f"the LSTM stand-in could not become a GRU node ({error})") from None
    rename_output(proto, OUTPUT_NAME)
    proto.producer_name = "edge-infer export (tf2onnx)"
    return proto


def set_metadata(model: onnx.ModelProto, values: dict[str, str]) -> None:
    """Set ``metadata_props`` entries, replacing any with the same key."""
    kept = [p for p in model.metadata_props if p.key not in values]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in values.items():
        model.metadata_props.add(key=key, value=value)


def model_metadata(vocab_sha256: str) -> dict[str, str]:
    """The ``metadata_props`` every exported ONNX file carries (the runtime checks ``vocab_sha256``)."""
    return {META_VOCAB_SHA256: vocab_sha256, META_FORMAT: f"{FORMAT}/{FORMAT_VERSION}"}


def check_structure(model: onnx.ModelProto, *, masked: bool) -> Structure:
    """The structure gate on the graph: one native bidirectional LSTM or GRU, no control flow, lengths wired
    when masked."""
    onnx.checker.check_model(model, full_check=True)
    counts = Counter(n.op_type for n in model.graph.node)
    forbidden = {op: counts[op] for op in FORBIDDEN_OPS if counts[op]}
    if forbidden:
        raise StructureError(f"graph contains control flow {forbidden}: the recurrent layer was not fused")
    try:
        rnn = recurrent_node(model.graph)
    except GraphPassError as error:
        raise StructureError(str(error)) from None
    direction = next((a.s.decode() for a in rnn.attribute if a.name == "direction"), "forward")
    if direction != "bidirectional":
        raise StructureError(f"{rnn.op_type} node {rnn.name} runs {direction}, not bidirectional")
    has_lengths = len(rnn.input) > 4 and rnn.input[4] == LENGTH_TENSOR
    if masked and not has_lengths:
        raise StructureError(f"{rnn.op_type} node {rnn.name} has no sequence_lens: padding would change the score")
    return Structure(rnn.op_type, direction, has_lengths, dict(sorted(counts.items())))
