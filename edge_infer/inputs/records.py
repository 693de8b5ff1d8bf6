"""Record readers: every line a text (``lines``), JSON Lines (``jsonl``) and CSV with a header (``csv``).

Each reads one open stream as it arrives, with bounded memory, and yields a :class:`Record` per record
in input order. A bad record is a record with an ``error`` (one line) and the file and line it starts
at; reading goes on with the next one. Only a NUL byte (a binary file), an unusable CSV header or a CSV
quote still open at the end of the file stops a file.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, BinaryIO

from edge_infer.inputs.base import RECORD_CAP, Record, Tally
from edge_infer.inputs.csvsplit import RecordEnds
from edge_infer.inputs.lines import RawLine, physical_lines
from edge_infer.inputs.reading import InputError, Keep, decode_text
from edge_infer.task import blank_error

Waiter = Callable[[], None] | None
_SPACE = re.compile(r"\s")


def too_long(length: int) -> str:
    return f"record longer than {RECORD_CAP >> 20} MiB ({length} bytes), skipped"


def clip(text: str, budget: int, keep: Keep) -> str:
    """At most ``budget`` characters from the end the model uses; a word cut at the edge is dropped."""
    if len(text) <= budget:
        return text
    if keep == "head":
        part = text[:budget]
        last = max(part.rfind(c) for c in " \n\t\r")
        return part[:last] if last > 0 else part
    part = text[-budget:]
    m = _SPACE.search(part)
    return part[m.start():] if m and m.start() < len(part) - 1 else part


def _decode(raw: RawLine) -> str:
    """A whole line as strict UTF-8 (a BOM on line 1 dropped); :class:`InputError` says where it is not."""
    data = raw.data
    skip = len(codecs.BOM_UTF8) if raw.number == 1 and data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        at = skip + exc.start
        raise InputError("", f"not valid UTF-8 (byte 0x{data[at]:02x} at offset {raw.offset + at})") from None


def line_records(name: str, stream: BinaryIO, *, budget: int, keep: Keep, tally: Tally | None = None,
                 on_wait: Waiter = None) -> Iterator[Record]:
    """Every line one text; of a line longer than ``budget`` bytes only the end the model uses is kept."""
    for raw in physical_lines(stream, budget, keep, tally=tally, on_wait=on_wait):
        if raw.error is not None:
            yield Record(name, raw.number, None, None, error=raw.error)
            return
        data = raw.data
        if data.endswith(b"\r") and not (raw.cut and keep == "head"):
            data = data[:-1]
        try:
            text = decode_text(data, offset=raw.offset, cut_start=raw.cut and keep == "tail",
                               cut_end=raw.cut and keep == "head", name=name)
        except InputError as exc:
            yield Record(name, raw.number, None, None, error=exc.reason)
            continue
        reason = "empty line" if not text else blank_error(text)
        yield Record(name, raw.number, None, None if reason else text, error=reason)


def _kind(value: object) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", dict: "an object", list: "an array",
             type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _key(values: Mapping[str, Any], field: str, what: str) -> str:
    """The value of an id or label field as a string (strings as they are, numbers as written)."""
    if field not in values:
        raise InputError("", f"no {what} {field!r}")
    value = values[field]
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return json.dumps(value)
    raise InputError("", f"{what} {field!r} is {_kind(value)}, not a string or number")


def make_record(name: str, line: int, values: Mapping[str, Any], *, text_field: str, id_field: str | None,
                label_field: str | None, budget: int, keep: Keep, what: str = "field") -> Record:
    """The record of one parsed JSON object or CSV row (``values`` by field or column name)."""
    try:
        if text_field not in values:
            raise InputError("", f"no {what} {text_field!r}")
        text = values[text_field]
        if not isinstance(text, str):
            raise InputError("", f"{what} {text_field!r} is {_kind(text)}, not a string")
        reason = blank_error(text)
        if reason:
            raise InputError("", reason)
        ident = None if id_field is None else _key(values, id_field, what)
        label = None if label_field is None else _key(values, label_field, what)
    except InputError as exc:
        return Record(name, line, None, None, error=exc.reason)
    return Record(name, line, ident, clip(text, budget, keep), label)


Parsed = tuple[int | None, dict[str, Any] | None, str | None]
"""``(line, values, error)``: the line a record starts on, its fields by name, or (``values`` None) why it
cannot be read. Every reader's errors are one-line reasons; a reason with ``line`` None concerns the file."""


