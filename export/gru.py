"""Keras 3 ``Bidirectional(GRU)`` -> one native ONNX ``GRU`` node.

tf2onnx fuses no Keras 3 GRU (masked or not, it becomes a ``Loop``). It does fuse an LSTM, so the model is
converted with an LSTM of the same size standing in for the GRU: the rest of the graph (embedding, lengths,
final states ``Y_h``, head) comes out as for an LSTM model, with the same passes. The stand-in node is then
replaced by a ``GRU`` node carrying the Keras GRU's weights (:func:`export.graph.use_gru`).

Keras' ``reset_after=True`` GRU is ONNX's ``linear_before_reset=1``: both apply the reset gate after the
recurrent matrix product and its bias. Gate order is ``z, r, h`` in both.
"""

from __future__ import annotations

import numpy as np


class GruError(ValueError):
    """The GRU layer has a configuration the ONNX ``GRU`` node does not reproduce."""


EXPECTED = {"reset_after": True, "use_bias": True, "activation": "tanh", "recurrent_activation": "sigmoid",
            "return_sequences": False}


def is_bidirectional_gru(layer) -> bool:
    """Whether ``layer`` is a Keras ``Bidirectional`` wrapping a ``GRU``."""
    import keras

    return isinstance(getattr(layer, "forward_layer", None), keras.layers.GRU)


def check_gru(layer) -> None:
    """Refuse a ``Bidirectional(GRU)`` whose configuration the ONNX node would compute differently."""
    config = layer.forward_layer.get_config()
    wrong = {key: config.get(key) for key, value in EXPECTED.items() if config.get(key) != value}
    if layer.merge_mode != "concat":
        wrong["merge_mode"] = layer.merge_mode
    if wrong:
        raise GruError(f"the GRU layer has {wrong}; the ONNX GRU export needs {EXPECTED} and merge_mode 'concat'")


def lstm_stand_in(layer):
    """A fresh ``Bidirectional(LSTM)`` of the GRU's size and name, for tf2onnx to fuse (weights unused)."""
    import keras

    units = layer.forward_layer.units
    return keras.layers.Bidirectional(keras.layers.LSTM(units), merge_mode="concat", name=layer.name)


def onnx_gru_weights(layer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``W [2, 3u, in]``, ``R [2, 3u, u]``, ``B [2, 6u]`` of ONNX's bidirectional GRU (forward, then backward)."""
    ws, rs, bs = [], [], []
    for direction in (layer.forward_layer, layer.backward_layer):
        kernel, recurrent_kernel, bias = direction.get_weights()  # [in, 3u], [u, 3u], [2, 3u] (input, recurrent)
        ws.append(kernel.T)
        rs.append(recurrent_kernel.T)
        bs.append(np.concatenate([bias[0], bias[1]]))
    return (np.stack(ws).astype(np.float32), np.stack(rs).astype(np.float32), np.stack(bs).astype(np.float32))
