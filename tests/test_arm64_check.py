"""bench/arm64: the pass/fail rule of the ARM64 comparison, and check.sh's skip line where it cannot run."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# By path, under its own name: bench/compare.py is imported as "compare" by tests/test_bench.py.
_spec = importlib.util.spec_from_file_location("arm64_compare", REPO / "bench" / "arm64" / "compare.py")
assert _spec is not None and _spec.loader is not None
compare = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compare)


def _side(labels: list[str], scores: list[float], int8_labels: list[str] | None = None,
          int8_scores: list[float] | None = None) -> dict:
    def run(ls: list[str], ss: list[float]) -> dict:
        return {"labels": ls, "scores": [[1 - s, s] for s in ss], "seconds": 1.0}

    model = {"fp32": run(labels, scores)}
    if int8_labels is not None and int8_scores is not None:
        model["int8"] = run(int8_labels, int8_scores)
    return {"models": {"m": model}}


def _rows(host: dict, arm: dict, **kw) -> dict[str, dict]:
    return {r["precision"]: r for r in compare.compare(host, arm, **kw)}


def test_fp32_passes_within_the_tolerance_and_fails_beyond_it():
    host = _side(["positive", "negative"], [0.9, 0.2])
    assert _rows(host, _side(["positive", "negative"], [0.9 + 9e-6, 0.2]))["fp32"]["pass"]
    row = _rows(host, _side(["positive", "negative"], [0.9 + 2e-5, 0.2]))["fp32"]
    assert not row["pass"] and row["diff"] == pytest.approx(2e-5)


def test_fp32_fails_on_one_label_even_with_a_tiny_difference():
    row = _rows(_side(["positive", "negative"], [0.5, 0.2]), _side(["negative", "negative"], [0.5 - 1e-7, 0.2]))["fp32"]
    assert row["equal"] == 1 and not row["pass"]


def test_int8_is_judged_by_the_export_gate_unless_strict():
    n = 200
    labels = ["positive"] * n
    host = _side(labels, [0.9] * n, labels, [0.9] * n)
    flipped = ["negative"] + labels[1:]  # 199 of 200 equal (99.5 %), scores 5e-3 apart
    arm = _side(labels, [0.9] * n, flipped, [0.895] * n)
    assert _rows(host, arm)["int8"]["pass"]
    assert not _rows(host, arm, strict_int8=True)["int8"]["pass"]
    three = ["negative"] * 3 + labels[3:]  # 197 of 200 (98.5 %): below the gate
    assert not _rows(host, _side(labels, [0.9] * n, three, [0.9] * n))["int8"]["pass"]


def test_a_model_scored_on_one_side_only_fails():
    host = _side(["positive"], [0.9], ["positive"], [0.9])
    arm = _side(["positive"], [0.9])
    assert not _rows(host, arm)["int8"]["pass"]


def test_check_sh_skips_with_one_line_where_it_cannot_run(tmp_path):
    env = {**os.environ, "EDGE_INFER_DATA_DIR": str(tmp_path / "missing"), "EDGE_INFER_ARM64_ROOT": str(tmp_path)}
    done = subprocess.run(["bash", str(REPO / "bench" / "arm64" / "check.sh")], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0
    assert done.stdout.startswith("arm64 check skipped: ") and done.stdout.count("\n") == 1
    assert not any(tmp_path.iterdir())  # nothing built
