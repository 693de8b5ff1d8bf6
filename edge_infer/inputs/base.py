"""What every reader yields: :class:`Record`; and :class:`Tally`, what has been read so far."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["files", "lines", "jsonl", "csv"]
KINDS: tuple[Kind, ...] = ("files", "lines", "jsonl", "csv")

RECORD_CAP = 16 * 1024 * 1024
"""A JSONL line or a CSV record longer than this many bytes is a bad record, skipped in bounded memory."""


@dataclass(frozen=True)
class Record:
    """One input text, or the reason it cannot be classified.

    ``source`` is the FILE argument as given (``-`` for standard input) or the file found inside a folder;
    ``line`` the 1-based line where the record starts (``None`` for a whole-file input); ``id`` and ``label``
    the (stringified) values of the id and label fields when asked for. Exactly one of ``text`` and
    ``error`` (a one-line reason) is set.
    """

    source: str
    line: int | None
    id: str | None
    text: str | None
    label: str | None = None
    error: str | None = None

    @property
    def where(self) -> str:
        """``source:line`` for a record of a file, ``source`` for a whole-file input."""
        return self.source if self.line is None else f"{self.source}:{self.line}"


@dataclass
class Tally:
    """Progress of :func:`~edge_infer.inputs.iter_records`, updated as it reads (for a progress display).

    ``total_bytes`` is the size of all inputs when every one is a regular file, else ``None``; ``inputs``
    counts whole inputs (files, standard input) and ``inputs_done`` those read to their end.
    """

    bytes_read: int = 0
    total_bytes: int | None = None
    inputs: int = 0
    inputs_done: int = 0
