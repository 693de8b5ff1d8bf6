"""THE model-folder contract: ``manifest.json``, its fields and files, written by export, read by the runtime.

This module is the only place that names the format, the file keys, the ONNX input/output names and the
metadata keys. :class:`Manifest` both writes (:meth:`Manifest.to_dict`, :meth:`Manifest.save`) and reads
(:meth:`Manifest.load`); ``docs/manifest.schema.json`` describes the same document and the tests hold the
two together. Nothing here creates an ONNX Runtime session (see :mod:`edge_infer.inference`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from edge_infer.inputs.reading import open_regular, read_error
from edge_infer.storage import atomic_write_text
from edge_infer.task import Task, is_model_threshold
from edge_infer.tokenizer import NORMALIZATION, OOV_ID, PAD_ID

FORMAT = "edge-infer-model"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
MAX_MANIFEST_BYTES = 1 << 20

INPUT_NAME = "token_ids"
"""The ONNX graph's one input: int32 token ids, shape ``[batch, length]``."""
INPUT_DTYPE = "int32"
OUTPUT_NAME = "score"
"""The ONNX graph's output: with two labels, float P(``labels[1]``) of shape ``[batch, 1]``; with N >= 3
labels, the N class probabilities (softmax) of shape ``[batch, N]``, in the order of ``labels``."""

FP32, INT8, VOCAB = "fp32", "int8", "vocab"
"""Keys of ``files``: the fp32 ONNX model, the int8 one, the vocabulary. Export writes fp32 and, unless its
gate refused it, int8; a folder may hold int8 alone (how the wheel ships a model packaged int8-only)."""
ONNX_KEYS = (FP32, INT8)
FILE_KEYS = (FP32, INT8, VOCAB)
BASE_NAMES = {FP32: ("model", ".onnx"), INT8: ("model.int8", ".onnx"), VOCAB: ("vocab", ".txt")}

META_VOCAB_SHA256 = "vocab_sha256"
"""ONNX ``metadata_props`` key: sha256 of the vocabulary the graph was exported with."""
META_FORMAT = "edge_infer_format"
MIN_OPSET = 13


class ModelError(Exception):
    """A model that cannot be used: not found, malformed, or failing verification; ``path`` is the file at fault."""

    def __init__(self, path: str | os.PathLike[str], message: str) -> None:
        self.path = Path(path)
        self.reason = message
        super().__init__(f"{self.path}: {message}")

    def __reduce__(self) -> tuple[type[ModelError], tuple[Path, str]]:
        return type(self), (self.path, self.reason)  # picklable: a Ray worker's refusal reaches the driver as is


class ManifestError(ModelError):
    """``manifest.json`` is missing, not JSON, or does not follow the contract (docs/artifacts.md)."""


class IntegrityError(ModelError):
    """A model file does not match the manifest (size, sha256, graph signature, vocabulary)."""


class UnknownModelError(ManifestError):
    """``load(name)``: neither an existing path nor an installed packaged model; the message lists those."""


def versioned_name(key: str, sha256: str) -> str:
    """The file name export gives ``files[key]`` with this content: ``model.<sha12>.onnx`` and so on.

    Content-addressed names let a new export stage all its files beside the old ones and switch by
    renaming the manifest alone.
    """
    stem, suffix = BASE_NAMES[key]
    return f"{stem}.{sha256[:12]}{suffix}"


@dataclass(frozen=True)
class TokenizerSpec:
    """The tokenizer settings that training chose."""

    normalization: str
    max_len: int
    padding: Literal["pre", "post"]
    truncating: Literal["pre", "post"]
    vocab_size: int
    pad_id: int = PAD_ID
    oov_id: int = OOV_ID

    def to_dict(self) -> dict[str, Any]:
        return {"normalization": self.normalization, "max_len": self.max_len, "padding": self.padding,
                "truncating": self.truncating, "pad_id": self.pad_id, "oov_id": self.oov_id,
                "vocab_size": self.vocab_size}


@dataclass(frozen=True)
class FileEntry:
    """One file of the model folder: ``path`` is a file name inside the manifest's folder."""

    path: str
    sha256: str
    size: int

    @classmethod
    def of(cls, file: Path, name: str | None = None) -> FileEntry:
        """The entry for ``file`` as it is now, listed under ``name`` (default: its own name)."""
        digest = hashlib.sha256()
        with open(file, "rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
        return cls(name or file.name, digest.hexdigest(), file.stat().st_size)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "size": self.size}


