"""Training on several sources in one run: split field, rates, soft labels, length buckets, calibration.

The data are small synthetic files; the one training run is tiny (one epoch), and no test asserts an
accuracy, so nothing depends on this CPU's rounding.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_infer import exit_codes
from train.data import DataError
from train.mixture import Mixture, load_mixture, parse_pairs
from train.sources import SourceSpec

ROOT = Path(__file__).resolve().parent.parent
GOOD, BAD = ["great", "lovely", "superb", "best"], ["awful", "boring", "worst", "dull"]
FILLER = ["the", "phone", "battery", "screen", "service", "food", "film", "day"]


def _text(rng: np.random.Generator, label: str, i: int, length: int) -> str:
    words = list(rng.choice(FILLER, size=length)) + [rng.choice(GOOD if label == "positive" else BAD)]
    return f"#{i} " + " ".join(words)


def write_jsonl_gz(path: Path, rows: list[dict]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    return path


def primary_csv(path: Path, n: int = 200, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    lines = ["text,label"] + [f"{_text(rng, lab, i, 30)},{lab}" for i, lab in
                              enumerate(["negative", "positive"] * (n // 2))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def extra_rows(n: int = 300, seed: int = 1) -> list[dict]:
    """Short rows: train/dev/test splits, two domains, a third label 'neutral', and a train row equal to a
    test row of the same file."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = ["negative", "positive", "neutral"][i % 3]
        split = "test" if i % 10 == 0 else "dev" if i % 10 == 1 else "train"
        rows.append({"text": _text(rng, label if label != "neutral" else "positive", 1000 + i, 3),
                     "label": label, "split": split, "domain": "a" if i % 2 else "b"})
    rows.append({**rows[0], "split": "train"})  # a copy of a test row, labelled train
    return rows


def mixture_spec(tmp_path: Path, **mix) -> SourceSpec:
    extra = write_jsonl_gz(tmp_path / "extra.jsonl.gz", extra_rows())
    return SourceSpec(primary_csv(tmp_path / "p.csv"), mix=Mixture(extra=(extra,), split_field="split", **mix))


# --------------------------------------------------------------------------------------------- no TensorFlow

def test_only_train_rows_of_further_sources_are_trained_on(tmp_path):
    data = load_mixture(mixture_spec(tmp_path, soft_labels=(("neutral", 0.5),)), seed=0)
    rows = extra_rows()
    held = {r["text"] for r in rows if r["split"] != "train"}
    trained = set(data.train.texts) | set(data.soft[0])
    assert not trained & held, "a dev/test row (or a copy of one) reached training"
    wanted = {r["text"] for r in rows if r["split"] == "train" and r["text"] not in held}
    assert wanted <= trained
    counts = data.sources[-1]["counts"]
    assert counts["dropped_equal_to_held_out"] == 1
    assert counts["not_train_split"] == sum(r["split"] != "train" for r in rows)
    # the primary's own hold-out is still the test split, and none of its rows is trained on
    assert not set(data.test.texts) & set(data.train.texts) and len(data.test) == 40


def test_soft_labels_become_targets_not_labels(tmp_path):
    data = load_mixture(mixture_spec(tmp_path, soft_labels=(("neutral", 0.25),)), seed=0)
    neutral = {r["text"] for r in extra_rows() if r["label"] == "neutral" and r["split"] == "train"}
    assert set(data.soft[0]) == neutral - {extra_rows()[0]["text"]}
    assert np.all(data.soft[1] == np.float32(0.25))
    assert set(np.unique(data.train.labels)) == {0, 1}


def test_a_label_outside_the_model_is_refused_without_soft_label(tmp_path):
    with pytest.raises(DataError, match=r"extra\.jsonl\.gz:\d+: label 'neutral' is not one of"):
        load_mixture(mixture_spec(tmp_path), seed=0)


def test_rate_keeps_a_seeded_share_of_a_domain(tmp_path):
    spec = mixture_spec(tmp_path, rates=(("a", 0.5),), soft_labels=(("neutral", 0.5),))
    first, again = load_mixture(spec, seed=3), load_mixture(spec, seed=3)
    assert first.train.texts == again.train.texts
    counts = first.sources[-1]["counts"]
    in_a = sum(r["domain"] == "a" and r["split"] == "train" for r in extra_rows())
    assert 0.25 * in_a < counts["left_out_by_rate"] < 0.75 * in_a
    everything = load_mixture(mixture_spec(tmp_path, soft_labels=(("neutral", 0.5),)), seed=3)
    assert "left_out_by_rate" not in everything.sources[-1]["counts"]


@pytest.mark.parametrize("mix, message", [
    ({"rates": (("nowhere", 0.5),)}, "--rate nowhere: no further source"),
    ({"soft_labels": (("positive", 0.5),)}, "a label of the model cannot also be a soft label"),
])
def test_bad_mixture_options_are_refused(tmp_path, mix, message):
    with pytest.raises(DataError, match=message):
        load_mixture(mixture_spec(tmp_path, **mix), seed=0)


