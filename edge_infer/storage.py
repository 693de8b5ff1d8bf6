"""Files that are never half-written, and their sha256 (used by the runtime, train/, export/ and bench/).

Writers put the bytes in a temp file beside the target, fsync it, rename it over the target, then fsync
the folder, so a crash leaves either the old file or the new one. :func:`check_output_path` is the one rule
for where a command may write at all.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from pathlib import Path

TEMP_PREFIX = "."
"""Temp files are hidden: ``.<name>.<random><suffix>`` in the target's folder."""


class OutputPathError(ValueError):
    """An output path that must not be written; ``path`` and ``reason`` (one line) say which and why."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"{os.fspath(path)}: {reason}")
        self.path = os.fspath(path)
        self.reason = reason


def describe_mode(mode: int) -> str:
    """What a file is, from its ``st_mode``: "a FIFO", "a directory", "a regular file", ..."""
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISREG, "a regular file")):
        if test(mode):
            return name
    return "not a plain file"


def check_output_path(path: str | os.PathLike[str], *, folder: bool = False) -> Path:
    """``path`` when a command may write its output there, else :class:`OutputPathError`.

    A file output (the default) goes only to an existing regular file, which is replaced whole, or to a
    new name in an existing folder: never to a symbolic link, a FIFO, a device, a socket or a folder (an
    atomic rename would replace the link or the device node itself). A ``folder`` output is an existing
    folder (a link to one is fine: files are written inside it) or a new name in an existing folder.
    Missing parent folders are never created. Nothing is changed.
    """
    target = Path(path)
    try:
        mode: int | None = os.lstat(target).st_mode
    except (FileNotFoundError, NotADirectoryError):
        mode = None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the name
        raise OutputPathError(target, f"cannot use as an output ({getattr(exc, 'strerror', None) or exc})") from None
    if mode is None:
        parent = target.parent
        if not parent.is_dir():
            raise OutputPathError(target, f"no such folder {os.fspath(parent)!r} (an output's folder must exist)")
        return target
    if folder:
        if stat.S_ISDIR(mode) or (stat.S_ISLNK(mode) and target.is_dir()):
            return target
        raise OutputPathError(target, f"is {describe_mode(mode)}, not a folder")
    if stat.S_ISREG(mode):
        return target
    raise OutputPathError(target, f"is {describe_mode(mode)}; an output goes only to a regular file or a new path")


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
