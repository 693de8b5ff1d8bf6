"""Faults a hostile or careless user finds in the runtime and the CLI (issue 11): each one a clear error,
the documented exit code, and never a hang or a traceback. Runs on the committed seed model; no TensorFlow."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_cli import CLI, errors, run

from edge_infer import IntegrityError, ManifestError, SentimentClassifier, exit_codes
from edge_infer.inputs.reading import InputError, read_bounded

GOOD = "A wonderful, moving film: brilliant acting and a beautiful story. I loved it."
posix_only = pytest.mark.skipif(os.name != "posix", reason="FIFOs, devices and signals are POSIX")


@pytest.fixture
def review(tmp_path: Path) -> Path:
    path = tmp_path / "review.txt"
    path.write_text(GOOD)
    return path


def one_error(proc, code: int, *needles: str) -> str:
    assert proc.returncode == code, (proc.returncode, proc.err)
    lines = errors(proc)
    assert len(lines) == 1, lines
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# --------------------------------------------------------------------------- option values


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "-0.1", "1.0001"])
def test_threshold_that_is_not_a_probability_is_a_usage_error(model: str, review: Path, value: str):
    proc = run("predict", "--model", model, "--threshold", value, os.fspath(review))
    one_error(proc, exit_codes.USAGE, "--threshold")
    assert proc.out == ""
    with pytest.raises(ValueError):
        SentimentClassifier.load(model).predict(GOOD, threshold=float(value))


@pytest.mark.parametrize("value", ["0", "257", "10000", "99999999999"])
def test_threads_out_of_range_is_a_usage_error(model: str, review: Path, value: str):
    proc = run("predict", "--model", model, "--threads", value, os.fspath(review))
    one_error(proc, exit_codes.USAGE, "--threads")
    with pytest.raises(ValueError, match="threads"):
        SentimentClassifier.load(model, threads=int(value))


def test_usage_errors_are_one_line(model: str, review: Path):
    for args in (("frobnicate",), ("predict", "--model", model), ("predict", "--format", "xml", os.fspath(review)),
                 ("info", "--format", "jsonl")):
        proc = run(*args)
        one_error(proc, exit_codes.USAGE)
        assert proc.err.startswith("edge-infer: error: ")


# --------------------------------------------------------------------------- endless and odd inputs


@posix_only
@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_endless_devices_end_with_an_error(model: str, review: Path, device: str):
    if not os.path.exists(device):
        pytest.skip(f"no {device}")
    proc = run("predict", "--model", model, device, os.fspath(review))  # run() times out instead of hanging
    one_error(proc, exit_codes.INPUT_FAILED, device, "binary")
    assert len(proc.out.splitlines()) == 1
    with open(device, "rb") as stdin:
        piped = subprocess.run([*CLI, "predict", "--model", model, "-"], stdin=stdin, capture_output=True,
                               timeout=120)
    assert piped.returncode == exit_codes.INPUT_FAILED and b"binary" in piped.stderr


class _EndlessText(io.RawIOBase):
    """A stream that never ends (like `yes great | edge-infer predict -`)."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = b"a great film " * (len(buffer) // 13)
        buffer[: len(chunk)] = chunk
        return len(chunk)


def test_endless_text_stream_is_refused_past_the_stream_limit(monkeypatch):
    monkeypatch.setattr("edge_infer.inputs.reading.MAX_STREAM_BYTES", 1 << 20)
    with pytest.raises(InputError, match="stream longer than"):
        read_bounded(io.BufferedReader(_EndlessText()), 16384, "tail")
    data, _, cut = read_bounded(io.BufferedReader(_EndlessText()), 16384, "head")  # the head needs no end
    assert cut and len(data) == 16384


def test_closed_stdin_is_one_input_error(model: str):
    proc = subprocess.run([*CLI, "predict", "--model", model, "-"], stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=120, preexec_fn=lambda: os.close(0) if os.name == "posix" else None)
    assert proc.returncode == exit_codes.INPUT_FAILED, proc.stderr
    lines = proc.stderr.decode().strip().splitlines()
    assert lines == ["edge-infer: error: -: standard input is closed"]


# --------------------------------------------------------------------------- output that scripts can read


