"""``edge-infer info``: describe and verify a model folder."""

from __future__ import annotations

import json
import os
from enum import Enum
from typing import Annotated, Any

import typer

from edge_infer import __version__, exit_codes
from edge_infer.cli.common import EXIT_CODES_HELP, app, err
from edge_infer.cli.options import ModelOption, model_path


class InfoFormat(str, Enum):
    text = "text"
    json = "json"


@app.command(epilog=EXIT_CODES_HELP)
def info(
    model: ModelOption = None,
    fmt: Annotated[InfoFormat, typer.Option("--format", help="text (for people) or json (the manifest plus "
                                            "'path' and 'verified'; with --list, a list of models).")
                   ] = InfoFormat.text,
    list_models: Annotated[bool, typer.Option("--list", help="List the installed packaged models (the names "
                                              "--model takes): default, labels, precisions and file sizes, test "
                                              "accuracy. Reads their manifests; --model NAME verifies one.")
                           ] = False,
) -> None:
    """Describe a model and verify all of its files: labels, max_len, accuracy, parity figures, files, versions."""
    from edge_infer.classifier import info_document, verify
    from edge_infer.model_folder import ModelError

    if list_models:
        if model is not None:
            raise typer.BadParameter("give either --list or --model", param_hint="'--list'")
        _list(fmt)
        return
    try:
        manifest = verify(model_path(model))
    except ModelError as exc:
        err(str(exc))
        raise typer.Exit(exit_codes.MODEL) from None
    if fmt is InfoFormat.json:
        typer.echo(json.dumps(info_document(manifest), indent=2, ensure_ascii=False))
        return
    typer.echo("\n".join(_text_lines(manifest)))


def _text_lines(manifest: Any) -> list[str]:
    tok = manifest.tokenizer
    lines = [
        f"model        {manifest.name}  ({manifest.source})",
        f"labels       {manifest.task.describe()}",
        f"tokenizer    {tok.normalization}, max_len {tok.max_len}, padding {tok.padding}, "
        f"truncating {tok.truncating}, vocabulary {tok.vocab_size}",
        f"input        {manifest.input_name} ({manifest.input_dtype}, "
        f"{'any length 1..max_len' if manifest.dynamic_length else 'exactly max_len'}); output {manifest.output_name}",
        f"training     preset {manifest.training.get('preset', '?')}, test accuracy "
        f"{_pct(manifest.training.get('test_accuracy'))}",
        *_parity_lines(manifest.parity),
        f"int8         {'available' if manifest.has_int8 else 'absent'}"
        + (f" ({manifest.int8_refused})" if manifest.int8_refused else ""),
        "files        (size, sha256, graph signature and vocab_sha256 verified)",
    ]
    for key, entry in manifest.files.items():
        lines.append(f"  {key:<6} {entry.path:<26} {entry.size:>10} bytes  sha256 {entry.sha256[:16]}...")
    lines.append(f"opset        {manifest.opset}")
    lines.append("versions     " + ", ".join(f"{k} {v}" for k, v in manifest.versions.items()))
    lines.append(f"runtime      edge-infer {__version__}")
    return lines


def _pct(value: object) -> str:
    return f"{100 * value:.2f} %" if isinstance(value, (int, float)) and not isinstance(value, bool) else "?"


def _num(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "?"


def _parity_lines(parity: Any) -> list[str]:
    """The export's parity figures, fp32 ONNX vs Keras and int8 vs fp32 (``--format json`` has all)."""
    lines = [f"parity       fp32 vs Keras on {parity.get('reviews', '?')} reviews: max |diff| "
             f"{_num(parity.get('max_abs_diff'))}, label agreement {_pct(parity.get('label_agreement'))}"]
    int8 = parity.get("int8")
    if isinstance(int8, dict):
        if int8.get("refused"):
            lines.append(f"             int8 refused: {int8['refused']}")
        else:
            acc = int8.get("int8_accuracy", int8.get("test_accuracy"))
            lines.append(f"             int8: accuracy {_pct(acc)}, label agreement "
                         f"{_pct(int8.get('label_agreement'))}, max |diff| {_num(int8.get('max_abs_diff'))}")
    return lines


def _list(fmt: InfoFormat) -> None:
    """``info --list``: one row per installed packaged model, from its manifest (not verified here)."""
    from edge_infer import packaged
    from edge_infer.model_folder import FP32, INT8, MANIFEST_NAME, Manifest, ModelError

    rows: list[dict[str, Any]] = []
    for name, folder in packaged.installed().items():
        try:
            manifest = Manifest.load(folder)
        except ModelError as exc:
            err(str(exc))
            raise typer.Exit(exit_codes.MODEL) from None
        int8 = manifest.parity.get("int8")
        rows.append({
            "name": name, "default": name == packaged.DEFAULT, "labels": list(manifest.labels),
            "precisions": [key for key in (FP32, INT8) if key in manifest.files],
            "files": {key: entry.size for key, entry in manifest.files.items()},
            "size_bytes": sum(entry.size for entry in manifest.files.values()),
            "test_accuracy": manifest.training.get("test_accuracy"),
            "int8_test_accuracy": int8.get("int8_accuracy") if isinstance(int8, dict) else None,
            "path": os.fspath(folder / MANIFEST_NAME),
        })
    if fmt is InfoFormat.json:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        typer.echo("no packaged model is installed; pass --model PATH")
        return
    table = [["name", "default", "labels", "precisions (MB)", "test accuracy", "folder"]]
    for row in rows:
        sizes = ", ".join(f"{key} {row['files'][key] / 1e6:.1f}" for key in row["precisions"])
        accuracy = (_pct(row["test_accuracy"]) if FP32 in row["precisions"] or row["int8_test_accuracy"] is None
                    else f"{_pct(row['int8_test_accuracy'])} (int8)")
        table.append([row["name"], "*" if row["default"] else "", ", ".join(row["labels"]), sizes, accuracy,
                      os.path.dirname(row["path"])])
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]) - 1)]
    for line in table:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths)) + "  " + line[-1])
