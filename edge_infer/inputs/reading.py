"""Read input texts with bounded memory: only the end of a file that the model can use.

A model sees at most ``max_len`` tokens: the *last* ones when the manifest truncates ``"pre"`` (Keras
naming), the first ones for ``"post"``. So a large file is read only from that end, up to
:func:`byte_budget` bytes, which holds ``max_len`` tokens of any ordinary text. A word or a multi-byte
UTF-8 character cut at the edge of what was read is dropped. Every problem is an :class:`InputError`
with a one-line reason.

Also the project's one place for opening and sizing files safely: :func:`regular_size`, :func:`open_file`
(inputs, FIFOs included) and :func:`open_regular` (a model's files: regular files only, never blocking).
"""

from __future__ import annotations

import codecs
import os
import re
import stat
import sys
from typing import IO, BinaryIO, Literal

from edge_infer.storage import describe_mode
from edge_infer.task import is_blank

Keep = Literal["head", "tail"]

_MIN_BUDGET = 16 * 1024
_BYTES_PER_TOKEN = 64
_CHUNK = 64 * 1024
MAX_STREAM_BYTES = 256 * 1024 * 1024
"""A pipe, a device or standard input is read to its end for ``keep="tail"``: past this many bytes it is
refused (an endless stream must not hang the command). Regular files of any size are read with one seek."""
_SPACE = re.compile(r"\s")


