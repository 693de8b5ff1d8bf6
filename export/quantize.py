"""The int8 variant: ONNX Runtime dynamic quantization, kept only if it holds accuracy."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx

MAX_ACCURACY_DROP = 0.005
MIN_AGREEMENT = 0.99
QUANTIZED_RECURRENT_OPS = ("DynamicQuantizeLSTM",)


@dataclass(frozen=True)
class Int8Result:
    """Accuracy of fp32 and int8 ONNX on the same labelled reviews, and the verdict."""

    reviews: int
    fp32_accuracy: float
    int8_accuracy: float
    label_agreement: float
    max_abs_diff: float
    quantized_ops: list[str]
    embedding_quantized: bool
    refused: str | None = None

    @property
    def accuracy_drop(self) -> float:
        return self.fp32_accuracy - self.int8_accuracy

    def summary(self) -> dict:
        return {**asdict(self), "accuracy_drop": self.accuracy_drop}


def quantize(fp32_path: str | Path, int8_path: str | Path, *, embedding: bool) -> list[str]:
    """Write the dynamically quantized model; return the op types that were quantized."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    op_types = ["LSTM", "GRU", "MatMul"] + (["Gather"] if embedding else [])
    quantize_dynamic(str(fp32_path), str(int8_path), weight_type=QuantType.QInt8, op_types_to_quantize=op_types)
    counts = Counter(n.op_type for n in onnx.load(str(int8_path), load_external_data=False).graph.node)
    return sorted(op for op in counts if op.startswith(("DynamicQuantize", "MatMulInteger", "DequantizeLinear")))


def copy_metadata(source: onnx.ModelProto, path: str | Path) -> bytes:
    """The quantized file at ``path`` with ``source``'s metadata_props; returns its bytes."""
    model = onnx.load(str(path))
    del model.metadata_props[:]
    model.metadata_props.extend(source.metadata_props)
    return model.SerializeToString()


def check_quantized_structure(model: onnx.ModelProto) -> None:
    """The quantized graph still runs one fused recurrent node and no control flow."""
    counts = Counter(n.op_type for n in model.graph.node)
    if any(counts[op] for op in ("Loop", "Scan", "If")):
        raise RuntimeError("int8 graph contains control flow")
    if sum(counts[op] for op in (*QUANTIZED_RECURRENT_OPS, "LSTM", "GRU")) != 1:
        raise RuntimeError(f"int8 graph has no single recurrent node: {dict(counts)}")


def int8_gate(fp32_scores: np.ndarray, int8_scores: np.ndarray, labels: np.ndarray, *, threshold: float,
              quantized_ops: list[str], embedding_quantized: bool) -> Int8Result:
    """Judge the int8 scores against fp32 on labelled reviews (accuracy drop and label agreement)."""
    fp32_labels, int8_labels = fp32_scores >= threshold, int8_scores >= threshold
    truth = labels.astype(bool)
    result = Int8Result(
        reviews=len(labels),
        fp32_accuracy=float(np.mean(fp32_labels == truth)),
        int8_accuracy=float(np.mean(int8_labels == truth)),
        label_agreement=float(np.mean(fp32_labels == int8_labels)),
        max_abs_diff=float(np.max(np.abs(fp32_scores - int8_scores))),
        quantized_ops=quantized_ops,
        embedding_quantized=embedding_quantized,
    )
    reasons = []
    if result.accuracy_drop > MAX_ACCURACY_DROP:
        reasons.append(f"accuracy drops {100 * result.accuracy_drop:.2f} pt (limit {100 * MAX_ACCURACY_DROP:.1f})")
    if result.label_agreement < MIN_AGREEMENT:
        reasons.append(f"label agreement {100 * result.label_agreement:.2f} % (< {100 * MIN_AGREEMENT:.0f} %)")
    if reasons:
        return Int8Result(**{**asdict(result), "refused": "; ".join(reasons)})
    return result
