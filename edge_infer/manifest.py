"""Read and verify a model folder: ``manifest.json``, the ONNX files and the vocabulary (docs/artifacts.md).

Nothing here creates an ONNX Runtime session: :func:`verify_file` checks a file's size and sha256 against
the manifest and :func:`onnx_metadata` reads an ONNX file's ``metadata_props`` with a few lines of
protobuf decoding (the ``onnx`` package is not a runtime dependency).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from edge_infer.tokenizer import NORMALIZATION, OOV_ID, PAD_ID

FORMAT = "edge-infer-model"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
_MAX_MANIFEST_BYTES = 1 << 20


class ModelError(Exception):
    """A model that cannot be used: not found, malformed, or failing verification.

    ``path`` is the file (or folder) at fault.
    """

    def __init__(self, path: str | os.PathLike[str], message: str) -> None:
        self.path = Path(path)
        self.reason = message
        super().__init__(f"{self.path}: {message}")


class ManifestError(ModelError):
    """``manifest.json`` is missing, not JSON, or does not follow docs/artifacts.md."""


class IntegrityError(ModelError):
    """A model file does not match the manifest (size, sha256) or the vocabulary it was exported with."""


@dataclass(frozen=True)
class TokenizerSpec:
    """The tokenizer settings that training chose."""

    normalization: str
    max_len: int
    padding: Literal["pre", "post"]
    truncating: Literal["pre", "post"]
    pad_id: int
    oov_id: int
    vocab_size: int


@dataclass(frozen=True)
class FileEntry:
    """One file of the model folder: ``path`` is relative to the manifest's folder."""

    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """A parsed and validated ``manifest.json``."""

    source: Path
    name: str
    labels: tuple[str, str]
    threshold: float
    tokenizer: TokenizerSpec
    input_name: str
    input_dtype: str
    dynamic_length: bool
    output_name: str
    files: Mapping[str, FileEntry]
    opset: int | None = None
    versions: Mapping[str, Any] = field(default_factory=dict)
    training: Mapping[str, Any] = field(default_factory=dict)
    parity: Mapping[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def directory(self) -> Path:
        return self.source.parent

    def path_of(self, key: str) -> Path:
        """Absolute path of ``files[key]``."""
        return self.directory / self.files[key].path

    @property
    def has_int8(self) -> bool:
        return "int8" in self.files

    @property
    def int8_refused(self) -> str | None:
        """Why the export refused the int8 model, when it says so."""
        int8 = self.parity.get("int8") if isinstance(self.parity, Mapping) else None
        if isinstance(int8, Mapping) and int8.get("refused"):
            return str(int8["refused"])
        return None

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Manifest:
        """Parse ``path`` (a ``manifest.json`` or the folder holding one); raises :class:`ManifestError`."""
        source = Path(path)
        if source.is_dir():
            source = source / MANIFEST_NAME
        try:
            with open(source, "rb") as handle:
                data = handle.read(_MAX_MANIFEST_BYTES + 1)
        except FileNotFoundError:
            raise ManifestError(source, "no manifest.json (not a model folder?)") from None
        except OSError as exc:
            raise ManifestError(source, f"cannot read: {exc.strerror or exc}") from None
        if len(data) > _MAX_MANIFEST_BYTES:
            raise ManifestError(source, "too large to be a manifest")
        try:
            raw = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ManifestError(source, f"not valid JSON: {exc}") from None
        return cls.from_dict(raw, source)

    @classmethod
    def from_dict(cls, raw: Any, source: Path) -> Manifest:
        """Validate the decoded JSON of a manifest."""
        r = _Reader(source)
        r.check(isinstance(raw, dict), "the manifest is not a JSON object")
        r.check(raw.get("format") == FORMAT, f"format is not {FORMAT!r}")
        r.check(raw.get("format_version") == FORMAT_VERSION,
                f"format_version {raw.get('format_version')!r} is not supported (this runtime reads {FORMAT_VERSION})")
        labels = r.get(raw, "labels", list)
        r.check(len(labels) == 2 and all(isinstance(x, str) and x for x in labels) and labels[0] != labels[1],
                "labels must be two different non-empty strings")
        threshold = r.number(raw, "threshold")
        r.check(0.0 <= threshold <= 1.0, "threshold must be within [0, 1]")

        tok = r.get(raw, "tokenizer", dict)
        spec = TokenizerSpec(
            normalization=r.get(tok, "normalization", str, "tokenizer."),
            max_len=r.integer(tok, "max_len", "tokenizer."),
            padding=r.get(tok, "padding", str, "tokenizer."),  # type: ignore[arg-type]
            truncating=r.get(tok, "truncating", str, "tokenizer."),  # type: ignore[arg-type]
            pad_id=r.integer(tok, "pad_id", "tokenizer."),
            oov_id=r.integer(tok, "oov_id", "tokenizer."),
            vocab_size=r.integer(tok, "vocab_size", "tokenizer."),
        )
        r.check(spec.normalization == NORMALIZATION,
                f"tokenizer.normalization is {spec.normalization!r}; this runtime implements {NORMALIZATION!r}")
        r.check(spec.max_len >= 1, "tokenizer.max_len must be positive")
        r.check(spec.padding in ("pre", "post"), "tokenizer.padding must be 'pre' or 'post'")
        r.check(spec.truncating in ("pre", "post"), "tokenizer.truncating must be 'pre' or 'post'")
        r.check(spec.pad_id == PAD_ID and spec.oov_id == OOV_ID,
                f"tokenizer.pad_id/oov_id must be {PAD_ID}/{OOV_ID}")
        r.check(spec.vocab_size >= 2, "tokenizer.vocab_size must be at least 2")

        inp = r.get(raw, "input", dict)
        out = r.get(raw, "output", dict)
        input_dtype = inp.get("dtype", "int32")
        r.check(input_dtype == "int32", "input.dtype must be 'int32'")
        dynamic = inp.get("dynamic_length", False)
        r.check(isinstance(dynamic, bool), "input.dynamic_length must be true or false")

        files_raw = r.get(raw, "files", dict)
        files: dict[str, FileEntry] = {}
        for key, entry in files_raw.items():
            where = f"files.{key}."
            r.check(isinstance(entry, dict), f"files.{key} is not an object")
            rel = r.get(entry, "path", str, where)
            pure = PurePosixPath(rel)
            r.check(bool(rel) and not pure.is_absolute() and ".." not in pure.parts and "\\" not in rel,
                    f"files.{key}.path must be a relative path inside the model folder")
            digest = r.get(entry, "sha256", str, where).lower()
            r.check(len(digest) == 64 and all(c in "0123456789abcdef" for c in digest),
                    f"files.{key}.sha256 is not a sha256 hex digest")
            size = r.integer(entry, "size", where)
            r.check(size >= 0, f"files.{key}.size must not be negative")
            files[key] = FileEntry(rel, digest, size)
        for key in ("fp32", "vocab"):
            r.check(key in files, f"files.{key} is missing")

        opset = raw.get("opset")
        return cls(
            source=source,
            name=str(raw.get("name", source.parent.name)),
            labels=(labels[0], labels[1]),
            threshold=threshold,
            tokenizer=spec,
            input_name=r.get(inp, "name", str, "input."),
            input_dtype=input_dtype,
            dynamic_length=dynamic,
            output_name=r.get(out, "name", str, "output."),
            files=files,
            opset=opset if isinstance(opset, int) else None,
            versions=_mapping(raw.get("versions")),
            training=_mapping(raw.get("training")),
            parity=_mapping(raw.get("parity")),
            raw=raw,
        )


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


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
                   f"{where}{key} is missing or not a {kind.__name__}")
        return value

    def integer(self, obj: dict, key: str, where: str = "") -> int:
        value = obj.get(key)
        self.check(isinstance(value, int) and not isinstance(value, bool), f"{where}{key} is missing or not an integer")
        return value

    def number(self, obj: dict, key: str, where: str = "") -> float:
        value = obj.get(key)
        self.check(isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
                   f"{where}{key} is missing or not a number")
        return float(value)


