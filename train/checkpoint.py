"""The resumable-run checkpoint in ``<out>/.checkpoints`` (numpy only: no TensorFlow needed to check it).

Layout::

    fingerprint.json             preset, settings and data sha256 of the run (written when it starts)
    history.csv, elapsed.json    per-epoch metrics and the seconds trained so far
    backup/epoch-<n>.npz         model variables (with the dropout RNG state) and optimizer variables
    backup/best-epoch-<b>.npz    the best epoch's weights (what EarlyStopping keeps)
    backup/training_metadata.json   the commit point: {"epoch": n, "weights", "early_stopping": {...}}

Each epoch writes its ``.npz`` files first (fsync'd), then replaces ``training_metadata.json`` atomically:
a run killed at any moment resumes from the last epoch whose metadata was written, with EarlyStopping's
state of that same epoch. A checkpoint is only resumed by a run with the same fingerprint.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_infer.storage import atomic_write_text, fsync_dir, temp_path_beside
from train.presets import Settings

CHECKPOINT_FORMAT = 1
FINGERPRINT_FILE = "fingerprint.json"
BACKUP_DIR = "backup"
STATE_FILE = "training_metadata.json"
HISTORY_FILE = "history.csv"
ELAPSED_FILE = "elapsed.json"


class CheckpointError(Exception):
    """A checkpoint that must not or cannot be resumed; the message is one line and says what to do."""


def fingerprint(settings: Settings, preset: str, data_sha256: str, data: dict[str, Any] | None = None
                ) -> dict[str, Any]:
    """What must match for a checkpoint to be resumed. ``data``: the labels, fields, test split and class
    weights of a source other than plain aclImdb sentiment (left out for that one, as before)."""
    wanted = {"checkpoint_format": CHECKPOINT_FORMAT, "preset": preset, "data_sha256": data_sha256,
              "settings": settings.to_dict()}
    if data:
        wanted["data"] = data
    return wanted


@dataclass(frozen=True)
class ResumeState:
    """The last committed epoch of an interrupted run."""

    backup: Path
    epoch: int
    weights: str
    early_stopping: dict[str, Any]

    def load_variables(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """(model variables, optimizer variables) as saved after ``epoch``."""
        return _load_arrays(self.backup / self.weights)

    def load_best_weights(self) -> list[np.ndarray] | None:
        name = self.early_stopping.get("best_weights")
        return _load_arrays(self.backup / name)[0] if name else None


def _save_arrays(path: Path, model: list[np.ndarray], optimizer: list[np.ndarray]) -> None:
    """Write ``path`` (temp file, fsync, rename); the caller fsyncs the folder before committing."""
    arrays = {f"model_{i:04d}": a for i, a in enumerate(model)}
    arrays.update({f"optimizer_{i:04d}": a for i, a in enumerate(optimizer)})
    tmp = temp_path_beside(path)
    try:
        with tmp.open("wb") as handle:
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _load_arrays(path: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = sorted(archive.files)
            return ([archive[n] for n in names if n.startswith("model_")],
                    [archive[n] for n in names if n.startswith("optimizer_")])
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise CheckpointError(f"{path}: unreadable checkpoint ({error}); add --restart to discard it and start "
                              "over") from None


def commit(backup: Path, epoch: int, model: list[np.ndarray], optimizer: list[np.ndarray],
           early_stopping: dict[str, Any], best_weights: list[np.ndarray] | None) -> None:
    """Checkpoint the end of ``epoch`` (1-based). ``best_weights``: given when this epoch is the new best."""
    backup.mkdir(parents=True, exist_ok=True)
    weights = f"epoch-{epoch}.npz"
    _save_arrays(backup / weights, model, optimizer)
    best = early_stopping.get("best_epoch")
    best_name = f"best-epoch-{best}.npz" if best else None
    if best_weights is not None and best_name:
        _save_arrays(backup / best_name, best_weights, [])
    fsync_dir(backup)
    state = {"epoch": epoch, "batch": 0, "weights": weights, "early_stopping": {**early_stopping,
                                                                               "best_weights": best_name}}
    atomic_write_text(backup / STATE_FILE, json.dumps(state) + "\n")
    for stale in [*backup.glob("*.npz"), *backup.glob(".*.tmp")]:
        if stale.name not in (weights, best_name):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _differences(stored: Any, wanted: dict[str, Any]) -> str:
    """What differs between two fingerprints, for the error message."""
    if not isinstance(stored, dict) or stored.get("checkpoint_format") != wanted["checkpoint_format"]:
        return "its settings are unknown: it was written by another version of the training stage"
    diffs = []
    if stored.get("preset") != wanted["preset"]:
        diffs.append(f"preset {stored.get('preset')} -> {wanted['preset']}")
    old, new = stored.get("settings") or {}, wanted["settings"]
    diffs += [f"{key} {old.get(key)} -> {new[key]}" for key in new if old.get(key) != new[key]]
    if stored.get("data_sha256") != wanted["data_sha256"]:
        diffs.append(f"data sha256 {str(stored.get('data_sha256'))[:12]}... -> {wanted['data_sha256'][:12]}...")
    old_data, new_data = stored.get("data") or {}, wanted.get("data") or {}
    diffs += [f"{key} {old_data.get(key)} -> {new_data.get(key)}" for key in sorted({*old_data, *new_data})
              if old_data.get(key) != new_data.get(key)]
    return "other settings: " + "; ".join(diffs[:6]) + ("; ..." if len(diffs) > 6 else "")


def _parse_state(backup: Path, state: Any) -> ResumeState:
    try:
        resume = ResumeState(backup, int(state["epoch"]), str(state["weights"]), dict(state["early_stopping"]))
    except (KeyError, TypeError, ValueError):
        resume = None
    files = [resume.weights, resume.early_stopping.get("best_weights")] if resume else []
    if resume is None or resume.epoch < 1 or not all((backup / f).is_file() for f in files if f):
        raise CheckpointError(f"{backup.parent}: the checkpoint of the interrupted run is incomplete or unreadable; "
                              "add --restart to discard it and start over")
    return resume


def resume_state(folder: Path, wanted: dict[str, Any], *, restart: bool) -> ResumeState | None:
    """The checkpoint to resume in ``folder``, or None to start afresh. Reads only; never changes the folder.

    A checkpoint of another fingerprint is a :class:`CheckpointError` unless ``restart``.
    """
    backup = folder / BACKUP_DIR
    state = _read_json(backup / STATE_FILE)
    if restart or not (backup / STATE_FILE).exists():
        return None  # nothing finished to resume: a run killed in its first epoch starts over
    stored = _read_json(folder / FINGERPRINT_FILE)
    if stored != wanted:
        raise CheckpointError(f"{folder.parent}: holds the checkpoint of an interrupted run with "
                              f"{_differences(stored, wanted)}; rerun that run's command to resume it, or add "
                              "--restart to discard its checkpoint and start over")
    return _parse_state(backup, state)


def start_fresh(folder: Path, wanted: dict[str, Any]) -> None:
    """Discard any checkpoint in ``folder`` and record the fingerprint of the run that starts now."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / FINGERPRINT_FILE, json.dumps(wanted, indent=2) + "\n")
