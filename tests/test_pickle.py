"""Pickling a SentimentClassifier: the model reference and digests travel, the worker reloads and re-verifies."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
from conftest import SEED_MODEL, TINY_SENTENCES

from edge_infer.classifier import SentimentClassifier
from edge_infer.model_folder import IntegrityError


@pytest.fixture()
def copied(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(SEED_MODEL, folder)
    return folder


def _flip_byte(folder: Path, key: str = "fp32") -> Path:
    manifest = json.loads((folder / "manifest.json").read_text())
    path = folder / manifest["files"][key]["path"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    return path


def _fix_manifest(folder: Path, key: str, path: Path) -> None:
    import hashlib

    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"][key]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")


@pytest.mark.parametrize("quantized", [False, True])
def test_round_trip_predicts_identically(quantized: bool) -> None:
    clf = SentimentClassifier.load(SEED_MODEL, quantized=quantized, threads=1)
    clone = pickle.loads(pickle.dumps(clf))
    assert clone is not clf and clone.quantized == quantized
    assert clone.predict(TINY_SENTENCES) == clf.predict(TINY_SENTENCES)
    assert [p.scores for p in clone.predict(TINY_SENTENCES)] == [p.scores for p in clf.predict(TINY_SENTENCES)]


def test_pickle_holds_no_session() -> None:
    data = pickle.dumps(SentimentClassifier.load(SEED_MODEL, threads=1))
    assert len(data) < 2000  # a reference and digests, not megabytes of model
    assert b"onnxruntime" not in data


def test_default_model_round_trip() -> None:
    clf = SentimentClassifier.load(threads=1)
    clone = pickle.loads(pickle.dumps(clf))
    assert clone.manifest.directory == clf.manifest.directory
    assert clone.predict(TINY_SENTENCES[:2]) == clf.predict(TINY_SENTENCES[:2])


def test_plain_flipped_byte_is_refused(copied: Path) -> None:
    data = pickle.dumps(SentimentClassifier.load(copied, threads=1))
    _flip_byte(copied)
    with pytest.raises(IntegrityError, match="sha256"):
        pickle.loads(data)


def test_consistent_but_different_copy_is_refused(copied: Path) -> None:
    data = pickle.dumps(SentimentClassifier.load(copied, threads=1))
    _fix_manifest(copied, "fp32", _flip_byte(copied))
    # the folder alone is consistent: the byte sits in a weight, so the model still loads
    SentimentClassifier.load(copied, threads=1)
    with pytest.raises(IntegrityError, match="differs from the model that was pickled"):
        pickle.loads(data)


def test_changed_manifest_is_refused(copied: Path) -> None:
    data = pickle.dumps(SentimentClassifier.load(copied, threads=1))
    manifest_path = copied / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["threshold"] = 0.25
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError, match="manifest that was pickled"):
        pickle.loads(data)


def test_relative_path_is_stored_absolute(copied: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(copied.parent)
    data = pickle.dumps(SentimentClassifier.load("model", threads=1))
    monkeypatch.chdir("/")
    assert pickle.loads(data).manifest.directory == copied