# --------------------------------------------------------------------------- verification


ONNX_KEYS = ("fp32", "int8")
"""The ``files`` entries that are ONNX models (each carries ``vocab_sha256``)."""


def verify_model(manifest: Manifest, keep: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Verify the whole model folder; returns the verified bytes of the ``keep`` entries.

    Every file in ``files`` must match its size and sha256, and every ONNX file must carry the
    vocabulary's sha256 in its metadata. Raises :class:`IntegrityError` naming the first file at fault.
    """
    kept: dict[str, bytes] = {}
    for key in sorted(manifest.files, key=lambda k: (k not in keep, k)):
        if key in keep or key in ONNX_KEYS:
            data = read_verified(manifest, key)
            if key in ONNX_KEYS:
                check_vocab_hash(manifest, key, data)
            if key in keep:
                kept[key] = data
        else:
            verify_file(manifest, key)
    return kept


def read_verified(manifest: Manifest, key: str) -> bytes:
    """The bytes of ``files[key]`` after checking their size and sha256; raises :class:`IntegrityError`.

    The caller uses exactly these bytes, so the file cannot change between the check and its use.
    """
    data = _check_file(manifest, key, keep=True)
    assert data is not None
    return data


def verify_file(manifest: Manifest, key: str) -> None:
    """Check ``files[key]`` (size and sha256) without keeping its bytes."""
    _check_file(manifest, key, keep=False)


def _check_file(manifest: Manifest, key: str, *, keep: bool) -> bytes | None:
    entry = manifest.files[key]
    path = manifest.path_of(key)
    digest = hashlib.sha256()
    parts: list[bytes] = []
    read = 0
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size != entry.size:
                raise IntegrityError(path, f"size is {size} bytes, the manifest says {entry.size} "
                                           "(truncated or replaced?)")
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
                read += len(chunk)
                if keep:
                    parts.append(chunk)
    except FileNotFoundError:
        raise IntegrityError(path, "missing (listed in the manifest)") from None
    except IsADirectoryError:
        raise IntegrityError(path, "is a directory, not a file") from None
    except OSError as exc:
        raise IntegrityError(path, f"cannot read: {exc.strerror or exc}") from None
    if read != entry.size:
        raise IntegrityError(path, f"size is {read} bytes, the manifest says {entry.size} (changed while read?)")
    if digest.hexdigest() != entry.sha256:
        raise IntegrityError(path, f"sha256 {digest.hexdigest()[:12]}... does not match the manifest's "
                                   f"{entry.sha256[:12]}...")
    return b"".join(parts) if keep else None


def check_vocab_hash(manifest: Manifest, key: str, onnx_bytes: bytes) -> None:
    """The ONNX file ``files[key]`` must carry ``metadata_props['vocab_sha256'] == files.vocab.sha256``."""
    path = manifest.path_of(key)
    try:
        props = onnx_metadata(onnx_bytes)
    except ValueError as exc:
        raise IntegrityError(path, f"not a readable ONNX model ({exc})") from None
    found = props.get("vocab_sha256")
    if found is None:
        raise IntegrityError(path, "has no vocab_sha256 in its metadata_props")
    if found.lower() != manifest.files["vocab"].sha256:
        raise IntegrityError(path, f"was exported with another vocabulary (vocab_sha256 {found[:12]}..., "
                                   f"{manifest.files['vocab'].path} is {manifest.files['vocab'].sha256[:12]}...)")


# --------------------------------------------------------------------------- ONNX metadata without onnx

_MODEL_METADATA_PROPS = 14  # ModelProto.metadata_props: repeated StringStringEntryProto
_ENTRY_KEY, _ENTRY_VALUE = 1, 2


def _varint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(buf: bytes | memoryview):
    """Yield ``(field_number, wire_type, value)`` of one protobuf message; value is a memoryview for wire type 2."""
    pos, end = 0, len(buf)
    while pos < end:
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = None, pos + 8
        elif wire == 5:
            value, pos = None, pos + 4
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > end:
                raise ValueError("truncated field")
            value, pos = buf[pos : pos + length], pos + length
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if pos > end or number == 0:
            raise ValueError("malformed protobuf")
        yield number, wire, value


def onnx_metadata(model_bytes: bytes) -> dict[str, str]:
    """``metadata_props`` of a serialized ONNX ``ModelProto`` as a dict; raises ValueError if it is not one."""
    props: dict[str, str] = {}
    view = memoryview(model_bytes)
    seen_graph = False
    for number, wire, value in _fields(view):
        if number == 7 and wire == 2:
            seen_graph = True
        if number == _MODEL_METADATA_PROPS and wire == 2:
            key = val = ""
            for n, w, v in _fields(value):
                if w == 2 and n == _ENTRY_KEY:
                    key = bytes(v).decode("utf-8")
                elif w == 2 and n == _ENTRY_VALUE:
                    val = bytes(v).decode("utf-8")
            props[key] = val
    if not seen_graph:
        raise ValueError("no graph")
    return props
