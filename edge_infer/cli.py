"""The ``edge-infer`` command: ``predict`` files, ``info`` about a model. Owns the terminal; never a traceback."""

from __future__ import annotations

import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, TextIO

import typer

from edge_infer import __version__

EXIT_OK = 0
EXIT_INPUT_FAILED = 1
EXIT_USAGE = 2
EXIT_MODEL = 3
EXIT_INTERNAL = 4

EXIT_CODES_HELP = (
    "Exit codes: 0 every input got a prediction; 1 one or more inputs failed (one line each on stderr, "
    "the others are still printed); 2 usage error (bad option, --model path that does not exist); "
    "3 the model could not be loaded or failed verification; 4 unexpected internal error."
)
_CHUNK = 256  # inputs read and classified at a time (bounds memory for thousands of files)
_PROGRESS_MIN = 20

app = typer.Typer(
    help="Movie-review sentiment on small CPUs (ONNX Runtime, no TensorFlow).",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class Format(str, Enum):
    text = "text"
    json = "json"
    jsonl = "jsonl"


def _err(message: str) -> None:
    typer.echo(f"edge-infer: error: {message}", err=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"edge-infer {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Movie-review sentiment on small CPUs (ONNX Runtime, no TensorFlow)."""


ModelOption = Annotated[
    Path | None,
    typer.Option("--model", metavar="PATH",
                 help="Model folder or its manifest.json (default: the model shipped with edge-infer)."),
]


def _model_path(model: Path | None) -> Path | None:
    if model is not None and not model.exists():
        raise typer.BadParameter(f"{model}: no such file or directory", param_hint="'--model'")
    return model


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
    threads: Annotated[int | None, typer.Option("--threads", min=1, metavar="N",
                                                help="ONNX Runtime intra-op threads (default: one per core).")] = None,
    threshold: Annotated[float | None, typer.Option("--threshold", min=0.0, max=1.0, metavar="X",
                                                    help="Score at or above which a review is labelled "
                                                         "positive (default: the model's, from its manifest).")
                         ] = None,
) -> None:
    """Classify each FILE as positive or negative; the score is the probability of positive.

    Only the part of a long file the model can use is read (its last or first max_len tokens, as the
    model was trained). Failed inputs get one line each on standard error; the others are still printed.
    """
    from edge_infer.classifier import SentimentClassifier
    from edge_infer.manifest import ModelError
    from edge_infer.reading import InputError, byte_budget, expand_inputs, keep_side, read_text, read_text_file

    model = _model_path(model)
    try:
        clf = SentimentClassifier.load(model, quantized=int8, threads=threads)
    except ModelError as exc:
        _err(str(exc))
        raise typer.Exit(EXIT_MODEL) from None
    cut = clf.threshold if threshold is None else threshold
    neg, pos = clf.labels
    budget = byte_budget(clf.max_len)
    keep = keep_side(clf.tokenizer.truncating)

    entries = expand_inputs(files)
    failed = 0
    stdin_used = False
    results: list[dict[str, object]] = []
    out = sys.stdout

    def read(name: str, path: Path | None) -> str:
        nonlocal stdin_used
        if path is None:
            if stdin_used:
                raise InputError(name, "standard input was already read")
            stdin_used = True
            return read_text(sys.stdin.buffer, budget, keep, "-")
        return read_text_file(path, budget, keep)

    progress = None
    if len(entries) > _PROGRESS_MIN and sys.stderr.isatty():
        progress = typer.progressbar(length=len(entries), label="classifying", file=sys.stderr)
        progress.__enter__()
    try:
        for start in range(0, len(entries), _CHUNK):
            chunk = entries[start : start + _CHUNK]
            names: list[str] = []
            ids: list[list[int]] = []
            for name, path, error in chunk:
                try:
                    if error is not None:
                        raise InputError(name, error)
                    text = read(name, path)
                    ids.append(clf.tokenizer.ids(text))
                    names.append(name)
                except InputError as exc:
                    failed += 1
                    _err(f"{name}: {exc.reason}")
            scores = clf.scores_for_ids(ids) if ids else []
            for name, score in zip(names, scores):
                record = {"file": name, "label": pos if score >= cut else neg, "score": round(float(score), 6)}
                if fmt is Format.json:
                    results.append(record)
                else:
                    _emit(out, fmt, record)
            out.flush()
            if progress is not None:
                progress.update(len(chunk))
    finally:
        if progress is not None:
            progress.__exit__(None, None, None)
    if fmt is Format.json:
        out.write(json.dumps(results, ensure_ascii=False, indent=2) + "\n")
        out.flush()
    raise typer.Exit(EXIT_INPUT_FAILED if failed else EXIT_OK)


def _emit(out: TextIO, fmt: Format, record: dict[str, object]) -> None:
    if fmt is Format.jsonl:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
    else:
        out.write(f"{record['label']} {record['score']:.4f}  {record['file']}\n")


@app.command(epilog=EXIT_CODES_HELP)
def info(
    model: ModelOption = None,
    fmt: Annotated[Format, typer.Option("--format", help="text or json (jsonl is the same as json here).")
                   ] = Format.text,
) -> None:
    """Describe a model: labels, max_len, accuracy, parity figures, files (verified), versions."""
    from edge_infer.classifier import default_model_path
    from edge_infer.manifest import Manifest, ModelError, verify_model

    model = _model_path(model)
    try:
        manifest = Manifest.load(default_model_path() if model is None else model)
        verify_model(manifest)
    except ModelError as exc:
        _err(str(exc))
        raise typer.Exit(EXIT_MODEL) from None
    if fmt is not Format.text:
        doc = dict(manifest.raw)
        doc["path"] = os.fspath(manifest.source)
        doc["verified"] = True
        typer.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        raise typer.Exit(EXIT_OK)
    tok = manifest.tokenizer
    lines = [
        f"model        {manifest.name}  ({manifest.source})",
        f"labels       {manifest.labels[0]} / {manifest.labels[1]}  (score = P({manifest.labels[1]}), "
        f"threshold {manifest.threshold:g})",
        f"tokenizer    {tok.normalization}, max_len {tok.max_len}, padding {tok.padding}, "
        f"truncating {tok.truncating}, vocabulary {tok.vocab_size}",
        f"input        {manifest.input_name} ({manifest.input_dtype}, "
        f"{'any length 1..max_len' if manifest.dynamic_length else 'exactly max_len'}); output {manifest.output_name}",
    ]
    training = manifest.training
    if training:
        lines.append(f"training     preset {training.get('preset', '?')}, test accuracy "
                     f"{_pct_or(training.get('test_accuracy'))}")
    lines.extend(_parity_lines(manifest.parity))
    lines.append(f"int8         {'available' if manifest.has_int8 else 'absent'}"
                 + (f" ({manifest.int8_refused})" if manifest.int8_refused else ""))
    lines.append("files        (size, sha256 and vocab_sha256 verified)")
    for key, entry in manifest.files.items():
        lines.append(f"  {key:<6} {entry.path:<18} {entry.size:>10} bytes  sha256 {entry.sha256[:16]}...")
    if manifest.opset is not None:
        lines.append(f"opset        {manifest.opset}")
    if manifest.versions:
        lines.append("versions     " + ", ".join(f"{k} {v}" for k, v in manifest.versions.items()))
    lines.append(f"runtime      edge-infer {__version__}")
    typer.echo("\n".join(lines))


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def _num(value: object, fmt: str = "{:.3g}") -> str:
    return fmt.format(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else "?"


def _parity_lines(parity: dict) -> list[str]:
    """The export's parity figures, fp32 ONNX vs Keras and int8 vs fp32 (``info --format json`` has all)."""
    if not parity:
        return []
    lines = [f"parity       fp32 vs Keras on {parity.get('reviews', '?')} reviews: max |diff| "
             f"{_num(parity.get('max_abs_diff'))}, label agreement {_pct_or(parity.get('label_agreement'))}"]
    int8 = parity.get("int8")
    if isinstance(int8, dict):
        if int8.get("refused"):
            lines.append(f"             int8 refused: {int8['refused']}")
        else:
            acc = int8.get("int8_accuracy", int8.get("test_accuracy"))
            lines.append(f"             int8: accuracy {_pct_or(acc)}, label agreement "
                         f"{_pct_or(int8.get('label_agreement'))}, max |diff| {_num(int8.get('max_abs_diff'))}")
    return lines


def _pct_or(value: object) -> str:
    return _pct(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else "?"


def main() -> None:
    """Console entry point: runs the app and turns anything unexpected into one line and exit code 4."""
    try:
        app()
    except SystemExit:
        raise
    except KeyboardInterrupt:
        typer.echo("edge-infer: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:  # e.g. `edge-infer predict dir | head`
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass
        sys.exit(EXIT_INPUT_FAILED)
    except Exception as exc:  # noqa: BLE001 - the CLI boundary: never a traceback
        message = str(exc).splitlines()[0] if str(exc) else ""
        _err(f"internal error: {type(exc).__name__}: {message}")
        sys.exit(EXIT_INTERNAL)


if __name__ == "__main__":
    main()
