"""The ``--out`` folder: what training writes there, and whether a folder may be trained into.

Training owns ``model.keras``, ``vocab.txt``, ``training_report.json``, ``training_curves.png`` and
``.checkpoints/`` (plus its own temp files). A folder holding anything else, above all an exported model
(``manifest.json``), is refused unless ``--force``; with ``--force`` the export's files go, the manifest first,
so the folder stops being a model folder before anything else in it changes.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edge_infer.storage import fsync_dir
from train.report import REPORT_FILE

MODEL_FILE = "model.keras"
VOCAB_FILE = "vocab.txt"
PLOT_FILE = "training_curves.png"
CHECKPOINT_DIR = ".checkpoints"
OWN_FILES = (MODEL_FILE, VOCAB_FILE, REPORT_FILE, PLOT_FILE)
# Temp files of storage.atomic_write_* / temp_path_beside for the files above, and of the write probe.
OWN_TEMP_FILES = (".model.*.keras", f".{VOCAB_FILE}.*.tmp", f".{REPORT_FILE}.*.tmp", ".training_curves.*.png",
                  ".encoder.*.npz", ".pretrain_report.json.*.tmp", ".pretrain_curves.*.png",
                  ".write-test.*")
MANIFEST_FILE = "manifest.json"
EXPORT_FILES = ("model.onnx", "model.int8.onnx", "parity_report.md", "parity_diff_hist.png")
"""What ``python -m export`` writes beside the training outputs (besides the files its manifest lists)."""


class OutputError(Exception):
    """The ``--out`` folder cannot be trained into; the message is one line and says what to do."""


@dataclass(frozen=True)
class OutputPlan:
    """The checked folder: export files to remove (manifest first), foreign files to leave, own temp files."""

    folder: Path
    export_files: tuple[str, ...]
    foreign: tuple[str, ...]
    own_temp: tuple[str, ...]


def _is_own(entry: Path, own: tuple[str, ...] = OWN_FILES) -> bool:
    if entry.name == CHECKPOINT_DIR:
        return entry.is_dir() and not entry.is_symlink()
    return entry.name in own and entry.is_file() and not entry.is_symlink()


def _is_own_temp(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in OWN_TEMP_FILES)


def _listed_in_manifest(folder: Path) -> list[str]:
    """Plain file names the manifest lists (an unreadable manifest lists nothing)."""
    try:
        files = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))["files"]
        names = [entry["path"] for entry in files.values()]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []
    return [name for name in names if isinstance(name, str) and name and Path(name).name == name]


def _inspect(folder: Path, own: tuple[str, ...]) -> OutputPlan:
    entries = sorted(folder.iterdir())
    exported = {MANIFEST_FILE, *EXPORT_FILES, *_listed_in_manifest(folder)} - set(own)
    export_files = [e.name for e in entries if e.name in exported and e.is_file()]
    export_files.sort(key=lambda name: name != MANIFEST_FILE)  # the manifest goes first
    own_temp = [e.name for e in entries if _is_own_temp(e.name) and e.is_file()]
    foreign = [e.name for e in entries if not _is_own(e, own) and e.name not in export_files and e.name not in own_temp]
    return OutputPlan(folder, tuple(export_files), tuple(foreign), tuple(own_temp))


def _names(names: tuple[str, ...], most: int = 4) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _refuse_unless_forced(plan: OutputPlan, force: bool) -> None:
    if force:
        return
    if MANIFEST_FILE in plan.export_files:
        raise OutputError(f"--out {plan.folder}: holds an exported model ({MANIFEST_FILE}) that training would "
                          "overwrite; choose another --out, or add --force to remove the exported model and train "
                          "into the folder")
    strangers = plan.export_files + plan.foreign
    if strangers:
        raise OutputError(f"--out {plan.folder}: holds files that training does not write ({_names(strangers)}); "
                          "choose an empty or new --out, or add --force to train into it anyway")


def _ensure_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"--out {folder}: cannot create the folder ({error.strerror or error})") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise OutputError(f"--out {folder}: cannot write in the folder ({error.strerror or error})") from None


def check_output(folder: str | os.PathLike[str], *, force: bool = False, own: tuple[str, ...] = OWN_FILES
                 ) -> OutputPlan:
    """Refuse a folder training cannot or must not write into (:class:`OutputError`); create it if missing.

    ``own``: the files the stage writes (training's by default; pretraining passes its own).

    Changes nothing but creating the folder (and a probe file, removed at once): see :func:`clear_output`.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"--out {folder}: not a folder")
    plan = OutputPlan(folder, (), (), ())
    if folder.is_dir():
        try:
            plan = _inspect(folder, own)
        except OSError as error:
            raise OutputError(f"--out {folder}: cannot list the folder ({error.strerror or error})") from None
    _refuse_unless_forced(plan, force)
    _ensure_writable(folder)
    return plan


def _remove(folder: Path, names: tuple[str, ...]) -> None:
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            (folder / name).unlink()
        fsync_dir(folder)


def clear_output(plan: OutputPlan) -> list[str]:
    """Remove the export's files (manifest first) and stale own temp files; return log lines."""
    _remove(plan.folder, plan.export_files)
    _remove(plan.folder, plan.own_temp)
    lines = []
    if plan.export_files:
        lines.append(f"--force: removed {_names(plan.export_files, most=len(plan.export_files))} from "
                     f"{plan.folder} (the exported model; export the new model.keras again)")
    if plan.foreign:
        lines.append(f"--force: left {len(plan.foreign)} files that training does not write in {plan.folder}: "
                     f"{_names(plan.foreign)}")
    return lines
