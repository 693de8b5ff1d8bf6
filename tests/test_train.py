"""Training stage: CLI smoke run, resume after SIGKILL, model variants, bad dataset paths."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from train.data import default_data_path
from train.presets import PRESETS

DATA = default_data_path()
needs_data = pytest.mark.skipif(not DATA.exists(), reason=f"{DATA} is not there")
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}


def run_train(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "train", *args], capture_output=True, text=True, env=ENV,
                          cwd=Path(__file__).resolve().parent.parent, **kwargs)


@pytest.mark.needs_tf
@needs_data
def test_smoke_run_writes_artifacts_and_a_well_formed_report(tmp_path):
    out = tmp_path / "model"
    done = run_train("--data", str(DATA), "--preset", "default", "--out", str(out), "--max-samples", "300",
                     "--epochs", "1", "--max-len", "64", "--vocab-size", "2000", "--units", "8")
    assert done.returncode == 0, done.stderr[-2000:]
    for name in ("model.keras", "vocab.txt", "training_report.json", "training_curves.png"):
        assert (out / name).stat().st_size > 0, name
    assert not (out / ".checkpoints").exists()
    assert not list(out.glob(".*.tmp"))

    report = json.loads((out / "training_report.json").read_text())
    assert report["preset"] == "default"
    assert report["settings"]["max_len"] == 64 and report["settings"]["mask_zero"] is True
    assert report["data"]["train_reviews"] + report["data"]["validation_reviews"] == 300
    assert report["data"]["test_reviews"] == 300
    assert len(report["data"]["sha256"]) == 64
    assert [h["epoch"] for h in report["history"]] == [1]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(report["history"][0])
    assert 0.0 <= report["test_accuracy"] <= 1.0
    assert report["vocabulary"]["size"] == 2000
    assert report["versions"]["tensorflow"]

    import keras

    model = keras.models.load_model(out / "model.keras", safe_mode=True)
    assert getattr(model, "optimizer", None) is None  # saved without optimizer state
    assert model.input_shape == (None, None)
    assert model.get_layer("embedding").mask_zero


@pytest.mark.needs_tf
@needs_data
def test_killed_run_resumes_from_its_last_finished_epoch(tmp_path):
    out = tmp_path / "model"
    args = ("--data", str(DATA), "--preset", "seed", "--out", str(out), "--max-samples", "600", "--epochs", "4",
            "--max-len", "100", "--vocab-size", "2000", "--units", "16", "--patience", "10")
    cmd = [sys.executable, "-m", "train", *args]
    metadata = out / ".checkpoints" / "backup" / "training_metadata.json"
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV,
                             cwd=Path(__file__).resolve().parent.parent)
    deadline = time.time() + 300
    while not metadata.exists() and first.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert metadata.exists(), "the first run never finished an epoch"
    finished = json.loads(metadata.read_text())["epoch"]
    assert finished < 4, "the run finished before it could be killed"
    assert not (out / "training_report.json").exists()
    earlier_s = json.loads((out / ".checkpoints" / "elapsed.json").read_text())["seconds"]

    started = time.time()
    second = run_train(*args)
    second_s = time.time() - started
    assert second.returncode == 0, second.stderr[-2000:]
    epochs_run = [int(n) for n in re.findall(r"^Epoch (\d+)/4", second.stdout + second.stderr, re.M)]
    assert epochs_run and epochs_run[0] == finished + 1  # continued, did not start over
    report = json.loads((out / "training_report.json").read_text())
    assert report["resumed"] is True
    assert [h["epoch"] for h in report["history"]] == [1, 2, 3, 4]  # history from both runs
    assert earlier_s > 0 and earlier_s < report["wall_time_s"] <= earlier_s + second_s  # time from both runs


@pytest.mark.needs_tf
@pytest.mark.parametrize("overrides", [{"cell": "gru"}, {"max_norm": 3.0}, {"cell": "gru", "mask_zero": True},
                                       {"embedding_dropout": 0.3, "mask_zero": True}, {"weight_decay": 0.1}])
def test_model_variants_build_and_fit_one_step(overrides):
    import keras

    from train.model import build_model

    settings = PRESETS["seed"].with_overrides(vocab_size=50, max_len=12, units=4, embedding_dim=8, **overrides)
    model = build_model(settings)
    x = np.random.default_rng(0).integers(1, 50, size=(8, 12)).astype("int32")
    y = np.array([0, 1] * 4, dtype="int32")
    before = [w.copy() for w in model.get_weights()]
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    rnn = model.get_layer("bidirectional").forward_layer
    assert isinstance(rnn, keras.layers.GRU if overrides.get("cell") == "gru" else keras.layers.LSTM)
    if "max_norm" in overrides:
        kernel = rnn.cell.kernel.numpy()
        assert np.sqrt((kernel**2).sum(axis=0)).max() <= 3.0 + 1e-5
    names = [layer.name for layer in model.layers]
    assert ("embedding_dropout" in names) == ("embedding_dropout" in overrides)
    assert model.optimizer.weight_decay == overrides.get("weight_decay")


@pytest.mark.needs_tf
def test_seed_preset_is_the_seed_notebook():
    s = PRESETS["seed"]
    assert (s.vocab_size, s.max_len, s.padding, s.truncating, s.mask_zero) == (10_000, 200, "pre", "pre", False)
    assert (s.embedding_dim, s.cell, s.units, s.dropout, s.batch_size, s.epochs) == (128, "lstm", 64, 0.5, 128, 4)

    from train.model import build_model

    model = build_model(s)
    assert model.get_layer("embedding").input_dim == 10_000
    assert model.get_layer("embedding").output_dim == 128
    assert model.get_layer("bidirectional").forward_layer.units == 64
    assert model.get_layer("dropout").rate == 0.5
    assert model.loss == "binary_crossentropy"


@pytest.mark.parametrize("make_bad", ["missing", "empty_dir", "not_an_archive"])
def test_bad_dataset_path_is_a_one_line_error(tmp_path, make_bad):
    bad = tmp_path / "data.tar.gz"
    if make_bad == "empty_dir":
        bad = tmp_path / "empty"
        bad.mkdir()
    elif make_bad == "not_an_archive":
        bad.write_bytes(b"this is not a tar archive")
    done = run_train("--data", str(bad), "--out", str(tmp_path / "out"), "--max-samples", "100")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(bad) in errors[0]
