"""Options and output helpers shared by the commands."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from edge_infer import packaged

if TYPE_CHECKING:
    from edge_infer.classifier import SentimentClassifier

ModelOption = Annotated[
    str | None,
    typer.Option("--model", metavar="NAME|PATH",
                 help=f"A packaged model's name ({', '.join(packaged.names())}; 'edge-infer info --list' shows "
                      f"those installed; default: {packaged.DEFAULT}), or a model folder or its manifest.json. "
                      "A value that exists as a file or folder, or holds a '/', is a path; otherwise a name."),
]


def model_path(model: str | Path | None) -> Path | None:
    """``--model`` as given (a packaged name comes back as a one-part path, which ``load`` reads as the name
    again), or a usage error (exit 2) for a path that does not exist or a name that is not installed."""
    if model is None:
        return None
    if not packaged.looks_like_path(model):
        present = packaged.installed()
        if os.fspath(model) not in present:
            why = packaged.unknown_name_message(os.fspath(model), list(present))
            raise typer.BadParameter(f"{display_name(os.fspath(model))}: {why}", param_hint="'--model'")
        return Path(model)
    path = Path(model)
    if not (path.exists() or path.is_symlink()):
        raise typer.BadParameter(f"{display_name(str(model))}: no such file or directory", param_hint="'--model'")
    return path


def output_path(path: Path, param_hint: str, *, folder: bool = False) -> Path:
    """``path`` when :func:`edge_infer.storage.check_output_path` allows writing there, else a usage error (exit 2)."""
    from edge_infer.storage import OutputPathError, check_output_path

    try:
        return check_output_path(path, folder=folder)
    except OutputPathError as exc:
        raise typer.BadParameter(f"{display_name(exc.path)}: {display_name(exc.reason)}",
                                 param_hint=param_hint) from None


def delimiter_option(value: str | None) -> str | None:
    """``--delimiter``: one character ('\\t' or 'tab' for a tab), or ``None``: by suffix (a tab for ``*.tsv``)."""
    sep = {"\\t": "\t", "tab": "\t"}.get(value, value) if value is not None else None
    if sep is not None and (len(sep) != 1 or sep in ('"', "\n", "\r")):
        raise typer.BadParameter("must be one character (not a quote or a newline)")
    return sep


def threads_option(value: int | None) -> int | None:
    from edge_infer.inference import MAX_THREADS  # numpy: only when the option is parsed, not for --help

    if value is not None and not 1 <= value <= MAX_THREADS:
        raise typer.BadParameter(f"must be from 1 to {MAX_THREADS}")
    return value


Int8Option = Annotated[bool, typer.Option("--int8", help="Use the int8 (quantized) model.")]
ThreadsOption = Annotated[int | None, typer.Option(
    "--threads", metavar="N", callback=threads_option,
    help="ONNX Runtime intra-op threads, 1 to 256 (default: one per core).")]


def load_classifier(model: str | Path | None, int8: bool, threads: int | None) -> SentimentClassifier:
    """The classifier of ``--model``/``--int8``/``--threads``; a refused model is one line and exit 3."""
    from edge_infer import exit_codes
    from edge_infer.classifier import SentimentClassifier
    from edge_infer.cli.common import err
    from edge_infer.model_folder import ModelError

    try:
        return SentimentClassifier.load(model_path(model), quantized=int8, threads=threads)
    except ModelError as exc:
        err(str(exc))
        raise typer.Exit(exit_codes.MODEL) from None


def threshold_option(value: float | None) -> float | None:
    """``--threshold`` (and evaluate's ``--target-*``): the task's range check, else a usage error (exit 2)."""
    from edge_infer.task import THRESHOLD_RANGE, is_threshold

    if value is not None and not is_threshold(value):
        raise typer.BadParameter(f"must be {THRESHOLD_RANGE}")
    return value


_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def display_name(name: str) -> str:
    """A file name as valid UTF-8 text on one line: undecodable bytes become ``\\xff``, control characters
    (newline, tab, ...) their backslash escapes. Names without either are unchanged."""
    if any("\udc80" <= c <= "\udcff" for c in name):
        name = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), name)