@pytest.mark.parametrize("values, message", [
    (["x=0"], r"in \(0, 1\]"), (["x=1.5"], r"in \(0, 1\]"), (["x"], "KEY=VALUE"), (["=0.5"], "KEY=VALUE"),
    (["x=nan"], "KEY=VALUE"), (["x=0.5", "x=0.2"], "given twice"),
])
def test_parse_pairs_refuses_bad_values(values, message):
    with pytest.raises(DataError, match=message):
        parse_pairs(values, "--rate", low=0.0, high=1.0, low_open=True)


def test_best_temperature_undoes_a_known_overconfidence():
    from train.calibration import best_temperature

    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, size=20_000)
    labels = (rng.random(20_000) < 1 / (1 + np.exp(-logits))).astype(np.int64)  # calibrated at T = 1
    sharp = 1 / (1 + np.exp(-2.0 * logits))  # twice too sure: T = 2 undoes it
    probabilities = np.column_stack([1 - sharp, sharp])
    assert best_temperature(probabilities, labels) == pytest.approx(2.0, abs=0.1)


@pytest.mark.needs_tf
# --------------------------------------------------------------------------------------------- TensorFlow

def test_length_batches_cover_every_row_once_cut_to_their_longest():
    pytest.importorskip("tensorflow")
    from train.callbacks import LengthBatches

    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 60, size=1000)
    x = np.zeros((1000, 64), dtype=np.int32)
    for i, n in enumerate(lengths):
        x[i, :n] = rng.integers(2, 100, size=n)
    y = np.arange(1000, dtype=np.float32)
    batches = LengthBatches(x, y, 32, seed=7)
    for epoch in (0, 1):
        batches.set_epoch(epoch)
        seen = []
        for index in range(len(batches)):
            xb, yb = batches[index]
            rows = yb.astype(int)
            assert xb.shape[1] == lengths[rows].max()
            assert np.array_equal(xb, x[rows, :xb.shape[1]])
            seen += list(rows)
        assert sorted(seen) == list(range(1000))
    spread = np.mean([np.ptp(lengths[batches[i][1].astype(int)]) for i in range(len(batches))])
    assert spread < 0.5 * np.ptp(lengths), "batches should hold rows of similar length"
    again = LengthBatches(x, y, 32, seed=7)
    again.set_epoch(1)
    assert all(np.array_equal(again[i][1], batches[i][1]) for i in range(len(batches)))


@pytest.mark.needs_tf
def test_fold_temperature_divides_the_logit():
    pytest.importorskip("tensorflow")
    import keras

    from train.calibration import fold_temperature

    inputs = keras.Input(shape=(4,))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", name="score")(inputs))
    x = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    before = model.predict(x, verbose=0)[:, 0].astype(np.float64)
    fold_temperature(model, 2.0, combined=False)
    after = model.predict(x, verbose=0)[:, 0].astype(np.float64)
    np.testing.assert_allclose(np.log(after / (1 - after)), np.log(before / (1 - before)) / 2.0, atol=1e-4)


@pytest.mark.needs_tf
def test_cli_trains_on_two_sources_with_soft_labels_buckets_and_calibration(tmp_path):
    pytest.importorskip("tensorflow")
    extra = write_jsonl_gz(tmp_path / "extra.jsonl.gz", extra_rows())
    out = tmp_path / "run"
    command = [sys.executable, "-m", "train", "--preset", "general", "--data", str(primary_csv(tmp_path / "p.csv")),
               "--data", str(extra), "--split-field", "split", "--soft-label", "neutral=0.5", "--rate", "a=0.9",
               "--vocab-size", "500", "--embedding-dim", "8", "--units", "4", "--epochs", "1", "--bag-dim", "4",
               "--bag-buckets", "64", "--out", str(out)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == exit_codes.OK, done.stderr[-2000:]
    report = json.loads((out / "training_report.json").read_text())
    assert report["settings"]["bucket_by_length"] is True
    calibration = report["calibration"]
    assert 0.5 <= calibration["temperature"] <= 4.0
    assert calibration["after"]["log_loss"] <= calibration["before"]["log_loss"] + 1e-6
    counts = report["data"]["sources"][-1]["counts"]
    assert counts["soft:neutral"] > 0 and counts["not_train_split"] == 60
    assert report["data"]["test_reviews"] == 40


def test_cli_refuses_a_bad_rate_before_training(tmp_path):
    command = [sys.executable, "-m", "train", "--data", str(primary_csv(tmp_path / "p.csv")), "--rate", "x=2",
               "--out", str(tmp_path / "run")]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == exit_codes.USAGE
    assert done.stderr.count("\n") == 1 and "--rate 'x=2'" in done.stderr
    assert not (tmp_path / "run").exists()
