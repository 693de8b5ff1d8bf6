"""`pip install .` (a real wheel, not editable) into a fresh venv without TensorFlow gives a working CLI, and
every packaged model (edge_infer/packaged.py) is in the wheel, with its chosen precisions, loadable by name."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import REPO, SEED_MODEL, copy_exported, requires_default_model

from edge_infer import packaged

NOT_EXPORTED = "not-exported"
"""A packaged name the staged registry adds with no model folder: the wheel must build without it."""


def _run(cmd: list[str], ok: bool = True, **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONNOUSERSITE="1")
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, **kw)
    if ok:
        assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc


def stage_checkout(work: Path) -> Path:
    """The checkout's build inputs in ``work/src``: each packaged model's exported folder (models/seed stands
    in for one not exported yet, so the multi-model wheel is always tested) and a registry with one more
    name whose folder does not exist."""
    src = work / "src"
    src.mkdir()
    for name in ("pyproject.toml", "hatch_build.py", "README.md", ".gitignore"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "edge_infer", src / "edge_infer", ignore=shutil.ignore_patterns("__pycache__", "_models"))
    for model in packaged.MODELS:
        exported = REPO / model.folder
        copy_exported(exported if (exported / "manifest.json").is_file() else SEED_MODEL, src / model.folder)
    with open(src / "edge_infer" / "packaged.py", "a", encoding="utf-8") as registry:
        registry.write(f"\nMODELS += (PackagedModel({NOT_EXPORTED!r}, 'models/{NOT_EXPORTED}', ('int8',)),)\n")
    return src


def check_wheel(source: Path, work: Path) -> None:
    """Build ``source`` into a wheel, install it in a fresh venv and classify a review with each packaged model."""
    wheels = work / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", os.fspath(wheels), os.fspath(source)])
    (wheel,) = wheels.glob("edge_infer-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert not any(n.endswith(".keras") for n in names)
    for model in packaged.MODELS:  # exactly the manifest and the files of the chosen precisions
        listed = json.loads((source / model.folder / "manifest.json").read_text())["files"]
        kept = {key for key in listed if key == "vocab" or key in model.precisions}
        inside = f"edge_infer/{packaged.INSTALLED_DIR}/{model.name}/"
        assert {n for n in names if n.startswith(inside)} == {inside + "manifest.json",
                                                               *(inside + listed[k]["path"] for k in kept)}, names
        shipped = json.loads(zipfile.ZipFile(wheel).read(inside + "manifest.json"))
        assert shipped["files"] == {k: listed[k] for k in kept}
    assert not any(f"/{NOT_EXPORTED}/" in n for n in names)

    venv = work / "venv"
    _run([sys.executable, "-m", "venv", os.fspath(venv)])
    py, cli = venv / "bin" / "python", venv / "bin" / "edge-infer"
    _run([os.fspath(py), "-m", "pip", "install", "-q", os.fspath(wheel)])

    review = work / "review.txt"
    review.write_text("A wonderful, moving film: brilliant acting and a beautiful story. I loved every minute.\n")
    out = _run([os.fspath(cli), "predict", "--format", "jsonl", os.fspath(review)], cwd=work).stdout
    assert '"label": "positive"' in out, out
    for model in packaged.MODELS:
        out = _run([os.fspath(cli), "predict", "--model", model.name, "--format", "jsonl", os.fspath(review)],
                   cwd=work).stdout
        assert '"label": "positive"' in out, (model.name, out)
    missing = _run([os.fspath(cli), "info", "--model", NOT_EXPORTED], ok=False, cwd=work)
    assert missing.returncode == 2 and "is not installed with this edge-infer" in missing.stderr

    rows = json.loads(_run([os.fspath(cli), "info", "--list", "--format", "json"], cwd=work).stdout)
    assert [(r["name"], r["default"]) for r in rows] == [(m.name, m.name == packaged.DEFAULT) for m in packaged.MODELS]
    check = ("import importlib.util, json, sys, edge_infer\n"
             "from edge_infer.classifier import SentimentClassifier, verify\n"
             "assert importlib.util.find_spec('tensorflow') is None, 'tensorflow is installed'\n"
             "out = {'default': str(SentimentClassifier.load().manifest.directory)}\n"
             "for name in sys.argv[1:]:\n"
             "    clf = SentimentClassifier.load(name, threads=1)\n"
             "    out[name] = [str(clf.manifest.directory), clf.quantized, sorted(verify(name).files)]\n"
             "print(json.dumps(out))\n")
    found = json.loads(_run([os.fspath(py), "-c", check, *packaged.names()], cwd=work).stdout)
    site = os.fspath(venv)
    assert found["default"].startswith(site) and found["default"].endswith(f"/_models/{packaged.DEFAULT}")
    for model in packaged.MODELS:
        where, quantized, files = found[model.name]
        assert where.startswith(site) and where.endswith(f"/_models/{model.name}"), where
        assert quantized == ("fp32" not in model.precisions)  # an int8-only model loads int8 by itself
        assert set(files) - {"vocab"} <= set(model.precisions)


@requires_default_model
def test_wheel_in_a_fresh_venv_predicts_without_tensorflow(tmp_path: Path):
    check_wheel(stage_checkout(tmp_path), tmp_path)
