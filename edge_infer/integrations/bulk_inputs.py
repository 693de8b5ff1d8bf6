"""The input files of ``edge-infer bulk`` as Arrow tables with one schema, decided before the job starts.

- **Parquet**: the columns and types in the files' footers. Every file has the columns kept; their types
  must unify (int32 and int64 give int64; int64 and string is an error).
- **CSV** (UTF-8, a header row, fields may span lines in quotes): every column is a string, as written. CSV
  has no types, so a column of numbers that turns to words after row 50,000 changes nothing.
- **JSON Lines** (UTF-8, one object per line): the files are parsed once before the job to find each key's
  type: only strings -> string, only integers -> int64, integers and floats -> float64, only booleans ->
  bool, only nulls -> null; anything else (mixed kinds, lists, objects) -> string, a non-string value
  written as its JSON text. The text column is always a string column: a non-string value is written as its
  JSON text and its row is flagged in the :data:`TEXT_ERROR` column (which the scorer turns into an error).

Any other problem (empty CSV, not UTF-8, a bad JSON line, an unclosed quote, a missing column) is an
:class:`InputFileError` naming the file and, where known, the line. pyarrow and the standard library only.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from edge_infer.inputs.reading import InputError

TEXT_ERROR = "_edge_infer_text_error"
"""Column added to JSON Lines input whose text column holds non-strings: why each row cannot be scored."""
CSV_FIELD_LIMIT = 64 << 20
"""The longest CSV field read, in characters (the csv module's default is 128 KiB)."""
_INT64 = (-(1 << 63), (1 << 63) - 1)


class InputFileError(InputError):
    """An input file that cannot be read as its format says; ``name`` is the file, ``str()`` the reason."""

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return InputFileError, (self.name, self.reason)  # raised in a Ray worker, re-raised on the driver


@dataclass(frozen=True)
class InputPlan:
    """What to read: ``fmt`` (``parquet``, ``csv`` or ``jsonl``), the columns with their types (``schema``,
    the text column included) and whether the JSON Lines text column needs :data:`TEXT_ERROR`."""

    fmt: str
    schema: pa.Schema
    text_column: str
    flag_text: bool = False


def plan_inputs(files: list[str], fmt: str, text_column: str, keep: list[str] | None = None) -> InputPlan:
    """The one schema of ``files``: the columns ``keep`` plus ``text_column``, or every column when ``keep``
    is ``None``. Reads Parquet footers, CSV headers, and all of every JSON Lines file."""
    if fmt == "parquet":
        return _plan_parquet(files, text_column, keep)
    if fmt == "csv":
        return _plan_csv(files, text_column, keep)
    if fmt == "jsonl":
        return _plan_jsonl(files, text_column, keep)
    raise ValueError(f"unknown format {fmt!r}")


def read_file(path: str, plan: InputPlan, rows: int) -> Iterator[pa.Table]:
    """The rows of ``path`` as tables of at most ``rows`` rows, each with ``plan.schema`` (plus
    :data:`TEXT_ERROR` when ``plan.flag_text``). Any failure is an :class:`InputFileError`."""
    readers = {"parquet": _read_parquet, "csv": _read_csv, "jsonl": _read_jsonl}
    try:
        yield from readers[plan.fmt](path, plan, rows)
    except InputFileError:
        raise
    except (OSError, ValueError, TypeError, csv.Error, pa.ArrowException) as exc:
        raise InputFileError(path, _one_line(exc)) from None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _check_columns(path: str, names: list[str], text_column: str, keep: list[str] | None) -> list[str]:
    """The columns to read from a file with ``names``; a missing or repeated column is an error."""
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputFileError(path, f"column {repeated[0]!r} appears more than once")
    wanted = [*(keep or []), text_column] if keep is not None else names
    for name in [text_column, *wanted]:
        if name not in names:
            raise InputFileError(path, f"no column {name!r} (columns: {', '.join(names) or 'none'})")
    return wanted


def _same_columns(path: str, first: str, wanted: list[str], names: list[str], keep: list[str] | None) -> None:
    """With every column kept, each file must have the first file's columns (in any order)."""
    if keep is not None:
        return
    extra = [n for n in names if n not in wanted]
    if extra:
        raise InputFileError(path, f"column {extra[0]!r} is not in {first}: make the files' columns alike "
                                   "or keep only --id-column")


# ---------------------------------------------------------------------------- Parquet


def _plan_parquet(files: list[str], text_column: str, keep: list[str] | None) -> InputPlan:
    import pyarrow.parquet as pq

    schemas = []
    for path in files:
        try:
            schemas.append(pq.read_schema(path))
        except (OSError, pa.ArrowException) as exc:
            raise InputFileError(path, f"not a Parquet file: {_one_line(exc)}") from None
    wanted = _check_columns(files[0], schemas[0].names, text_column, keep)
    for path, schema in zip(files[1:], schemas[1:]):
        _check_columns(path, schema.names, text_column, keep)
        _same_columns(path, files[0], wanted, schema.names, keep)
    fields = [pa.field(n, _unify(n, [s.field(n).type for s in schemas], files)) for n in wanted]
    return InputPlan("parquet", pa.schema(fields), text_column)


def _unify(name: str, types: list[pa.DataType], files: list[str]) -> pa.DataType:
    """One type for column ``name`` across the files; the first file whose type does not fit is named."""
    unified = types[0]
    for path, kind in zip(files[1:], types[1:]):
        if kind == unified:
            continue
        try:
            unified = pa.unify_schemas([pa.schema([pa.field(name, unified)]), pa.schema([pa.field(name, kind)])],
                                       promote_options="permissive").field(name).type
        except (pa.ArrowTypeError, pa.ArrowInvalid):
            raise InputFileError(path, f"column {name!r} is {kind}, but {types[0]} in {files[0]}") from None
    return unified


def _read_parquet(path: str, plan: InputPlan, rows: int) -> Iterator[pa.Table]:
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as parquet:
        for batch in parquet.iter_batches(batch_size=rows, columns=plan.schema.names, use_threads=False):
            yield pa.Table.from_batches([batch]).select(plan.schema.names).cast(plan.schema)


# ---------------------------------------------------------------------------- CSV


def _plan_csv(files: list[str], text_column: str, keep: list[str] | None) -> InputPlan:
    wanted: list[str] = []
    for path in files:
        try:
            with open(path, "rb") as stream:
                header = next(csv.reader(_utf8_lines(path, stream), strict=True), None)
        except csv.Error as exc:
            raise InputFileError(path, f"line 1: {exc}") from None
        except OSError as exc:
            raise InputFileError(path, exc.strerror or str(exc)) from None
        if header is None:
            raise InputFileError(path, "empty file: no header row")
        if path == files[0]:
            wanted = _check_columns(path, header, text_column, keep)
        else:
            _check_columns(path, header, text_column, keep)
            _same_columns(path, files[0], wanted, header, keep)
    return InputPlan("csv", pa.schema([pa.field(n, pa.string()) for n in wanted]), text_column)


def _utf8_lines(path: str, stream: Any) -> Iterator[str]:
    """The lines of a binary stream as text; bytes that are not UTF-8 are an error naming the line."""
    for number, line in enumerate(stream, 1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputFileError(path, f"line {number}: not UTF-8 (byte 0x{line[exc.start]:02x} at column "
                                       f"{exc.start + 1}); save the file as UTF-8") from None
        yield text[1:] if number == 1 and text.startswith("\ufeff") else text


def _read_csv(path: str, plan: InputPlan, rows: int) -> Iterator[pa.Table]:
    csv.field_size_limit(CSV_FIELD_LIMIT)  # this process only reads (a Ray task)
    names = plan.schema.names
    with open(path, "rb") as stream:
        reader = csv.reader(_utf8_lines(path, stream), strict=True)
        header = next(reader)
        index = [header.index(n) for n in names]
        columns: list[list[str]] = [[] for _ in names]
        start = reader.line_num + 1
        try:
            for row in reader:
                if row and len(row) != len(header):
                    raise InputFileError(path, f"line {start}: {len(row)} fields, the header has {len(header)}")
                start = reader.line_num + 1
                if not row:  # a blank line
                    continue
                for values, i in zip(columns, index):
                    values.append(row[i])
                if len(columns[0]) >= rows:
                    yield _table(columns, plan.schema)
                    columns = [[] for _ in names]
        except csv.Error as exc:
            raise InputFileError(path, f"line {start}: {exc} (a quote opened there is never closed?)") from None
    if columns[0]:
        yield _table(columns, plan.schema)


def _table(columns: list[list[Any]], schema: pa.Schema) -> pa.Table:
    return pa.table([pa.array(values, type=f.type) for values, f in zip(columns, schema)], schema=schema)


# ---------------------------------------------------------------------------- JSON Lines


def _plan_jsonl(files: list[str], text_column: str, keep: list[str] | None) -> InputPlan:
    kinds: dict[str, set[str]] = {}
    for path in files:
        seen: set[str] = set()
        rows = 0
        for _, obj in _json_objects(path):
            rows += 1
            for key, value in obj.items():
                seen.add(key)
                kinds.setdefault(key, set()).add(_kind(value))
        for name in [text_column, *(keep or [])]:
            if rows and name not in seen:
                raise InputFileError(path, f"no key {name!r} in any line")
    wanted = [*keep, text_column] if keep is not None else list(kinds)
    if text_column not in wanted:
        wanted.append(text_column)
    fields = [pa.field(n, pa.string() if n == text_column else _json_type(kinds.get(n, set()))) for n in wanted]
    flag = bool(kinds.get(text_column, set()) - {"str", "null"})
    return InputPlan("jsonl", pa.schema(fields), text_column, flag)


def _json_objects(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line of a JSON Lines file."""
    with open(path, "rb") as stream:
        for number, line in enumerate(_utf8_lines(path, stream), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise InputFileError(path, f"line {number}: not JSON ({_one_line(exc)})") from None
            if not isinstance(obj, dict):
                raise InputFileError(path, f"line {number}: not a JSON object")
            yield number, obj


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int" if _INT64[0] <= value <= _INT64[1] else "other"
    if isinstance(value, float):
        return "float"
    return "str" if isinstance(value, str) else "other"


def _json_type(kinds: set[str]) -> pa.DataType:
    kinds = kinds - {"null"}
    if not kinds:
        return pa.null()
    for allowed, arrow in (({"str"}, pa.string()), ({"int"}, pa.int64()), ({"int", "float"}, pa.float64()),
                           ({"bool"}, pa.bool_())):
        if kinds <= allowed:
            return arrow
    return pa.string()


def _as_string(value: Any) -> str | None:
    return value if value is None or isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _read_jsonl(path: str, plan: InputPlan, rows: int) -> Iterator[pa.Table]:
    names = plan.schema.names
    strings = [plan.schema.field(n).type == pa.string() for n in names]
    columns: list[list[Any]] = [[] for _ in names]
    flags: list[str | None] = []
    for _, obj in _json_objects(path):
        for values, name, string in zip(columns, names, strings):
            value = obj.get(name)
            values.append(_as_string(value) if string else value)
        if plan.flag_text:
            text = obj.get(plan.text_column)
            flags.append(None if text is None or isinstance(text, str) else f"not a string ({type(text).__name__})")
        if len(columns[0]) >= rows:
            yield _json_table(columns, flags, plan)
            columns, flags = [[] for _ in names], []
    if columns[0]:
        yield _json_table(columns, flags, plan)


def _json_table(columns: list[list[Any]], flags: list[str | None], plan: InputPlan) -> pa.Table:
    table = _table(columns, plan.schema)
    return table.append_column(TEXT_ERROR, pa.array(flags, pa.string())) if plan.flag_text else table
