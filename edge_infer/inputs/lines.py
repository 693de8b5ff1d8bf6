"""Physical lines of a byte stream with bounded memory, however long a line is.

A line longer than ``cap`` bytes is never held whole: only its first or last ``cap`` bytes are kept (or
none), the rest is read and dropped, and reading goes on at the next line. A NUL byte ends the stream
(a binary file). Reading asks the operating system only for what is there (``read1``), so lines come out
as soon as they arrive on a pipe or a FIFO.
"""

from __future__ import annotations

import select
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Literal

from edge_infer.inputs.base import Tally
from edge_infer.inputs.reading import regular_size

KeepPart = Literal["head", "tail", "none"]
FindEnd = Callable[[bytearray, int], int]
"""``find_end(buf, start)``: the index of the ``\\n`` that ends the current line, searched from ``start``, or -1."""
_CHUNK = 64 * 1024


def _newline(buf: bytearray, start: int) -> int:
    return buf.find(b"\n", start)


@dataclass(frozen=True)
class RawLine:
    """One physical line without its ``\\n``: all of it, or when ``cut`` the part kept of it.

    ``number`` is 1-based (counting lines as ``find_end`` ends them), ``offset`` where ``data`` starts in
    the stream and ``length`` the whole line's size in bytes. ``error`` (then ``data`` is empty) says why
    the stream stopped here.
    """

    number: int
    data: bytes
    offset: int
    length: int
    cut: bool = False
    error: str | None = None


def _would_wait(stream: BinaryIO) -> bool:
    """True when reading ``stream`` now would block (nothing is there yet); unknown counts as True."""
    try:
        ready, _, _ = select.select([stream.fileno()], [], [], 0)
    except (AttributeError, OSError, ValueError):
        return True
    return not ready


def physical_lines(stream: BinaryIO, cap: int, keep: KeepPart = "head", *, tally: Tally | None = None,
                   on_wait: Callable[[], None] | None = None, find_end: FindEnd = _newline) -> Iterator[RawLine]:
    """The lines of ``stream`` (split at ``\\n``), each at most ``cap`` bytes; see :class:`RawLine`.

    ``keep`` says which part of a longer line is kept: its ``head``, its ``tail`` or ``none``. ``on_wait``
    is called before a read that would block on a pipe, FIFO or terminal (the caller can flush what it
    has). ``tally.bytes_read`` grows with every read. ``find_end`` may end a line at some newlines only (a
    CSV record's newline outside quotes): it sees every byte once, in order, before any is dropped, and
    after it returns an end it is next called at the start of the following line.
    """
    read = getattr(stream, "read1", None) or stream.read
    waits = on_wait is not None and regular_size(stream) is None
    buf = bytearray()
    base = 0  # stream offset of buf[0]
    line_start = 0  # stream offset of the current line
    number = 0
    overflow = False
    head = b""
    scan = 0
    eof = False
    binary: str | None = None  # why the stream stopped before its end
    while True:
        nl = find_end(buf, scan)
        if eof and nl < 0 and binary is not None:
            yield RawLine(number + 1, b"", line_start, 0, error=binary)
            return
        if nl >= 0 or (eof and (buf or overflow)):
            end = nl if nl >= 0 else len(buf)
            number += 1
            length = base + end - line_start
            if not overflow and end <= cap:
                yield RawLine(number, bytes(buf[:end]), line_start, length)
            elif keep == "tail":
                data = bytes(buf[max(0, end - cap):end])
                yield RawLine(number, data, base + end - len(data), length, cut=True)
            else:
                data = head if overflow or keep == "none" else bytes(buf[:cap])
                yield RawLine(number, data, line_start, length, cut=True)
            consumed = end + 1 if nl >= 0 else len(buf)
            del buf[:consumed]
            base += consumed
            line_start, overflow, head, scan = base, False, b"", 0
            continue
        if eof:
            return
        scan = len(buf)
        if len(buf) > cap:  # the current line is too long: keep only what is asked for
            if not overflow and keep == "head":
                head = bytes(buf[:cap])
            overflow = True
            drop = len(buf) - cap if keep == "tail" else len(buf)
            del buf[:drop]
            base += drop
            scan = len(buf)
        if waits and on_wait is not None and _would_wait(stream):
            on_wait()
        chunk = read(_CHUNK)
        if not chunk:
            eof = True
            continue
        nul = chunk.find(b"\x00")
        if nul >= 0:  # the lines before it still count; the one holding it ends the stream
            binary = f"binary file (NUL byte at offset {base + len(buf) + nul})"
            chunk = chunk[:nul]
            eof = True
        if tally is not None:
            tally.bytes_read += len(chunk)
        buf += chunk
