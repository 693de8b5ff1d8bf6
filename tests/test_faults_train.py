"""Training-stage faults: resume keeps EarlyStopping's state, stale checkpoints, exported output folders,
impossible settings, exit codes, no GRU warning and the typed training-report reader.

Trainings here are tiny (a few seconds each); the checks that need no training run ``main()`` in a
fresh interpreter and also assert that TensorFlow was never imported.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from edge_infer.exit_codes import describe
from train.data import default_data_path

REPO = Path(__file__).resolve().parent.parent
DATA = default_data_path()
needs_data = pytest.mark.skipif(not DATA.exists(), reason=f"{DATA} is not there")
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
TIMEOUT = 300

# Patience 1 and a high learning rate: the run overfits within a few epochs and early-stops.
EARLY_STOPPING = ("--preset", "seed", "--max-samples", "600", "--max-len", "64", "--vocab-size", "2000",
                  "--units", "8", "--embedding-dim", "16", "--batch-size", "32", "--epochs", "8",
                  "--patience", "1", "--learning-rate", "0.01")
# The smallest run that still trains: for checks that the run is accepted and writes its artifacts.
ONE_EPOCH = ("--preset", "seed", "--max-samples", "200", "--max-len", "32", "--vocab-size", "500",
             "--units", "4", "--embedding-dim", "8", "--epochs", "1")

# Runs main() in a fresh interpreter; prints its exit code, stderr and whether TensorFlow got imported.
MAIN_SCRIPT = """
import contextlib, io, json, sys
from train.__main__ import main
err = io.StringIO()
with contextlib.redirect_stderr(err):
    try:
        rc = main(sys.argv[1:])
    except SystemExit as exc:
        rc = exc.code
tf = any(name in sys.modules for name in ("tensorflow", "keras"))
print(json.dumps({"rc": rc, "stderr": err.getvalue(), "tensorflow": tf}))
"""

# Runs `python -m train` and SIGKILLs itself right after the checkpoint of epoch argv[1] is written
# (the last callback of the epoch), as a kill at any moment of the next epoch would.
KILL_SCRIPT = """
import os, signal, sys
import keras

KILL_AFTER = int(sys.argv[1])

class KillAfter(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == KILL_AFTER:
            os.kill(os.getpid(), signal.SIGKILL)

fit = keras.Model.fit

def fit_then_die(self, *args, callbacks=None, **kwargs):
    return fit(self, *args, callbacks=[*(callbacks or []), KillAfter()], **kwargs)

keras.Model.fit = fit_then_die
from train.__main__ import main
sys.exit(main(sys.argv[2:]))
"""

# main() with the training itself replaced by a bug.
BUG_SCRIPT = """
import sys
import train.run

def broken(*args, **kwargs):
    raise RuntimeError("boom:\\nsecond line")

train.run.train = broken
from train.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def run_train(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "train", *args], capture_output=True, text=True, env=ENV,
                          cwd=REPO, timeout=TIMEOUT)


def run_main(*args: str) -> dict:
    """main(args) in a fresh interpreter: {"rc", "stderr", "tensorflow"}."""
    done = subprocess.run([sys.executable, "-c", MAIN_SCRIPT, *args], capture_output=True, text=True, env=ENV,
                          cwd=REPO, timeout=TIMEOUT)
    assert done.stdout.strip(), done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_one_line_usage_error(result: dict) -> str:
    """Exit 2, exactly one non-empty stderr line (an ``error:``), no traceback, TensorFlow never imported."""
    lines = [line for line in result["stderr"].splitlines() if line.strip()]
    assert result["rc"] == 2, result
    assert len(lines) == 1 and lines[0].startswith("error: "), result["stderr"]
    assert "Traceback" not in result["stderr"]
    assert not result["tensorflow"], "TensorFlow was imported before the check"
    return lines[0]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def report_of(folder: Path) -> dict:
    return json.loads((folder / "training_report.json").read_text())


def kept_weights(folder: Path) -> list:
    import keras

    return keras.models.load_model(folder / "model.keras", safe_mode=True).get_weights()


# ---------------------------------------------------------------------------------------------------------
# 1. Resume keeps EarlyStopping's state.  2. A checkpoint of other settings is refused.


