"""bench/domains.py and the row selection it shares with training (bench/general_data.py)."""

from __future__ import annotations

import gzip
import io
import json
import os
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
import domains  # noqa: E402
import general_data  # noqa: E402
import reference_models as refs  # noqa: E402

from edge_infer import exit_codes  # noqa: E402

ROWS = {  # source -> (text, label, split)
    "amazon": [("amazon train good", "positive", "train"), ("amazon train bad", "negative", "train"),
               ("amazon test good", "positive", "test"), ("amazon test bad", "negative", "test")],
    "yelp": [("yelp train good", "positive", "train"), ("yelp dev good", "positive", "dev"),
             ("yelp test bad", "negative", "test")],
    "tweets": [("tweet train good", "positive", "train"), ("tweet train meh", "neutral", "train"),
               ("tweet test meh", "neutral", "test"), ("tweet test bad", "negative", "test"),
               ("Tweet dev, MEH.", "neutral", "dev"), ("tweet dev meh", "positive", "train")],
    "sst2": [("sst train good", "positive", "train"), ("sst dev bad", "negative", "dev")],
    "rt": [("rt train good", "positive", "train")],
}
IMDB = {"train/pos/1_9.txt": "imdb train good", "train/neg/2_1.txt": "imdb train bad",
        "train/neg/3_2.txt": "Amazon test, BAD.", "test/pos/4_8.txt": "imdb test good",
        "test/neg/5_3.txt": "imdb test bad"}


