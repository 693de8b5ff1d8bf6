"""Record readers (edge_infer.inputs): CSV, JSON Lines and lines, on files written here; no model needed."""

from __future__ import annotations

import io
import os
import tracemalloc
from pathlib import Path

import pytest

from edge_infer.inputs import RECORD_CAP, Record, Tally, iter_records
from edge_infer.inputs.lines import physical_lines

BUDGET = 16 * 1024


def records(sources, kind, **kw) -> list[Record]:
    kw.setdefault("budget", BUDGET)
    kw.setdefault("keep", "tail")
    return list(iter_records([os.fspath(s) for s in sources], kind, **kw))


def good(recs: list[Record]) -> list[Record]:
    return [r for r in recs if r.error is None]


def bad(recs: list[Record]) -> list[tuple[int | None, str]]:
    return [(r.line, r.error) for r in recs if r.error is not None]


class Endless(io.RawIOBase):
    """``head``, then ``size`` bytes of ``fill`` repeated, then ``tail``, generated as read (never held whole)."""

    def __init__(self, size: int, fill: bytes, tail: bytes, head: bytes = b"") -> None:
        self.left, self.fill, self.tail, self.head, self.at = size, fill, tail, head, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.head:
            n = min(len(buffer), len(self.head))
            buffer[:n], self.head = self.head[:n], self.head[n:]
            return n
        if self.left > 0:
            n = min(len(buffer), self.left)
            start = self.at % len(self.fill)
            buffer[:n] = (self.fill * (n // len(self.fill) + 2))[start:start + n]
            self.left -= n
            self.at += n
            return n
        n = min(len(buffer), len(self.tail))
        buffer[:n], self.tail = self.tail[:n], self.tail[n:]
        return n


class Trickle(io.RawIOBase):
    """``data`` one byte per read: every byte is a chunk boundary."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), len(self.data), 1)
        buffer[:n], self.data = self.data[:n], self.data[n:]
        return n


def csv_texts(data: bytes, delimiter: str = ",", trickle: bool = False) -> list[tuple]:
    """``(line, text, error)`` of each record of ``data`` read as CSV with a ``text`` column."""
    from edge_infer.inputs.records import csv_records

    stream = io.BufferedReader(Trickle(data) if trickle else io.BytesIO(data))
    return [(r.line, r.text, r.error) for r in csv_records("t.csv", stream, text_field="text", id_field=None,
                                                          label_field=None, delimiter=delimiter, budget=BUDGET,
                                                          keep="tail")]


# --------------------------------------------------------------------------- CSV


def test_csv_quoted_fields_bom_and_crlf(tmp_path: Path):
    path = tmp_path / "reviews.csv"
    path.write_bytes(b'\xef\xbb\xbfid,text,stars\r\n'
                     b'a1,"Great, really great",5\r\n'
                     b'a2,"Two\r\nlines, and ""quotes""",4\r\n'
                     b'\r\n'
                     b'a3,plain text,3')
    recs = records([path], "csv", id_field="id", label_field="stars")
    assert recs == [
        Record(os.fspath(path), 2, "a1", "Great, really great", "5"),
        Record(os.fspath(path), 3, "a2", 'Two\r\nlines, and "quotes"', "4"),
        Record(os.fspath(path), 6, "a3", "plain text", "3"),
    ]


def test_csv_bad_rows_each_reported_others_kept(tmp_path: Path):
    path = tmp_path / "r.csv"
    path.write_bytes(b"text;id\n"
                     b"fine one;1\n"
                     b"too;many;fields\n"
                     b";2\n"
                     b"   ;3\n"
                     b"caf\xe9;4\n"
                     b"only\n"
                     b"fine two;5\n")
    recs = records([path], "csv", id_field="id", delimiter=";")
    assert [(r.line, r.id, r.text) for r in good(recs)] == [(2, "1", "fine one"), (8, "5", "fine two")]
    assert bad(recs) == [(3, "3 fields; the header has 2"), (4, "empty text"), (5, "no text (only whitespace)"),
                         (6, "not valid UTF-8 (byte 0xe9 at offset 47)"), (7, "1 field; the header has 2")]


def test_csv_unknown_columns_are_one_error_per_file(tmp_path: Path):
    (tmp_path / "a.csv").write_text("review,stars\nnice,5\nbad,1\n")
    (tmp_path / "b.csv").write_text("")
    recs = records([tmp_path / "a.csv", tmp_path / "b.csv"], "csv", id_field="key")
    assert [(Path(r.source).name, r.line, r.error) for r in recs] == [
        ("a.csv", 1, "no column 'text', 'key' in the header (columns: review, stars)"),
        ("b.csv", None, "empty file (no header row)"),
    ]


def test_csv_record_over_the_cap_is_skipped_and_reading_goes_on(tmp_path: Path, monkeypatch):
    monkeypatch.setattr("edge_infer.inputs.records.RECORD_CAP", 1 << 20)
    path = tmp_path / "big.csv"
    with open(path, "wb") as f:
        f.write(b'id,text\n1,"start\n')
        for _ in range(3000):  # a quoted field of many short lines: 1.5 MiB in all
            f.write(b"x" * 500 + b"\n")
        f.write(b'end"\n2,after the big one\n')
    recs = records([path], "csv", id_field="id")
    assert recs[0].line == 2 and recs[0].error.startswith("record longer than 1 MiB")
    assert recs[1:] == [Record(os.fspath(path), 3004, "2", "after the big one")]  # nothing read inside the field


def test_csv_huge_quoted_field_of_many_lines_resumes_after_its_end():
    """Issue 25: a 48 MiB quoted field of short lines gave a phantom row per line after the first 16 MiB."""
    from edge_infer.inputs.records import csv_records

    size = RECORD_CAP * 3
    unit = b"x" * 511 + b"\n"  # the field holds size / 512 newlines
    stream = io.BufferedReader(Endless(size, unit, b'end"\n3,"third, fine"\n', head=b'id,text\n1,first\n2,"'))
    tracemalloc.start()
    try:
        recs = list(csv_records("big.csv", stream, text_field="text", id_field="id", label_field=None,
                                budget=BUDGET, keep="tail"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    inner = size // len(unit)
    assert [(r.line, r.id, r.text, r.error) for r in recs] == [
        (2, "1", "first", None),
        (3, None, None, f"record longer than 16 MiB ({size + 7} bytes), skipped"),
        (4 + inner, "3", "third, fine", None)]
    assert peak < RECORD_CAP + (4 << 20), f"peak {peak >> 20} MiB for a {size >> 20} MiB record"


def test_csv_unclosed_quote_is_an_error_at_the_line_the_record_began(tmp_path: Path):
    """Issue 25: `1,"Great film` and 1,998 rows after it gave one row and exit 0."""
    path = tmp_path / "open.csv"
    path.write_bytes(b'id,text\n0,fine\n1,"Great film\n' + b"".join(b"%d,review %d\n" % (i, i) for i in range(2, 2000)))
    recs = records([path], "csv", id_field="id")
    assert [(r.line, r.id, r.text, r.error) for r in recs] == [
        (2, "0", "fine", None),
        (3, None, None, "unclosed quote: the record that starts on this line runs to the end of the file")]


def test_csv_is_strict_and_a_bad_record_does_not_shift_the_next():
    data = (b'text,n\n'
            b'"closed"then more,1\n'  # text after a closing quote: not CSV
            b'5" screen and 7" tablet,2\n'  # quotes inside an unquoted field are characters
            b'"two\nlines ""quoted""",3\n'
            b'"a"x,"b\nc",4\n'  # bad, and its quoted newline stays inside it
            b'last,5')
    for trickle in (False, True):
        assert csv_texts(data, trickle=trickle) == [
            (2, None, "not valid CSV: ',' expected after '\"'"),
            (3, '5" screen and 7" tablet', None),
            (4, 'two\nlines "quoted"', None),
            (6, None, "not valid CSV: ',' expected after '\"'"),
            (8, "last", None)]


def test_csv_records_split_as_the_csv_module_reads_them():
    """Rows written by csv.writer (delimiters, quotes, newlines, CRLF in fields) come back as written, read one
    byte at a time, with a one-byte and a two-byte delimiter."""
    import csv
    import random

    rng = random.Random(25)
    pieces = ["a", "b c", ",", ";", "\u00a7", '"', '""', "\n", "\r\n", "x\ty", "caf\u00e9", " "]
    for delimiter in (",", "\u00a7"):
        rows = [["".join(rng.choice(pieces) for _ in range(rng.randrange(1, 6))) for _ in range(3)]
                for _ in range(300)]
        rows = [row for row in rows if row[0].strip()]
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
        writer.writerow(["text", "b", "c"])
        writer.writerows(rows)
        data = buffer.getvalue().encode("utf-8")
        got = csv_texts(data, delimiter, trickle=True)
        assert [text for _, text, _ in got] == [row[0] for row in rows]
        assert [line for line, _, _ in got] == [2 + sum(",".join(r).count("\n") + 1 for r in rows[:i])
                                                for i in range(len(rows))]


def test_tsv_files_found_in_a_folder_are_read_with_tabs(tmp_path: Path):
    """Issue 25: `--csv DIR` read *.tsv files with commas; a folder applies the same rule as a file argument."""
    (tmp_path / "a.csv").write_text("id,text\n1,\"comma, separated\"\n")
    (tmp_path / "b.tsv").write_text("id\ttext\n2\ttab, separated\n")
    for sources in ([tmp_path], [tmp_path / "a.csv", tmp_path / "b.tsv"]):
        assert [(r.id, r.text, r.error) for r in records(sources, "csv", id_field="id")] == [
            ("1", "comma, separated", None), ("2", "tab, separated", None)]
    assert [r.error for r in records([tmp_path / "b.tsv"], "csv", id_field="id", delimiter=",")] == [
        "no column 'text', 'id' in the header (columns: id\ttext)"]


# --------------------------------------------------------------------------- JSON Lines


def test_jsonl_bad_records_each_reported_others_kept(tmp_path: Path):
    path = tmp_path / "r.jsonl"
    path.write_bytes(b'{"text": "first", "id": 7}\n'
                     b'{"text": "no id"}\n'
                     b'{"text": 3, "id": 1}\n'
                     b'not json\n'
                     b'\n'
                     b'["a list"]\n'
                     b'{"text": " \\t ", "id": 2}\n'
                     b'{"text": "caf\xe9", "id": 3}\n'
                     b'{"body": "x", "id": 4}\n'
                     b'{"text": "last", "id": "z"}')
    recs = records([path], "jsonl", id_field="id")
    assert [(r.line, r.id, r.text) for r in good(recs)] == [(1, "7", "first"), (10, "z", "last")]
    assert bad(recs) == [(2, "no field 'id'"), (3, "field 'text' is a number, not a string"),
                         (4, "invalid JSON: Expecting value (column 1)"), (6, "not a JSON object but an array"),
                         (7, "no text (only whitespace)"), (8, "not valid UTF-8 (byte 0xe9 at offset 126)"),
                         (9, "no field 'text'")]


def test_jsonl_huge_line_is_skipped_in_bounded_memory():
    from edge_infer.inputs.records import jsonl_records

    size = RECORD_CAP * 3
    stream = io.BufferedReader(Endless(size, b'{"text": "' + b"a" * 50, b'"}\n{"text": "after"}\n'))
    tracemalloc.start()
    try:
        recs = list(jsonl_records("big.jsonl", stream, text_field="text", id_field=None, label_field=None,
                                  budget=BUDGET, keep="tail"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [(r.line, r.text) for r in good(recs)] == [(2, "after")]
    assert bad(recs) == [(1, f"record longer than 16 MiB ({size + 2} bytes), skipped")]
    assert peak < RECORD_CAP + (4 << 20), f"peak {peak >> 20} MiB for a {size >> 20} MiB line"


# --------------------------------------------------------------------------- lines


def test_lines_crlf_bom_and_bad_lines(tmp_path: Path):
    path = tmp_path / "r.txt"
    path.write_bytes(b"\xef\xbb\xbfone\r\n\r\n  \ntw\xffo\nthree")
    recs = records([path], "lines")
    assert [(r.line, r.text) for r in good(recs)] == [(1, "one"), (5, "three")]
    assert bad(recs) == [(2, "empty line"), (3, "no text (only whitespace)"),
                         (4, "not valid UTF-8 (byte 0xff at offset 15)")]


@pytest.mark.parametrize("keep", ["head", "tail"])
def test_long_line_keeps_the_end_the_model_uses(keep):
    from edge_infer.inputs.records import line_records

    size = 50 << 20
    stream = io.BufferedReader(Endless(size, b"start words ", b" final words\nnext\n"))
    tracemalloc.start()
    try:
        recs = list(line_records("-", stream, budget=BUDGET, keep=keep))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [r.line for r in recs] == [1, 2] and recs[1].text == "next"
    first = recs[0].text
    assert len(first) <= BUDGET and (first.startswith("start words") if keep == "head" else
                                     first.endswith("final words"))
    assert peak < 2 << 20, f"peak {peak >> 20} MiB for a 50 MiB line"


def test_nul_byte_stops_the_file(tmp_path: Path):
    path = tmp_path / "bin.txt"
    path.write_bytes(b"fine\nbin\x00ary\nnever read\n")
    assert [(r.line, r.text, r.error) for r in records([path], "lines")] == [
        (1, "fine", None), (2, None, "binary file (NUL byte at offset 8)")]


def test_physical_lines_cut_offsets():
    data = b"short\n" + b"a" * 100 + b"\nend"
    for keep, part, offset in (("head", b"a" * 16, 6), ("tail", b"a" * 16, 90), ("none", b"", 6)):
        lines = list(physical_lines(io.BufferedReader(io.BytesIO(data), 8), 16, keep))
        assert [(x.number, x.data, x.cut) for x in lines] == [(1, b"short", False), (2, part, True),
                                                              (3, b"end", False)]
        assert (lines[1].offset, lines[1].length) == (offset, 100)


# --------------------------------------------------------------------------- sources, tally, files


def test_folders_missing_files_and_tally(tmp_path: Path):
    (tmp_path / "a.jsonl").write_text('{"text": "x"}\n{"text": "y"}\n')
    (tmp_path / "b.ndjson").write_text('{"text": "z"}\n')
    (tmp_path / "c.txt").write_text("not taken")
    tally = Tally()
    recs = records([tmp_path, tmp_path / "missing.jsonl"], "jsonl", tally=tally)
    assert [(Path(r.source).name, r.line, r.text, r.error) for r in recs] == [
        ("a.jsonl", 1, "x", None), ("a.jsonl", 2, "y", None), ("b.ndjson", 1, "z", None),
        ("missing.jsonl", None, None, "no such file or directory")]
    assert tally == Tally(bytes_read=42, total_bytes=42, inputs=3, inputs_done=3)


def test_files_kind_is_one_text_per_file(tmp_path: Path):
    (tmp_path / "a.txt").write_text("one\ntwo\n")
    (tmp_path / "empty.txt").write_text("")
    recs = records([tmp_path], "files")
    assert [(Path(r.source).name, r.line, r.text, r.error) for r in recs] == [
        ("a.txt", None, "one\ntwo\n", None), ("empty.txt", None, None, "empty file")]
    with pytest.raises(ValueError, match="kind"):
        records([tmp_path], "xml")
