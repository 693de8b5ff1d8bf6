"""Bulk scoring on Ray Data (the ``[ray]`` extra): a local 2-CPU Ray started and stopped here, no other address."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from conftest import REPO, SEED_MODEL, TINY_SENTENCES  # noqa: E402

from edge_infer.classifier import SentimentClassifier  # noqa: E402
from edge_infer.integrations.ray import BatchScorer, score_dataset, start_local_ray, task_cause  # noqa: E402
from edge_infer.model_folder import IntegrityError  # noqa: E402

STARS_MODEL = REPO / "models" / "stars"
ROWS = 2000


def _reviews(n: int, seed: int = 7) -> list[str]:
    """``n`` review-like texts: shuffled words of the tiny sentences, 5 to 60 words each."""
    rng = random.Random(seed)
    words = " ".join(TINY_SENTENCES).split()
    return [" ".join(rng.choices(words, k=rng.randint(5, 60))) for _ in range(n)]


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A local Ray (2 CPUs, no dashboard, 200 MB object store); yields its GCS address."""
    address = start_local_ray(2, 200 << 20, {"env_vars": {"PYTHONPATH": _env()["PYTHONPATH"]}})  # this checkout
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    ray.data.DataContext.get_current().raise_original_map_exception = True  # as the CLI: task_cause finds it
    try:
        yield address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def reviews_parquet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    texts = _reviews(ROWS)
    path = tmp_path_factory.mktemp("in") / "reviews.parquet"
    pq.write_table(pa.table({"id": list(range(ROWS)), "text": texts}), path, row_group_size=500)
    return path, texts


def _flip_and_fix(folder: Path) -> None:
    """Change one byte of the fp32 ONNX file and update the manifest: consistent, but another model."""
    import hashlib

    manifest = json.loads((folder / "manifest.json").read_text())
    onnx = folder / manifest["files"]["fp32"]["path"]
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0x01
    onnx.write_bytes(bytes(data))
    manifest["files"]["fp32"]["sha256"] = hashlib.sha256(bytes(data)).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def _bulk(*args: str, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge_infer", "bulk", *args], capture_output=True, text=True,
                          env=_env(), timeout=timeout, cwd=REPO)


# ---------------------------------------------------------------------------- library