@dataclass(frozen=True)
class Manifest:
    """A validated ``manifest.json``. ``source`` is where it was read from (``None`` for a new one)."""

    name: str
    labels: tuple[str, ...]
    threshold: float
    tokenizer: TokenizerSpec
    dynamic_length: bool
    files: Mapping[str, FileEntry]
    opset: int
    versions: Mapping[str, str]
    training: Mapping[str, Any]
    parity: Mapping[str, Any]
    structure: Mapping[str, Any] = field(default_factory=dict)
    input_name: str = INPUT_NAME
    input_dtype: str = INPUT_DTYPE
    output_name: str = OUTPUT_NAME
    source: Path | None = field(default=None, compare=False)

    @property
    def directory(self) -> Path:
        if self.source is None:
            raise ValueError("this manifest was not loaded from a folder")
        return self.source.parent

    def path_of(self, key: str) -> Path:
        """Absolute path of ``files[key]``."""
        return self.directory / self.files[key].path

    @property
    def task(self) -> Task:
        """What the output means: labels, binary or N, width, threshold, decision (:mod:`edge_infer.task`)."""
        return Task(self.labels, self.threshold)

    @property
    def binary(self) -> bool:
        """Two labels: the output is P(``labels[1]``) and ``threshold`` decides. Otherwise argmax of N."""
        return self.task.binary

    @property
    def has_int8(self) -> bool:
        return INT8 in self.files

    @property
    def has_fp32(self) -> bool:
        return FP32 in self.files

    @property
    def int8_refused(self) -> str | None:
        """Why the export refused the int8 model, when it says so."""
        int8 = self.parity.get("int8")
        if isinstance(int8, Mapping) and int8.get("refused"):
            return str(int8["refused"])
        return None

    # ------------------------------------------------------------------ write

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (``docs/manifest.schema.json``)."""
        doc: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "labels": list(self.labels),
            "threshold": self.threshold,
            "tokenizer": self.tokenizer.to_dict(),
            "input": {"name": self.input_name, "dtype": self.input_dtype, "dynamic_length": self.dynamic_length},
            "output": {"name": self.output_name},
            "files": {key: entry.to_dict() for key, entry in self.files.items()},
            "opset": self.opset,
            "versions": dict(self.versions),
            "training": dict(self.training),
            "parity": dict(self.parity),
        }
        if self.structure:
            doc["structure"] = dict(self.structure)
        return doc

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Validate, then write ``folder/manifest.json`` atomically (the last step of an export)."""
        path = Path(folder) / MANIFEST_NAME
        doc = self.to_dict()
        Manifest.from_dict(json.loads(json.dumps(doc)), path)  # never write what the reader would refuse
        atomic_write_text(path, json.dumps(doc, indent=2) + "\n")
        return path

    # ------------------------------------------------------------------ read

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Manifest:
        """Parse ``path`` (a ``manifest.json`` or the folder holding one); raises :class:`ManifestError`."""
        source = Path(path)
        if "\x00" in os.fspath(source):
            raise ManifestError(source, "cannot access: the path holds a NUL byte")
        try:
            if source.is_dir():
                source = source / MANIFEST_NAME
        except OSError as exc:
            raise ManifestError(source, f"cannot access: {exc.strerror or exc}") from None
        try:
            with open_regular(source) as handle:
                data = handle.read(MAX_MANIFEST_BYTES + 1)
        except OSError as exc:
            raise ManifestError(source, read_error(exc, "no manifest.json (not a model folder?)")) from None
        if len(data) > MAX_MANIFEST_BYTES:
            raise ManifestError(source, "too large to be a manifest")
        try:
            raw = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ManifestError(source, f"not valid JSON: {exc}") from None
        except RecursionError:
            raise ManifestError(source, "not valid JSON: nested too deeply") from None
        return cls.from_dict(raw, source)

    @classmethod
    def from_dict(cls, raw: Any, source: Path) -> Manifest:
        """Validate the decoded JSON of a manifest read from ``source``; raises :class:`ManifestError`."""
        r = _Reader(source)
        r.check(isinstance(raw, dict), "the manifest is not a JSON object")
        r.check(raw.get("format") == FORMAT, f"format is not {FORMAT!r}")
        r.check(raw.get("format_version") == FORMAT_VERSION,
                f"format_version {raw.get('format_version')!r} is not supported (this runtime reads {FORMAT_VERSION})")
        name = r.get(raw, "name", str)
        r.check(bool(name), "name must not be empty")
        labels = r.get(raw, "labels", list)
        r.check(len(labels) >= 2 and all(isinstance(x, str) and x for x in labels) and len(set(labels)) == len(labels),
                "labels must be two or more different non-empty strings")
        threshold = r.number(raw, "threshold")
        r.check(is_model_threshold(threshold), "threshold must be within (0, 1)")
        spec = _tokenizer_spec(r, r.get(raw, "tokenizer", dict))

        inp = r.get(raw, "input", dict)
        out = r.get(raw, "output", dict)
        r.check(r.get(inp, "dtype", str, "input.") == INPUT_DTYPE, f"input.dtype must be {INPUT_DTYPE!r}")
        dynamic = r.get(inp, "dynamic_length", bool, "input.")
        files = _files(r, r.get(raw, "files", dict))

        opset = r.integer(raw, "opset")
        r.check(opset >= MIN_OPSET, f"opset must be at least {MIN_OPSET}")
        versions = r.get(raw, "versions", dict)
        r.check(all(isinstance(v, str) for v in versions.values()), "versions must map names to strings")
        for package in ("tensorflow", "tf2onnx", "onnx", "onnxruntime"):
            r.check(package in versions, f"versions.{package} is missing")
        training = r.get(raw, "training", dict)
        r.get(training, "preset", str, "training.")
        r.get(training, "settings", dict, "training.")
        r.check(0.0 <= r.number(training, "test_accuracy", "training.") <= 1.0,
                "training.test_accuracy must be within [0, 1]")
        parity = _parity(r, r.get(raw, "parity", dict))
        structure = raw.get("structure", {})
        r.check(isinstance(structure, dict), "structure must be an object")
        return cls(
            name=name, labels=tuple(labels), threshold=threshold, tokenizer=spec, dynamic_length=dynamic,
            files=files, opset=opset, versions=versions, training=training, parity=parity, structure=structure,
            input_name=r.get(inp, "name", str, "input."), input_dtype=INPUT_DTYPE,
            output_name=r.get(out, "name", str, "output."), source=source,
        )