@pytest.fixture(scope="module")
def early_stopping_runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """An uninterrupted early-stopping run, and the same run SIGKILLed right after an epoch's checkpoint, resumed
    and SIGKILLed again: once before its best epoch (if any) and once right after it.

    ``stale`` is a copy of the killed run's folder, taken before anything resumes it again.
    """
    if not DATA.exists():
        pytest.skip(f"{DATA} is not there")
    root = tmp_path_factory.mktemp("early_stopping")
    whole, killed = root / "whole", root / "killed"
    done = run_train("--out", str(whole), *EARLY_STOPPING)
    assert done.returncode == 0, done.stderr[-2000:]
    report = report_of(whole)
    epochs_run = len(report["history"])
    assert epochs_run >= 2, "patience 1 cannot stop before epoch 2"
    # Before the best epoch: the resumed run must train it exactly as the uninterrupted run did.
    # Right after it: the resumed run must still know that epoch was the best (and its weights).
    kill_points = sorted({max(1, report["best_epoch"] - 1), min(report["best_epoch"], epochs_run - 1)})
    for kill_after in kill_points:
        first = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(kill_after), "--out", str(killed),
                                *EARLY_STOPPING], capture_output=True, text=True, env=ENV, cwd=REPO, timeout=TIMEOUT)
        assert first.returncode == -signal.SIGKILL, first.stderr[-2000:]
        metadata = json.loads((killed / ".checkpoints" / "backup" / "training_metadata.json").read_text())
        assert metadata["epoch"] == kill_after
    assert not (killed / "training_report.json").exists()
    stale = root / "stale"
    shutil.copytree(killed, stale, symlinks=True)
    return {"whole": whole, "killed": killed, "stale": stale, "kill_after": kill_points[-1]}


@pytest.mark.needs_tf
@needs_data
def test_resumed_run_ends_like_the_uninterrupted_one(early_stopping_runs):
    whole, killed, kill_after = (early_stopping_runs[k] for k in ("whole", "killed", "kill_after"))
    resumed = run_train("--out", str(killed), *EARLY_STOPPING)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    epochs = [int(n) for n in re.findall(r"^Epoch (\d+)/8", resumed.stdout + resumed.stderr, re.M)]
    assert epochs and epochs[0] == kill_after + 1  # it resumed, it did not start over

    expected, got = report_of(whole), report_of(killed)
    assert got["resumed"] is True and expected["resumed"] is False
    assert [h["epoch"] for h in got["history"]] == [h["epoch"] for h in expected["history"]]
    assert got["best_epoch"] == expected["best_epoch"]
    for report in (expected, got):  # the reported validation figures are those of the kept weights
        best = report["history"][report["best_epoch"] - 1]
        assert report["validation_loss"] == pytest.approx(best["val_loss"], rel=1e-4)
        assert report["validation_accuracy"] == pytest.approx(best["val_accuracy"], abs=1e-6)
    # Same seed, same per-epoch shuffle, restored dropout RNG and optimizer state: the same weights.
    for a, b in zip(kept_weights(whole), kept_weights(killed), strict=True):
        assert (a == b).all()


@pytest.mark.needs_tf
@needs_data
def test_checkpoint_of_other_settings_is_refused_until_restart(early_stopping_runs):
    stale, whole = early_stopping_runs["stale"], early_stopping_runs["whole"]
    # A finished earlier run's outputs in the folder are fine: they are replaced.
    for name in ("model.keras", "vocab.txt", "training_report.json", "training_curves.png"):
        shutil.copy2(whole / name, stale / name)
    before = folder_bytes(stale)
    # The same model shape, on another subset, seed and learning rate (the checkpoint would load without error).
    other = ("--out", str(stale), *EARLY_STOPPING, "--max-samples", "400", "--seed", "7", "--learning-rate", "0.002")

    refused = run_train(*other)
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert "resuming" not in refused.stdout + refused.stderr
    assert "Traceback" not in refused.stderr
    errors = error_lines(refused.stderr)
    assert len(errors) == 1 and "--restart" in errors[0], refused.stderr
    assert folder_bytes(stale) == before  # nothing touched

    restarted = run_train(*other, "--epochs", "1", "--restart")
    assert restarted.returncode == 0, restarted.stderr[-2000:]
    report = report_of(stale)
    assert report["resumed"] is False
    assert [h["epoch"] for h in report["history"]] == [1]
    assert (report["settings"]["seed"], report["settings"]["max_samples"]) == (7, 400)
    assert report["settings"]["learning_rate"] == 0.002
    assert not (stale / ".checkpoints").exists()


