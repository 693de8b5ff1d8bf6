"""The human-readable parity report: Markdown plus a histogram of the Keras/ONNX differences."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edge_infer.storage import temp_path_beside
from export.convert import Structure
from export.parity import ParityResult
from export.quantize import Int8Result

REPORT_FILE = "parity_report.md"
PLOT_FILE = "parity_diff_hist.png"


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
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _markdown(parity: ParityResult, int8: Int8Result, structure: Structure, name: str) -> str:
    lines = [
        f"# Parity report: `{name}`",
        "",
        f"Keras (`model.predict`, every review padded to max_len) vs ONNX Runtime (`{structure.direction} "
        f"{structure.recurrent_op}`, sequence_lens: {'yes' if structure.sequence_lens else 'no'}) on "
        f"{parity.reviews:,} real test reviews and {len(parity.edge_cases)} edge cases.",
        "",
        f"**Verdict: {'PASS' if parity.passed else 'FAIL'}.** Gate: max |diff| <= {parity.atol:g} and 100 % "
        f"label agreement.",
        "",
        "| batch size | intra-op threads | max abs diff | worst case |",
        "| --- | --- | --- | --- |",
        *(f"| {r.batch_size} | {r.threads} | {r.max_abs_diff:.3g} | {r.worst_case} |" for r in parity.runs),
        "",
        f"- max abs diff over all runs: {parity.max_abs_diff:.3g} ({parity.worst_case}, {parity.worst_run})",
        f"- mean abs diff: {parity.mean_abs_diff:.3g}",
        f"- label agreement: {100 * parity.label_agreement:.3f} %",
        f"- edge cases: {'; '.join(parity.edge_cases)}",
        "",
        f"![histogram of differences]({PLOT_FILE})",
        "",
        "## int8 (dynamic quantization)",
        "",
    ]
    if int8.reviews:
        lines += [
            "| reviews | fp32 accuracy | int8 accuracy | drop (pt) | label agreement | max abs diff | embedding int8 |",
            "| --- | --- | --- | --- | --- | --- | --- |",
            f"| {int8.reviews:,} | {100 * int8.fp32_accuracy:.2f} % | {100 * int8.int8_accuracy:.2f} % | "
            f"{100 * int8.accuracy_drop:.2f} | {100 * int8.label_agreement:.2f} % | {int8.max_abs_diff:.3g} | "
            f"{'yes' if int8.embedding_quantized else 'no'} |",
            "",
            f"Quantized ops: {', '.join(int8.quantized_ops) or 'none'}.",
        ]
    lines.append("")
    lines.append(f"**int8 refused:** {int8.refused}" if int8.refused else "**int8 kept** (drop <= 0.5 pt, "
                 "agreement >= 99 %).")
    return "\n".join(lines) + "\n"


def write_parity_report(out: Path, parity: ParityResult, int8: Int8Result, structure: Structure,
                        name: str) -> tuple[Path, Path]:
    """Write the report and its plot to temp files in ``out``; the caller renames them into place."""
    report, plot = temp_path_beside(out / REPORT_FILE), temp_path_beside(out / PLOT_FILE)
    try:
        _histogram(parity, plot)
        report.write_text(_markdown(parity, int8, structure, name), encoding="utf-8")
    except BaseException:
        report.unlink(missing_ok=True)
        plot.unlink(missing_ok=True)
        raise
    return report, plot
