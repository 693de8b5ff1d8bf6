"""Files that are never half-written, and their sha256 (used by the runtime, train/, export/ and bench/).

Writers put the bytes in a temp file beside the target, fsync it, rename it over the target, then fsync
the folder, so a crash leaves either the old file or the new one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

TEMP_PREFIX = "."
"""Temp files are hidden: ``.<name>.<random><suffix>`` in the target's folder."""


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of the file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def _make_readable(fd: int, path: str) -> None:
    # mkstemp creates 0600; artifacts are shared files. os.fchmod is missing on Windows before 3.13.
    if hasattr(os, "fchmod"):
        os.fchmod(fd, 0o644)
    else:  # pragma: no cover - Windows
        os.chmod(path, 0o644)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to a temp file beside ``path``, fsync it, rename it over ``path``, fsync the folder."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        _make_readable(fd, tmp)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """UTF-8 text variant of :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"))


def temp_path_beside(path: str | os.PathLike[str]) -> Path:
    """A fresh, empty temp file in the same folder as ``path`` (for writers that need a file name).

    The caller renames it over ``path`` when done (then :func:`fsync_dir`) or unlinks it.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{target.stem}.", suffix=target.suffix, dir=target.parent)
    _make_readable(fd, tmp)
    os.close(fd)
    return Path(tmp)
