"""Bounded reading of input files (edge_infer.inputs.reading): which end, cut characters and words, bad bytes."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from edge_infer.inputs.files import expand
from edge_infer.inputs.reading import (
    InputError,
    byte_budget,
    decode_text,
    keep_side,
    read_bounded,
    read_text,
    read_text_file,
)
from edge_infer.tokenizer import tokenize


class Pipe(io.RawIOBase):
    """A non-seekable stream (like a pipe) that hands out small chunks."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        chunk = self._buf.read(min(len(b), 1000))
        b[: len(chunk)] = chunk
        return len(chunk)


def test_budget_and_side():
    assert byte_budget(400) >= 400 * 64 and byte_budget(1) >= 16 * 1024
    assert keep_side("pre") == "tail" and keep_side("post") == "head"


def test_small_file_is_read_whole(tmp_path: Path):
    p = tmp_path / "a.txt"
    p.write_bytes("\ufeffcafé au lait".encode())
    assert read_text_file(p, 100, "tail") == "café au lait"  # BOM dropped
    assert read_text_file(p, 100, "head") == "café au lait"


@pytest.mark.parametrize("stream", ["file", "pipe"])
def test_tail_keeps_the_last_words(tmp_path: Path, stream: str):
    words = [f"wörd{i}" for i in range(5000)]
    data = " ".join(words).encode()
    p = tmp_path / "big.txt"
    p.write_bytes(data)
    budget = 1001  # lands inside a word and, some of the time, inside the two-byte "ö"
    for b in range(budget, budget + 8):
        if stream == "file":
            with open(p, "rb") as handle:
                text = read_text(handle, b, "tail")
        else:
            text = read_text(io.BufferedReader(Pipe(data)), b, "tail")
        toks = text.split()
        assert toks == words[-len(toks):] and len(text.encode()) <= b  # no partial first word
        assert len(toks) >= b // 12


@pytest.mark.parametrize("stream", ["file", "pipe"])
def test_head_keeps_the_first_words(tmp_path: Path, stream: str):
    words = [f"wörd{i}" for i in range(5000)]
    data = " ".join(words).encode()
    p = tmp_path / "big.txt"
    p.write_bytes(data)
    for b in range(1001, 1009):
        if stream == "file":
            with open(p, "rb") as handle:
                text = read_text(handle, b, "head")
        else:
            text = read_text(io.BufferedReader(Pipe(data)), b, "head")
        toks = text.split()
        assert toks == words[: len(toks)] and len(toks) > b // 10


def test_cut_multibyte_char_at_the_edge_is_dropped():
    data = "ab €uro".encode()  # € is 3 bytes
    assert decode_text(data[4:], cut_start=True) == "uro"  # starts inside €: its continuation bytes dropped
    assert decode_text(data[4:] + b" next", cut_start=True) == " next"  # and the cut word when a space follows
    assert decode_text(data[:5], cut_end=True) == "ab "  # ends inside €
    assert decode_text(data[:7], cut_end=True) == "ab"  # ends inside the word "€u..."
    with pytest.raises(InputError, match="not valid UTF-8"):
        decode_text(data[4:])  # not at a cut edge: an error


def test_invalid_utf8_and_nul_bytes():
    with pytest.raises(InputError, match=r"not valid UTF-8 \(byte 0xff at offset 7\)"):
        decode_text(b"good \xff\xfe bad", offset=2)
    with pytest.raises(InputError, match="binary file"):
        decode_text(b"text\x00more")
    latin1 = "naïve café".encode("latin-1")
    with pytest.raises(InputError, match="UTF-8"):
        decode_text(latin1)


def test_empty_and_whitespace(tmp_path: Path):
    (tmp_path / "e.txt").write_bytes(b"")
    (tmp_path / "w.txt").write_bytes(b" \n\t\r\n  ")
    with pytest.raises(InputError, match="empty file"):
        read_text_file(tmp_path / "e.txt", 100, "tail")
    with pytest.raises(InputError, match="only whitespace"):
        read_text_file(tmp_path / "w.txt", 100, "tail")


def test_open_errors(tmp_path: Path):
    with pytest.raises(InputError, match="no such file"):
        read_text_file(tmp_path / "missing.txt", 100, "tail")
    with pytest.raises(InputError, match="is a directory"):
        read_text_file(tmp_path, 100, "tail")
    loop = tmp_path / "loop.txt"
    loop.symlink_to(loop)
    with pytest.raises(InputError, match="cannot open"):
        read_text_file(loop, 100, "tail")


def test_huge_sparse_file_reads_only_the_budget(tmp_path: Path):
    p = tmp_path / "huge.txt"
    head, tail = b"first words here " * 100, b"last words there " * 100
    with open(p, "wb") as handle:
        handle.write(head)
        handle.truncate(1 << 30)
        handle.seek((1 << 30) - len(tail))
        handle.write(tail)
    with open(p, "rb") as handle:
        data, offset, cut = read_bounded(handle, 1000, "tail")
    assert (len(data), offset, cut) == (1000, (1 << 30) - 1000, True)
    assert tokenize(read_text_file(p, 1000, "tail"))[-3:] == ["last", "words", "there"]
    assert tokenize(read_text_file(p, 1000, "head"))[:3] == ["first", "words", "here"]
    with pytest.raises(InputError, match="binary file"):
        read_text_file(p, 4000, "tail")  # the sparse hole is NUL bytes


def test_expand_arguments(tmp_path: Path):
    d = tmp_path / "d"
    d.mkdir()
    for name in ("b.txt", "a.txt", "c.md"):
        (d / name).write_text("x")
    (d / "sub.txt").mkdir()
    empty = tmp_path / "empty"
    empty.mkdir()
    got = expand([os.fspath(d), "-", os.fspath(tmp_path / "nope"), os.fspath(empty)])
    assert [(Path(n).name if n != "-" else n, e) for n, _, e in got] == [
        ("a.txt", None), ("b.txt", None), ("-", None),
        ("nope", "no such file or directory"), ("empty", "directory has no .txt files"),
    ]
