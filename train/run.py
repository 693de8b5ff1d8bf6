"""One training run: data -> vocabulary -> fit (resumable) -> test evaluation -> artifacts."""

from __future__ import annotations

import csv
import json
import logging
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from edge_infer.storage import atomic_write_text, temp_path_beside
from edge_infer.tokenizer import NORMALIZATION, OOV_ID, PAD_ID, Tokenizer, build_vocabulary
from train.data import LABELS, load_imdb, stratified_indices, subset, train_validation_split
from train.presets import Settings

log = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
VOCAB_FILE = "vocab.txt"
REPORT_FILE = "training_report.json"
PLOT_FILE = "training_curves.png"
CHECKPOINT_DIR = ".checkpoints"


def _versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__}


def _read_history(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    by_epoch = {int(r["epoch"]) + 1: {k: float(v) for k, v in r.items() if k != "epoch"} for r in rows}
    return [{"epoch": e, **by_epoch[e]} for e in sorted(by_epoch)]


def _save_plot(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy")):
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


def _training_clock(path: Path, started: float):
    """A Keras callback that saves, each epoch, the seconds this run has trained so far.

    Its ``earlier_s`` is the time spent by earlier, interrupted processes of the same run, so the
    report's wall time covers the whole run after a resume.
    """
    import keras

    class TrainingClock(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.earlier_s = json.loads(path.read_text())["seconds"] if path.exists() else 0.0

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            atomic_write_text(path, json.dumps({"seconds": self.earlier_s + time.time() - started}))

    return TrainingClock()


def train(data_path: str | Path, out_dir: str | Path, settings: Settings, preset: str) -> dict:
    """Run the whole stage and return the training report (also written to ``out_dir``)."""
    import keras

    from train.model import build_model

    started = time.time()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(settings.seed)

    imdb = load_imdb(data_path)
    train_split, test_split = imdb.train, imdb.test
    if settings.max_samples:
        train_split = subset(train_split, stratified_indices(train_split.labels, settings.max_samples, settings.seed))
        test_split = subset(test_split, stratified_indices(test_split.labels, settings.max_samples, settings.seed))
    fit_split, val_split = train_validation_split(train_split, settings.validation_fraction, settings.seed)
    log.info("reviews: %d fit, %d validation, %d test", len(fit_split), len(val_split), len(test_split))

    vocabulary = build_vocabulary(fit_split.texts, settings.vocab_size)
    tokenizer = Tokenizer(vocabulary, settings.max_len, settings.padding, settings.truncating)
    x_fit, x_val = tokenizer.encode(fit_split.texts), tokenizer.encode(val_split.texts)

    model = build_model(settings)
    checkpoints = out / CHECKPOINT_DIR
    history_csv = checkpoints / "history.csv"
    resumed = (checkpoints / "backup" / "training_metadata.json").exists()
    if resumed:
        log.info("resuming the interrupted run from %s", checkpoints)
    checkpoints.mkdir(exist_ok=True)
    # Order matters: the epoch's history row is flushed before the backup marks the epoch finished,
    # so a run killed between the two never loses an epoch from the report.
    clock = _training_clock(checkpoints / "elapsed.json", started)
    callbacks = [
        keras.callbacks.CSVLogger(str(history_csv), append=True),
        clock,
        keras.callbacks.BackupAndRestore(str(checkpoints / "backup")),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=settings.patience, restore_best_weights=True),
    ]
    model.fit(
        x_fit, fit_split.labels, validation_data=(x_val, val_split.labels),
        batch_size=settings.batch_size, epochs=settings.epochs, callbacks=callbacks,
        verbose=1 if sys.stderr.isatty() else 2,
    )
    history = _read_history(history_csv)

    # The test split is read once, here, for the reported figure.
    test_loss, test_accuracy = model.evaluate(tokenizer.encode(test_split.texts), test_split.labels,
                                              batch_size=256, verbose=0)
    val_loss, val_accuracy = model.evaluate(x_val, val_split.labels, batch_size=256, verbose=0)

    # Save without optimizer state: an uncompiled twin carrying the trained weights.
    inference = build_model(settings, compile=False)
    inference.set_weights(model.get_weights())
    tmp = temp_path_beside(out / MODEL_FILE)
    inference.save(tmp)
    tmp.replace(out / MODEL_FILE)
    vocab_sha = vocabulary.save(out / VOCAB_FILE)

    best = min(history, key=lambda h: h["val_loss"]) if history else None
    report = {
        "format": "edge-infer-training-report",
        "format_version": 1,
        "preset": preset,
        "settings": settings.to_dict(),
        "labels": list(LABELS),
        "threshold": 0.5,
        "tokenizer": {"normalization": NORMALIZATION, "max_len": settings.max_len, "padding": settings.padding,
                      "truncating": settings.truncating, "pad_id": PAD_ID, "oov_id": OOV_ID,
                      "vocab_size": len(vocabulary)},
        "vocabulary": {"file": VOCAB_FILE, "sha256": vocab_sha, "size": len(vocabulary)},
        "data": {"path": imdb.path, "sha256": imdb.sha256, "train_reviews": len(fit_split),
                 "validation_reviews": len(val_split), "test_reviews": len(test_split)},
        "history": history,
        "best_epoch": best["epoch"] if best else None,
        "validation_accuracy": float(val_accuracy),
        "validation_loss": float(val_loss),
        "test_accuracy": float(test_accuracy),
        "test_loss": float(test_loss),
        "wall_time_s": round(clock.earlier_s + time.time() - started, 1),
        "resumed": resumed,
        "versions": _versions(),
    }
    atomic_write_text(out / REPORT_FILE, json.dumps(report, indent=2) + "\n")
    if history:
        _save_plot(history, out / PLOT_FILE)
    shutil.rmtree(checkpoints, ignore_errors=True)
    return report
