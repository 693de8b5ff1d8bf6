"""Where outputs may be written (edge_infer.storage.check_output_path): a regular file or a new path in an
existing folder, never a link, FIFO, device or folder in its place; for `evaluate --plot`, `bulk OUTPUT`,
and the output folders of `python -m train` and `python -m export`.

Special files are made under tmp_path (a FIFO, symlinks, a character device made with mknod where allowed);
/dev/null itself is only ever checked, never handed to a command.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from edge_infer.storage import OutputPathError, check_output_path

CLI = [sys.executable, "-m", "edge_infer"]


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.fspath(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def snapshot(path: Path) -> tuple:
    """What is at ``path`` (not following a link): its type, inode, and a link's target."""
    st = os.lstat(path)
    return stat.S_IFMT(st.st_mode), st.st_ino, os.readlink(path) if stat.S_ISLNK(st.st_mode) else None


def make(kind: str, tmp_path: Path) -> Path:
    """A path under ``tmp_path`` holding ``kind``; the targets of links hold known bytes."""
    (tmp_path / "file.txt").write_bytes(b"keep me")
    (tmp_path / "folder").mkdir(exist_ok=True)
    path = tmp_path / f"out-{kind}.png"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "link to a file":
        path.symlink_to(tmp_path / "file.txt")
    elif kind == "link to a folder":
        path.symlink_to(tmp_path / "folder")
    elif kind == "dangling link":
        path.symlink_to(tmp_path / "nowhere")
    elif kind == "folder":
        path.mkdir()
    elif kind == "device":
        try:  # a node like /dev/null (char 1:3), but under tmp_path: losing it would harm nothing
            os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        except (PermissionError, AttributeError, OSError) as exc:
            pytest.skip(f"cannot make a device node here: {exc}")
    else:
        raise ValueError(kind)
    return path


REFUSED = ["fifo", "link to a file", "link to a folder", "dangling link", "folder", "device"]


# ----------------------------------------------------------------------------- the rule


@pytest.mark.parametrize("kind", REFUSED)
def test_a_file_output_refuses_anything_but_a_regular_file(kind: str, tmp_path: Path):
    path = make(kind, tmp_path)
    before = snapshot(path)
    with pytest.raises(OutputPathError) as caught:
        check_output_path(path)
    assert caught.value.path == os.fspath(path) and "\n" not in str(caught.value)
    assert snapshot(path) == before and (tmp_path / "file.txt").read_bytes() == b"keep me"


def test_a_file_output_may_be_a_regular_file_or_a_new_name(tmp_path: Path):
    (tmp_path / "old.png").write_bytes(b"old")
    assert check_output_path(tmp_path / "old.png") == tmp_path / "old.png"
    assert check_output_path(tmp_path / "new.png") == tmp_path / "new.png"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.png"]


def test_a_missing_parent_folder_is_refused_not_created(tmp_path: Path):
    (tmp_path / "a-file").write_text("x")
    for path in (tmp_path / "missing" / "deeper" / "out.png", tmp_path / "a-file" / "out.png"):
        for folder in (False, True):
            with pytest.raises(OutputPathError, match="no such folder"):
                check_output_path(path, folder=folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_a_folder_output_is_a_folder_or_a_new_name(tmp_path: Path):
    assert check_output_path(make("link to a folder", tmp_path), folder=True)
    assert check_output_path(tmp_path / "folder", folder=True) == tmp_path / "folder"
    assert check_output_path(tmp_path / "new", folder=True) == tmp_path / "new"
    for path in (tmp_path / "file.txt", make("fifo", tmp_path), make("link to a file", tmp_path),
                 make("dangling link", tmp_path)):
        with pytest.raises(OutputPathError, match="not a folder"):
            check_output_path(path, folder=True)


def test_dev_null_and_a_nul_byte_are_refused():
    before = os.stat("/dev/null") if os.path.exists("/dev/null") else None
    if before is not None:
        with pytest.raises(OutputPathError, match="a character device"):
            check_output_path("/dev/null")
        after = os.stat("/dev/null")
        assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)
    with pytest.raises(OutputPathError):
        check_output_path("out\x00.png")


# ----------------------------------------------------------------------------- evaluate --plot


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in [{"text": "A wonderful film.", "label": "positive"},
                                                             {"text": "Awful, boring.", "label": "negative"}]))
    return data


@pytest.mark.parametrize("kind", ["fifo", "link to a file", "device", "dangling link"])
def test_evaluate_plot_never_replaces_a_special_file(kind: str, tmp_path: Path, labelled: Path, model: str):
    path = make(kind, tmp_path)
    before = snapshot(path)
    proc = run("evaluate", os.fspath(labelled), "--model", model, "--plot", os.fspath(path))
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    assert proc.stderr.count("\n") == 1 and "--plot" in proc.stderr and "regular file or a new path" in proc.stderr
    assert snapshot(path) == before and (tmp_path / "file.txt").read_bytes() == b"keep me"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left


def test_evaluate_plot_does_not_create_folders(tmp_path: Path, labelled: Path, model: str):
    out = tmp_path / "plots" / "eval.png"
    proc = run("evaluate", os.fspath(labelled), "--model", model, "--plot", os.fspath(out))
    assert proc.returncode == 2 and proc.stdout == "" and "no such folder" in proc.stderr, proc.stderr
    assert not (tmp_path / "plots").exists()


def test_write_evaluation_plot_refuses_a_fifo(tmp_path: Path):
    pytest.importorskip("matplotlib")
    import numpy as np

    from edge_infer.plots import write_evaluation_plot

    path = make("fifo", tmp_path)
    with pytest.raises(OutputPathError, match="a FIFO"):
        write_evaluation_plot(path, ("negative", "positive"), np.array([0, 1]), np.array([[0.8, 0.2], [0.3, 0.7]]), 1)
    assert stat.S_ISFIFO(os.lstat(path).st_mode)


# ----------------------------------------------------------------------------- bulk OUTPUT


@pytest.mark.parametrize("kind", ["missing parent", "dangling link", "fifo"])
def test_bulk_output_is_checked_before_any_work(kind: str, tmp_path: Path, model: str):
    source = tmp_path / "in.csv"
    source.write_text("text\nGreat film.\n")
    out = tmp_path / "missing" / "out" if kind == "missing parent" else make(kind, tmp_path)
    proc = run("bulk", os.fspath(source), os.fspath(out), "--model", model)
    assert proc.returncode == 2 and "OUTPUT" in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert not (tmp_path / "missing").exists()
    if kind != "missing parent":
        assert os.path.islink(out) or stat.S_ISFIFO(os.lstat(out).st_mode)


# ----------------------------------------------------------------------------- train and export folders


@pytest.mark.parametrize("kind", ["fifo", "link to a file", "device"])
def test_train_and_export_refuse_a_special_output_folder(kind: str, tmp_path: Path):
    from export.folder import export_folder
    from export.training import ExportInputError
    from train.outdir import OutputError, check_output

    path = make(kind, tmp_path)
    before = snapshot(path)
    with pytest.raises(OutputError, match="not a folder"):
        check_output(path)
    with pytest.raises(ExportInputError, match="cannot use as the output folder"), export_folder(path):
        pass
    assert snapshot(path) == before and (tmp_path / "file.txt").read_bytes() == b"keep me"