@posix_only
def test_file_names_are_valid_utf8_and_one_record(model: str, tmp_path: Path):
    raw = os.fsencode(tmp_path) + b"/bad\xffname.txt"
    with open(raw, "wb") as handle:
        handle.write(GOOD.encode())
    (tmp_path / "two\nlines.txt").write_text(GOOD)
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    proc = subprocess.run([*CLI, "predict", "--model", model, "--format", "jsonl", os.fsencode(tmp_path)],
                          capture_output=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout.decode("utf-8")  # strict: every byte is valid UTF-8
    records = [json.loads(line) for line in text.splitlines()]
    assert sorted(Path(r["file"]).name for r in records) == ["bad\\xffname.txt", "two\\nlines.txt"]
    plain = subprocess.run([*CLI, "predict", "--model", model, os.fsencode(tmp_path)], capture_output=True,
                           timeout=120)
    assert plain.returncode == 0 and len(plain.stdout.decode("utf-8").splitlines()) == 2


@posix_only
def test_broken_pipe_exits_quietly_with_its_code(model: str, tmp_path: Path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(1500):  # about 100 KB of jsonl: more than a pipe holds
        (folder / f"review-with-a-long-name-{i:05d}.txt").write_text("a great film")
    reader, writer = os.pipe()
    proc = subprocess.Popen([*CLI, "predict", "--model", model, "--format", "jsonl", os.fspath(folder)],
                            stdout=writer, stderr=subprocess.PIPE)
    os.close(writer)
    with os.fdopen(reader, "rb") as out:
        assert out.readline().startswith(b'{"file"')
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == exit_codes.BROKEN_PIPE and stderr == b""


# --------------------------------------------------------------------------- models that must not load


def fix_sha(folder: Path, key: str) -> None:
    data = json.loads((folder / "manifest.json").read_text())
    path = folder / data["files"][key]["path"]
    import hashlib

    data["files"][key].update(sha256=hashlib.sha256(path.read_bytes()).hexdigest(), size=path.stat().st_size)
    (folder / "manifest.json").write_text(json.dumps(data))


def test_manifest_that_contradicts_the_graph_is_refused(seed_model_dir: Path, default_model_dir: Path,
                                                        tmp_path: Path, review: Path):
    folder = tmp_path / "mixed"
    shutil.copytree(default_model_dir, folder)
    files = json.loads((folder / "manifest.json").read_text())["files"]
    fp32, vocab = files["fp32"]["path"], files["vocab"]["path"]
    shutil.copy(seed_model_dir / "model.onnx", folder / fp32)  # fixed length 200; manifest: any length
    shutil.copy(seed_model_dir / "vocab.txt", folder / vocab)
    fix_sha(folder, "fp32")
    fix_sha(folder, "vocab")
    with pytest.raises(IntegrityError, match="fixed length 200") as info:
        SentimentClassifier.load(folder)
    assert info.value.path.name == fp32
    one_error(run("predict", "--model", os.fspath(folder), os.fspath(review)), exit_codes.MODEL, fp32)


def test_graph_with_another_input_name_is_refused(seed_model_dir: Path, tmp_path: Path):
    folder = tmp_path / "renamed"
    shutil.copytree(seed_model_dir, folder)
    data = json.loads((folder / "manifest.json").read_text())
    data["input"]["name"] = "ids"
    (folder / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(IntegrityError, match="expected one input named 'ids'"):
        SentimentClassifier.load(folder)


def test_deeply_nested_manifest_is_a_model_error(tmp_path: Path, review: Path):
    folder = tmp_path / "nested"
    folder.mkdir()
    (folder / "manifest.json").write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(ManifestError, match="nested too deeply"):
        SentimentClassifier.load(folder)
    one_error(run("predict", "--model", os.fspath(folder), os.fspath(review)), exit_codes.MODEL, "manifest.json")


@pytest.mark.parametrize("key", ["fp32", "vocab"])
def test_nul_byte_in_a_manifest_file_name_is_a_manifest_error(key: str, seed_model_dir: Path, tmp_path: Path,
                                                              review: Path):
    """Issue 25: exit 4 and a bare ValueError; it is a manifest the loader must refuse (exit 3)."""
    folder = tmp_path / "nul"
    shutil.copytree(seed_model_dir, folder)
    doc = json.loads((folder / "manifest.json").read_text())
    doc["files"][key]["path"] = doc["files"][key]["path"] + "\u0000.txt"
    (folder / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(ManifestError, match=f"files.{key}.path"):
        SentimentClassifier.load(folder)
    with pytest.raises(ManifestError, match="NUL byte"):
        SentimentClassifier.load(os.fspath(folder) + "\x00")
    one_error(run("predict", "--model", os.fspath(folder), os.fspath(review)), exit_codes.MODEL, f"files.{key}.path")


@posix_only
def test_model_files_must_be_regular_files(seed_model_dir: Path, tmp_path: Path, review: Path):
    fifo = tmp_path / "model-fifo"
    os.mkfifo(fifo)
    one_error(run("predict", "--model", os.fspath(fifo), os.fspath(review)), exit_codes.MODEL, "FIFO")
    for key, target in (("fp32", "/dev/zero"), ("vocab", "fifo")):
        folder = tmp_path / f"linked-{key}"
        shutil.copytree(seed_model_dir, folder)
        name = json.loads((folder / "manifest.json").read_text())["files"][key]["path"]
        (folder / name).unlink()
        if target == "fifo":
            os.mkfifo(tmp_path / f"{key}.fifo")
            target = os.fspath(tmp_path / f"{key}.fifo")
        (folder / name).symlink_to(target)
        with pytest.raises(IntegrityError, match="not a regular file"):
            SentimentClassifier.load(folder)
        one_error(run("info", "--model", os.fspath(folder)), exit_codes.MODEL, name)


# --------------------------------------------------------------------------- Ctrl-C


def _default_sigint() -> None:
    # As in an interactive shell: a test run started in the background inherits SIGINT ignored, and an
    # ignored SIGINT stays ignored in the child (correctly: Ctrl-C does not reach background jobs).
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@posix_only
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_ctrl_c_while_waiting_for_input(model: str, fmt: str):
    proc = subprocess.Popen([*CLI, "predict", "--model", model, "--format", fmt, "-"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_default_sigint)
    time.sleep(3)  # long enough to be reading standard input (any point would do: see the next test)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    proc.stdin.close()  # type: ignore[union-attr]
    assert proc.returncode == exit_codes.INTERRUPTED
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edge-infer: interrupted"), lines
    if fmt == "json":
        assert "no JSON array was written" in lines[0] and out == b""


@posix_only
@pytest.mark.parametrize("delay", [0.15, 0.2, 0.25, 0.3, 0.4, 0.6, 1.0])
def test_ctrl_c_at_any_moment_prints_no_traceback(model: str, review: Path, delay: float):
    proc = subprocess.Popen([*CLI, "predict", "--model", model, "-"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_default_sigint)
    time.sleep(delay)  # 0.15 s and later: after Python's own start-up (about 25 ms here), in edge-infer's code
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert b"Traceback" not in err, err.decode()
    # -SIGINT: the signal came before Python installed any handler (the process ended at once, silently)
    assert proc.returncode in (exit_codes.INTERRUPTED, -signal.SIGINT), (proc.returncode, err)
    if proc.returncode == exit_codes.INTERRUPTED:
        assert err.decode().strip().splitlines() == [line for line in err.decode().strip().splitlines()
                                                     if line.startswith("edge-infer: interrupted")]


def test_help_lists_every_exit_code():
    flat = " ".join(run("predict", "--help").out.split())
    for code, meaning in exit_codes.TABLE:
        assert f"{code} {' '.join(meaning.split())}" in flat, code


def test_readme_lists_exactly_the_exit_codes():
    import re

    from conftest import REPO

    section = (REPO / "README.md").read_text().split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    documented = sorted(int(code) for code in re.findall(r"`(\d+)`", section))
    assert documented == sorted(code for code, _ in exit_codes.TABLE)


def test_the_cli_starts_without_numpy_or_any_extra():
    code = ("import sys, edge_infer.cli\n"
            "heavy = [m for m in ('numpy', 'onnxruntime', 'starlette', 'uvicorn', 'ray', 'matplotlib', 'tensorflow')"
            " if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