def _refusal(folder: Path, wanted: dict) -> str:
    from train.checkpoint import CheckpointError, resume_state

    with pytest.raises(CheckpointError) as caught:
        resume_state(folder, wanted, restart=False)
    return str(caught.value)


def test_checkpoint_of_other_data_or_preset_is_refused(tmp_path):
    import numpy as np

    from train.checkpoint import commit, fingerprint, resume_state, start_fresh
    from train.presets import PRESETS

    settings, folder = PRESETS["seed"], tmp_path / ".checkpoints"
    ours = fingerprint(settings, "seed", "a" * 64)
    start_fresh(folder, ours)
    assert resume_state(folder, ours, restart=False) is None  # no finished epoch yet: nothing to resume
    early_stopping = {"wait": 0, "best": 0.5, "best_epoch": 1, "stopped": False}
    commit(folder / "backup", 1, [np.arange(3.0)], [np.ones(2)], early_stopping, [np.arange(3.0)])

    state = resume_state(folder, ours, restart=False)
    assert state is not None and state.epoch == 1 and state.early_stopping["best_epoch"] == 1
    model, optimizer = state.load_variables()
    assert [a.tolist() for a in model + optimizer] == [[0, 1, 2], [1, 1]]
    other_data = _refusal(folder, fingerprint(settings, "seed", "b" * 64))
    other_preset = _refusal(folder, fingerprint(settings, "default", "a" * 64))
    assert "data sha256" in other_data and "preset seed -> default" in other_preset
    for message in (other_data, other_preset):
        assert "--restart" in message and "\n" not in message
    assert resume_state(folder, fingerprint(settings, "seed", "b" * 64), restart=True) is None
    assert (folder / "backup").exists()  # reading never changes the folder


# ---------------------------------------------------------------------------------------------------------
# 3. An exported model folder (or any foreign file) is refused as --out unless --force.


