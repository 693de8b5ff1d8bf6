"""`edge-infer bulk` on bad inputs, collisions, interruptions, dead addresses and a busy 2-CPU machine
(issues 23 and 25). Every run is a subprocess with a timeout; the runs that need Ray join one local 2-CPU Ray."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from conftest import REPO, SEED_MODEL, TINY_SENTENCES  # noqa: E402
from test_ray import _env, _reviews  # noqa: E402

from edge_infer.classifier import SentimentClassifier  # noqa: E402
from edge_infer.integrations.bulk_inputs import InputFileError, plan_inputs, read_file  # noqa: E402
from edge_infer.integrations.ray import BatchScorer, start_local_ray  # noqa: E402
from edge_infer.model_folder import IntegrityError  # noqa: E402

RUN_S = 240
"""Upper bound for one bulk run: this machine is shared and busy (a run of a few rows takes 5 to 70 s)."""


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A local Ray with 2 CPUs for the CLI runs (``--address``); yields its GCS address."""
    address = start_local_ray(2, 200 << 20, {"env_vars": {"PYTHONPATH": _env()["PYTHONPATH"]}})
    try:
        yield address
    finally:
        ray.shutdown()


def _bulk(*args: str, timeout: float = RUN_S, env: dict[str, str] | None = None,
          **popen: Any) -> subprocess.CompletedProcess[str]:
    """Run the command in a session of its own: on a timeout the whole session (its local Ray too) is killed."""
    cmd = [sys.executable, "-m", "edge_infer", "bulk", *args, "--model", str(SEED_MODEL)]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env or _env(),
                          cwd=REPO, start_new_session=True, **popen) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def _one_error_line(stderr: str) -> str:
    """The command's one error line; no Python or Ray traceback besides it."""
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = [ln for ln in stderr.splitlines() if ln.startswith("edge-infer:")]
    assert len(lines) == 1, stderr[-3000:]
    assert stderr.rstrip().splitlines()[-1] == lines[0]
    return lines[0]


def _jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# ---------------------------------------------------------------------------- no Ray needed


def test_a_result_column_in_the_input_is_refused_not_overwritten(tmp_path: Path) -> None:
    src = _jsonl(tmp_path / "in.jsonl", [{"text": "A wonderful film.", "label": "pos", "error": "none"}])
    result = _bulk(str(src), str(tmp_path / "out"), "--actors", "1")
    assert result.returncode == 2
    line = _one_error_line(result.stderr)
    assert "'label', 'error'" in line and "--prefix" in line
    assert sorted(os.listdir(tmp_path)) == ["in.jsonl"]  # neither OUTPUT nor OUTPUT.partial


def test_batch_scorer_refuses_a_column_it_would_overwrite() -> None:
    scorer = BatchScorer(SentimentClassifier.load(SEED_MODEL, threads=1), "text")
    with pytest.raises(ValueError, match="'label'"):
        scorer(pa.table({"text": ["A wonderful film."], "label": ["pos"]}))
    out = BatchScorer(SentimentClassifier.load(SEED_MODEL, threads=1), "text", prefix="pred_")(
        pa.table({"text": ["A wonderful film."], "label": ["pos"]}))
    assert out.column_names == ["text", "label", "pred_label", "pred_score", "pred_error"]
    assert out.column("label").to_pylist() == ["pos"]


@pytest.mark.parametrize(("content", "reason"), [
    (b"", "empty file: no header row"),
    (b"id,text\n1,fine\n2,\"Great film\n3,ok\n", "line 3: unexpected end of data"),
    (b"id,text\n1,fine\n2,a,b\n", "line 3: 3 fields, the header has 2"),
    ("id,text\n1,Caf\xe9\n".encode("latin-1"), "line 2: not UTF-8 (byte 0xe9"),
])
def test_bad_csv_files_name_the_file_and_line(tmp_path: Path, content: bytes, reason: str) -> None:
    src = tmp_path / "in.csv"
    src.write_bytes(content)
    with pytest.raises(InputFileError) as failure:
        plan = plan_inputs([str(src)], "csv", "text")
        list(read_file(str(src), plan, 100))
    assert failure.value.name == str(src) and str(failure.value).startswith(reason)


