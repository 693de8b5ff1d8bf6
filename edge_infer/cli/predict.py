"""``edge-infer predict``: classify files, folders of ``*.txt`` files and standard input, or the records
(lines, JSON Lines, CSV rows) inside them, streaming."""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from collections.abc import Iterator
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

from edge_infer import exit_codes
from edge_infer.cli.common import EXIT_CODES_HELP, Interrupted, OutputClosed, app, err
from edge_infer.cli.options import (
    Int8Option,
    ModelOption,
    ThreadsOption,
    delimiter_option,
    display_name,
    load_classifier,
    threshold_option,
)

if TYPE_CHECKING:
    from edge_infer.inputs import Kind, Record, Tally

CHUNK = 256
"""Records read and classified at a time: bounds memory for millions of records, results stream out."""
CHUNK_CHARS = 4 * 1024 * 1024
"""... or fewer, once their texts hold this many characters."""
PROGRESS_MIN = 20
"""For whole files, a progress bar is drawn (on a terminal) for more inputs than this."""


class Format(str, Enum):
    text = "text"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


_FORMAT_HELP = ("text: 'label score  key' lines; json: one JSON array; jsonl: one object per record; csv: a "
                "header row, then one row per record. The key is 'id' with --id-field, else 'file' (and 'line' "
                "for --lines, --jsonl and --csv).")


@app.command(epilog=EXIT_CODES_HELP)
def predict(
    files: Annotated[list[str], typer.Argument(
        metavar="FILE...", show_default=False,
        help="Text files to classify, one review each; '-' reads standard input; a directory means "
             "the *.txt files directly inside it (*.jsonl and *.ndjson with --jsonl, *.csv and *.tsv with --csv).")],
    lines: Annotated[bool, typer.Option("--lines", help="Every line of each FILE is one text.")] = False,
    jsonl: Annotated[bool, typer.Option("--jsonl", help="Each FILE holds one JSON object per line; the text "
                                        "is its --text-field.")] = False,
    csv_input: Annotated[bool, typer.Option("--csv", help="Each FILE is CSV (RFC 4180) with a header row; the "
                                            "text is the --text-column.")] = False,
    text_field: Annotated[str, typer.Option("--text-field", "--text-column", metavar="NAME",
                                            help="With --jsonl or --csv: the field or column holding the "
                                                 "text.")] = "text",
    id_field: Annotated[str | None, typer.Option("--id-field", "--id-column", metavar="NAME",
                                                 help="With --jsonl or --csv: a field or column echoed as "
                                                      "'id' in the output.")] = None,
    delimiter: Annotated[str | None, typer.Option("--delimiter", metavar="CHAR", callback=delimiter_option,
                                                  help="With --csv: the field separator ('\\t' or 'tab' for a "
                                                       "tab; default: a tab for *.tsv files, else ',').")] = None,
    fmt: Annotated[Format, typer.Option("--format", help=_FORMAT_HELP)] = Format.text,
    all_scores: Annotated[bool, typer.Option("--all-scores", help="Add every label's probability (json, jsonl: "
                                             "a 'scores' object; csv: a score_LABEL column each).")] = False,
    model: ModelOption = None,
    int8: Int8Option = False,
    threads: ThreadsOption = None,
    threshold: Annotated[float | None, typer.Option("--threshold", metavar="X", callback=threshold_option,
                                                    help="Score at or above which a review is labelled "
                                                         "positive, 0 to 1 (default: the model's, from its "
                                                         "manifest).")] = None,
) -> None:
    """Classify each FILE (or each record in it) as positive or negative; the score is the probability of
    positive.

    Only the part of a long text the model can use is read (its last or first max_len tokens, as the
    model was trained). Records are read and results written as they come, in input order. Failed inputs
    and bad records get one line each on standard error ('FILE:LINE: reason' for records); the others are
    still printed. File names are printed as UTF-8 with undecodable bytes as \\xNN and control characters
    escaped.
    """
    kind = _kind(lines, jsonl, csv_input, text_field, id_field, delimiter)
    from edge_infer.inputs import Tally, iter_records

    clf = load_classifier(model, int8, threads)
    if threshold is not None and not clf.binary:
        err(f"--threshold applies to two-label models; this one has {len(clf.labels)} labels")
        raise typer.Exit(exit_codes.USAGE)
    columns = (["file"] if kind == "files" else ["id"] if id_field else ["file", "line"]) + ["label", "score"]
    writer = _Writer(sys.stdout, fmt, columns, clf.labels if all_scores else ())
    tally = Tally()
    batch = _Batch(clf, writer, threshold)
    records = iter_records(files, kind, text_field=text_field, id_field=id_field, delimiter=delimiter,
                           budget=clf.byte_budget, keep=clf.keep,
                           tally=tally, on_wait=batch.flush)
    progress = _Progress(tally, kind) if sys.stderr.isatty() else None
    try:
        failed = _classify(records, batch, progress)
        writer.close()
    except KeyboardInterrupt:
        incomplete = "no JSON array was written" if fmt is Format.json else "the output is incomplete"
        raise Interrupted(f"interrupted; {incomplete}") from None
    finally:
        if progress is not None:
            progress.close()
    raise typer.Exit(exit_codes.INPUT_FAILED if failed else exit_codes.OK)


