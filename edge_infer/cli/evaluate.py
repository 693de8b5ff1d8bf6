"""``edge-infer evaluate``: accuracy, per-class P/R/F1, ROC AUC, log loss and calibration on labelled data."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple

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
    output_path,
    threshold_option,
)
from edge_infer.task import is_blank

if TYPE_CHECKING:
    import numpy as np

    from edge_infer.inputs import Kind

CHUNK = 256
"""Texts scored at a time."""
PROGRESS_MIN = 20
FOLDER_LABELS = {"pos": "positive", "neg": "negative"}
"""aclImdb's folder names; any other label folder's name is the label itself."""
IGNORED_FOLDERS = {"unsup"}
"""aclImdb/train/unsup holds unlabelled reviews."""


class EvalFormat(str, Enum):
    text = "text"
    json = "json"


class Item(NamedTuple):
    """One labelled text as read (``text`` and ``label`` are None when ``error`` says why)."""

    source: str
    line: int | None
    text: str | None
    label: str | None
    error: str | None


@app.command(epilog=EXIT_CODES_HELP)
def evaluate(
    data: Annotated[list[str], typer.Argument(
        metavar="DATA...", show_default=False,
        help="Labelled data: JSONL or CSV files (with --jsonl / --csv, or by their .jsonl / .csv suffix), or "
             "folders whose subfolders are labels holding *.txt reviews (aclImdb's pos/neg mean "
             "positive/negative; an aclImdb root means its test split).")],
    jsonl: Annotated[bool, typer.Option("--jsonl", help="DATA files are JSON Lines: one object per line.")] = False,
    csv_: Annotated[bool, typer.Option("--csv", help="DATA files are CSV with a header row.")] = False,
    lines: Annotated[bool, typer.Option("--lines", help="In label folders, each *.txt file holds one review per "
                                        "line (default: one review per file).")] = False,
    text_field: Annotated[str, typer.Option("--text-field", "--text-column", metavar="F",
                                            help="JSONL field or CSV column with the text.")] = "text",
    label_field: Annotated[str, typer.Option("--label-field", "--label-column", metavar="F",
                                             help="JSONL field or CSV column with the true label.")] = "label",
    delimiter: Annotated[str | None, typer.Option(
        "--delimiter", metavar="CHAR", callback=delimiter_option,
        help="CSV field separator ('\\t' or 'tab' for a tab; default: a tab for *.tsv files, else ',').")] = None,
    model: ModelOption = None,
    int8: Int8Option = False,
    threads: ThreadsOption = None,
    threshold: Annotated[float | None, typer.Option(
        "--threshold", metavar="X", callback=threshold_option,
        help="Two-label models: score at or above which labels[1] is predicted (default: the manifest's).")] = None,
    fmt: Annotated[EvalFormat, typer.Option("--format", help="text (tables for people) or json (every figure).")
                   ] = EvalFormat.text,
    plot: Annotated[Path | None, typer.Option(
        "--plot", metavar="FILE.png", help="Also write a PNG: ROC curve (two labels), reliability diagram, score "
                                           "histograms per true label; to a regular file or a new name in an "
                                           "existing folder, nothing else. Needs matplotlib: "
                                           'pip install "edge-infer[plot]".')] = None,
    target_precision: Annotated[float | None, typer.Option(
        "--target-precision", metavar="P", callback=threshold_option,
        help="Two labels: report the smallest threshold whose precision for the positive label is >= P.")] = None,
    target_recall: Annotated[float | None, typer.Option(
        "--target-recall", metavar="R", callback=threshold_option,
        help="Two labels: report the largest threshold whose recall for the positive label is >= R.")] = None,
    positive: Annotated[str | None, typer.Option(
        "--positive", metavar="LABEL", help="The positive label for --target-* (default: labels[1]).")] = None,
) -> None:
    """Measure a model on labelled data: accuracy, precision, recall, F1, ROC AUC, log loss, calibration.

    Every record is classified as `edge-infer predict` would (same reading, same threshold). Records that
    cannot be used (unreadable file, bad JSON, missing label or text, empty text) get one line each on
    standard error and are left out of the metrics; the metrics of the others are still printed and the
    exit code is then 1. A label in DATA that the model does not know is a usage error (exit 2).
    Calibration bins the winning-class probability into 10 equal-width bins (ECE). With --target-precision
    or --target-recall, the threshold to pass to `edge-infer predict --threshold` is printed ("not
    reachable" when no threshold reaches the target on this data). The data is held in memory.
    """
    import numpy as np

    from edge_infer import evaluation

    kind = _kind(jsonl, csv_, lines)
    target = _target(target_precision, target_recall)
    if plot is not None:
        _check_plot(plot)
    clf = load_classifier(model, int8, threads)
    pos_index = _check_binary_options(clf, threshold, target_precision, target_recall, positive)
    try:
        items, failed = _read_all(clf, data, kind, text_field, label_field, delimiter)
        _check_labels(clf.labels, items)
        if not items:
            err("no labelled records to evaluate")
            raise typer.Exit(exit_codes.INPUT_FAILED if failed else exit_codes.USAGE)
        probabilities = _probabilities(clf, [item.text or "" for item in items])
    except KeyboardInterrupt:
        raise Interrupted("interrupted; nothing was reported") from None
    y_true = np.array([clf.labels.index(item.label) for item in items], dtype=np.int64)
    report = evaluation.evaluate(clf.task, y_true, probabilities, threshold=threshold, positive=positive,
                                 target=target)
    report["model"] = {"path": os.fspath(clf.manifest.directory), "name": clf.manifest.name,
                       "int8": clf.quantized, "labels": list(clf.labels)}
    report["data"] = {"records": len(items), "failed": failed}
    if report.get("threshold_choice"):
        report["threshold_choice"]["command"] = _predict_command(report["threshold_choice"], model, int8)
    _emit(report, fmt)
    if plot is not None:
        _plot(plot, clf.labels, y_true, probabilities, pos_index)
    raise typer.Exit(exit_codes.INPUT_FAILED if failed else exit_codes.OK)


# ---------------------------------------------------------------------------------------------- options


def _kind(jsonl: bool, csv_: bool, lines: bool) -> Kind | None:
    flags: tuple[tuple[Kind, bool], ...] = (("jsonl", jsonl), ("csv", csv_), ("lines", lines))
    chosen = [name for name, on in flags if on]
    if len(chosen) > 1:
        raise typer.BadParameter("give at most one of --jsonl, --csv, --lines", param_hint="'--" + chosen[1] + "'")
    return chosen[0] if chosen else None


def _target(precision: float | None, recall: float | None) -> tuple[str, float] | None:
    """``("precision", P)``, ``("recall", R)`` or None; both given is a usage error."""
    if precision is not None and recall is not None:
        raise typer.BadParameter("give --target-precision or --target-recall, not both",
                                 param_hint="'--target-precision'")
    if precision is not None:
        return ("precision", precision)
    return ("recall", recall) if recall is not None else None


def _check_plot(plot: Path) -> None:
    """Before any work: matplotlib must be importable and the target a regular file or a new path (else exit 2)."""
    from edge_infer.plots import PlotUnavailable, require

    output_path(plot, "'--plot'")
    try:
        require()
    except PlotUnavailable as exc:
        err(str(exc))
        raise typer.Exit(exit_codes.USAGE) from None


def _check_binary_options(clf: Any, threshold: float | None, target_precision: float | None,
                          target_recall: float | None, positive: str | None) -> int | None:
    """The positive class index of a two-label model (None for more labels, where these options are usage errors)."""
    if not clf.binary:
        given = [name for name, value in (("--threshold", threshold), ("--target-precision", target_precision),
                                          ("--target-recall", target_recall), ("--positive", positive))
                 if value is not None]
        if given:
            raise typer.BadParameter(f"only for two-label models; this model has {len(clf.labels)} labels "
                                     f"({', '.join(clf.labels)})", param_hint=f"'{given[0]}'")
        return None
    if positive is not None and positive not in clf.labels:
        raise typer.BadParameter(f"{positive!r} is not one of the model's labels ({', '.join(clf.labels)})",
                                 param_hint="'--positive'")
    return clf.labels.index(positive) if positive is not None else 1


# ---------------------------------------------------------------------------------------------- reading


def _read_all(clf: Any, data: list[str], kind: Kind | None, text_field: str, label_field: str,
              delimiter: str | None) -> tuple[list[Item], int]:
    """Every usable record, and how many failed (one stderr line each)."""
    items, failed = [], 0
    for item in _items(clf, data, kind, text_field, label_field, delimiter):
        if item.error is None and item.label is None:
            item = item._replace(error=f"no label (field {label_field!r})")
        if item.error is None and is_blank(item.text or ""):
            item = item._replace(error="empty text")
        if item.error is not None:
            where = f"{item.source}:{item.line}" if item.line is not None else item.source
            err(f"{display_name(where)}: {item.error}")
            failed += 1
        else:
            items.append(item)
    return items, failed


def _items(clf: Any, data: list[str], kind: Kind | None, text_field: str, label_field: str,
           delimiter: str | None) -> Iterator[Item]:
    """The records of every DATA argument: JSONL/CSV files (by flag or suffix) or label folders."""
    from edge_infer.inputs import iter_records
    budget, keep = clf.byte_budget, clf.keep
    for arg in data:
        path = Path(arg)
        if kind in ("jsonl", "csv"):  # a folder means its *.jsonl / *.csv files, '-' standard input
            sources: list[tuple[str | None, list[str]]] = [(None, [arg])]
            file_kind: Kind = kind
        elif arg != "-" and path.is_dir():
            sources = [(label, [folder]) for label, folder in _label_folders(path)]
            file_kind = "lines" if kind == "lines" else "files"
        elif arg != "-" and not (path.exists() or path.is_symlink()):
            yield Item(arg, None, None, None, "no such file or directory")
            continue
        else:
            file_kind = _kind_of(arg)
            sources = [(None, [arg])]
        for label, paths in sources:
            records = iter_records(paths, file_kind, text_field=text_field, delimiter=delimiter, budget=budget,
                                   keep=keep, label_field=None if label is not None else label_field)
            yield from (Item(r.source, r.line, r.text, r.label if label is None else label, r.error)
                        for r in records)


def _kind_of(arg: str) -> Kind:
    """jsonl or csv from a file's suffix, else a usage error."""
    suffix = Path(arg).suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    raise typer.BadParameter(f"{display_name(arg)}: cannot tell its format: pass --jsonl or --csv (or give a "
                             "folder of label folders)", param_hint="'DATA...'")


def _label_folders(path: Path) -> list[tuple[str, str]]:
    """``(label, folder)`` per label subfolder holding *.txt files; an aclImdb root (or the folder holding
    it) means its test split, and aclImdb's pos/neg are positive/negative."""
    root = path / "aclImdb" if (path / "aclImdb" / "test").is_dir() else path
    if (root / "test" / "pos").is_dir() or (root / "test" / "neg").is_dir():
        root = root / "test"
    try:
        folders = sorted(p for p in root.iterdir() if p.is_dir() and p.name not in IGNORED_FOLDERS)
        out = [(FOLDER_LABELS.get(f.name, f.name), os.fspath(f)) for f in folders
               if any(t.is_file() for t in f.glob("*.txt"))]
    except OSError as exc:
        raise typer.BadParameter(f"{display_name(str(path))}: cannot list: {exc.strerror or exc}",
                                 param_hint="'DATA...'") from None
    if not out:
        raise typer.BadParameter(f"{display_name(str(path))}: no label subfolders with *.txt files",
                                 param_hint="'DATA...'")
    return out


def _check_labels(known: tuple[str, ...], items: list[Item]) -> None:
    unknown = sorted({item.label for item in items if item.label not in known}, key=str)
    if unknown:
        found = sorted({str(item.label) for item in items})
        err(f"labels in DATA that the model does not know: {', '.join(map(str, unknown))} (DATA has: "
            f"{', '.join(found)}; the model's labels: {', '.join(known)})")
        raise typer.Exit(exit_codes.USAGE)


# ---------------------------------------------------------------------------------------------- scoring


def _probabilities(clf: Any, texts: list[str]) -> np.ndarray:
    """Class probabilities ``[n, len(labels)]``, chunk by chunk (a progress bar on a terminal)."""
    import numpy as np

    parts = []
    with contextlib.ExitStack() as stack:
        progress = None
        if len(texts) > PROGRESS_MIN and sys.stderr.isatty():
            progress = stack.enter_context(typer.progressbar(length=len(texts), label="evaluating", file=sys.stderr))
        for start in range(0, len(texts), CHUNK):
            parts.append(clf.probabilities(texts[start : start + CHUNK]))
            if progress is not None:
                progress.update(len(parts[-1]))
    return np.concatenate(parts).astype(np.float64)


# ---------------------------------------------------------------------------------------------- report


def _predict_command(choice: dict[str, Any], model: str | Path | None, int8: bool) -> str | None:
    if choice["predict_threshold"] is None:
        return None
    import shlex

    parts = ["edge-infer", "predict"]
    if model is not None:
        parts += ["--model", shlex.quote(os.fspath(model))]
    if int8:
        parts.append("--int8")
    return " ".join([*parts, "--threshold", repr(choice["predict_threshold"]), "FILE..."])


# ---------------------------------------------------------------------------------------------- output


def _emit(report: dict[str, Any], fmt: EvalFormat) -> None:
    text = json.dumps(report, indent=2, ensure_ascii=False) if fmt is EvalFormat.json else "\n".join(text_lines(report))
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        raise OutputClosed from None


def _align(rows: list[list[str]], right: int = 1) -> list[str]:
    """Rows of cells as aligned lines: the first ``right`` columns left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) if i < right else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
            .rstrip() for row in rows]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def text_lines(report: dict[str, Any]) -> list[str]:
    """The report as tables for people (spaCy ``evaluate`` style): results, per class, confusion, reliability."""
    model, data = report["model"], report["data"]
    kind = "int8" if model["int8"] else "fp32"
    cut = f", threshold {report['threshold']:g}" if report["threshold"] is not None else ""
    out = [f"Model    {model['name']} ({kind}{cut})  {model['path']}",
           f"Data     {data['records']} records" + (f" ({data['failed']} failed, left out)" if data["failed"] else ""),
           "", "Results"]
    out += _align([["Accuracy", _pct(report["accuracy"])], ["Macro F1", _pct(report["macro_f1"])],
                   *([["ROC AUC", _num(report["roc_auc"])]] if len(model["labels"]) == 2 else []),
                   ["Log loss", _num(report["log_loss"])], ["ECE", _num(report["ece"])]])
    out += ["", "Per class"]
    out += _align([["", "P", "R", "F", "Support"]] + [
        [label, _pct(c["precision"]), _pct(c["recall"]), _pct(c["f1"]), str(c["support"])]
        for label, c in report["per_class"].items()])
    cm = report["confusion_matrix"]
    out += ["", "Confusion matrix (rows: true label, columns: predicted)"]
    out += _align([["", *cm["labels"]]] + [[label, *map(str, row)] for label, row in zip(cm["labels"], cm["matrix"])])
    out += ["", "Reliability (winning-class confidence, 10 bins)"]
    out += _align([["Bin", "Count", "Confidence", "Accuracy"]] + [
        [f"[{b['low']:.1f}, {b['high']:.1f}{']' if b['high'] == 1.0 else ')'}", str(b["count"]), _num(b["confidence"]),
         _num(b["accuracy"])] for b in report["calibration"]])
    if report.get("threshold_choice"):
        out += ["", *_choice_lines(report["threshold_choice"])]
    return out


def _choice_lines(choice: dict[str, Any]) -> list[str]:
    head = f"Target   {choice['target']} >= {choice['value']:g} for {choice['positive']}"
    if choice.get("one_class") is not None:
        return [f"{head}: cannot be judged on one class (every record here is {choice['one_class']}); a "
                "threshold needs records of both labels"]
    if not choice["reachable"]:
        return [f"{head}: not reachable on this data (no threshold gives it)"]
    lines = [f"{head}: threshold {choice['threshold']:.6g} on P({choice['positive']}), precision "
             f"{_pct(choice['precision'])}, recall {_pct(choice['recall'])}, accuracy {_pct(choice['accuracy'])}"]
    lines.append(f"Use      {choice['command']}" if choice["command"] else
                 "Use      no `predict --threshold` gives this split (a score is exactly 1.0)")
    return lines


def _plot(path: Path, labels: tuple[str, ...], y_true: np.ndarray, probabilities: np.ndarray,
          positive: int | None) -> None:
    from edge_infer.plots import write_evaluation_plot
    from edge_infer.storage import OutputPathError

    try:
        write_evaluation_plot(path, labels, y_true, probabilities, positive)
    except OutputPathError as exc:  # the path changed since it was checked
        err(f"{display_name(exc.path)}: {display_name(exc.reason)}")
        raise typer.Exit(exit_codes.USAGE) from None
    except OSError as exc:
        err(f"{display_name(os.fspath(path))}: cannot write the plot: {exc.strerror or exc}")
        raise typer.Exit(exit_codes.USAGE) from None