def test_jsonl_types_are_decided_from_every_line(tmp_path: Path) -> None:
    first = _jsonl(tmp_path / "a.jsonl", [{"id": 1, "n": 1, "x": 1, "text": "good"}])
    second = _jsonl(tmp_path / "b.jsonl", [{"id": 2, "n": "two", "x": 2.5, "text": 7}, {"id": 3, "text": None}])
    plan = plan_inputs([str(first), str(second)], "jsonl", "text")
    assert [(f.name, str(f.type)) for f in plan.schema] == [("id", "int64"), ("n", "string"), ("x", "double"),
                                                            ("text", "string")]
    rows = [r for f in (first, second) for t in read_file(str(f), plan, 10) for r in t.to_pylist()]
    assert [r["n"] for r in rows] == ["1", "two", None]
    assert [r["text"] for r in rows] == ["good", "7", None]
    assert [r["_edge_infer_text_error"] for r in rows] == [None, "not a string (int)", None]


def test_parquet_files_whose_types_cannot_unify_are_refused_before_ray(tmp_path: Path) -> None:
    pq.write_table(pa.table({"id": pa.array([1], pa.int32()), "text": ["good"]}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"id": pa.array([2], pa.int64()), "text": ["bad"]}), tmp_path / "b.parquet")
    plan = plan_inputs([str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")], "parquet", "text")
    assert plan.schema.field("id").type == pa.int64()  # int32 and int64 unify
    pq.write_table(pa.table({"id": ["three"], "text": ["ok"]}), tmp_path / "c.parquet")
    result = _bulk(str(tmp_path), str(tmp_path / "out"))
    assert result.returncode == 2
    assert re.search(r"c\.parquet: column 'id' is string, but int32 in .*a\.parquet$", _one_error_line(result.stderr))
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_empty_csv_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_bytes(b"")
    result = _bulk(str(tmp_path / "empty.csv"), str(tmp_path / "out"))
    assert result.returncode == 2
    assert _one_error_line(result.stderr) == f"edge-infer: error: {tmp_path / 'empty.csv'}: empty file: no header row"


def test_an_address_where_nothing_listens_fails_at_once(tmp_path: Path) -> None:
    src = _jsonl(tmp_path / "in.jsonl", [{"text": "A wonderful film."}])
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.monotonic()
    result = _bulk(str(src), str(tmp_path / "out"), "--address", f"127.0.0.1:{port}", timeout=60)
    assert result.returncode == 2
    assert "nothing is listening there" in _one_error_line(result.stderr)
    assert time.monotonic() - start < 30


def test_an_address_that_never_answers_fails_within_the_timeout(tmp_path: Path) -> None:
    src = _jsonl(tmp_path / "in.jsonl", [{"text": "A wonderful film."}])
    with socket.socket() as server:  # accepts connections (the kernel's backlog), never speaks
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        start = time.monotonic()
        result = _bulk(str(src), str(tmp_path / "out"), "--address", f"127.0.0.1:{server.getsockname()[1]}",
                       env={**_env(), "EDGE_INFER_RAY_CONNECT_TIMEOUT": "5"}, timeout=90)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.rstrip().splitlines()[-1].endswith("Ray did not answer within 5 s")
    assert time.monotonic() - start < 60


# ---------------------------------------------------------------------------- on a 2-CPU Ray


def test_mixed_type_text_comes_out_as_strings_with_the_bad_rows_flagged(cluster: str, tmp_path: Path) -> None:
    src = _jsonl(tmp_path / "in.jsonl", [{"id": i, "text": t} for i, t in
                                         enumerate(["A wonderful film.", 42, None, "Awful, boring.", 3.5, True])])
    result = _bulk(str(src), str(tmp_path / "out"), "--address", cluster, "--actors", "1")
    assert result.returncode == 1, result.stderr[-2000:]
    table = pq.read_table(tmp_path / "out")
    assert table.schema.field("text").type == pa.string()
    assert table.column("text").to_pylist() == ["A wonderful film.", "42", None, "Awful, boring.", "3.5", "true"]
    assert table.column("error").to_pylist() == [None, "not a string (int)", "null text", None,
                                                 "not a string (float)", "not a string (bool)"]


def test_a_column_whose_type_changes_gives_one_schema(cluster: str, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    _jsonl(src / "a.jsonl", [{"n": i, "text": t} for i, t in enumerate(TINY_SENTENCES[:2])])
    _jsonl(src / "b.jsonl", [{"n": f"x{i}", "text": t} for i, t in enumerate(TINY_SENTENCES[2:])])
    result = _bulk(str(src), str(tmp_path / "out"), "--address", cluster, "--actors", "1", "--batch-size", "2")
    assert result.returncode == 0, result.stderr[-2000:]
    schemas = {pq.read_schema(p) for p in (tmp_path / "out").iterdir()}
    assert len(schemas) == 1
    table = pq.read_table(tmp_path / "out")
    assert table.column("n").to_pylist() == ["0", "1", "x0", "x1", "x2"]


def test_a_csv_column_that_changes_type_late_is_read_as_text(cluster: str, tmp_path: Path) -> None:
    rows = 60_000  # over pyarrow's 1 MB type-inference block; the texts are empty (bad rows), so no scoring
    src = tmp_path / "late.csv"
    src.write_text("id,n,text\n" + "".join(f"{i},{i if i < 50_000 else f'x{i}':>20},\n" for i in range(rows))
                   + f'{rows},{rows},"{TINY_SENTENCES[0]}"\n')
    result = _bulk(str(src), str(tmp_path / "out"), "--address", cluster, "--actors", "1")
    assert result.returncode == 1, result.stderr[-2000:]
    assert f"{rows + 1} rows, {rows} bad rows" in result.stdout
    n = pq.read_table(tmp_path / "out").column("n").to_pylist()
    assert n[49_999].strip() == "49999" and n[50_000].strip() == "x50000" and n[-1] == str(rows)


def test_a_bad_file_is_one_line_and_output_is_never_created(cluster: str, tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    good = _reviews(3000, seed=5)
    src.write_bytes(("id,text\n" + "".join(f'{i},"{t}"\n' for i, t in enumerate(good))).encode()
                    + "3000,Caf\xe9\n".encode("latin-1"))
    out = tmp_path / "out"
    result = _bulk(str(src), str(out), "--address", cluster, "--actors", "1", "--batch-size", "64")
    assert result.returncode == 2, result.stderr[-2000:]
    line = _one_error_line(result.stderr)
    assert line.startswith(f"edge-infer: error: {src}: line 3002: not UTF-8 (byte 0xe9")
    assert not out.exists()
    kept = re.search(r"the (\d+) rows written so far are in (\S+) \(incomplete\)$", line)
    if kept:  # the rows scored before the failure: marked partial, in order
        assert Path(kept[2]) == tmp_path / "out.partial"
        assert pq.read_table(kept[2]).column("id").to_pylist() == list(range(int(kept[1])))
    else:
        assert line.endswith(f"{out} was not written") and not (tmp_path / "out.partial").exists()


def test_ctrl_c_leaves_the_rows_marked_partial(cluster: str, tmp_path: Path) -> None:
    rows = 20_000
    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": list(range(rows)), "text": _reviews(rows, seed=11)}), src)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "edge_infer", "bulk", str(src), str(out), "--model", str(SEED_MODEL),
           "--address", cluster, "--actors", "1", "--batch-size", "1", "--id-column", "id"]  # slow: many batches
    log = tmp_path / "stderr.txt"
    with open(log, "w") as stderr_file:  # a file, not a pipe nobody reads while we wait
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr_file, env=_env(), cwd=REPO,
                                start_new_session=True)
    try:
        parts = [folder / "part-00000.parquet" for folder in (tmp_path / "out.partial", out)]
        deadline = time.monotonic() + RUN_S
        while proc.poll() is None and time.monotonic() < deadline:
            if any(part.exists() for part in parts):  # opened when the first scored rows arrived
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the job ended before it could be interrupted: give it more rows"
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    stderr = log.read_text()
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr
    last = stderr.rstrip().splitlines()[-1]
    kept = re.fullmatch(rf"edge-infer: interrupted; {out} was not written; the (\d+) rows written so far are "
                        rf"in {out}\.partial \(incomplete\)", last)
    assert kept, last
    assert not out.exists()
    ids = pq.read_table(tmp_path / "out.partial").column("id").to_pylist()
    assert ids == list(range(int(kept[1]))) and 0 < len(ids) < rows


def test_output_appears_only_when_complete_and_a_partial_is_never_overwritten(cluster: str, tmp_path: Path) -> None:
    src = _jsonl(tmp_path / "in.jsonl", [{"text": t} for t in TINY_SENTENCES])
    (tmp_path / "out.partial").mkdir()
    result = _bulk(str(src), str(tmp_path / "out"), "--address", cluster, "--actors", "1")
    assert result.returncode == 2 and "out.partial exists" in _one_error_line(result.stderr)
    (tmp_path / "out.partial").rmdir()
    (tmp_path / "out").mkdir()  # an empty folder is a valid OUTPUT
    result = _bulk(str(src), str(tmp_path / "out"), "--address", cluster, "--actors", "1")
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(os.listdir(tmp_path)) == ["in.jsonl", "out"]
    assert pq.read_table(tmp_path / "out").num_rows == len(TINY_SENTENCES)


# ---------------------------------------------------------------------------- issue 23: no starvation


@pytest.mark.parametrize("actors", [None, 1, 2])
def test_every_pool_size_finishes_on_a_2_cpu_ray(cluster: str, tmp_path: Path, actors: int | None) -> None:
    """The default pool takes both CPUs of this Ray: the readers, which reserve none, must still run."""
    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": list(range(300)), "text": _reviews(300, seed=2)}), src)
    extra = ["--actors", str(actors)] if actors else []
    result = _bulk(str(src), str(tmp_path / "out"), "--address", cluster, "--id-column", "id", *extra)
    assert result.returncode == 0, result.stderr[-2000:]
    assert pq.read_table(tmp_path / "out").column("id").to_pylist() == list(range(300))


def _two_cpus() -> list[int]:
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) < 2:
        pytest.skip("needs 2 CPUs and sched_setaffinity")
    return cpus[:2]


def test_default_options_finish_while_both_cores_are_busy(tmp_path: Path) -> None:
    """The issue's command, its own local Ray, on 2 CPUs that 2 other processes keep busy."""
    cpus = _two_cpus()
    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": list(range(500)), "text": _reviews(500, seed=4)}), src)
    busy = [subprocess.Popen([sys.executable, "-c", f"import time\nend = time.time() + {RUN_S}\n"
                              "while time.time() < end: pass"], preexec_fn=lambda: os.sched_setaffinity(0, cpus))
            for _ in cpus]
    try:
        result = _bulk(str(src), str(tmp_path / "out"), "--text-column", "text",
                       preexec_fn=lambda: os.sched_setaffinity(0, cpus))
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
    assert result.returncode == 0, result.stderr[-2000:]
    assert "500 rows, 0 bad rows" in result.stdout


@pytest.mark.parametrize(("cause", "code", "start"), [
    (InputFileError("in.csv", "line 3: not UTF-8"), 2, "edge-infer: error: in.csv: line 3: not UTF-8; out"),
    (IntegrityError("model.onnx", "differs"), 3, "edge-infer: error: a Ray worker refused the model: Integrity"),
    (ZeroDivisionError("boom"), 4, "edge-infer: error: a Ray worker failed: ZeroDivisionError: boom; out"),
])
def test_the_exit_code_follows_the_type_of_the_workers_exception(capsys: pytest.CaptureFixture[str],
                                                                  cause: Exception, code: int, start: str) -> None:
    """Through Ray's public ``RayTaskError(function_name, traceback_str, cause)``, never its traceback's text."""
    from ray.exceptions import RayTaskError
    from typer import Exit

    from edge_infer.cli.bulk import _failed

    with pytest.raises(Exit) as exited:
        _failed(RayTaskError("read", "Traceback: ModelError, ArrowInvalid, IntegrityError", cause), "out")
    assert exited.value.exit_code == code
    assert capsys.readouterr().err.startswith(start)


def test_parts_are_renamed_into_output_only_on_commit(tmp_path: Path) -> None:
    from edge_infer.integrations.bulk_output import PartsWriter

    schema = pa.schema([("id", pa.int64()), ("label", pa.string())])
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)  # an OUTPUT that links to an empty folder
    writer = PartsWriter(tmp_path / "link", schema)
    assert writer.partial == tmp_path / "real.partial"
    writer.write(pa.table({"label": ["a", "b"], "id": pa.array([1, 2], pa.int32())}))  # any order, castable types
    assert list(real.iterdir()) == []
    writer.commit()
    assert (tmp_path / "link").is_symlink() and not writer.partial.exists()
    assert pq.read_table(real).to_pylist() == [{"id": 1, "label": "a"}, {"id": 2, "label": "b"}]


def test_abandon_keeps_the_rows_written_or_removes_an_empty_partial(tmp_path: Path) -> None:
    from edge_infer.integrations.bulk_output import PartsWriter

    schema = pa.schema([("id", pa.int64())])
    empty = PartsWriter(tmp_path / "a", schema)
    empty.write(pa.table({"id": pa.array([], pa.int64())}))
    assert empty.abandon() is False and sorted(os.listdir(tmp_path)) == []
    kept = PartsWriter(tmp_path / "b", schema)
    kept.write(pa.table({"id": [1, 2, 3]}))  # pending, below a row group: written by abandon
    assert kept.abandon() is True and kept.rows == 3
    assert sorted(os.listdir(tmp_path)) == ["b.partial"]
    assert pq.read_table(tmp_path / "b.partial").column("id").to_pylist() == [1, 2, 3]
