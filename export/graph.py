"""Graph passes on the tf2onnx output: final states from ``Y_h``, true lengths into ``sequence_lens``.

tf2onnx turns an unmasked Keras ``Bidirectional(LSTM)`` into one native bidirectional ``LSTM`` node and
reads its final states by slicing the full output ``Y`` at the last (forward) and first (backward) time
step, then concatenating them. That is right only when every time step is real. The pass here

1. computes each row's length inside the graph, ``sum(token_ids != pad_id)`` (padding is at the end),
   and feeds it to the recurrent node's ``sequence_lens`` input, and
2. replaces the slices of ``Y`` with ``Y_h`` (shape ``[2, batch, units]``), transposed and reshaped to
   ``[batch, 2 * units]``: ``[forward, backward]``, the order of Keras' ``merge_mode="concat"``.

With lengths set, ONNX Runtime stops the forward direction at the last real token and starts the
backward one there, which is what Keras' mask does, and a short review costs less than a long one.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import onnx
from onnx import helper, numpy_helper

RECURRENT_OPS = ("LSTM", "GRU")
LENGTH_TENSOR = "sequence_lengths"
PASS_THROUGH = ("Slice", "Squeeze", "Gather", "Identity")


class GraphPassError(RuntimeError):
    """The graph does not have the shape the pass expects."""


def recurrent_node(graph: onnx.GraphProto) -> onnx.NodeProto:
    """The single bidirectional LSTM/GRU node of the graph."""
    nodes = [n for n in graph.node if n.op_type in RECURRENT_OPS]
    if len(nodes) != 1:
        raise GraphPassError(f"expected one recurrent node, found {len(nodes)}")
    return nodes[0]


def _producers(graph: onnx.GraphProto) -> dict[str, onnx.NodeProto]:
    return {out: node for node in graph.node for out in node.output}


def _traces_to(tensor: str, target: str, producers: dict[str, onnx.NodeProto]) -> bool:
    """Whether ``tensor`` is ``target`` seen through a chain of slicing ops only."""
    while tensor != target:
        node = producers.get(tensor)
        if node is None or node.op_type not in PASS_THROUGH:
            return False
        tensor = node.input[0]
    return True


def _final_state_concat(graph: onnx.GraphProto, y: str) -> onnx.NodeProto:
    producers = _producers(graph)
    candidates = [
        n for n in graph.node
        if n.op_type == "Concat" and len(n.input) == 2 and all(_traces_to(i, y, producers) for i in n.input)
    ]
    if len(candidates) != 1:
        raise GraphPassError(f"expected one Concat of final states sliced from {y}, found {len(candidates)}")
    return candidates[0]


def _prune(graph: onnx.GraphProto) -> None:
    """Drop nodes and initializers that no graph output depends on."""
    producers = _producers(graph)
    needed: set[str] = set()
    stack = [o.name for o in graph.output]
    keep: list[onnx.NodeProto] = []
    seen: set[int] = set()
    while stack:
        node = producers.get(stack.pop())
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        keep.append(node)
        for name in node.input:
            if name:
                needed.add(name)
                stack.append(name)
    order = [n for n in graph.node if id(n) in seen]
    del graph.node[:]
    graph.node.extend(order)
    unused = [init for init in graph.initializer if init.name not in needed]
    for init in unused:
        graph.initializer.remove(init)


def _const(name: str, values: Iterable[int]) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(list(values), dtype=np.int64), name)


def use_final_states(model: onnx.ModelProto, *, input_name: str, pad_id: int, with_lengths: bool) -> None:
    """Rewire the classifier to read ``Y_h``; with ``with_lengths``, feed each row's true length."""
    graph = model.graph
    rnn = recurrent_node(graph)
    if helper.get_attribute_value(next(a for a in rnn.attribute if a.name == "direction")) != b"bidirectional":
        raise GraphPassError(f"{rnn.name} is not bidirectional")
    units = helper.get_attribute_value(next(a for a in rnn.attribute if a.name == "hidden_size"))
    concat = _final_state_concat(graph, rnn.output[0])
    while len(rnn.output) < 2 or not rnn.output[1]:
        rnn.output.append("")
    if not rnn.output[1]:
        rnn.output[1] = f"{rnn.name}_Y_h"
    y_h = rnn.output[1]

    prefix = "edge_infer_final_states"
    graph.initializer.append(_const(f"{prefix}/shape", [-1, 2 * units]))
    state_nodes = [
        helper.make_node("Transpose", [y_h], [f"{prefix}/batch_major"], perm=[1, 0, 2], name=f"{prefix}/transpose"),
        helper.make_node("Reshape", [f"{prefix}/batch_major", f"{prefix}/shape"], [concat.output[0]],
                         name=f"{prefix}/reshape"),
    ]
    graph.node.remove(concat)

    length_nodes: list[onnx.NodeProto] = []
    if with_lengths:
        prefix = "edge_infer_lengths"
        graph.initializer.extend([
            numpy_helper.from_array(np.asarray(pad_id, dtype=np.int32), f"{prefix}/pad_id"),
            _const(f"{prefix}/axis", [1]),
        ])
        length_nodes = [
            helper.make_node("Equal", [input_name, f"{prefix}/pad_id"], [f"{prefix}/is_pad"], name=f"{prefix}/equal"),
            helper.make_node("Not", [f"{prefix}/is_pad"], [f"{prefix}/is_token"], name=f"{prefix}/not"),
            helper.make_node("Cast", [f"{prefix}/is_token"], [f"{prefix}/ones"], to=onnx.TensorProto.INT32,
                             name=f"{prefix}/cast"),
            helper.make_node("ReduceSum", [f"{prefix}/ones", f"{prefix}/axis"], [LENGTH_TENSOR], keepdims=0,
                             name=f"{prefix}/sum"),
        ]
        while len(rnn.input) < 5:
            rnn.input.append("")
        rnn.input[4] = LENGTH_TENSOR

    # Keep the node list topologically sorted: lengths before the recurrent node, states after it.
    nodes = list(graph.node)
    at = nodes.index(rnn)
    del graph.node[:]
    graph.node.extend(nodes[:at] + length_nodes + [nodes[at]] + state_nodes + nodes[at + 1:])
    _prune(graph)


def rename_output(model: onnx.ModelProto, name: str) -> None:
    """Give the single graph output a stable name (tf2onnx calls it ``Identity:0`` or similar)."""
    (output,) = model.graph.output
    old = output.name
    if old == name:
        return
    for node in model.graph.node:
        for i, tensor in enumerate(node.output):
            if tensor == old:
                node.output[i] = name
        for i, tensor in enumerate(node.input):
            if tensor == old:
                node.input[i] = name
    output.name = name
