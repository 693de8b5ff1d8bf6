"""The `edge-infer` command, run in a subprocess as a user would, on the committed seed model (no TensorFlow)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from conftest import REPO, copy_exported, requires_default_model

from edge_infer import SentimentClassifier
from edge_infer.inputs.reading import byte_budget

_SCRIPT = Path(sys.executable).with_name("edge-infer")
CLI = [os.fspath(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "edge_infer"]


def run(*args: str, stdin: bytes | None = None, cwd: Path | None = None, env: dict | None = None,
        **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run([*CLI, *args], input=stdin if stdin is not None else b"", capture_output=True,
                          cwd=cwd or REPO, timeout=300, env=env, **kw)
    proc.out = proc.stdout.decode()  # type: ignore[attr-defined]
    proc.err = proc.stderr.decode()  # type: ignore[attr-defined]
    assert "Traceback" not in proc.err, proc.err
    return proc


def errors(proc) -> list[str]:
    return [line for line in proc.err.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def clf(seed_model_dir: Path) -> SentimentClassifier:
    return SentimentClassifier.load(seed_model_dir)


@pytest.fixture
def reviews(tmp_path: Path) -> Path:
    d = tmp_path / "reviews"
    d.mkdir()
    (d / "good.txt").write_text("I loved every minute of it! The cast was superb and the music beautiful.\n")
    (d / "bad.txt").write_text("Terrible plot, awful acting, a boring and stupid waste of time.\n")
    (d / "notes.md").write_text("not a review")
    return d


# --------------------------------------------------------------------------- help, version, usage


def test_help_and_version():
    top = run("--help")
    assert top.returncode == 0 and "predict" in top.out and "info" in top.out and "exit codes" in top.out
    helptext = run("predict", "--help")
    assert helptext.returncode == 0
    flat = " ".join(helptext.out.split())
    for needle in ("*.txt", "'-' reads standard input", "--format", "--model", "--int8", "--threads",
                   "--threshold", "exit codes: 0 success", "1 some inputs failed", "2 usage error",
                   "3 model refused", "130 interrupted", "141 standard output closed"):
        assert needle in flat, needle
    version = run("--version")
    assert version.returncode == 0 and version.out.strip() == "edge-infer 0.1.0"


def test_usage_errors_exit_2(model: str, reviews: Path):
    assert run("predict", "--model", model).returncode == 2  # no FILE
    assert run("predict", "--model", model, "--format", "xml", os.fspath(reviews)).returncode == 2
    assert run("predict", "--model", model, "--threads", "0", os.fspath(reviews)).returncode == 2
    assert run("predict", "--model", model, "--threshold", "1.5", os.fspath(reviews)).returncode == 2
    missing = run("predict", "--model", "/no/such/model", os.fspath(reviews))
    assert missing.returncode == 2 and "/no/such/model" in missing.err
    assert run("frobnicate").returncode == 2


def test_bare_command_prints_the_help_on_stderr_and_exits_2():
    bare = run()
    assert bare.returncode == 2 and bare.out == ""
    assert bare.err.startswith("Usage: edge-infer [OPTIONS] COMMAND") and "predict" in bare.err
    assert "error" not in bare.err.split("exit codes")[0]


@pytest.mark.parametrize("argv", [["frobnicate"], ["predict"], ["predict", "--bogus", "x"],
                                  ["predict", "--threads", "many", "x"], ["info", "--model"]])
def test_every_usage_error_typer_raises_is_a_typer_exception(argv: list[str]):
    # edge_infer.cli.main turns typer.TyperException (public since typer 0.28) into one line and exit 2;
    # this fails if a typer version raises a bad command line as anything else.
    import typer

    from edge_infer.cli import app

    with pytest.raises(typer.TyperException) as caught:
        app(args=argv, prog_name="edge-infer", standalone_mode=False)
    assert caught.value.format_message().strip()


# --------------------------------------------------------------------------- predictions


def test_predict_text_format_matches_the_api(model: str, reviews: Path, clf: SentimentClassifier):
    proc = run("predict", "--model", model, os.fspath(reviews / "good.txt"), os.fspath(reviews / "bad.txt"))
    assert proc.returncode == 0 and proc.err == ""
    lines = proc.out.splitlines()
    assert len(lines) == 2
    for line, name in zip(lines, ("good.txt", "bad.txt")):
        label, score, path = line.split(maxsplit=2)
        expected = clf.predict((reviews / name).read_text())
        assert path == os.fspath(reviews / name) and label == expected.label
        assert float(score) == pytest.approx(expected.score, abs=1e-4)


def test_directory_stdin_json_and_jsonl(model: str, reviews: Path, clf: SentimentClassifier):
    review = "A boring and stupid waste of time."
    proc = run("predict", "--model", model, "--format", "jsonl", os.fspath(reviews), "-", stdin=review.encode())
    assert proc.returncode == 0, proc.err
    records = [json.loads(line) for line in proc.out.splitlines()]
    assert [Path(r["file"]).name for r in records] == ["bad.txt", "good.txt", "-"]  # *.txt only, sorted
    assert all(set(r) == {"file", "label", "score"} for r in records)
    assert records[2]["label"] == clf.predict(review).label
    assert records[2]["score"] == pytest.approx(clf.predict(review).score, abs=1e-5)

    as_json = run("predict", "--model", model, "--format", "json", os.fspath(reviews))
    assert as_json.returncode == 0 and json.loads(as_json.out) == records[:2]


def test_threshold_int8_threads(model: str, reviews: Path):
    always = run("predict", "--model", model, "--threshold", "0", os.fspath(reviews))
    assert [line.split()[0] for line in always.out.splitlines()] == ["positive", "positive"]
    never = run("predict", "--model", model, "--threshold", "1", os.fspath(reviews))
    assert [line.split()[0] for line in never.out.splitlines()] == ["negative", "negative"]
    q = run("predict", "--model", model, "--int8", "--threads", "1", "--format", "jsonl", os.fspath(reviews))
    assert q.returncode == 0 and len(q.out.splitlines()) == 2


def test_nfc_and_nfd_files_give_the_same_prediction(model: str, tmp_path: Path):
    text = "Un film émouvant, café crème et naïveté: superb music!"
    (tmp_path / "nfc.txt").write_text(unicodedata.normalize("NFC", text), encoding="utf-8")
    (tmp_path / "nfd.txt").write_text(unicodedata.normalize("NFD", text), encoding="utf-8")
    assert (tmp_path / "nfc.txt").read_bytes() != (tmp_path / "nfd.txt").read_bytes()
    proc = run("predict", "--model", model, "--format", "jsonl", os.fspath(tmp_path))
    a, b = (json.loads(line) for line in proc.out.splitlines())
    assert proc.returncode == 0 and (a["label"], a["score"]) == (b["label"], b["score"])


# --------------------------------------------------------------------------- bad inputs


def assert_one_failure(proc, name: str, reason: str, good_lines: int = 1) -> None:
    assert proc.returncode == 1
    errs = errors(proc)
    assert len(errs) == 1, errs
    assert errs[0].startswith("edge-infer: error: ") and name in errs[0] and reason in errs[0], errs[0]
    assert len(proc.out.splitlines()) == good_lines, proc.out


def test_missing_path(model: str, reviews: Path, tmp_path: Path):
    proc = run("predict", "--model", model, os.fspath(tmp_path / "nope.txt"), os.fspath(reviews / "good.txt"))
    assert_one_failure(proc, "nope.txt", "no such file")


def test_directory_without_txt(model: str, reviews: Path, tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("x")
    proc = run("predict", "--model", model, os.fspath(empty), os.fspath(reviews / "good.txt"))
    assert_one_failure(proc, "empty", "no .txt files")


def test_unreadable_file(model: str, reviews: Path, tmp_path: Path):
    loop = tmp_path / "loop.txt"  # unreadable for everyone, root included
    loop.symlink_to(loop)
    proc = run("predict", "--model", model, os.fspath(loop), os.fspath(reviews / "good.txt"))
    assert_one_failure(proc, "loop.txt", "cannot open")
    if os.geteuid() != 0:
        locked = tmp_path / "locked.txt"
        locked.write_text("a great film")
        locked.chmod(0)
        proc = run("predict", "--model", model, os.fspath(locked), os.fspath(reviews / "good.txt"))
        assert_one_failure(proc, "locked.txt", "permission denied")


@pytest.mark.parametrize(("content", "reason"), [
    (b"", "empty file"),
    (b"  \n\t \r\n", "only whitespace"),
    (b"a great film\x00\x01\x02\x00", "binary file"),
    ("naïve café, a great film".encode("latin-1"), "not valid UTF-8"),
])
def test_bad_content(model: str, reviews: Path, tmp_path: Path, content: bytes, reason: str):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(content)
    proc = run("predict", "--model", model, os.fspath(bad), os.fspath(reviews / "good.txt"))
    assert_one_failure(proc, "bad.txt", reason)


def test_empty_stdin(model: str):
    proc = run("predict", "--model", model, "-", stdin=b"")
    assert proc.returncode == 1 and errors(proc) == ["edge-infer: error: -: empty file"]


def test_one_gigabyte_file_with_bounded_memory(model: str, tmp_path: Path, clf: SentimentClassifier):
    size = 1 << 30
    tail = ("the plot was thin but the cast was great, truly superb music! " * 2000).encode()
    assert len(tail) > byte_budget(clf.max_len)
    huge = tmp_path / "huge.txt"
    with open(huge, "wb") as handle:  # sparse: NUL bytes (a hole) then text at the end
        handle.truncate(size - len(tail))
        handle.seek(size - len(tail))
        handle.write(tail)
    assert huge.stat().st_size == size
    # run the CLI under a tiny parent that reports the child's peak memory
    code = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:]); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(p.returncode)")
    proc = subprocess.run([sys.executable, "-c", code, *CLI, "predict", "--model", model, "--format", "jsonl",
                           os.fspath(huge)], capture_output=True, timeout=300, text=True)
    *messages, peak_kib = proc.stderr.split()
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    expected = clf.predict(tail.decode())  # truncating "pre": the end of the file is what counts
    assert record["label"] == expected.label and record["score"] == pytest.approx(expected.score, abs=1e-5)
    assert int(peak_kib) < 400 * 1024, f"peak RSS {int(peak_kib) // 1024} MiB"


def test_thousand_files_one_bad(model: str, tmp_path: Path):
    d = tmp_path / "many"
    d.mkdir()
    words = ["great", "awful", "boring", "superb", "music", "plot", "cast", "loved"]
    for i in range(1000):
        (d / f"r{i:04d}.txt").write_text(" ".join(words[(i + k) % 8] for k in range(i % 7 + 1)))
    (d / "r0500.txt").write_bytes(b"\xff\xfe not utf-8")
    proc = run("predict", "--model", model, "--format", "jsonl", os.fspath(d))
    assert_one_failure(proc, "r0500.txt", "not valid UTF-8", good_lines=999)
    names = [Path(json.loads(line)["file"]).name for line in proc.out.splitlines()]
    assert names == [f"r{i:04d}.txt" for i in range(1000) if i != 500]


def run_on_a_terminal(*args: str) -> tuple[subprocess.CompletedProcess, bytes]:
    """Run the CLI with stderr on a pseudo-terminal (as in a shell); returns the process and what stderr showed."""
    pty = pytest.importorskip("pty")
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run([*CLI, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=follower,
                              timeout=300)
        os.close(follower)
        follower = -1
        seen = b""
        try:
            while chunk := os.read(leader, 65536):
                seen += chunk
        except OSError:
            pass
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    return proc, seen


def test_progress_bar_on_a_terminal(model: str, tmp_path: Path):
    d = tmp_path / "many"
    d.mkdir()
    for i in range(30):
        (d / f"r{i:02d}.txt").write_text("a great film")
    proc, seen = run_on_a_terminal("predict", "--model", model, os.fspath(d))
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 30
    assert b"classifying" in seen
    quiet = run("predict", "--model", model, os.fspath(d))  # stderr is a pipe: no bar
    assert quiet.err == ""


# --------------------------------------------------------------------------- model failures, info


def test_model_failing_verification_exits_3(model: str, reviews: Path, tmp_path: Path):
    broken = tmp_path / "broken"
    shutil.copytree(model, broken)
    data = bytearray((broken / "model.onnx").read_bytes())
    data[100] ^= 0xFF
    (broken / "model.onnx").write_bytes(bytes(data))
    proc = run("predict", "--model", os.fspath(broken), os.fspath(reviews))
    assert proc.returncode == 3 and proc.out == ""
    assert len(errors(proc)) == 1 and "model.onnx" in proc.err and "sha256" in proc.err
    info = run("info", "--model", os.fspath(broken))
    assert info.returncode == 3 and "model.onnx" in info.err
    not_a_model = run("predict", "--model", os.fspath(reviews), os.fspath(reviews))
    assert not_a_model.returncode == 3 and "manifest.json" in not_a_model.err

    (broken / "model.onnx").write_bytes(Path(model, "model.onnx").read_bytes())
    manifest = json.loads((broken / "manifest.json").read_text())
    del manifest["files"]["int8"]
    (broken / "manifest.json").write_text(json.dumps(manifest))
    no_int8 = run("predict", "--model", os.fspath(broken), "--int8", os.fspath(reviews))
    assert no_int8.returncode == 3 and "no int8 variant" in no_int8.err
    assert run("predict", "--model", os.fspath(broken / "manifest.json"), os.fspath(reviews)).returncode == 0


def test_info(model: str):
    proc = run("info", "--model", model)
    assert proc.returncode == 0, proc.err
    for needle in ("seed", "negative / positive", "max_len 200", "test accuracy", "parity", "model.onnx",
                   "model.int8.onnx", "vocab.txt", "versions", "tensorflow", "verified"):
        assert needle in proc.out, needle
    doc = json.loads(run("info", "--model", model, "--format", "json").out)
    assert doc["verified"] is True and doc["tokenizer"]["max_len"] == 200


STARS = REPO / "models" / "stars"


def three_label_model(folder: Path) -> Path:
    """models/stars cut to its first three labels: its fp32 graph with a Slice on the output (no int8)."""
    import hashlib

    onnx = pytest.importorskip("onnx")
    from onnx import helper, numpy_helper

    copy_exported(STARS, folder)
    doc = json.loads((folder / "manifest.json").read_text())
    graph_path = folder / doc["files"]["fp32"]["path"]
    graph = onnx.load(os.fspath(graph_path))
    out = doc["output"]["name"]
    for node in graph.graph.node:
        node.output[:] = [f"{out}_four" if name == out else name for name in node.output]
    import numpy as np

    graph.graph.initializer.extend([numpy_helper.from_array(np.array([v], dtype=np.int64), name)
                                    for name, v in (("cut_start", 0), ("cut_end", 3), ("cut_axis", 1))])
    graph.graph.node.append(helper.make_node("Slice", [f"{out}_four", "cut_start", "cut_end", "cut_axis"], [out]))
    graph.graph.output[0].type.tensor_type.shape.dim[1].dim_value = 3
    onnx.save(graph, os.fspath(graph_path))
    data = graph_path.read_bytes()
    (folder / doc["files"]["int8"]["path"]).unlink()
    del doc["files"]["int8"]
    doc["files"]["fp32"].update(sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    doc["labels"] = doc["labels"][:3]
    (folder / "manifest.json").write_text(json.dumps(doc))
    return folder


@pytest.mark.skipif(not (STARS / "manifest.json").is_file(), reason="models/stars is not exported")
def test_info_describes_two_three_and_four_labels(tmp_path: Path):
    """A model of N > 2 labels is argmax of N: no 'score = P(...)', no threshold (the 4-label stars model
    was described as 'labels 1-2 / 3-4 (score = P(3-4), threshold 0.5)')."""
    three = three_label_model(tmp_path / "three")
    cases = [(REPO / "models" / "seed", "negative / positive  (score = P(positive), threshold 0.5)"),
             (three, "1-2 / 3-4 / 7-8  (3 classes: the most probable wins)"),
             (STARS, "1-2 / 3-4 / 7-8 / 9-10  (4 classes: the most probable wins)")]
    for folder, described in cases:
        proc = run("info", "--model", os.fspath(folder))
        assert proc.returncode == 0, proc.err
        line = next(x for x in proc.out.splitlines() if x.startswith("labels "))
        assert line.split(None, 1)[1] == described, folder
    three_clf = SentimentClassifier.load(three)
    assert three_clf.labels == ("1-2", "3-4", "7-8") and three_clf.predict("A fine film.").label in three_clf.labels


@requires_default_model
def test_default_model_from_the_command_line(tmp_path: Path):
    review = tmp_path / "review.txt"
    review.write_text("A wonderful, moving film: brilliant acting and a beautiful story. I loved it.")
    proc = run("predict", os.fspath(review))
    assert proc.returncode == 0 and proc.out.startswith("positive ")
    assert run("info").returncode == 0
