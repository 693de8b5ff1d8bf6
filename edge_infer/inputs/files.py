"""Inputs named on the command line: files, folders and ``-``; opening them, and whole-file records."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from edge_infer.inputs.base import Record, Tally
from edge_infer.inputs.reading import InputError, Keep, open_file, read_stdin, read_text_file, stdin_stream

Entry = tuple[str, "Path | None", "str | None"]
"""``(name, path, error)``: ``path`` is ``None`` for standard input; ``error`` a reason it cannot be read."""

SUFFIXES = {"files": (".txt",), "lines": (".txt",), "jsonl": (".jsonl", ".ndjson"), "csv": (".csv", ".tsv")}
"""The files taken from a folder, by kind of input."""


def csv_delimiter(name: str, given: str | None = None) -> str:
    """The CSV field separator of the input ``name``: ``given``, else a tab for ``*.tsv`` and a comma otherwise.

    The same rule for a file named on the command line and for one found in a folder.
    """
    if given is not None:
        return given
    return "\t" if name.lower().endswith(".tsv") else ","


def expand(args: list[str], suffixes: tuple[str, ...] = (".txt",)) -> list[Entry]:
    """Arguments as entries: ``-`` is standard input, a folder its files ending in one of ``suffixes``
    (sorted; not recursive). A missing path or a folder without such files is one entry with an error."""
    out: list[Entry] = []
    for arg in args:
        if arg == "-":
            out.append(("-", None, None))
            continue
        path = Path(arg)
        try:
            is_dir = path.is_dir()
            exists = is_dir or path.exists() or path.is_symlink()
        except OSError as exc:
            out.append((arg, path, f"cannot access: {exc.strerror or exc}"))
            continue
        if not exists:
            out.append((arg, path, "no such file or directory"))
        elif is_dir:
            try:
                found = sorted(p for p in path.iterdir() if p.name.endswith(suffixes) and not p.is_dir())
            except OSError as exc:
                out.append((arg, path, f"cannot list directory: {exc.strerror or exc}"))
                continue
            if not found:
                out.append((arg, path, f"directory has no {' or '.join(suffixes)} files"))
            out.extend((os.fspath(p), p, None) for p in found)
        else:
            out.append((arg, path, None))
    return out


def total_size(entries: list[Entry]) -> int | None:
    """The sum of the entries' sizes when all are regular files, else ``None`` (standard input, a FIFO)."""
    total = 0
    for _, path, error in entries:
        if error is not None:
            continue
        if path is None:
            return None
        try:
            st = path.stat()
        except OSError:
            continue
        if not path.is_file():
            return None
        total += st.st_size
    return total


@contextlib.contextmanager
def open_input(name: str, path: Path | None) -> Iterator[BinaryIO]:
    """The entry opened for binary reading (standard input for ``path=None``, left open afterwards).

    Raises :class:`InputError` with a one-line reason when it cannot be opened.
    """
    if path is None:
        yield stdin_stream()
        return
    with open_file(path) as handle:
        yield handle


def whole_files(entries: list[Entry], budget: int, keep: Keep, tally: Tally | None = None) -> Iterator[Record]:
    """One record per entry: the text of the whole file (only the part the model uses), or its error."""
    for name, path, error in entries:
        try:
            if error is not None:
                raise InputError(name, error)
            text = read_stdin(budget, keep) if path is None else read_text_file(path, budget, keep)
            yield Record(name, None, None, text)
        except InputError as exc:
            yield Record(name, None, None, None, error=exc.reason)
        if tally is not None:
            tally.inputs_done += 1
            if path is not None and tally.total_bytes is not None:
                with contextlib.suppress(OSError):
                    tally.bytes_read += path.stat().st_size