def make_exported_folder(folder: Path) -> Path:
    """The layout `python -m export` writes (contents are placeholders)."""
    folder.mkdir(parents=True)
    files = {"model.keras": b"keras", "vocab.txt": b"<pad>\n<oov>\nfilm\n", "training_report.json": b"{}",
             "training_curves.png": b"png", "model.onnx": b"onnx", "model.int8.onnx": b"int8",
             "parity_report.md": b"# parity", "parity_diff_hist.png": b"png"}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    manifest = {"format": "edge-infer-model", "files": {key: {"path": name} for key, name in
                                                        (("fp32", "model.onnx"), ("int8", "model.int8.onnx"),
                                                         ("vocab", "vocab.txt"))}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.mark.parametrize("layout", ["exported", "foreign_file"])
def test_out_folder_with_a_model_or_foreign_files_is_refused(tmp_path, layout):
    out = tmp_path / "out"
    if layout == "exported":
        make_exported_folder(out)
    else:
        out.mkdir()
        (out / "vocab.txt").write_text("<pad>\n<oov>\n")
        (out / "notes.txt").write_text("mine")
    before = folder_bytes(out)
    line = assert_one_line_usage_error(run_main("--out", str(out), *ONE_EPOCH))
    assert "--force" in line and ("manifest.json" if layout == "exported" else "notes.txt") in line
    assert folder_bytes(out) == before


@pytest.mark.needs_tf
@needs_data
def test_force_turns_an_exported_folder_back_into_a_training_folder(tmp_path):
    out = make_exported_folder(tmp_path / "out")
    (out / "notes.txt").write_text("mine")
    done = run_train("--out", str(out), *ONE_EPOCH, "--force")
    assert done.returncode == 0, done.stderr[-2000:]
    removed = [line for line in done.stderr.splitlines() if "removed" in line]
    assert removed and "manifest.json" in removed[0]
    for name in ("manifest.json", "model.onnx", "model.int8.onnx", "parity_report.md", "parity_diff_hist.png"):
        assert not (out / name).exists(), name
        assert name in " ".join(removed)
    assert (out / "notes.txt").read_text() == "mine"  # not training's, not the export's: left alone
    assert report_of(out)["settings"]["max_samples"] == 200
    assert (out / "model.keras").stat().st_size > 100


# ---------------------------------------------------------------------------------------------------------
# 4. Impossible settings and unusable output folders: exit 2, one line, before TensorFlow is imported.

TINY = ("--preset", "seed", "--max-samples", "40", "--max-len", "8", "--vocab-size", "50", "--units", "2",
        "--embedding-dim", "2")


@pytest.mark.parametrize("bad", [
    ("--epochs", "0"), ("--epochs", "-3"), ("--batch-size", "0"), ("--vocab-size", "2"), ("--dropout", "1.5"),
    ("--dropout", "-0.1"), ("--embedding-dropout", "1"), ("--learning-rate", "0"), ("--learning-rate", "nan"),
    ("--learning-rate", "inf"), ("--weight-decay", "-0.1"), ("--patience", "-1"), ("--max-norm", "0"),
    ("--max-samples", "19"), ("--seed", "-1"), ("--max-len", "0"), ("--units", "0"), ("--embedding-dim", "0"),
    ("--epochs", "two"),
])
def test_impossible_setting_is_a_one_line_usage_error(tmp_path, bad):
    out = tmp_path / "out"
    line = assert_one_line_usage_error(run_main("--out", str(out), *TINY, *bad))
    assert bad[0].lstrip("-").replace("-", "_") in line.replace("-", "_")
    assert not (out / "model.keras").exists()


@pytest.mark.parametrize("where", ["parent_is_a_file", "out_is_a_file", "read_only"])
def test_unusable_out_folder_is_a_one_line_usage_error(tmp_path, where):
    if where == "read_only" and os.geteuid() == 0:
        pytest.skip("root ignores permission bits")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = {"parent_is_a_file": blocker / "out", "out_is_a_file": blocker, "read_only": tmp_path / "ro" / "out"}
    if where == "read_only":
        (tmp_path / "ro").mkdir(mode=0o555)
    line = assert_one_line_usage_error(run_main("--out", str(out[where]), *TINY))
    assert str(out[where]) in line


def test_out_folder_that_cannot_be_written_is_refused(tmp_path, monkeypatch):
    """The write probe's refusal, testable as root too (root writes into read-only folders)."""
    import tempfile

    from train.outdir import OutputError, check_output

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    with pytest.raises(OutputError, match="cannot write in the folder") as caught:
        check_output(tmp_path / "out")
    assert str(tmp_path / "out") in str(caught.value) and "Permission denied" in str(caught.value)


# ---------------------------------------------------------------------------------------------------------
# 5. Exit codes.  6. No GRU warning (GRU models export).


def test_help_lists_the_exit_codes():
    done = run_train("--help")
    assert done.returncode == 0
    assert describe() in done.stdout
    assert "--restart" in done.stdout and "--force" in done.stdout


def test_unexpected_error_is_exit_4_in_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-c", BUG_SCRIPT, "--out", str(tmp_path / "out"), *TINY],
                          capture_output=True, text=True, env=ENV, cwd=REPO, timeout=TIMEOUT)
    assert done.returncode == 4, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert [line for line in done.stderr.splitlines() if line.strip()] == [
        "error: unexpected RuntimeError: boom: second line"]


@pytest.mark.needs_tf
@needs_data
def test_ctrl_c_is_exit_130_in_one_line(tmp_path):
    cmd = [sys.executable, "-m", "train", "--out", str(tmp_path / "out"), *EARLY_STOPPING]
    # SIGINT at its default in the child, as under an interactive shell (a background CI job ignores it)
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=REPO,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)) as proc:
        try:
            for line in proc.stdout:  # Keras prints "Epoch 1/8" when the training loop has started
                if line.startswith("Epoch 1/"):
                    proc.send_signal(signal.SIGINT)
                    break
            _, stderr = proc.communicate(timeout=TIMEOUT)
        finally:
            proc.kill()
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr
    errors = error_lines(stderr)
    assert len(errors) == 1 and "interrupted" in errors[0], stderr[-2000:]


def test_gru_run_no_longer_warns_about_export(tmp_path):
    done = run_train("--cell", "gru", "--data", str(tmp_path / "missing.tar.gz"), "--out", str(tmp_path / "o"),
                     *TINY)
    assert done.returncode == 2  # the missing dataset, after the point where the warning used to come
    assert "warning" not in done.stderr.lower(), done.stderr


# ---------------------------------------------------------------------------------------------------------
# 7. The typed training-report reader.

SHIPPED_REPORTS = sorted((REPO / "models").glob("*/training_report.json"))


