"""The packaged models: which model folders the wheel ships, under which names, with which ONNX precisions.

The one source of truth for ``SentimentClassifier.load(name)``, ``--model NAME``, ``edge-infer info --list``
and the wheel (``hatch_build.py`` reads this file by path, so it imports nothing but the standard library).
An installed wheel holds each model as ``edge_infer/_models/<name>/``; a source checkout (or an editable
install) reads ``<folder>`` in the checkout instead.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, NamedTuple


class PackagedModel(NamedTuple):
    """One packaged model: its ``name``, its ``folder`` in the checkout (relative to the repository root)
    and the ONNX ``precisions`` the wheel carries (``"fp32"``, ``"int8"``; the vocabulary always)."""

    name: str
    folder: str
    precisions: tuple[str, ...]


MODELS: tuple[PackagedModel, ...] = (
    PackagedModel("imdb", "models/default", ("fp32", "int8")),
    PackagedModel("general", "models/general", ("int8",)),  # int8 only: keeps the wheel small
)
DEFAULT = "imdb"
"""The name that ``SentimentClassifier.load()`` and a command without ``--model`` use."""

INSTALLED_DIR = "_models"
"""Where the wheel puts the models, inside the ``edge_infer`` package."""
MANIFEST = "manifest.json"
ONNX_PRECISIONS = ("fp32", "int8")

_PACKAGE = Path(__file__).resolve().parent


def names() -> list[str]:
    """Every packaged name, installed or not, in registry order."""
    return [m.name for m in MODELS]


def looks_like_path(model: str | os.PathLike[str]) -> bool:
    """The rule for ``--model`` and ``load(model)``: a path when it exists or holds a path separator;
    otherwise (``"imdb"``, ``"general"``) a packaged model's name."""
    text = os.fspath(model)
    return any(sep in text for sep in ("/", os.sep, os.altsep) if sep) or os.path.lexists(text)


def installed(package: Path = _PACKAGE) -> dict[str, Path]:
    """The packaged models present here, name -> folder holding their ``manifest.json``: the wheel's
    ``edge_infer/_models/<name>`` first, else the checkout's folder (a source checkout, an editable install)."""
    found: dict[str, Path] = {}
    for model in MODELS:
        for folder in (package / INSTALLED_DIR / model.name, package.parent / model.folder):
            if (folder / MANIFEST).is_file():
                found[model.name] = folder
                break
    return found


def unknown_name_message(name: str, present: list[str]) -> str:
    """Why ``name`` is neither a path nor an installed packaged model, listing the installed names."""
    have = ", ".join(present) if present else "none"
    if name in names():
        return f"the packaged model {name!r} is not installed with this edge-infer (installed: {have})"
    return f"not a model folder nor a packaged model name (installed: {have}; a path needs a '/' or must exist)"


# --------------------------------------------------------------------------- the wheel


def wheel_manifest(doc: dict[str, Any], precisions: tuple[str, ...]) -> dict[str, Any]:
    """The manifest the wheel ships: ``doc`` whose ``files`` keep the vocabulary and the ONNX files of
    ``precisions`` only. Raises ``ValueError`` when no ONNX file would remain."""
    unknown = set(precisions) - set(ONNX_PRECISIONS)
    if unknown:
        raise ValueError(f"unknown precisions {sorted(unknown)}; use {', '.join(ONNX_PRECISIONS)}")
    files = {k: v for k, v in doc["files"].items() if k not in ONNX_PRECISIONS or k in precisions}
    if not set(files) & set(ONNX_PRECISIONS):
        raise ValueError(f"the manifest lists none of the precisions {', '.join(precisions)}")
    return {**doc, "files": files}


def wheel_contents(root: Path, staging: Path) -> tuple[dict[str, str], list[str]]:
    """What the wheel carries: ``{source file: path in the wheel}`` and warnings for models not exported yet.

    ``root`` is the checkout. A model whose manifest lists files the wheel leaves out gets a filtered
    manifest written under ``staging``. A listed file that is missing raises ``FileNotFoundError``.
    """
    include: dict[str, str] = {}
    warnings: list[str] = []
    for model in MODELS:
        folder = root / model.folder
        manifest = folder / MANIFEST
        if not manifest.is_file():
            warnings.append(f"{manifest} not found: building a wheel WITHOUT the packaged model {model.name!r}")
            continue
        doc = json.loads(manifest.read_text(encoding="utf-8"))
        shipped = wheel_manifest(doc, model.precisions)
        target = f"edge_infer/{INSTALLED_DIR}/{model.name}"
        if shipped == doc:
            include[os.fspath(manifest)] = f"{target}/{MANIFEST}"
        else:
            (staging / model.name).mkdir(parents=True, exist_ok=True)
            filtered = staging / model.name / MANIFEST
            filtered.write_text(json.dumps(shipped, indent=2) + "\n", encoding="utf-8")
            include[os.fspath(filtered)] = f"{target}/{MANIFEST}"
        for entry in shipped["files"].values():
            path = folder / entry["path"]
            if not path.is_file():
                raise FileNotFoundError(f"{path} is listed in {manifest} but missing")
            include[os.fspath(path)] = f"{target}/{entry['path']}"
    return include, warnings
