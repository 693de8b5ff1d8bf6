"""The human-readable parity report: Markdown plus a histogram of the Keras/ONNX differences.

A passing export publishes ``parity_report.md`` with the model; a refused one writes
``parity_report.failed.md`` (no file the manifest lists changes), so the reason stays readable.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_infer.storage import atomic_write_text, fsync_dir
from export.convert import Structure
from export.folder import FAILED_PLOT_FILE, FAILED_REPORT_FILE, PARITY_PLOT_FILE, PARITY_REPORT_FILE, stage
from export.parity import ParityResult
from export.quantize import Int8Result


def _histogram(parity: ParityResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    floor = 1e-10  # exact agreement would be log10(0)
    values = np.log10(np.maximum(parity.diffs.ravel(), floor))
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.hist(values, bins=60, color="#3b6ea5")
    ax.axvline(np.log10(parity.atol), color="#c0392b", linestyle="--", label=f"gate: {parity.atol:g}")
    ax.set_xlabel("log10 |p_keras - p_onnx|  (zero shown at -10)")
    ax.set_ylabel("predictions")
    ax.set_title(f"Keras vs ONNX Runtime: {parity.diffs.size:,} predictions")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80, format="png")
    plt.close(fig)


def _parity_lines(parity: ParityResult, structure: Structure, name: str, plot: str) -> list[str]:
    return [
        f"# Parity report: `{name}`",
        "",
        f"Keras (`model.predict`, every review padded to max_len) vs the runtime's ONNX scoring "
        f"(`{structure.direction} {structure.recurrent_op}`, sequence_lens: "
        f"{'yes' if structure.sequence_lens else 'no'}) on {parity.reviews:,} real test reviews and "
        f"{len(parity.edge_cases)} edge cases.",
        "",
        f"**Verdict: {'PASS' if parity.passed else 'FAIL'}.** Gate: max |diff| <= {parity.atol:g} and 100 % "
        f"label agreement.",
        "",
        "| scoring path | intra-op threads | max abs diff | worst case |",
        "| --- | --- | --- | --- |",
        *(f"| {r.path} | {r.threads} | {r.max_abs_diff:.3g} | {r.worst_case} |" for r in parity.runs),
        "",
        f"- max abs diff over all runs: {parity.max_abs_diff:.3g} ({parity.worst_case}, {parity.worst_run})",
        f"- mean abs diff: {parity.mean_abs_diff:.3g}",
        f"- label agreement: {100 * parity.label_agreement:.3f} %",
        f"- edge cases: {'; '.join(parity.edge_cases)}",
        "",
        f"![histogram of differences]({plot})",
        "",
    ]


def _int8_lines(int8: Int8Result) -> list[str]:
    lines = ["## int8 (dynamic quantization)", ""]
    if int8.reviews:
        lines += [
            "| reviews | fp32 accuracy | int8 accuracy | drop (pt) | label agreement | max abs diff | embedding int8 |",
            "| --- | --- | --- | --- | --- | --- | --- |",
            f"| {int8.reviews:,} | {100 * int8.fp32_accuracy:.2f} % | {100 * int8.int8_accuracy:.2f} % | "
            f"{100 * int8.accuracy_drop:.2f} | {100 * int8.label_agreement:.2f} % | {int8.max_abs_diff:.3g} | "
            f"{'yes' if int8.embedding_quantized else 'no'} |",
            "",
            f"Quantized ops: {', '.join(int8.quantized_ops) or 'none'}.",
            "",
        ]
    limits = f"drop <= {100 * int8.max_accuracy_drop:g} pt, agreement >= {100 * int8.min_agreement:g} %"
    lines.append(f"**int8 refused** ({limits}): {int8.refused}" if int8.refused else f"**int8 kept** ({limits}).")
    return lines


def markdown(parity: ParityResult, int8: Int8Result | None, structure: Structure, name: str,
             plot: str = PARITY_PLOT_FILE) -> str:
    """The report; ``int8`` is ``None`` when the export stopped before quantizing."""
    lines = _parity_lines(parity, structure, name, plot)
    lines += _int8_lines(int8) if int8 is not None else ["The export was refused: no int8 model was made."]
    return "\n".join(lines) + "\n"


def write_parity_report(out: Path, parity: ParityResult, int8: Int8Result, structure: Structure,
                        name: str) -> dict[str, Path]:
    """Stage the report and its plot as temp files in ``out``: ``{final name: temp file}`` for publishing."""
    staged = {PARITY_REPORT_FILE: stage(out, PARITY_REPORT_FILE), PARITY_PLOT_FILE: stage(out, PARITY_PLOT_FILE)}
    try:
        _histogram(parity, staged[PARITY_PLOT_FILE])
        staged[PARITY_REPORT_FILE].write_text(markdown(parity, int8, structure, name), encoding="utf-8")
    except BaseException:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)
        raise
    return staged


def write_failed_report(out: Path, parity: ParityResult, structure: Structure, name: str) -> Path:
    """Write ``parity_report.failed.md`` and its plot into ``out`` (nothing the manifest lists changes)."""
    plot = stage(out, FAILED_PLOT_FILE)
    try:
        _histogram(parity, plot)
        plot.replace(out / FAILED_PLOT_FILE)
    finally:
        plot.unlink(missing_ok=True)
    atomic_write_text(out / FAILED_REPORT_FILE, markdown(parity, None, structure, name, FAILED_PLOT_FILE))
    fsync_dir(out)
    return out / FAILED_REPORT_FILE
