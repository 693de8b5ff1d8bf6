"""The model folder as export writes it: stage, switch by renaming the manifest, clean up after.

New files get content-addressed names (:func:`edge_infer.model_folder.versioned_name`), so they are
staged beside the files the current manifest lists without touching them. The switch is the atomic
rename of ``manifest.json`` (:meth:`Manifest.save`); the files only the old manifest listed are removed
after it. A reader therefore sees the old model or the new one, never a mix, wherever the export is
killed. What a killed export leaves (temp files, unlisted model files) is removed by the next one.

No TensorFlow or ONNX here: the kill tests run this module alone in a subprocess.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path

from edge_infer.model_folder import (
    BASE_NAMES,
    FP32,
    INT8,
    MANIFEST_NAME,
    VOCAB,
    FileEntry,
    Manifest,
    ModelError,
    versioned_name,
)
from edge_infer.storage import TEMP_PREFIX, file_sha256, fsync_dir, temp_path_beside
from export.training import ExportInputError
from train.outdir import VOCAB_FILE as TRAINING_VOCAB_FILE
from train.report import REPORT_FILE as TRAINING_REPORT_FILE

PARITY_REPORT_FILE = "parity_report.md"
PARITY_PLOT_FILE = "parity_diff_hist.png"
FAILED_REPORT_FILE = "parity_report.failed.md"
FAILED_PLOT_FILE = "parity_diff_hist.failed.png"
"""Written when the parity gate refuses; removed by the next export that passes."""

LEGACY_NAMES = {key: stem + suffix for key, (stem, suffix) in BASE_NAMES.items()}
"""The fixed names earlier exports gave (``model.onnx``, ``model.int8.onnx``, ``vocab.txt``)."""
STAGED_NAMES = (*LEGACY_NAMES.values(), PARITY_REPORT_FILE, PARITY_PLOT_FILE, FAILED_REPORT_FILE, FAILED_PLOT_FILE,
                MANIFEST_NAME)
"""Every name export stages a temp file for, now or in earlier versions."""
_RANDOM = "[a-z0-9_]{8}"  # tempfile.mkstemp's random part
_VERSIONED = re.compile("|".join(rf"{re.escape(stem)}\.[0-9a-f]{{12}}{re.escape(suffix)}"
                                 for stem, suffix in BASE_NAMES.values()))


def _temp_patterns() -> re.Pattern[str]:
    """Names of the temp files export writes: ``temp_path_beside`` and ``atomic_write_*`` beside a staged name."""
    dot = re.escape(TEMP_PREFIX)
    forms = []
    for name in STAGED_NAMES:
        stem, suffix = os.path.splitext(name)
        forms.append(rf"{dot}{re.escape(stem)}\.{_RANDOM}{re.escape(suffix)}")  # temp_path_beside
        if name != TRAINING_VOCAB_FILE:  # training writes vocab.txt this way: never ours
            forms.append(rf"{dot}{re.escape(name)}\.{_RANDOM}\.tmp")  # atomic_write_*
    forms.append(rf"{dot}{dot}model\.int8\.{_RANDOM}\.onnx\.{_RANDOM}\.tmp")  # an earlier export's nested temp
    return re.compile("|".join(forms))


TEMP_FILE = _temp_patterns()


def is_export_temp(name: str) -> bool:
    """Whether ``name`` is a temp file an export (this one or an earlier version) writes in a model folder."""
    return TEMP_FILE.fullmatch(name) is not None


def stage(out: Path, name: str) -> Path:
    """A new empty temp file in ``out`` for the file that will end up as ``name`` (or its versioned name)."""
    return temp_path_beside(out / name)


def stage_key(out: Path, key: str) -> Path:
    """A temp file in ``out`` for ``files[key]``."""
    return stage(out, LEGACY_NAMES[key])


def _owned_fixed_names(folder: Path) -> set[str]:
    """Fixed names that are export's to remove: earlier exports' model files (not training's vocabulary)."""
    names = {LEGACY_NAMES[FP32], LEGACY_NAMES[INT8]}
    if not (folder / TRAINING_REPORT_FILE).exists():  # a training folder's vocab.txt belongs to training
        names.add(LEGACY_NAMES[VOCAB])
    return names


def current_manifest(folder: Path) -> Manifest | None:
    """The manifest in ``folder``; ``None`` when there is none or it cannot be read."""
    try:
        return Manifest.load(folder / MANIFEST_NAME)
    except ModelError:
        return None


def unlisted_model_files(folder: Path) -> list[Path]:
    """Model files export wrote that the current manifest does not list (left by a killed or older export).

    Versioned names are always export's; the fixed names of earlier exports only when a readable
    manifest says this is a model folder. Nothing is listed when a manifest exists but cannot be read.
    """
    manifest = current_manifest(folder)
    if manifest is None and (folder / MANIFEST_NAME).exists():
        return []
    listed = {entry.path for entry in manifest.files.values()} if manifest else set()
    fixed = _owned_fixed_names(folder) if manifest else set()
    return sorted(p for p in folder.iterdir()
                  if p.name not in listed and (_VERSIONED.fullmatch(p.name) or p.name in fixed) and _is_file(p))


def _is_file(path: Path) -> bool:
    return path.is_file() or path.is_symlink()


def sweep(folder: Path) -> list[str]:
    """Remove export's temp files and unlisted model files from ``folder``; return the names removed."""
    doomed = [p for p in folder.iterdir() if is_export_temp(p.name) and _is_file(p)]
    doomed += unlisted_model_files(folder)
    for path in doomed:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    if doomed:
        fsync_dir(folder)
    return [p.name for p in doomed]


@contextlib.contextmanager
def export_folder(out: Path) -> Iterator[Path]:
    """Create ``out`` if needed, hold its export lock, and sweep what earlier exports left.

    Raises :class:`ExportInputError` when the folder cannot be used or another export holds it.
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ExportInputError(f"{out}: cannot use as the output folder ({error.strerror or error})") from None
    fd = _lock(out)
    try:
        sweep(out)
        yield out
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock


def _lock(out: Path) -> int | None:
    """An exclusive advisory lock on the folder (a descriptor to close), or ``None`` where there is none."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory lock on folders
        return None
    try:
        fd = os.open(out, os.O_RDONLY)
    except OSError:  # pragma: no cover - a folder that cannot be opened for reading
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ExportInputError(f"{out}: another export is writing into this folder") from None
    except OSError:  # pragma: no cover - a file system without flock
        pass
    return fd


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _entry(key: str, staged: Path) -> FileEntry:
    digest = file_sha256(staged)
    return FileEntry(versioned_name(key, digest), digest, staged.stat().st_size)


def publish(out: Path, manifest: Manifest, staged: Mapping[str, Path], reports: Mapping[str, Path]) -> Manifest:
    """Switch ``out`` to the staged model; return the manifest written.

    ``staged`` maps file keys to temp files, ``reports`` final names to temp files. Order: model files
    renamed to their versioned names, then the manifest (the switch), then the reports, then removal of
    every model file the new manifest does not list and of an earlier refusal's report.
    """
    entries = {key: _entry(key, path) for key, path in staged.items()}
    final = replace(manifest, files=entries, source=None)
    Manifest.from_dict(json.loads(json.dumps(final.to_dict())), out / MANIFEST_NAME)  # refuse before anything moves
    for key, path in staged.items():
        _fsync_file(path)
        os.replace(path, out / entries[key].path)
    fsync_dir(out)
    final.save(out)
    for name, path in reports.items():
        os.replace(path, out / name)
    for path in [out / FAILED_REPORT_FILE, out / FAILED_PLOT_FILE, *unlisted_model_files(out)]:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    fsync_dir(out)
    return Manifest.load(out)