def jsonl_values(stream: BinaryIO, *, tally: Tally | None = None, on_wait: Waiter = None) -> Iterator[Parsed]:
    """One JSON object per line, parsed; blank lines are skipped. A line over :data:`RECORD_CAP` bytes is an
    error, read past without being held; a NUL byte (a binary file) is an error that ends the stream."""
    for raw in physical_lines(stream, RECORD_CAP, "none", tally=tally, on_wait=on_wait):
        if raw.error is not None:
            yield raw.number, None, raw.error
            return
        if raw.cut:
            yield raw.number, None, too_long(raw.length)
            continue
        try:
            line = _decode(raw)
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError("", f"invalid JSON: {exc.msg} (column {exc.colno})") from None
            except RecursionError:
                raise InputError("", "invalid JSON: nested too deeply") from None
            if not isinstance(obj, dict):
                raise InputError("", f"not a JSON object but {_kind(obj)}")
        except InputError as exc:
            yield raw.number, None, exc.reason
            continue
        yield raw.number, obj, None


def jsonl_records(name: str, stream: BinaryIO, *, text_field: str, id_field: str | None, label_field: str | None,
                  budget: int, keep: Keep, tally: Tally | None = None, on_wait: Waiter = None) -> Iterator[Record]:
    """:func:`jsonl_values` as records."""
    for line, values, error in jsonl_values(stream, tally=tally, on_wait=on_wait):
        if values is None:
            yield Record(name, line, None, None, error=error)
            continue
        assert line is not None
        yield make_record(name, line, values, text_field=text_field, id_field=id_field,
                          label_field=label_field, budget=budget, keep=keep)


def _csv_row(raw: RawLine, delimiter: str) -> list[str]:
    """The fields of one whole record (strict: a stray quote is an error); ``[]`` for a blank line."""
    text = _decode(raw)
    old = csv.field_size_limit(RECORD_CAP)  # the csv module's own limit is 128 KiB per field
    try:
        return next(csv.reader((text,), delimiter=delimiter, strict=True), [])
    except csv.Error as exc:
        raise InputError("", f"not valid CSV: {exc}") from None
    finally:
        csv.field_size_limit(old)


def csv_values(stream: BinaryIO, *, fields: Sequence[str] = (), delimiter: str = ",", tally: Tally | None = None,
               on_wait: Waiter = None) -> Iterator[Parsed]:
    """RFC 4180 CSV with a header row naming the columns, parsed; quoted fields may hold delimiters and newlines.

    Records are split at newlines outside quotes before they are parsed, so a bad or over-long record
    never shifts the ones after it. Blank lines are skipped; a repeated column name gives its first
    column. A header without every column of ``fields``, a quote still open at the end of the file, a
    NUL byte or no header at all is one error that ends the file.
    """
    ends = RecordEnds(delimiter)
    header: Sequence[str] | None = None
    line = 1
    for raw in physical_lines(stream, RECORD_CAP, "none", tally=tally, on_wait=on_wait, find_end=ends):
        start, line = line, ends.lines + 1
        if raw.error is not None:
            yield line, None, raw.error
            return
        if ends.open_quote:  # only the end of the input ends a record inside quotes
            yield start, None, "unclosed quote: the record that starts on this line runs to the end of the file"
            return
        try:
            if raw.cut:
                raise InputError("", too_long(raw.length))
            row = _csv_row(raw, delimiter)
        except InputError as exc:
            yield start, None, exc.reason
            if header is None:
                return
            continue
        if not row:
            continue
        if header is None:
            header = row
            missing = [f for f in fields if f not in header]
            if missing:
                names = ", ".join(repr(f) for f in missing)
                yield start, None, f"no column {names} in the header (columns: {', '.join(header)})"
                return
            continue
        if len(row) != len(header):
            yield start, None, f"{len(row)} field{'s' * (len(row) != 1)}; the header has {len(header)}"
            continue
        yield start, dict(zip(reversed(header), reversed(row))), None  # a repeated column name: its first one
    if header is None:
        yield None, None, "empty file (no header row)"


def csv_records(name: str, stream: BinaryIO, *, text_field: str, id_field: str | None, label_field: str | None,
                delimiter: str = ",", budget: int, keep: Keep, tally: Tally | None = None,
                on_wait: Waiter = None) -> Iterator[Record]:
    """:func:`csv_values` as records; the header must name ``text_field`` and the id and label fields given."""
    fields = [f for f in (text_field, id_field, label_field) if f is not None]
    for line, values, error in csv_values(stream, fields=fields, delimiter=delimiter, tally=tally, on_wait=on_wait):
        if values is None:
            yield Record(name, line, None, None, error=error)
            continue
        assert line is not None
        yield make_record(name, line, values, text_field=text_field, id_field=id_field,
                          label_field=label_field, budget=budget, keep=keep, what="column")