def _tokenizer_spec(r: _Reader, tok: dict) -> TokenizerSpec:
    where = "tokenizer."
    spec = TokenizerSpec(
        normalization=r.get(tok, "normalization", str, where),
        max_len=r.integer(tok, "max_len", where),
        padding=r.get(tok, "padding", str, where),
        truncating=r.get(tok, "truncating", str, where),
        vocab_size=r.integer(tok, "vocab_size", where),
        pad_id=r.integer(tok, "pad_id", where),
        oov_id=r.integer(tok, "oov_id", where),
    )
    r.check(spec.normalization == NORMALIZATION,
            f"tokenizer.normalization is {spec.normalization!r}; this runtime implements {NORMALIZATION!r}")
    r.check(spec.max_len >= 1, "tokenizer.max_len must be positive")
    r.check(spec.padding in ("pre", "post"), "tokenizer.padding must be 'pre' or 'post'")
    r.check(spec.truncating in ("pre", "post"), "tokenizer.truncating must be 'pre' or 'post'")
    r.check(spec.pad_id == PAD_ID and spec.oov_id == OOV_ID, f"tokenizer.pad_id/oov_id must be {PAD_ID}/{OOV_ID}")
    r.check(spec.vocab_size >= 3, "tokenizer.vocab_size must be at least 3")
    return spec


def _files(r: _Reader, files_raw: dict) -> dict[str, FileEntry]:
    files: dict[str, FileEntry] = {}
    for key, entry in files_raw.items():
        where = f"files.{key}."
        r.check(key in FILE_KEYS, f"files.{key} is not one of {', '.join(FILE_KEYS)}")
        r.check(isinstance(entry, dict), f"files.{key} is not an object")
        r.check(set(entry) <= {"path", "sha256", "size"}, f"files.{key} has unknown fields")
        rel = r.get(entry, "path", str, where)
        r.check(bool(rel) and not {"/", "\\", "\x00"} & set(rel) and rel not in (".", ".."),
                f"files.{key}.path must be a file name inside the model folder")
        digest = r.get(entry, "sha256", str, where)
        r.check(len(digest) == 64 and all(c in "0123456789abcdef" for c in digest),
                f"files.{key}.sha256 is not a lowercase sha256 hex digest")
        size = r.integer(entry, "size", where)
        r.check(size >= 1, f"files.{key}.size must be positive")
        files[key] = FileEntry(rel, digest, size)
    r.check(VOCAB in files, f"files.{VOCAB} is missing")
    r.check(any(key in files for key in ONNX_KEYS), f"files lists no ONNX model ({FP32} or {INT8})")
    return files