class InputError(Exception):
    """An input that cannot be classified; ``str()`` is the reason, ``name`` the input it concerns."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(reason)


def byte_budget(max_len: int) -> int:
    """How many bytes to read from a long input: generous for ``max_len`` tokens (64 bytes each)."""
    return max(_MIN_BUDGET, _BYTES_PER_TOKEN * max_len)


def keep_side(truncating: str) -> Keep:
    """Which end of a long text the model keeps: ``"pre"`` truncation drops the start, so keep the tail."""
    return "tail" if truncating == "pre" else "head"


def read_bounded(stream: BinaryIO, budget: int, keep: Keep) -> tuple[bytes, int, bool]:
    """At most ``budget`` bytes from one end of ``stream``.

    Returns ``(data, offset, cut)``: ``offset`` is where ``data`` starts in the stream, ``cut`` whether
    anything was left out. Seekable regular files are read with one seek; pipes and devices are streamed,
    keeping only the last ``budget`` bytes for ``keep="tail"``; a NUL byte (binary input) or more than
    :data:`MAX_STREAM_BYTES` stops the stream with :class:`InputError`.
    """
    size = _size_from_start(stream)
    if size is not None and size > budget:
        if keep == "tail":
            stream.seek(size - budget, os.SEEK_SET)
            return _read_exactly(stream, budget), size - budget, True
        return _read_exactly(stream, budget), 0, True
    if keep == "head":
        data = _read_exactly(stream, budget + 1)
        return data[:budget], 0, len(data) > budget
    buf = bytearray()
    total = 0
    while chunk := stream.read(_CHUNK):
        nul = chunk.find(b"\x00")
        if nul >= 0:
            raise InputError("", f"binary file (NUL byte at offset {total + nul})")
        buf += chunk
        total += len(chunk)
        if total > MAX_STREAM_BYTES:
            raise InputError("", f"a stream longer than {MAX_STREAM_BYTES >> 20} MiB (save it to a file to "
                                 "classify its end)")
        if len(buf) > 2 * budget:
            del buf[: len(buf) - budget]
    cut = total > budget
    data = bytes(buf[-budget:]) if cut else bytes(buf)
    return data, total - len(data), cut


def regular_size(stream: BinaryIO) -> int | None:
    """The size of ``stream`` when it is a regular file, else ``None`` (a pipe, a FIFO, a terminal)."""
    try:
        st = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def _size_from_start(stream: BinaryIO) -> int | None:
    """:func:`regular_size` of a stream still at its start (one read with a seek can take either end)."""
    size = regular_size(stream)
    try:
        return size if size is not None and stream.tell() == 0 else None
    except OSError:
        return None


def _read_exactly(stream: BinaryIO, n: int) -> bytes:
    parts: list[bytes] = []
    left = n
    while left > 0:
        chunk = stream.read(min(left, _CHUNK))
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def decode_text(data: bytes, *, offset: int = 0, cut_start: bool = False, cut_end: bool = False,
                name: str = "<input>") -> str:
    """Strict UTF-8 text of ``data``; a character or word cut at a ``cut_*`` edge is dropped.

    Raises :class:`InputError` for NUL bytes (a binary file) and for invalid UTF-8.
    """
    nul = data.find(b"\x00")
    if nul >= 0:
        raise InputError(name, f"binary file (NUL byte at offset {offset + nul})")
    start = 0
    if cut_start:
        while start < min(3, len(data)) and 0x80 <= data[start] <= 0xBF:  # continuation bytes of a cut char
            start += 1
    elif data.startswith(codecs.BOM_UTF8):
        start = len(codecs.BOM_UTF8)
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    try:
        text = decoder.decode(data[start:], final=not cut_end)  # final=False keeps a cut last char out
    except UnicodeDecodeError as exc:
        raise InputError(name, f"not valid UTF-8 (byte 0x{data[start + exc.start]:02x} at offset "
                               f"{offset + start + exc.start})") from None
    if cut_start and text and not text[0].isspace():
        m = _SPACE.search(text)
        text = text[m.start():] if m else text
    if cut_end and text and not text[-1].isspace():
        last = max(text.rfind(" "), text.rfind("\n"), text.rfind("\t"), text.rfind("\r"))
        text = text[:last] if last > 0 else text
    return text


def read_text(stream: BinaryIO, budget: int, keep: Keep, name: str = "<input>") -> str:
    """Read and decode one input with :func:`read_bounded` and :func:`decode_text`; empty text is an error."""
    try:
        data, offset, cut = read_bounded(stream, budget, keep)
    except InputError as exc:
        raise InputError(name, exc.reason) from None
    except OSError as exc:
        raise InputError(name, f"cannot read: {exc.strerror or exc}") from None
    text = decode_text(data, offset=offset, cut_start=cut and keep == "tail", cut_end=cut and keep == "head",
                       name=name)
    if is_blank(text):
        raise InputError(name, "empty file" if not data else "no text (only whitespace)")
    return text


def stdin_stream() -> BinaryIO:
    """Standard input for binary reading; a closed standard input is an :class:`InputError`."""
    stream = sys.stdin.buffer if sys.stdin is not None else None
    try:
        if stream is None:
            raise ValueError
        os.fstat(stream.fileno())
    except (OSError, ValueError):
        raise InputError("-", "standard input is closed") from None
    return stream


def open_file(path: str | os.PathLike[str]) -> BinaryIO:
    """``path`` opened for binary reading; open errors become one-line :class:`InputError` reasons."""
    name = os.fspath(path)
    try:
        return open(path, "rb")  # noqa: SIM115
    except FileNotFoundError:
        raise InputError(name, "no such file") from None
    except IsADirectoryError:
        raise InputError(name, "is a directory") from None
    except PermissionError:
        raise InputError(name, "permission denied") from None
    except OSError as exc:
        raise InputError(name, f"cannot open: {exc.strerror or exc}") from None


class NotRegularFileError(OSError):
    """A path that is a FIFO, a device, a socket or a directory where a regular file is needed."""


def open_regular(path: str | os.PathLike[str]) -> IO[bytes]:
    """Open ``path`` for reading only if it is a regular file (a symlink to one is fine).

    Opened non-blocking first, so a FIFO or a device never blocks the caller; checked with ``fstat`` on
    the open descriptor, so the file checked is the file read. Raises ``OSError`` (:class:`NotRegularFileError`
    for another kind of file); :func:`read_error` words it. (:func:`open_file` opens inputs, which may be FIFOs.)
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFileError(f"not a regular file ({describe_mode(mode)})")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_error(exc: OSError, missing: str) -> str:
    """The one-line reason for an error of :func:`open_regular` or of reading; ``missing`` for a missing file."""
    if isinstance(exc, FileNotFoundError):
        return missing
    if isinstance(exc, NotRegularFileError):
        return str(exc)
    return f"cannot read: {exc.strerror or exc}"


def read_stdin(budget: int, keep: Keep) -> str:
    """:func:`read_text` on standard input (``-``)."""
    return read_text(stdin_stream(), budget, keep, "-")


def read_text_file(path: str | os.PathLike[str], budget: int, keep: Keep) -> str:
    """:func:`read_text` on a file path."""
    with open_file(path) as handle:
        return read_text(handle, budget, keep, os.fspath(path))