def sample_report() -> dict:
    return {
        "format": "edge-infer-training-report", "format_version": 1, "preset": "seed",
        "settings": {"vocab_size": 2000, "max_len": 64, "seed": 1337},
        "labels": ["negative", "positive"], "threshold": 0.5,
        "tokenizer": {"normalization": "edge-infer-v1", "max_len": 64, "padding": "pre", "truncating": "pre",
                      "pad_id": 0, "oov_id": 1, "vocab_size": 2000},
        "vocabulary": {"file": "vocab.txt", "sha256": "ab" * 32, "size": 2000},
        "data": {"path": "data.tar.gz", "sha256": "cd" * 32, "train_reviews": 540, "validation_reviews": 60,
                 "test_reviews": 600},
        "history": [{"epoch": 1, "loss": 0.69, "accuracy": 0.5, "val_loss": 0.68, "val_accuracy": 0.55}],
        "best_epoch": 1, "validation_accuracy": 0.55, "validation_loss": 0.68, "test_accuracy": 0.54,
        "test_loss": 0.69, "wall_time_s": 3.5, "resumed": False, "versions": {"python": "3.11.7"},
    }


def test_report_round_trip(tmp_path):
    from train.report import TrainingReport

    report = TrainingReport.from_dict(sample_report())
    assert report.to_dict() == sample_report()
    assert report.tokenizer.max_len == 64 and report.vocabulary.size == 2000 and report.data.test_reviews == 600
    path = tmp_path / "training_report.json"
    report.save(path)
    assert TrainingReport.load(path) == report
    assert json.loads(path.read_text()) == sample_report()
    assert not list(tmp_path.glob(".*"))  # no temp file left behind


@pytest.mark.parametrize("path", SHIPPED_REPORTS, ids=lambda p: p.parent.name)
def test_shipped_reports_load(path):
    from train.report import TrainingReport

    report = TrainingReport.load(path)
    assert report.to_dict() == json.loads(path.read_text())


def _drop(report: dict, dotted: str) -> dict:
    *parents, last = dotted.split(".")
    node = report
    for key in parents:
        node = node[key]
    del node[last]
    return report


def _set(report: dict, dotted: str, value: object) -> dict:
    *parents, last = dotted.split(".")
    node = report
    for key in parents:
        node = node[key]
    node[last] = value
    return report


@pytest.mark.parametrize("case, text, needle", [
    ("missing key", json.dumps(_drop(sample_report(), "tokenizer.max_len")), "tokenizer.max_len"),
    ("missing key", json.dumps(_drop(sample_report(), "test_accuracy")), "test_accuracy"),
    ("mistyped key", json.dumps(_set(sample_report(), "threshold", "0.5")), "threshold"),
    ("mistyped key", json.dumps(_set(sample_report(), "vocabulary.size", 2000.5)), "vocabulary.size"),
    ("mistyped key", json.dumps(_set(sample_report(), "history", [{"epoch": "1"}])), "history"),
    ("mistyped key", json.dumps(_set(sample_report(), "resumed", "no")), "resumed"),
    ("wrong format", json.dumps(_set(sample_report(), "format", "edge-infer-model")), "format"),
    ("not an object", "[1, 2]", "object"),
    ("invalid json", "{not json", "JSON"),
])
def test_report_reader_errors_name_the_problem(tmp_path, case, text, needle):
    from train.report import ReportError, TrainingReport

    path = tmp_path / "training_report.json"
    path.write_text(text)
    with pytest.raises(ReportError) as caught:
        TrainingReport.load(path)
    assert caught.value.path == path and needle in caught.value.reason
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_report_reader_missing_file(tmp_path):
    from train.report import ReportError, TrainingReport

    with pytest.raises(ReportError, match="no such file"):
        TrainingReport.load(tmp_path / "training_report.json")


@pytest.mark.parametrize("option", [["--bag-dim", "8"], ["--unlabeled", "."]])
def test_two_label_option_on_three_labels_is_refused_before_the_folder_changes(tmp_path, option):
    data = tmp_path / "three.csv"
    data.write_text("text,label\n" + "".join(f"review number {i},{('bad', 'meh', 'good')[i % 3]}\n"
                                              for i in range(60)))
    out = tmp_path / "out"
    (out / ".checkpoints").mkdir(parents=True)
    (out / ".checkpoints" / "fingerprint.json").write_text("{}")
    before = folder_bytes(out)
    line = assert_one_line_usage_error(run_main("--data", str(data), "--out", str(out), *option))
    assert "needs two labels, not 3" in line
    assert folder_bytes(out) == before
