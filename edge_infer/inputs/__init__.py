"""Input readers: whole files, lines, JSON Lines and CSV, as a stream of :class:`Record` (stdlib only).

Everything is read as it arrives and with bounded memory: a record is yielded as soon as it is complete,
a long text keeps only the part the model uses (``budget`` bytes from the ``keep`` end, see
:func:`edge_infer.inputs.reading.byte_budget`), and an over-long JSONL or CSV record is skipped
without being held. A record that cannot be classified carries a one-line ``error`` and where it
starts; the others go on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from edge_infer.inputs.base import KINDS, RECORD_CAP, Kind, Record, Tally
from edge_infer.inputs.files import SUFFIXES, csv_delimiter, expand, open_input, total_size, whole_files
from edge_infer.inputs.reading import InputError, Keep, byte_budget, keep_side
from edge_infer.inputs.records import csv_records, jsonl_records, line_records

__all__ = ["KINDS", "RECORD_CAP", "InputError", "Keep", "Kind", "Record", "Tally", "byte_budget",
           "iter_records", "keep_side"]


def iter_records(sources: Sequence[str], kind: Kind, *, text_field: str = "text", id_field: str | None = None,
                 label_field: str | None = None, delimiter: str | None = None, budget: int, keep: Keep,
                 tally: Tally | None = None, on_wait: Callable[[], None] | None = None) -> Iterator[Record]:
    """The records of ``sources`` (paths, folders, ``-`` for standard input) in input order, streaming.

    ``kind``: ``"files"`` (each input one text; a folder means its ``*.txt`` files), ``"lines"`` (each
    line one text), ``"jsonl"`` (one JSON object per line, the text in ``text_field``) or ``"csv"`` (a
    header row, then one record per row; ``*_field`` name columns; ``delimiter``, else a tab for each
    ``*.tsv`` file and a comma for the others). A folder gives its files with the kind's suffixes
    (:data:`~edge_infer.inputs.files.SUFFIXES`). ``id_field`` and ``label_field``, when
    given, must be in every record. ``budget`` and ``keep``: how much of a long text to keep, from which
    end. ``tally`` is updated while reading (progress); ``on_wait`` is called before a read that would
    block on a pipe or FIFO, so a caller can write the results it holds.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    if delimiter is not None and (len(delimiter) != 1 or delimiter in ('"', "\n", "\r")):
        raise ValueError("delimiter must be one character, not a quote or a newline")
    entries = expand(list(sources), SUFFIXES[kind])
    if tally is not None:
        tally.inputs = len(entries)
        tally.total_bytes = total_size(entries)
    if kind == "files":
        yield from whole_files(entries, budget, keep, tally)
        return
    for name, path, error in entries:
        try:
            if error is not None:
                raise InputError(name, error)
            with open_input(name, path) as stream:
                if kind == "lines":
                    yield from line_records(name, stream, budget=budget, keep=keep, tally=tally, on_wait=on_wait)
                elif kind == "jsonl":
                    yield from jsonl_records(name, stream, text_field=text_field, id_field=id_field,
                                             label_field=label_field, budget=budget, keep=keep, tally=tally,
                                             on_wait=on_wait)
                else:
                    yield from csv_records(name, stream, text_field=text_field, id_field=id_field,
                                           label_field=label_field, delimiter=csv_delimiter(name, delimiter),
                                           budget=budget, keep=keep, tally=tally, on_wait=on_wait)
        except InputError as exc:
            yield Record(name, None, None, None, error=exc.reason)
        except OSError as exc:
            yield Record(name, None, None, None, error=f"cannot read: {exc.strerror or exc}")
        if tally is not None:
            tally.inputs_done += 1
