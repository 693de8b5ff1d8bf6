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
    """The single recurrent (``LSTM`` or ``GRU``) node of the graph."""
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
        length_nodes = _length_nodes(input_name, pad_id, graph)
        while len(rnn.input) < 5:
            rnn.input.append("")
        rnn.input[4] = LENGTH_TENSOR

    # Keep the node list topologically sorted: lengths before the recurrent node, states after it.
    nodes = list(graph.node)
    at = nodes.index(rnn)
    del graph.node[:]
    graph.node.extend(nodes[:at] + length_nodes + [nodes[at]] + state_nodes + nodes[at + 1:])
    _prune(graph)


def _sources(tensor: str, producers: dict[str, onnx.NodeProto], constants: set[str]) -> tuple[set[str], set[str]]:
    """The non-constant leaves ``tensor`` is computed from, and the op types on the way."""
    leaves, ops, stack, seen = set(), set(), [tensor], set()
    while stack:
        name = stack.pop()
        if name in seen or not name or name in constants:
            continue
        seen.add(name)
        node = producers.get(name)
        if node is None:
            leaves.add(name)
            continue
        ops.add(node.op_type)
        stack.extend(node.input)
    return leaves, ops


def simplify(model: onnx.ModelProto, *, input_name: str) -> list[str]:
    """Drop two pieces of per-call work that tf2onnx keeps from the TensorFlow graph; return what was dropped.

    - Keras' zero initial states, rebuilt from the batch size on every call: ONNX's LSTM defaults to
      zeros when ``initial_h`` and ``initial_c`` are left out.
    - Keras' handling of negative embedding indices (``ids < 0 ? ids + vocab : ids``): the tokenizer
      only emits ids in ``[0, vocab)``, so the Gather reads ``token_ids`` directly.
    The parity gate checks the result like any other graph.
    """
    graph = model.graph
    producers = _producers(graph)
    constants = {init.name for init in graph.initializer} | {
        n.output[0] for n in graph.node if n.op_type == "Constant"}
    zeros = {init.name for init in graph.initializer if not numpy_helper.to_array(init).any()}
    dropped = []
    rnn = recurrent_node(graph)
    for i in range(5, len(rnn.input)):  # initial_h, initial_c
        tensor = rnn.input[i]
        if not tensor or tensor in constants:
            continue
        if _traces_to_zero_fill(tensor, producers, zeros):
            rnn.input[i] = ""
            dropped.append(f"{rnn.op_type} input {i} (zero initial state)")
    for node in graph.node:
        if node.op_type != "Gather" or node.input[0] not in constants or node.input[1] == input_name:
            continue
        leaves, ops = _sources(node.input[1], producers, constants)
        if leaves == {input_name} and ops <= {"Add", "Less", "Not", "Cast", "Mul", "Where", "Identity"}:
            node.input[1] = input_name
            dropped.append(f"negative-index handling before {node.name}")
    while len(rnn.input) and not rnn.input[-1]:
        del rnn.input[-1]
    _prune(graph)
    rnn = recurrent_node(graph)  # pruning rebuilt the node list: fetch the live node again
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    for i, name in enumerate(rnn.output):
        if name and name not in used:
            rnn.output[i] = ""  # ONNX Runtime then skips writing it (Y is every step's state)
            dropped.append(f"unused {rnn.op_type} output {i}")
    if _transpose_ids_not_embeddings(graph, input_name):
        dropped.append("float Transpose of the embeddings (the int ids are transposed instead)")
    _prune(graph)
    return dropped


def _traces_to_zero_fill(tensor: str, producers: dict[str, onnx.NodeProto], zeros: set[str]) -> bool:
    """Whether every value of ``tensor`` comes from an ``Expand`` of an all-zero constant."""
    node = producers.get(tensor)
    if node is None:
        return False
    if node.op_type == "Expand":
        return node.input[0] in zeros
    if node.op_type in ("Concat",):
        return all(_traces_to_zero_fill(i, producers, zeros) for i in node.input)
    if node.op_type in ("Unsqueeze", "Cast", "Reshape", "Identity", "Squeeze"):
        return _traces_to_zero_fill(node.input[0], producers, zeros)
    return False


