"""``edge-infer evaluate --plot``: one PNG with the ROC curve, the reliability diagram and score histograms.

matplotlib is the ``plot`` extra, imported only here and only when a plot is asked for, so
``import edge_infer`` and ``edge-infer predict`` never load it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edge_infer import metrics
from edge_infer.storage import check_output_path, fsync_dir, temp_path_beside

INSTALL_HINT = 'pip install "edge-infer[plot]"'


class PlotUnavailable(Exception):
    """matplotlib is not installed; ``str()`` is the one-line message naming the extra."""


def require() -> Any:
    """The ``matplotlib.pyplot`` module on the non-interactive Agg backend, or :class:`PlotUnavailable`."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotUnavailable(f"--plot needs matplotlib, which is not installed: {INSTALL_HINT}") from None
    return plt


def write_evaluation_plot(path: str | os.PathLike[str], labels: Sequence[str], y_true: np.ndarray,
                          probabilities: np.ndarray, positive: int | None) -> None:
    """Draw the figures and write the PNG atomically (temp file beside ``path``, then rename).

    ``path`` must be a regular file or a new name in an existing folder, else
    :class:`~edge_infer.storage.OutputPathError` (see :func:`~edge_infer.storage.check_output_path`).

    ``positive`` is the positive class index of a two-label model (ROC curve and P(positive) histograms);
    ``None`` for more labels (histograms of the winning-class confidence instead, no ROC curve).
    """
    plt = require()
    panels = 3 if positive is not None else 2
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4.5), constrained_layout=True)
    try:
        rest = axes
        if positive is not None:
            _roc(axes[0], y_true == positive, probabilities[:, positive])
            rest = axes[1:]
        _reliability(rest[0], metrics.reliability_table(probabilities, y_true))
        _histograms(rest[1], labels, y_true, probabilities, positive)
        _save(fig, Path(path))
    finally:
        plt.close(fig)


def _roc(ax: Any, is_positive: np.ndarray, scores: np.ndarray) -> None:
    auc = metrics.roc_auc(is_positive.astype(np.int64), scores)
    if auc is None:
        ax.text(0.5, 0.5, "one class only: no ROC curve", ha="center", va="center")
    else:
        fpr, tpr, _ = metrics.roc_curve(is_positive.astype(np.int64), scores)
        ax.plot(fpr, tpr, label=f"AUC {auc:.4f}")
        ax.legend(loc="lower right")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    ax.set(title="ROC curve", xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1))


def _reliability(ax: Any, table: list[metrics.CalibrationBin]) -> None:
    filled = [b for b in table if b.count]
    width = table[0].high - table[0].low
    ax.bar([b.low for b in filled], [b.accuracy for b in filled], width=width, align="edge",
           edgecolor="black", alpha=0.7, label="accuracy")
    ax.plot([b.confidence for b in filled], [b.accuracy for b in filled], "o", color="black",
            label="mean confidence")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfect calibration")
    ece = metrics.expected_calibration_error(table)
    ax.set(title=f"Reliability (ECE {ece:.4f})", xlabel="winning-class confidence", ylabel="accuracy",
           xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left")


def _histograms(ax: Any, labels: Sequence[str], y_true: np.ndarray, probabilities: np.ndarray,
                positive: int | None) -> None:
    values = probabilities[:, positive] if positive is not None else probabilities.max(axis=1)
    for k, label in enumerate(labels):
        member = y_true == k
        if member.any():
            ax.hist(values[member], bins=20, range=(0, 1), alpha=0.5, label=f"true {label} ({int(member.sum())})")
    what = f"P({labels[positive]})" if positive is not None else "winning-class confidence"
    ax.set(title="Scores by true label", xlabel=what, ylabel="reviews", xlim=(0, 1))
    ax.legend(loc="upper center")


def _save(fig: Any, target: Path) -> None:
    check_output_path(target)  # a regular file or a new path in an existing folder; else OutputPathError
    tmp = temp_path_beside(target)
    try:
        fig.savefig(tmp, format="png", dpi=100)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)
