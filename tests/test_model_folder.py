"""The model-folder contract: the typed Manifest writes what it reads, and docs/manifest.schema.json agrees
with the reader both ways (what the schema refuses, the loader refuses; what it accepts, both accept)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from conftest import DELETE, REPO, with_field

from edge_infer.model_folder import FORMAT, MANIFEST_NAME, FileEntry, Manifest, ManifestError, versioned_name

jsonschema = pytest.importorskip("jsonschema")
SCHEMA = json.loads((REPO / "docs" / "manifest.schema.json").read_text())
COMMITTED = [REPO / "models" / name for name in ("seed", "default")]


def schema_errors(doc: dict) -> list[str]:
    return [e.message for e in jsonschema.Draft202012Validator(SCHEMA).iter_errors(doc)]


def loads(doc: dict, tmp_path: Path) -> Manifest:
    return Manifest.from_dict(copy.deepcopy(doc), tmp_path / MANIFEST_NAME)


@pytest.fixture(scope="module")
def good() -> dict:
    return json.loads((REPO / "models" / "seed" / MANIFEST_NAME).read_text())


@pytest.mark.parametrize("folder", COMMITTED, ids=lambda p: p.name)
def test_committed_manifests_round_trip(folder: Path):
    raw = json.loads((folder / MANIFEST_NAME).read_text())
    manifest = Manifest.load(folder)
    assert manifest.to_dict() == raw  # the writer reproduces the file the reader read, field for field
    assert schema_errors(raw) == []


def test_save_writes_what_load_reads(good: dict, tmp_path: Path):
    manifest = loads(good, tmp_path)
    path = manifest.save(tmp_path)
    again = Manifest.load(path)
    assert again == manifest and again.source == path
    assert schema_errors(json.loads(path.read_text())) == []


def test_save_refuses_what_the_reader_would_refuse(good: dict, tmp_path: Path):
    manifest = loads(good, tmp_path)
    bad = Manifest(**{**manifest.__dict__, "threshold": 1.5})
    with pytest.raises(ManifestError, match="threshold"):
        bad.save(tmp_path)
    assert not (tmp_path / MANIFEST_NAME).exists()


SCHEMA_INVALID = {
    "format": ("format", "other-model"),
    "format_version": ("format_version", 2),
    "name empty": ("name", ""),
    "one label": ("labels", ["positive"]),
    "repeated label": ("labels", ["good", "good"]),
    "threshold above 1": ("threshold", 1.5),
    "threshold 0": ("threshold", 0),
    "threshold a string": ("threshold", "0.5"),
    "max_len 0": ("tokenizer.max_len", 0),
    "padding": ("tokenizer.padding", "middle"),
    "pad_id": ("tokenizer.pad_id", 3),
    "vocab_size 2": ("tokenizer.vocab_size", 2),
    "no tokenizer": ("tokenizer", DELETE),
    "dtype": ("input.dtype", "int64"),
    "dynamic_length missing": ("input.dynamic_length", DELETE),
    "no output name": ("output.name", DELETE),
    "no ONNX file": ("files", {"vocab": {"path": "vocab.txt", "sha256": "0" * 64, "size": 1}}),
    "no vocab": ("files.vocab", DELETE),
    "unknown file key": ("files.onnx", {"path": "x.onnx", "sha256": "0" * 64, "size": 1}),
    "path in a subfolder": ("files.vocab.path", "sub/vocab.txt"),
    "path outside": ("files.vocab.path", "../vocab.txt"),
    "path with a NUL byte": ("files.vocab.path", "vocab.txt\u0000"),
    "sha256 short": ("files.fp32.sha256", "abc"),
    "sha256 upper case": ("files.fp32.sha256", "A" * 64),
    "size 0": ("files.fp32.size", 0),
    "extra file field": ("files.fp32.mode", "0644"),
    "opset 12": ("opset", 12),
    "versions without onnx": ("versions.onnx", DELETE),
    "version a number": ("versions.onnx", 1.2),
    "training without preset": ("training.preset", DELETE),
    "test_accuracy 2": ("training.test_accuracy", 2),
    "parity without int8": ("parity.int8", DELETE),
    "int8 without refused": ("parity.int8", {"reviews": 3}),
    "label_agreement 1.5": ("parity.label_agreement", 1.5),
}


@pytest.mark.parametrize("case", sorted(SCHEMA_INVALID))
def test_what_the_schema_refuses_the_loader_refuses(good: dict, tmp_path: Path, case: str):
    doc = with_field(good, *SCHEMA_INVALID[case])
    assert schema_errors(doc), f"the schema accepts {case!r}"
    with pytest.raises(ManifestError):
        loads(doc, tmp_path)


SCHEMA_VALID = {
    "no int8": ("files.int8", DELETE),
    "int8 only (as the wheel ships a model packaged int8-only)": ("files.fp32", DELETE),
    "other threshold": ("threshold", 0.37),
    "dynamic length": ("input.dynamic_length", True),
    "post truncation": ("tokenizer.truncating", "post"),
    "other label names": ("labels", ["bad", "good"]),
    "three labels": ("labels", ["bad", "meh", "good"]),
    "no structure": ("structure", DELETE),
}


@pytest.mark.parametrize("case", sorted(SCHEMA_VALID))
def test_what_the_schema_accepts_both_accept(good: dict, tmp_path: Path, case: str):
    doc = with_field(good, *SCHEMA_VALID[case])
    assert schema_errors(doc) == []
    assert loads(doc, tmp_path).to_dict() == doc


def test_file_entry_and_versioned_names(tmp_path: Path):
    file = tmp_path / "model.onnx"
    file.write_bytes(b"onnx bytes")
    entry = FileEntry.of(file)
    assert (entry.path, entry.size, len(entry.sha256)) == ("model.onnx", 10, 64)
    name = versioned_name("int8", entry.sha256)
    assert name == f"model.int8.{entry.sha256[:12]}.onnx" and FORMAT == SCHEMA["properties"]["format"]["const"]
