"""``edge-infer predict``: classify files, folders of ``*.txt`` files and standard input."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer

from edge_infer import exit_codes
from edge_infer.cli import EXIT_CODES_HELP, Interrupted, OutputClosed, app, err
from edge_infer.cli.options import ModelOption, display_name, model_path, threads_option, threshold_option

CHUNK = 256
"""Inputs read and classified at a time: bounds memory for thousands of files, results stream out."""
PROGRESS_MIN = 20
"""A progress bar is drawn (on a terminal) for more inputs than this."""


class Format(str, Enum):
    text = "text"
    json = "json"
    jsonl = "jsonl"


@app.command(epilog=EXIT_CODES_HELP)
def predict(
    files: Annotated[list[str], typer.Argument(
        metavar="FILE...", show_default=False,
        help="Text files to classify, one review each; '-' reads standard input; a directory means "
             "the *.txt files directly inside it.")],
    fmt: Annotated[Format, typer.Option("--format", help="text: 'label score  file' lines; json: one JSON "
                                        "array; jsonl: one object per input with file, label, score.")
                   ] = Format.text,
    model: ModelOption = None,
    int8: Annotated[bool, typer.Option("--int8", help="Use the int8 (quantized) model.")] = False,
    threads: Annotated[int | None, typer.Option("--threads", metavar="N", callback=threads_option,
                                                help="ONNX Runtime intra-op threads, 1 to 256 (default: one "
                                                     "per core).")] = None,
    threshold: Annotated[float | None, typer.Option("--threshold", metavar="X", callback=threshold_option,
                                                    help="Score at or above which a review is labelled "
                                                         "positive, 0 to 1 (default: the model's, from its "
                                                         "manifest).")] = None,
) -> None:
    """Classify each FILE as positive or negative; the score is the probability of positive.

    Only the part of a long file the model can use is read (its last or first max_len tokens, as the
    model was trained). Failed inputs get one line each on standard error; the others are still printed.
    File names are printed as UTF-8 with undecodable bytes as \\xNN and control characters escaped.
    """
    from edge_infer.classifier import SentimentClassifier
    from edge_infer.model_folder import ModelError
    from edge_infer.reading import expand_inputs

    try:
        clf = SentimentClassifier.load(model_path(model), quantized=int8, threads=threads)
    except ModelError as exc:
        err(str(exc))
        raise typer.Exit(exit_codes.MODEL) from None
    entries = expand_inputs(files)
    writer = _Writer(sys.stdout, fmt)
    try:
        failed = _classify(clf, entries, writer, threshold)
        writer.close()
    except KeyboardInterrupt:
        incomplete = "no JSON array was written" if fmt is Format.json else "the output is incomplete"
        raise Interrupted(f"interrupted; {incomplete}") from None
    raise typer.Exit(exit_codes.INPUT_FAILED if failed else exit_codes.OK)


def _classify(clf: Any, entries: list[tuple[str, Path | None, str | None]], writer: _Writer,
              threshold: float | None) -> int:
    """Read, classify and write ``entries`` chunk by chunk; returns how many inputs failed."""
    failed = 0
    with contextlib.ExitStack() as stack:
        progress = None
        if len(entries) > PROGRESS_MIN and sys.stderr.isatty():
            progress = stack.enter_context(typer.progressbar(length=len(entries), label="classifying",
                                                             file=sys.stderr))
        for start in range(0, len(entries), CHUNK):
            chunk = entries[start : start + CHUNK]
            names, texts = [], []
            for name, text in _read_chunk(clf, chunk):
                if text is None:
                    failed += 1
                else:
                    names.append(name)
                    texts.append(text)
            for name, prediction in zip(names, clf.predict(texts, threshold=threshold) if texts else []):
                writer.write({"file": display_name(name), "label": prediction.label,
                              "score": round(prediction.score, 6)})
            writer.flush()
            if progress is not None:
                progress.update(len(chunk))
    return failed


def _read_chunk(clf: Any, chunk: list[tuple[str, Path | None, str | None]]) -> Iterator[tuple[str, str | None]]:
    """``(name, text)`` per entry; ``text`` is None after an error line for that input."""
    from edge_infer.reading import InputError, byte_budget, keep_side, read_stdin, read_text_file

    budget = byte_budget(clf.max_len)
    keep = keep_side(clf.manifest.tokenizer.truncating)
    for name, path, error in chunk:
        try:
            if error is not None:
                raise InputError(name, error)
            yield name, read_stdin(budget, keep) if path is None else read_text_file(path, budget, keep)
        except InputError as exc:
            err(f"{display_name(name)}: {exc.reason}")
            yield name, None


class _Writer:
    """Writes records as text lines, JSON lines or one JSON array; a closed stdout is :class:`OutputClosed`."""

    def __init__(self, out: TextIO, fmt: Format) -> None:
        self.out = out
        self.fmt = fmt
        self.records: list[dict[str, object]] = []

    def write(self, record: dict[str, object]) -> None:
        if self.fmt is Format.json:
            self.records.append(record)
        elif self.fmt is Format.jsonl:
            self._put(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            self._put(f"{record['label']} {record['score']:.4f}  {record['file']}\n")

    def flush(self) -> None:
        self._put("")

    def close(self) -> None:
        if self.fmt is Format.json:
            self._put(json.dumps(self.records, ensure_ascii=False, indent=2) + "\n")

    def _put(self, text: str) -> None:
        try:
            if text:
                self.out.write(text)
            self.out.flush()
        except BrokenPipeError:
            raise OutputClosed from None
