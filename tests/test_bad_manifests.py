"""The shared bad-manifest vectors (tests/bad_manifests.json): Python refuses every case, with the expected error
class and reason; web/test/manifest.test.js holds the JavaScript runtime to the same cases."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO

from edge_infer.classifier import SentimentClassifier
from edge_infer.model_folder import MANIFEST_NAME, ModelError

VECTORS = json.loads((REPO / "tests" / "bad_manifests.json").read_text(encoding="utf-8"))
CASES = {case["name"]: case for case in VECTORS["cases"]}


def _walk(doc: Any, dotted: str) -> tuple[Any, str]:
    *parents, last = dotted.split(".")
    for key in parents:
        doc = doc[key]
    return doc, last


def manifest_text(raw: dict, case: dict) -> str:
    """The manifest text of ``case`` built from ``raw`` as tests/bad_manifests.json's "about" describes."""
    doc = copy.deepcopy(raw)
    for dotted in case.get("delete", []):
        node, last = _walk(doc, dotted)
        del node[last]
    for dotted, source in case.get("copy", {}).items():
        node, last = _walk(doc, dotted)
        value_node, value_key = _walk(doc, source)
        node[last] = copy.deepcopy(value_node[value_key])
    for dotted, value in case.get("set", {}).items():
        if dotted == "":
            doc = value
        else:
            node, last = _walk(doc, dotted)
            node[last] = value
    text = json.dumps(doc, indent=2, ensure_ascii=False)
    if "replace" in case:
        old, new = case["replace"]
        assert old in text, f"{case['name']}: {old!r} is not in the manifest"
        text = text.replace(old, new)
    text = case.get("prefix", "") + text + " " * case.get("append_spaces", 0)
    return case.get("text", text)


def model_folder(tmp_path: Path, model: str, text: str) -> Path:
    """A folder with ``text`` as its manifest and links to every other file of ``models/<model>``."""
    folder = tmp_path / model
    folder.mkdir()
    for item in (REPO / "models" / model).iterdir():
        if item.name != MANIFEST_NAME:
            (folder / item.name).symlink_to(item)
    (folder / MANIFEST_NAME).write_text(text, encoding="utf-8")
    return folder


@pytest.mark.parametrize("model", sorted({case["model"] for case in CASES.values()}))
def test_the_unchanged_manifests_load(tmp_path: Path, model: str):
    raw = json.loads((REPO / "models" / model / MANIFEST_NAME).read_text(encoding="utf-8"))
    clf = SentimentClassifier.load(model_folder(tmp_path, model, manifest_text(raw, {"name": "unchanged"})), threads=1)
    assert clf.manifest.name == raw["name"]


@pytest.mark.parametrize("name", list(CASES))
def test_python_refuses_each_bad_manifest(tmp_path: Path, name: str):
    case = CASES[name]
    raw = json.loads((REPO / "models" / case["model"] / MANIFEST_NAME).read_text(encoding="utf-8"))
    folder = model_folder(tmp_path, case["model"], manifest_text(raw, case))
    with pytest.raises(ModelError) as caught:
        SentimentClassifier.load(folder, threads=1)
    assert type(caught.value).__name__ == case["refused"], str(caught.value)
    assert case.get("mentions", "") in caught.value.reason