def _length_nodes(input_name: str, pad_id: int, graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """Nodes computing ``LENGTH_TENSOR`` = the number of non-padding ids in each row (padding is at the end)."""
    prefix = "edge_infer_lengths"
    axis = _const(f"{prefix}/axis", [1])
    if pad_id == 0:  # ids are never negative, so sign(id) is 1 for a token and 0 for padding
        graph.initializer.append(axis)
        return [
            helper.make_node("Sign", [input_name], [f"{prefix}/is_token"], name=f"{prefix}/sign"),
            helper.make_node("ReduceSum", [f"{prefix}/is_token", axis.name], [LENGTH_TENSOR], keepdims=0,
                             name=f"{prefix}/sum"),
        ]
    graph.initializer.extend([axis, numpy_helper.from_array(np.asarray(pad_id, dtype=np.int32), f"{prefix}/pad_id")])
    return [
        helper.make_node("Equal", [input_name, f"{prefix}/pad_id"], [f"{prefix}/is_pad"], name=f"{prefix}/equal"),
        helper.make_node("Not", [f"{prefix}/is_pad"], [f"{prefix}/is_token"], name=f"{prefix}/not"),
        helper.make_node("Cast", [f"{prefix}/is_token"], [f"{prefix}/ones"], to=onnx.TensorProto.INT32,
                         name=f"{prefix}/cast"),
        helper.make_node("ReduceSum", [f"{prefix}/ones", axis.name], [LENGTH_TENSOR], keepdims=0,
                         name=f"{prefix}/sum"),
    ]


def _transpose_ids_not_embeddings(graph: onnx.GraphProto, input_name: str) -> bool:
    """``Transpose(Gather(E, ids))`` to time-major becomes ``Gather(E, Transpose(ids))``: ints, not vectors."""
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    for gather in graph.node:
        if gather.op_type != "Gather" or gather.input[1] != input_name:
            continue
        users = consumers.get(gather.output[0], [])
        if len(users) != 1 or users[0].op_type != "Transpose":
            return False
        transpose = users[0]
        perm = next((list(a.ints) for a in transpose.attribute if a.name == "perm"), None)
        if perm != [1, 0, 2]:
            return False
        ids_t = "edge_infer_time_major_ids"
        new_transpose = helper.make_node("Transpose", [input_name], [ids_t], perm=[1, 0], name=ids_t)
        gather.input[1] = ids_t
        gather.output[0] = transpose.output[0]
        nodes = [n for n in graph.node if n.name != transpose.name]
        at = [n.name for n in nodes].index(gather.name)
        del graph.node[:]
        graph.node.extend(nodes[:at] + [new_transpose] + nodes[at:])
        return True
    return False


def use_gru(model: onnx.ModelProto, w: np.ndarray, r: np.ndarray, b: np.ndarray) -> None:
    """Replace the graph's bidirectional ``LSTM`` node (a stand-in of the same size) by a ``GRU`` node.

    ``w``, ``r``, ``b`` are ONNX's GRU weights (``export.gru.onnx_gru_weights``). The node keeps its input
    ``X``, its ``sequence_lens`` and its outputs ``Y``/``Y_h``; it must have no initial or peephole inputs
    left (``simplify`` drops the zero initial states), since a GRU has no cell state.
    """
    graph = model.graph
    lstm = recurrent_node(graph)
    if lstm.op_type != "LSTM" or len(lstm.input) > 5:
        raise GraphPassError(f"expected an LSTM stand-in with at most 5 inputs, found {lstm.op_type} "
                             f"{list(lstm.input)}")
    units = helper.get_attribute_value(next(a for a in lstm.attribute if a.name == "hidden_size"))
    if w.shape[:2] != (2, 3 * units) or r.shape != (2, 3 * units, units) or b.shape != (2, 6 * units):
        raise GraphPassError(f"GRU weights {w.shape}, {r.shape}, {b.shape} do not fit hidden_size {units}")
    names = [f"edge_infer_gru/{part}" for part in ("W", "R", "B")]
    graph.initializer.extend(numpy_helper.from_array(a, n) for a, n in zip((w, r, b), names, strict=True))
    inputs = [lstm.input[0], *names, *lstm.input[4:5]]
    gru = helper.make_node("GRU", inputs, list(lstm.output[:2]), name=f"{lstm.name}_gru", direction="bidirectional",
                           hidden_size=units, linear_before_reset=1)
    nodes = list(graph.node)
    at = nodes.index(lstm)
    del graph.node[:]
    graph.node.extend(nodes[:at] + [gru] + nodes[at + 1:])
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