@pytest.fixture
def fake_data(tmp_path: Path) -> Path:
    (tmp_path / "multi").mkdir()
    for source, rows in ROWS.items():
        with gzip.open(tmp_path / "multi" / f"{source}.jsonl.gz", "wt", encoding="utf-8") as out:
            for text, label, split in rows:
                out.write(json.dumps({"text": text, "label": label, "domain": source, "split": split}) + "\n")
    with tarfile.open(tmp_path / "aclImdb_labeled.tar.gz", "w:gz") as archive:
        for name, text in IMDB.items():
            data = text.encode()
            info = tarfile.TarInfo(f"aclImdb/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return tmp_path


def test_training_rows_are_the_binary_train_rows_without_rt_or_held_out_copies(fake_data):
    corpus = general_data.read_corpus(fake_data)
    assert general_data.training_rows(fake_data) == corpus.train
    got = sorted(zip(corpus.train.texts, corpus.train.labels, corpus.train.sources))
    assert got == sorted([("amazon train good", 1, "amazon"), ("amazon train bad", 0, "amazon"),
                          ("yelp train good", 1, "yelp"), ("tweet train good", 1, "tweets"),
                          ("sst train good", 1, "sst2"), ("imdb train good", 1, "imdb"),
                          ("imdb train bad", 0, "imdb")])
    # "tweet dev meh" (train) is the tokens of a dev tweet, "Amazon test, BAD." of an Amazon test row
    assert corpus.dropped == 2


def test_held_out_splits_are_test_or_dev_binary_rows(fake_data):
    held = general_data.read_corpus(fake_data).held_out
    assert {name: list(zip(rows.texts, rows.labels)) for name, rows in held.items()} == {
        "amazon": [("amazon test good", 1), ("amazon test bad", 0)], "yelp": [("yelp test bad", 0)],
        "tweets": [("tweet test bad", 0)], "sst2": [("sst dev bad", 0)],
        "imdb": [("imdb test bad", 0), ("imdb test good", 1)]}


def test_sample_is_seeded_and_keeps_the_order():
    rows = general_data.Rows([str(i) for i in range(100)], [i % 2 for i in range(100)], ["x"] * 100)
    a, b = rows.sample(10, seed=3), rows.sample(10, seed=3)
    assert a == b and len(a) == 10 and a.texts == sorted(a.texts, key=int)
    assert rows.sample(10, seed=4) != a and rows.sample(None) is rows and rows.sample(500) is rows


def test_measure_gives_evaluates_accuracy_macro_f1_and_ece():
    rows = general_data.Rows(["a", "b", "c", "d"], [0, 0, 1, 1], ["x"] * 4)
    scores = {"a": 0.1, "b": 0.6, "c": 0.8, "d": 0.4}
    fake = refs.Scorer("fake", lambda texts: np.array([scores[t] for t in texts]))
    figures = domains.measure(fake, "amazon", rows)
    assert figures.accuracy == pytest.approx(0.5) and figures.macro_f1 == pytest.approx(0.5)
    # confidences 0.9 (right), 0.6 and 0.6 (wrong), 0.8 (right): (0.1 + 2 * 0.6 + 0.2) / 4
    assert figures.ece == pytest.approx(0.375)
    strict = domains.measure(refs.Scorer("fake", fake.score, 0.85), "amazon", rows)
    assert strict.accuracy == pytest.approx(0.5)  # every score is below 0.85: all negative
    assert strict.macro_f1 == pytest.approx((2 / 3 + 0) / 2)


def test_targets_compare_with_vader_fasttext_and_the_floors():
    def f(model, split, accuracy, ece=0.01):
        return domains.Figures(model, split, 10, accuracy, accuracy, ece, 0.0)

    results = [f("general", "amazon", 0.91), f("VADER", "amazon", 0.92), f("fastText", "amazon", 0.80),
               f("general", "tweets", 0.79, ece=0.05), f("general", "imdb", 0.89)]
    lines = domains.targets(results, "general")
    assert lines == [
        "- met: Amazon test accuracy >= 90 % (91.00 %)", "- met: Amazon test ECE <= 0.03 (0.0100)",
        "- **missed**: Amazon test accuracy at or above VADER (91.00 % vs 92.00 %)",
        "- met: Amazon test accuracy at or above fastText (91.00 % vs 80.00 %)",
        "- **missed**: tweets test (binary) accuracy >= 80 % (79.00 %)",
        "- **missed**: tweets test (binary) ECE <= 0.03 (0.0500)", "- met: IMDB test accuracy >= 89 % (89.00 %)"]
    assert domains.targets(results, "other") == ["No model named other was measured: no targets checked."]


def test_missing_data_is_one_line_and_a_usage_error(tmp_path, capsys):
    pytest.importorskip("vaderSentiment")
    pytest.importorskip("fasttext")
    code = domains.main(["--data", os.fspath(tmp_path), "--out", os.fspath(tmp_path / "d.md")])
    assert code == exit_codes.USAGE
    err = capsys.readouterr().err
    assert err.startswith("domains: ") and err.count("\n") == 1
    assert not (tmp_path / "d.md").exists()


def test_end_to_end_on_a_sample(tmp_path, seed_model_dir):
    """Every split x every model, and VADER's figure is its compound >= 0 rule on the very rows sampled."""
    pytest.importorskip("vaderSentiment")
    pytest.importorskip("fasttext")
    if not general_data.available():
        pytest.skip(f"{general_data.data_dir()}: the shared data is not there")
    out, figures = tmp_path / "d.md", tmp_path / "d.json"
    code = domains.main(["--model", os.fspath(seed_model_dir), "--sample", "100", "--imdb-sample", "40",
                         "--train-sample", "3000", "--out", os.fspath(out), "--json", os.fspath(figures),
                         "--targets", "seed"])
    assert code == exit_codes.OK
    results = json.loads(figures.read_text(encoding="utf-8"))["results"]
    assert sorted((r["split"], r["model"]) for r in results) == sorted(
        (split, model) for split in domains.SPLITS for model in ("seed", "VADER", "fastText"))
    assert all(r["rows"] == (40 if r["split"] == "imdb" else 100) for r in results)
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    with gzip.open(general_data.data_dir() / "multi" / "amazon.jsonl.gz", "rt", encoding="utf-8") as handle:
        test = [r for r in map(json.loads, handle) if r["split"] == "test" and r["label"] != "neutral"]
    rows = general_data.Rows([r["text"] for r in test], [int(r["label"] == "positive") for r in test],
                             ["amazon"] * len(test)).sample(100, 0)
    right = [(analyzer.polarity_scores(t)["compound"] >= 0) == bool(y) for t, y in zip(rows.texts, rows.labels)]
    vader = next(r for r in results if r["model"] == "VADER" and r["split"] == "amazon")
    assert vader["accuracy"] == pytest.approx(np.mean(right))
    text = out.read_text(encoding="utf-8")
    assert "| domain (split) | rows | seed | VADER | fastText |" in text
    assert "## Issue 21's per-domain targets for `seed`" in text and "IMDB test accuracy >= 89 %" in text
