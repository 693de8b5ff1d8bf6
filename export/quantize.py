"""The int8 variant: ONNX Runtime dynamic quantization, kept only if it holds accuracy."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np
import onnx

from export.parity import predicted

MAX_ACCURACY_DROP = 0.005
"""The int8 model may lose at most this much accuracy (0.5 pt) against fp32 on the gate's reviews."""
MIN_AGREEMENT = 0.99
"""The int8 and fp32 labels must agree on at least this fraction of the gate's reviews."""
SLACK = 1e-9
"""Rounding allowance, so that a figure exactly at a limit (e.g. 1 review in 200 = 0.5 pt) passes."""
QUANTIZED_RECURRENT_OPS = ("DynamicQuantizeLSTM",)
FLOAT_RECURRENT_OPS = ("LSTM", "GRU")
"""ONNX Runtime's dynamic quantization has no GRU kernel: a GRU stays fp32 (its MatMul and Gather are int8)."""
CONTROL_FLOW = ("Loop", "Scan", "If")


class QuantizationError(RuntimeError):
    """The quantizer failed, or its graph is not one fused recurrent node without control flow."""


@dataclass(frozen=True)
class Int8Result:
    """Accuracy of fp32 and int8 ONNX on the same labelled reviews, the limits applied, and the verdict."""

    reviews: int
    fp32_accuracy: float
    int8_accuracy: float
    label_agreement: float
    max_abs_diff: float
    quantized_ops: list[str]
    embedding_quantized: bool
    max_accuracy_drop: float = MAX_ACCURACY_DROP
    min_agreement: float = MIN_AGREEMENT
    refused: str | None = None

    @classmethod
    def not_made(cls, reason: str, *, max_accuracy_drop: float = MAX_ACCURACY_DROP,
                 min_agreement: float = MIN_AGREEMENT) -> Int8Result:
        """No int8 model reached the gate (not requested, or the quantizer's graph was refused)."""
        return cls(0, 0.0, 0.0, 0.0, 0.0, [], False, max_accuracy_drop, min_agreement, reason)

    @property
    def accuracy_drop(self) -> float:
        return self.fp32_accuracy - self.int8_accuracy

    def summary(self) -> dict:
        return {**asdict(self), "accuracy_drop": self.accuracy_drop}


def quantize(fp32_path: str | os.PathLike[str], int8_path: str | os.PathLike[str], *, embedding: bool,
             metadata: Iterable[onnx.StringStringEntryProto] = ()) -> list[str]:
    """Write the dynamically quantized model with ``metadata``; return the quantized op types.

    Raises :class:`QuantizationError` when the quantizer fails or its graph has an unexpected structure.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    op_types = ["LSTM", "MatMul"] + (["Gather"] if embedding else [])
    try:
        quantize_dynamic(os.fspath(fp32_path), os.fspath(int8_path), weight_type=QuantType.QInt8,
                         op_types_to_quantize=op_types)
        model = onnx.load(os.fspath(int8_path))
    except Exception as error:  # noqa: BLE001 - the optional int8 variant must not abort the export
        text = str(error).strip()
        raise QuantizationError(f"the quantizer failed: {text.splitlines()[0] if text else type(error).__name__}"
                                ) from None
    check_quantized_structure(model)
    del model.metadata_props[:]
    model.metadata_props.extend(metadata)
    with open(int8_path, "wb") as handle:
        handle.write(model.SerializeToString())
    counts = Counter(n.op_type for n in model.graph.node)
    return sorted(op for op in counts if op.startswith(("DynamicQuantize", "MatMulInteger", "DequantizeLinear")))


def check_quantized_structure(model: onnx.ModelProto) -> None:
    """The quantized graph still runs one fused recurrent node and no control flow."""
    counts = Counter(n.op_type for n in model.graph.node)
    flow = {op: counts[op] for op in CONTROL_FLOW if counts[op]}
    if flow:
        raise QuantizationError(f"int8 graph contains control flow {flow}")
    recurrent = {op: counts[op] for op in (*QUANTIZED_RECURRENT_OPS, *FLOAT_RECURRENT_OPS) if counts[op]}
    if sum(recurrent.values()) != 1:
        raise QuantizationError(f"int8 graph has {recurrent or 'no'} recurrent nodes, not one")


def int8_gate(fp32_scores: np.ndarray, int8_scores: np.ndarray, labels: np.ndarray, *, threshold: float,
              quantized_ops: list[str], embedding_quantized: bool, max_accuracy_drop: float = MAX_ACCURACY_DROP,
              min_agreement: float = MIN_AGREEMENT) -> Int8Result:
    """Judge int8 against fp32 on labelled reviews: refused when the accuracy drops by more than
    ``max_accuracy_drop`` or the labels agree on less than ``min_agreement``; values at a limit pass.

    Scores are ``[n]`` P(class 1) of a binary model (label: ``>= threshold``) or ``[n, N]`` probabilities
    (label: argmax); ``labels`` are class indices.
    """
    fp32_labels, int8_labels = predicted(fp32_scores, threshold), predicted(int8_scores, threshold)
    truth = np.asarray(labels).astype(np.int64)
    result = Int8Result(
        reviews=len(truth),
        fp32_accuracy=float(np.mean(fp32_labels == truth)),
        int8_accuracy=float(np.mean(int8_labels == truth)),
        label_agreement=float(np.mean(fp32_labels == int8_labels)),
        max_abs_diff=float(np.max(np.abs(np.asarray(fp32_scores) - np.asarray(int8_scores)))),
        quantized_ops=list(quantized_ops),
        embedding_quantized=embedding_quantized,
        max_accuracy_drop=max_accuracy_drop,
        min_agreement=min_agreement,
    )
    reasons = []
    if result.accuracy_drop > max_accuracy_drop + SLACK:
        reasons.append(f"accuracy drops {100 * result.accuracy_drop:.2f} pt (limit {100 * max_accuracy_drop:g} pt)")
    if result.label_agreement < min_agreement - SLACK:
        reasons.append(f"label agreement {100 * result.label_agreement:.2f} % (limit {100 * min_agreement:g} %)")
    if reasons:
        return Int8Result(**{**asdict(result), "refused": "; ".join(reasons)})
    return result
