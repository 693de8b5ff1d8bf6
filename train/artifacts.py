"""What a training or pretraining run writes besides its model: the per-epoch history, its plot, the versions."""

from __future__ import annotations

import csv
import platform
from pathlib import Path

import numpy as np

from edge_infer.storage import temp_path_beside


def versions() -> dict[str, str]:
    """The versions of Python and of the libraries that trained the model (imports TensorFlow)."""
    import keras
    import tensorflow as tf

    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__}


def read_history(path: Path) -> list[dict]:
    """The Keras ``CSVLogger`` file as one row per epoch (1-based ``epoch``, float metrics); [] if absent.

    When an epoch has several rows (a resumed run repeats it), the last one wins.
    """
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    by_epoch = {int(r["epoch"]) + 1: {k: float(v) for k, v in r.items() if k != "epoch"} for r in rows}
    return [{"epoch": e, **by_epoch[e]} for e in sorted(by_epoch)]


def save_plot(history: list[dict], path: Path, metrics: tuple[str, ...] = ("loss", "accuracy")) -> None:
    """Train and validation curves of ``metrics`` per epoch, one panel each, written atomically as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        ax.plot(epochs, [h[metric] for h in history], "o-", label="train")
        ax.plot(epochs, [h[f"val_{metric}"] for h in history], "o-", label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.legend()
    fig.tight_layout()
    tmp = temp_path_beside(path)
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    tmp.replace(path)