def test_import_edge_infer_does_not_import_ray() -> None:
    code = ("import sys, edge_infer, edge_infer.cli; edge_infer.SentimentClassifier; "
            "print(sorted(m for m in ('ray', 'pyarrow', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), check=True)
    assert out.stdout.strip() == "[]"


def test_results_equal_the_api_in_order(cluster: str, reviews_parquet: tuple[Path, list[str]]) -> None:
    path, texts = reviews_parquet
    ds = ray.data.read_parquet(str(path), override_num_blocks=6)
    rows = score_dataset(ds, model=SEED_MODEL, concurrency=2, batch_size=256, num_cpus=0.5).take_all()
    expected = SentimentClassifier.load(SEED_MODEL, threads=1).predict(texts)
    assert [r["id"] for r in rows] == list(range(ROWS))
    assert [r["label"] for r in rows] == [p.label for p in expected]
    np.testing.assert_allclose([r["score"] for r in rows], [p.score for p in expected], rtol=0, atol=1e-6)
    assert all(r["error"] is None for r in rows)


def test_multi_label_columns(cluster: str) -> None:
    texts = _reviews(40, seed=3)
    ds = ray.data.from_arrow(pa.table({"text": texts}))
    rows = score_dataset(ds, model=STARS_MODEL, concurrency=1, batch_size=16).take_all()
    clf = SentimentClassifier.load(STARS_MODEL, threads=1)
    expected = clf.predict(texts)
    assert [r["label"] for r in rows] == [p.label for p in expected]
    for row, pred in zip(rows, expected):
        assert set(row) == {"text", "label", "score", "error"} | {f"score_{x}" for x in clf.labels}
        np.testing.assert_allclose([row[f"score_{x}"] for x in clf.labels], list(pred.scores.values()), atol=1e-6)


def test_bad_rows_get_an_error_and_never_fail_the_job(cluster: str) -> None:
    texts = ["A wonderful film.", None, "", "   ", "Awful, boring, bad."]
    ds = ray.data.from_arrow(pa.table({"text": pa.array(texts, pa.string())}))
    rows = score_dataset(ds, model=SEED_MODEL, concurrency=1, batch_size=2).take_all()
    assert [r["error"] is None for r in rows] == [True, False, False, False, True]
    assert [r["label"] for r in rows][1:4] == [None, None, None]
    assert all(r["score"] is None for r in rows[1:4])
    assert rows[1]["error"] == "null text"


def test_non_string_column_rows_are_bad() -> None:
    scorer = BatchScorer(SentimentClassifier.load(SEED_MODEL, threads=1), "text")
    out = scorer(pa.table({"text": pa.array([1, None], pa.int64())}))
    assert out.column("error").to_pylist() == ["not a string (int)", "null text"]
    assert out.column("label").null_count == 2


def test_a_worker_that_cannot_verify_the_model_fails_the_job(cluster: str, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(SEED_MODEL, folder)
    ds = ray.data.from_arrow(pa.table({"text": ["A wonderful film."] * 8}))
    scored = score_dataset(ds, model=folder, concurrency=1)  # verified here, on the driver
    _flip_and_fix(folder)  # ... then changed before any actor starts
    with pytest.raises(Exception, match="differs from the model that was pickled") as failure:
        scored.take_all()
    assert isinstance(task_cause(failure.value), IntegrityError)  # the type, through Ray's public RayTaskError.cause


# ---------------------------------------------------------------------------- CLI


def test_cli_local_ray_parquet_to_parquet(reviews_parquet: tuple[Path, list[str]], tmp_path: Path) -> None:
    path, texts = reviews_parquet
    out = tmp_path / "out"
    result = _bulk(str(path), str(out), "--text-column", "text", "--id-column", "id", "--model", str(SEED_MODEL),
                   "--actors", "1")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"{ROWS} rows, 0 bad rows" in result.stdout
    table = pq.read_table(out)
    assert table.column_names == ["id", "label", "score", "error"]
    assert sorted(os.listdir(out)) == ["part-00000.parquet"]
    expected = SentimentClassifier.load(SEED_MODEL, threads=1).predict(texts)
    assert table.column("id").to_pylist() == list(range(ROWS))
    assert table.column("label").to_pylist() == [p.label for p in expected]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_cli_jsonl_and_csv_on_an_existing_cluster(cluster: str, tmp_path: Path, fmt: str) -> None:
    texts = ["A wonderful, moving film.", "", "Terrible plot, a boring waste of time.", "42"]
    src = tmp_path / f"in.{fmt}"
    if fmt == "jsonl":
        src.write_text("".join(json.dumps({"review": t, "key": f"r{i}"}) + "\n" for i, t in enumerate(texts)))
    else:
        src.write_text("key,review\n" + "".join(f'r{i},"{t}"\n' for i, t in enumerate(texts)))
    out = tmp_path / "out"
    result = _bulk(str(tmp_path), str(out), "--text-column", "review", "--id-column", "key", "--model",
                   str(SEED_MODEL), "--actors", "1", "--address", cluster)
    assert result.returncode == 1, result.stderr[-2000:]  # one bad row: exit 1, the others scored
    assert "4 rows, 1 bad rows" in result.stdout
    rows = pq.read_table(out).to_pylist()
    assert [r["key"] for r in rows] == ["r0", "r1", "r2", "r3"]
    expected = SentimentClassifier.load(SEED_MODEL, threads=1).predict([texts[0], texts[2], texts[3]])
    assert [rows[i]["label"] for i in (0, 2, 3)] == [p.label for p in expected]
    assert rows[1]["label"] is None and rows[1]["score"] is None
    assert rows[1]["error"] == "empty text"


def test_cli_usage_errors(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("x\n")
    result = _bulk(str(tmp_path / "in.txt"), str(tmp_path / "out"))
    assert result.returncode == 2 and "not .parquet, .csv or .jsonl" in result.stderr


def test_cli_without_the_extra(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "good"}\n')
    code = ("import sys; sys.modules['ray'] = None; from edge_infer.cli import main; "
            f"main(['bulk', {str(src)!r}, {str(tmp_path / 'out')!r}])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ['edge-infer: error: the bulk command needs Ray: '
                                                  'pip install "edge-infer[ray]"']