def _kind(lines: bool, jsonl: bool, csv_input: bool, text_field: str, id_field: str | None,
          delimiter: str | None) -> Kind:
    """The kind of input the flags ask for; contradictory flags are a usage error."""
    chosen = [flag for flag, on in (("--lines", lines), ("--jsonl", jsonl), ("--csv", csv_input)) if on]
    if len(chosen) > 1:
        raise typer.BadParameter(f"{' and '.join(chosen)} exclude each other: choose one",
                                 param_hint=f"'{chosen[1]}'")
    if not (jsonl or csv_input) and (text_field != "text" or id_field is not None):
        raise typer.BadParameter("applies to --jsonl and --csv only",
                                 param_hint="'--text-field'" if text_field != "text" else "'--id-field'")
    if delimiter is not None and not csv_input:
        raise typer.BadParameter("applies to --csv only", param_hint="'--delimiter'")
    if text_field == id_field:
        raise typer.BadParameter("must differ from --text-field", param_hint="'--id-field'")
    return "lines" if lines else "jsonl" if jsonl else "csv" if csv_input else "files"


class _Batch:
    """Records waiting to be classified; :meth:`flush` classifies them and writes the results in order."""

    def __init__(self, clf: Any, writer: _Writer, threshold: float | None) -> None:
        self.clf = clf
        self.writer = writer
        self.threshold = threshold
        self.records: list[Record] = []
        self.chars = 0

    def add(self, record: Record) -> None:
        self.records.append(record)
        self.chars += len(record.text or "")
        if len(self.records) >= CHUNK or self.chars >= CHUNK_CHARS:
            self.flush()

    def flush(self) -> None:
        if self.records:
            predictions = self.clf.predict([r.text for r in self.records], threshold=self.threshold)
            for record, prediction in zip(self.records, predictions):
                self.writer.write(record, prediction)
            self.records = []
            self.chars = 0
        self.writer.flush()


def _classify(records: Iterator[Record], batch: _Batch, progress: _Progress | None) -> int:
    """Classify and write ``records`` chunk by chunk; returns how many inputs or records failed."""
    failed = 0
    for record in records:
        if record.error is not None:
            failed += 1
            err(f"{display_name(record.where)}: {record.error}")
        else:
            batch.add(record)
        if progress is not None:
            progress.update()
    batch.flush()
    return failed


class _Progress:
    """A one-line progress display on standard error (a terminal): count, rate, and ETA when the size is known."""

    def __init__(self, tally: Tally, kind: Kind) -> None:
        self.tally = tally
        self.kind = kind
        self.count = 0
        self.start = time.monotonic()
        self.drawn = 0.0
        self.shown = False

    def update(self) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self.drawn >= 0.2 or not self.shown:
            self.drawn = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        t = self.tally
        if self.kind == "files":
            if t.inputs <= PROGRESS_MIN:
                return
            done, total = float(t.inputs_done), float(t.inputs)
        else:
            done, total = float(t.bytes_read), float(t.total_bytes or 0)
        elapsed = max(now - self.start, 1e-6)
        noun = "files" if self.kind == "files" else "records"
        line = f"classifying: {self.count:,} {noun}, {self.count / elapsed:,.0f}/s"
        if total > 0:
            line += f", {min(done / total, 1.0):.0%}"
            if 0 < done < total:
                left = int((total - done) * elapsed / done)
                line += f", ETA {left // 3600}:{left // 60 % 60:02d}:{left % 60:02d}"
        sys.stderr.write(f"\r{line}\x1b[K")
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self._draw(time.monotonic())
            sys.stderr.write("\n")
            sys.stderr.flush()


class _Writer:
    """Writes results as text lines, JSON lines, CSV rows or one JSON array; a closed stdout is
    :class:`OutputClosed`."""

    def __init__(self, out: TextIO, fmt: Format, columns: list[str], labels: tuple[str, ...] = ()) -> None:
        self.out = out
        self.fmt = fmt
        self.columns = columns
        self.labels = labels
        self.records: list[dict[str, object]] = []
        if fmt is Format.csv:
            self._put(self._csv_row(columns + [f"score_{label}" for label in labels]))

    def write(self, record: Record, prediction: Any) -> None:
        row: dict[str, object] = {}
        for column in self.columns[:-2]:
            row[column] = display_name(record.source) if column == "file" else getattr(record, column)
        row["label"] = prediction.label
        row["score"] = round(prediction.score, 6)
        scores = {label: round(prediction.scores[label], 6) for label in self.labels}
        if self.fmt is Format.csv:
            self._put(self._csv_row([*row.values(), *scores.values()]))
            return
        if scores:
            row["scores"] = scores
        if self.fmt is Format.json:
            self.records.append(row)
        elif self.fmt is Format.jsonl:
            self._put(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            key = (display_name(record.id) if record.id is not None
                   else display_name(record.where) if record.line is not None else row["file"])
            self._put(f"{row['label']} {row['score']:.4f}  {key}\n")

    def flush(self) -> None:
        self._put("")

    def close(self) -> None:
        if self.fmt is Format.json:
            self._put(json.dumps(self.records, ensure_ascii=False, indent=2) + "\n")

    @staticmethod
    def _csv_row(values: list[Any]) -> str:
        buf = io.StringIO()
        csv.writer(buf).writerow(values)
        return buf.getvalue()

    def _put(self, text: str) -> None:
        try:
            if text:
                self.out.write(text)
            self.out.flush()
        except BrokenPipeError:
            raise OutputClosed from None