def _parity(r: _Reader, parity: dict) -> dict:
    r.check(r.integer(parity, "reviews", "parity.") >= 1, "parity.reviews must be positive")
    r.check(r.number(parity, "max_abs_diff", "parity.") >= 0, "parity.max_abs_diff must not be negative")
    r.check(0.0 <= r.number(parity, "label_agreement", "parity.") <= 1.0, "parity.label_agreement must be in [0, 1]")
    int8 = r.get(parity, "int8", dict, "parity.")
    r.check("refused" in int8, "parity.int8.refused is missing")
    return parity


class _Reader:
    """Small helpers that turn a missing or mistyped field into a :class:`ManifestError`."""

    def __init__(self, source: Path) -> None:
        self.source = source

    def check(self, ok: bool, message: str) -> None:
        if not ok:
            raise ManifestError(self.source, message)

    def get(self, obj: dict, key: str, kind: type, where: str = "") -> Any:
        value = obj.get(key)
        self.check(isinstance(value, kind) and (kind is bool or not isinstance(value, bool)),
                   f"{where}{key} is missing or not a {_json_type(kind)}")
        return value

    def integer(self, obj: dict, key: str, where: str = "") -> int:
        value = obj.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ManifestError(self.source, f"{where}{key} is missing or not an integer")
        return value

    def number(self, obj: dict, key: str, where: str = "") -> float:
        value = obj.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise ManifestError(self.source, f"{where}{key} is missing or not a number")
        return float(value)


def _json_type(kind: type) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean"}.get(kind, kind.__name__)


# --------------------------------------------------------------------------- verified files


def read_verified(manifest: Manifest, key: str) -> bytes:
    """The bytes of ``files[key]`` after checking that it is a regular file of the listed size and sha256.

    The caller uses exactly these bytes, so the file cannot change between the check and its use.
    Raises :class:`IntegrityError` naming the file.
    """
    data = _check_file(manifest, key, keep=True)
    assert data is not None
    return data


def verify_file(manifest: Manifest, key: str) -> None:
    """Check ``files[key]`` (regular file, size, sha256) without keeping its bytes."""
    _check_file(manifest, key, keep=False)


def _check_file(manifest: Manifest, key: str, *, keep: bool) -> bytes | None:
    entry = manifest.files[key]
    path = manifest.path_of(key)
    digest = hashlib.sha256()
    parts: list[bytes] = []
    read = 0
    try:
        with open_regular(path) as handle:
            size = os.fstat(handle.fileno()).st_size
            if size != entry.size:
                raise IntegrityError(path, f"size is {size} bytes, the manifest says {entry.size} "
                                           "(truncated or replaced?)")
            while read <= entry.size and (chunk := handle.read(1 << 20)):
                digest.update(chunk)
                read += len(chunk)
                if keep:
                    parts.append(chunk)
    except OSError as exc:
        raise IntegrityError(path, read_error(exc, "missing (listed in the manifest)")) from None
    if read != entry.size:
        raise IntegrityError(path, f"size is {read} bytes, the manifest says {entry.size} (changed while read?)")
    if digest.hexdigest() != entry.sha256:
        raise IntegrityError(path, f"sha256 {digest.hexdigest()[:12]}... does not match the manifest's "
                                   f"{entry.sha256[:12]}...")
    return b"".join(parts) if keep else None


def check_onnx_metadata(manifest: Manifest, key: str, metadata: Mapping[str, str]) -> None:
    """The ONNX file ``files[key]`` must carry ``vocab_sha256`` equal to ``files.vocab.sha256``."""
    path = manifest.path_of(key)
    found = metadata.get(META_VOCAB_SHA256)
    if found is None:
        raise IntegrityError(path, f"has no {META_VOCAB_SHA256} in its metadata_props")
    vocab = manifest.files[VOCAB]
    if found.lower() != vocab.sha256:
        raise IntegrityError(path, f"was exported with another vocabulary ({META_VOCAB_SHA256} {found[:12]}..., "
                                   f"{vocab.path} is {vocab.sha256[:12]}...)")
