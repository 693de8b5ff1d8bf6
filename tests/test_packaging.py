"""`pip install .` (a real wheel, not editable) into a fresh venv without TensorFlow gives a working CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import REPO, requires_default_model

PACKAGED = "edge_infer/_default_model/"


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONNOUSERSITE="1")
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, **kw)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc


def check_wheel(source: Path, work: Path) -> None:
    """Build ``source`` into a wheel, install it in a fresh venv and classify a review with ``edge-infer``."""
    wheels = work / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", os.fspath(wheels), os.fspath(source)])
    (wheel,) = wheels.glob("edge_infer-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    listed = json.loads((source / "models" / "default" / "manifest.json").read_text())["files"]
    assert {PACKAGED + "manifest.json", *(PACKAGED + entry["path"] for entry in listed.values())} <= names, names
    assert not any(n.endswith(".keras") for n in names)

    venv = work / "venv"
    _run([sys.executable, "-m", "venv", os.fspath(venv)])
    py, cli = venv / "bin" / "python", venv / "bin" / "edge-infer"
    _run([os.fspath(py), "-m", "pip", "install", "-q", os.fspath(wheel)])

    review = work / "review.txt"
    review.write_text("A wonderful, moving film: brilliant acting and a beautiful story. I loved every minute.\n")
    out = _run([os.fspath(cli), "predict", "--format", "jsonl", os.fspath(review)], cwd=work).stdout
    assert '"label": "positive"' in out, out
    check = ("import importlib.util, edge_infer; "
             "assert importlib.util.find_spec('tensorflow') is None, 'tensorflow is installed'; "
             "print(edge_infer.SentimentClassifier.load().manifest.directory)")
    where = _run([os.fspath(py), "-c", check], cwd=work).stdout.strip()
    assert where.startswith(os.fspath(venv)) and where.endswith("_default_model"), where


@requires_default_model
def test_wheel_in_a_fresh_venv_predicts_without_tensorflow(tmp_path: Path):
    check_wheel(REPO, tmp_path)
