"""Two exported models side by side from their own files: accuracy, parity, recurrent node and file sizes.

    python bench/cell_compare.py RUN_FOLDER [RUN_FOLDER ...]

Each folder is a ``python -m train`` output exported with ``python -m export`` (``training_report.json``
and ``manifest.json``). Prints one markdown row per folder: the cell, Keras test accuracy (training report),
the export gate's fp32 and int8 accuracy, parity max |diff|, the ONNX recurrent op of fp32 and int8, the
recurrent layer's weights, and the fp32/int8 file sizes. Batch-1 latency: ``bench/serving_ratio.py``. Not a
unit test.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import onnx  # noqa: E402
from onnx import numpy_helper  # noqa: E402

RECURRENT = ("LSTM", "GRU", "DynamicQuantizeLSTM")


def _recurrent(path: Path) -> tuple[str, int]:
    """The recurrent node's op type and how many weights its W, R and B hold."""
    graph = onnx.load(str(path)).graph
    (node,) = [n for n in graph.node if n.op_type in RECURRENT]
    sizes = {init.name: numpy_helper.to_array(init).size for init in graph.initializer}
    return node.op_type, sum(sizes.get(name, 0) for name in node.input[1:4])


def row(folder: Path) -> str:
    report = json.loads((folder / "training_report.json").read_text())
    manifest = json.loads((folder / "manifest.json").read_text())
    files, int8 = manifest["files"], manifest["parity"]["int8"]
    fp32_op, weights = _recurrent(folder / files["fp32"]["path"])
    int8_op = _recurrent(folder / files["int8"]["path"])[0] if "int8" in files else "refused"
    test_rows = f"{report['data']['test_reviews']:,}"
    return (f"| {folder.name} | {report['settings']['cell']} | {100 * report['test_accuracy']:.2f} % ({test_rows}) "
            f"| {100 * int8['fp32_accuracy']:.2f} % / {100 * int8['int8_accuracy']:.2f} % ({int8['reviews']:,}) "
            f"| {manifest['parity']['max_abs_diff']:.2e} | {fp32_op} / {int8_op} | {weights:,} "
            f"| {files['fp32']['size'] / 1e6:.2f} MB | "
            + (f"{files['int8']['size'] / 1e6:.2f} MB |" if "int8" in files else "- |"))


def main(argv: list[str]) -> int:
    print("| run | cell | Keras test accuracy (reviews) | export gate fp32 / int8 accuracy (reviews) | parity max diff "
          "| recurrent op fp32 / int8 | recurrent weights | fp32 file | int8 file |")
    print("| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |")
    for name in argv:
        print(row(Path(name)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
