"""Training and exporting on your own data: CSV, JSONL and folder-per-label sources, N labels, class weights.

The models here are tiny (one epoch on a few hundred synthetic rows); no test asserts their accuracy, and
the int8 gate gets explicit limits that any model passes, so nothing depends on this CPU's rounding.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_infer import exit_codes
from train.data import LABELS, DataError, Split, stratified_indices
from train.sources import (
    TEST_FRACTION,
    SourceSpec,
    balanced_weights,
    class_counts,
    load_dataset,
    load_test_split,
    parse_labels,
    read_rows,
)

ROOT = Path(__file__).resolve().parent.parent
THREE = ("bad", "meh", "good")
WORDS = {"bad": ["awful", "terrible", "boring", "worst"], "meh": ["okay", "average", "fine", "mediocre"],
         "good": ["great", "wonderful", "superb", "best"]}
FILLER = ["the", "film", "plot", "actor", "scene", "story", "music", "ending", "camera", "script"]
TINY = {"vocab_size": 1000, "max_len": 64, "embedding_dim": 16, "units": 8, "epochs": 1, "learning_rate": 0.01}
ANY_INT8 = {"max_accuracy_drop": 1.0, "min_agreement": 0.0}
"""int8 limits every model passes: the tests need the int8 file, not a CPU-dependent verdict."""


def synthetic_rows(labels: tuple[str, ...] = THREE, per_label: int = 100, seed: int = 0) -> list[tuple[str, str]]:
    """(text, label) rows with words that tell the label apart; unique texts; some with commas, quotes, newlines."""
    rng = random.Random(seed)
    rows = []
    for i in range(per_label * len(labels)):
        label = labels[i % len(labels)]
        words = [rng.choice(FILLER) for _ in range(rng.randint(5, 20))] + rng.sample(WORDS[label], 2)
        rng.shuffle(words)
        text = f"#{i} " + " ".join(words)
        if i % 7 == 0:
            text += ', "quoted", and\na second line'
        rows.append((text, label))
    return rows


def write_csv(path: Path, rows: list[tuple[str, str]], header: tuple[str, str] = ("review", "rating")) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def key_shape(doc: object) -> object:
    """The nested keys of a JSON document (its values left out), to compare layouts."""
    if isinstance(doc, dict):
        return {key: key_shape(value) for key, value in doc.items()}
    return None


# --------------------------------------------------------------------------------------------- no TensorFlow

def test_csv_rows_with_quotes_commas_and_newlines(tmp_path):
    rows = synthetic_rows(per_label=5)
    data = read_rows(write_csv(tmp_path / "d.csv", rows), "review", "rating")
    assert list(zip(data.texts, data.names)) == rows
    assert data.kind == "csv" and len(data.sha256) == 64


def test_jsonl_rows_and_integer_labels(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "good one", "label": 1}\n\n{"text": "bad one", "label": 0, "extra": true}\n')
    data = read_rows(path)
    assert data.texts == ["good one", "bad one"] and data.names == ["1", "0"]


@pytest.mark.parametrize("content, where, what", [
    ('{"text": "a", "label": "x"}\n{"text": "b" "label": "y"}\n', "d.jsonl:2", "invalid JSON: Expecting ','"),
    ('{"text": "a", "label": "x"}\n["b", "y"]\n', "d.jsonl:2", "not a JSON object but an array"),
    ('{"text": "a", "label": "x"}\n{"text": "b"}\n', "d.jsonl:2", "no field 'label'"),
    ('{"text": "a", "label": "x"}\n{"text": "b", "label": 1.5}\n', "d.jsonl:2", "not a string or integer"),
    ('{"text": "a", "label": "x"}\n{"text": "b", "label": " "}\n', "d.jsonl:2", "empty label"),
])
def test_bad_jsonl_rows_name_file_and_line(tmp_path, content, where, what):
    path = tmp_path / "d.jsonl"
    path.write_text(content)
    with pytest.raises(DataError, match=what) as error:
        read_rows(path)
    assert where in str(error.value)


def test_bad_csv_row_names_its_first_line_after_a_multiline_field(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('text,label\n"one\ntwo",a\nthree,b,extra\n')
    with pytest.raises(DataError, match=r"d\.csv:4: 3 fields; the header has 2"):
        read_rows(path)


@pytest.mark.parametrize("name", ["d.csv", "d.csv.gz"])
def test_csv_rows_are_the_runtimes_records(tmp_path, name):
    # One reader: train parses CSV with edge_infer.inputs (BOM, CRLF, a quoted newline, blank and empty rows,
    # gzip), so `edge-infer evaluate` reads a file trained on row for row as training did.
    from edge_infer.inputs import iter_records

    raw = b'\xef\xbb\xbftext,label\r\n"one\r\ntwo, three",a\r\nfour,b\r\n\r\n  ,a\r\n'
    (tmp_path / "d.csv").write_bytes(raw)
    path = tmp_path / name
    path.write_bytes(gzip.compress(raw) if name.endswith(".gz") else raw)
    records = [r for r in iter_records([str(tmp_path / "d.csv")], "csv", label_field="label", budget=1 << 20,
                                       keep="head") if r.error is None]
    rows = read_rows(path)
    assert rows.texts == [r.text for r in records] == ["one\r\ntwo, three", "four"]
    assert rows.names == [r.label for r in records] == ["a", "b"]
    assert rows.where == [f"{path}:{r.line}" for r in records] and rows.skipped_empty == 1


@pytest.mark.parametrize("name, data, where, what", [
    ("d.csv", b"text,label\nfine,a\nCaf\xe9,b\n", "d.csv:3", "not valid UTF-8 (byte 0xe9"),
    ("d.jsonl", b'{"text": "fine", "label": "a"}\n{"text": "Caf\xe9", "label": "b"}\n', "d.jsonl:2",
     "not valid UTF-8 (byte 0xe9"),
    ("d.csv", b"text,label\nok,a\nx\x00y,b\n", "d.csv:3", "binary file (NUL byte"),
    ("d.csv", b'text,label\nok,a\n"open,b\n', "d.csv:3", "unclosed quote"),
    ("d.csv", b"", "d.csv", "empty file (no header row)"),
    ("d.csv.gz", gzip.compress(b"text,label\nok,a\n")[:-6], "d.csv.gz", "cannot be read"),
])
def test_bad_files_stop_with_one_line_naming_file_and_line(tmp_path, name, data, where, what):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(DataError) as error:
        read_rows(path)
    message = str(error.value)
    assert message.startswith(f"{tmp_path / where}: ") and what in message and "\n" not in message, message


def test_empty_texts_are_skipped_and_counted(tmp_path):
    path = write_csv(tmp_path / "d.csv", [("fine", "a"), ("  ", "b"), ("", "a"), ("ok", "b")], ("text", "label"))
    data = read_rows(path)
    assert data.texts == ["fine", "ok"] and data.skipped_empty == 2


def test_train_cli_refuses_bad_rows_and_labels_in_one_line(tmp_path, capsys):
    from train.__main__ import main

    path = write_csv(tmp_path / "d.csv", synthetic_rows(per_label=10))
    cases = [
        (["--text-field", "nope", "--label-field", "rating"], "no field 'nope'"),
        (["--text-field", "review", "--label-field", "rating", "--labels", "bad,good"], "is not one of bad, good"),
        (["--text-field", "review", "--label-field", "rating", "--labels", "bad,meh,good,great"], "which no row has"),
        (["--text-field", "review", "--label-field", "rating", "--labels", "bad,bad"], "repeated"),
    ]
    for extra, message in cases:
        code = main(["--data", str(path), "--out", str(tmp_path / "out"), *extra])
        err = capsys.readouterr().err
        assert code == exit_codes.USAGE, err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_folder_per_label_source(tmp_path):
    for label, count in (("neg", 12), ("neutral", 6), ("pos", 12)):
        (tmp_path / "d" / label).mkdir(parents=True)
        for i in range(count):
            (tmp_path / "d" / label / f"{i}.txt").write_text(f"{label} text number {i}")
    (tmp_path / "d" / "pos" / "notes.md").write_text("ignored: not a .txt file")
    data = load_dataset(SourceSpec(tmp_path / "d"), seed=3)
    assert data.labels == ("neg", "neutral", "pos")  # sorted by default
    assert len(data.train) + len(data.test) == 30 and len(data.test) == round(30 * TEST_FRACTION)
    assert class_counts(data.test, data.labels) == {"neg": 2, "neutral": 1, "pos": 3}  # largest remainders
    assert data.sources[0]["kind"] == "folder" and data.text_field is None and data.label_field is None
    for texts, split in ((data.train.texts, data.train), (data.test.texts, data.test)):
        for text, label in zip(texts, split.labels):
            assert text.startswith(data.labels[label])


def test_held_out_test_split_is_stratified_seeded_and_disjoint(tmp_path):
    from train.presets import Settings
    from train.run import _splits

    rows = synthetic_rows(per_label=50) + [(f"extra good {i}", "good") for i in range(100)]  # 50/50/150
    spec = SourceSpec(write_csv(tmp_path / "d.csv", rows), "review", "rating", THREE)
    data = load_dataset(spec, seed=5)
    assert class_counts(data.test, THREE) == {"bad": 10, "meh": 10, "good": 30}  # 20 % of each label
    fit, validation, test = _splits(data, Settings(seed=5, validation_fraction=0.1))
    parts = [set(fit.texts), set(validation.texts), set(test.texts)]
    assert sum(map(len, parts)) == len(rows) and set.union(*parts) == {text for text, _ in rows}
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert class_counts(validation, THREE) == {"bad": 4, "meh": 4, "good": 12}
    again = load_dataset(spec, seed=5)
    assert again.test.texts == data.test.texts and load_dataset(spec, seed=6).test.texts != data.test.texts
    assert load_test_split(spec, 5)[0].texts == data.test.texts  # what export reads back


def test_separate_test_data_is_read_whole(tmp_path):
    train_path = write_csv(tmp_path / "train.csv", synthetic_rows(per_label=20, seed=1))
    test_path = write_csv(tmp_path / "test.csv", synthetic_rows(per_label=5, seed=2))
    data = load_dataset(SourceSpec(train_path, "review", "rating", THREE, test_path), seed=0)
    assert len(data.train) == 60 and len(data.test) == 15
    assert [s["role"] for s in data.sources] == ["data", "test"] and data.test_split == {"from": "test-data"}


def test_balanced_class_weights():
    split = Split(texts=["x"] * 10, labels=np.array([0] * 6 + [1] * 3 + [2], dtype=np.int32))
    weights = balanced_weights(split, THREE)
    assert weights == pytest.approx({"bad": 10 / 18, "meh": 10 / 9, "good": 10 / 3})
    assert sum(weights[name] * n for name, n in class_counts(split, THREE).items()) == pytest.approx(10)
    with pytest.raises(DataError, match="no training rows of label good"):
        balanced_weights(Split(texts=["x"] * 2, labels=np.array([0, 1], dtype=np.int32)), THREE)


def test_binary_stratified_draw_is_unchanged():
    """The aclImdb recipe's equal-share draw, as written before N labels: the presets must reproduce."""
    def original(labels, count, seed):
        rng = np.random.default_rng(seed)
        chosen = []
        for cls, share in ((0, count // 2), (1, count - count // 2)):
            idx = np.flatnonzero(labels == cls)
            chosen.append(rng.choice(idx, size=min(share, len(idx)), replace=False))
        return np.sort(np.concatenate(chosen))

    labels = np.random.default_rng(0).integers(0, 2, 1000).astype(np.int32)
    for count, seed in ((100, 1337), (301, 7), (2000, 3)):
        assert np.array_equal(stratified_indices(labels, count, seed), original(labels, count, seed))


def test_parse_labels():
    assert parse_labels("bad, meh,good") == THREE and parse_labels(None) is None
    for bad in ("solo", "a,,b"):
        with pytest.raises(DataError):
            parse_labels(bad)


# --------------------------------------------------------------------------------------------- end to end

def _train(spec: SourceSpec, out: Path, preset: str = "default", settings: dict | None = None, **kwargs) -> Path:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from train.presets import PRESETS
    from train.run import train

    train(spec, out, PRESETS[preset].with_overrides(**{**TINY, **(settings or {})}), preset, **kwargs)
    return out / "model.keras"


def _export(keras_path: Path, argv: list[str]):
    from export.__main__ import _parser, _reviews
    from export.pipeline import export_model, load_source

    source = load_source(keras_path)
    reviews = _reviews(_parser().parse_args(["--keras", str(keras_path), *argv]), source.training)
    return export_model(source, reviews, keras_path.parent, name=keras_path.parent.name, threads=(1,), **ANY_INT8)


@pytest.mark.needs_tf
def test_three_labels_from_csv_train_export_and_predict(tmp_path):
    rows = synthetic_rows(per_label=100)
    path = write_csv(tmp_path / "reviews.csv", rows)
    spec = SourceSpec(path, "review", "rating", THREE)
    keras_path = _train(spec, tmp_path / "model", class_weight="balanced")

    report = json.loads((tmp_path / "model" / "training_report.json").read_text())
    assert report["labels"] == list(THREE)  # --labels order, not sorted
    counts = report["data"]["class_counts"]
    assert {sum(c.values()) for c in counts.values()} == {report["data"][f"{k}_reviews"] for k in
                                                           ("train", "validation", "test")}
    assert counts["test"] == {"bad": 20, "meh": 20, "good": 20}
    assert report["data"]["sources"][0]["sha256"] == report["data"]["sha256"] and report["data"]["text_field"] == \
        "review"
    assert report["class_weights"] == pytest.approx(
        {k: sum(counts["fit"].values()) / (3 * n) for k, n in counts["fit"].items()})

    result = _export(keras_path, ["--reviews", "0"])  # the held-out 60 rows, read back from the CSV
    manifest = json.loads((result.out_dir / "manifest.json").read_text())
    assert manifest["labels"] == list(THREE) and manifest["structure"]["output_shape"] == ["batch", 3]
    assert result.parity.reviews == 60 and result.parity.label_agreement == 1.0
    assert result.int8.reviews == 60

    from edge_infer import SentimentClassifier

    classifier = SentimentClassifier.load(result.out_dir)
    prediction = classifier.predict("a great and wonderful film, the best")
    assert prediction.label in THREE and set(prediction.scores) == set(THREE)
    assert sum(prediction.scores.values()) == pytest.approx(1.0, abs=1e-5)
    text = tmp_path / "one.txt"
    text.write_text("an awful, boring film")
    done = subprocess.run([sys.executable, "-m", "edge_infer", "predict", "--model", str(result.out_dir), str(text)],
                          capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] in THREE
    records = tmp_path / "records.jsonl"
    records.write_text('{"id": "a", "text": "an awful, boring film"}\n{"id": "b", "text": "a great film"}\n')
    jsonl = subprocess.run([sys.executable, "-m", "edge_infer", "predict", "--model", str(result.out_dir), "--jsonl",
                            "--id-field", "id", "--format", "jsonl", "--all-scores", str(records)],
                           capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert jsonl.returncode == 0, jsonl.stderr
    rows = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert [r["id"] for r in rows] == ["a", "b"] and all(r["label"] in THREE for r in rows)
    assert all(list(r["scores"]) == list(THREE) for r in rows)


@pytest.mark.needs_tf
def test_binary_csv_model_has_the_manifest_fields_of_an_aclimdb_model(tmp_path, data_path):
    rows = [(text, "positive" if label == "good" else "negative")
            for text, label in synthetic_rows(("bad", "good"), per_label=100)]
    csv_keras = _train(SourceSpec(write_csv(tmp_path / "b.csv", rows), "review", "rating"), tmp_path / "csv")
    imdb_keras = _train(SourceSpec(data_path), tmp_path / "imdb", settings={"max_samples": 200})
    from_csv = json.loads(_export(csv_keras, ["--reviews", "0"]).manifest.source.read_text())
    from_imdb = json.loads(_export(imdb_keras, ["--data", str(data_path), "--reviews", "60"]
                                   ).manifest.source.read_text())
    assert key_shape(from_csv) == key_shape(from_imdb)
    assert from_csv["labels"] == from_imdb["labels"] == list(LABELS)
    assert from_csv["threshold"] == from_imdb["threshold"] == 0.5
    assert from_csv["structure"]["output_shape"] == from_imdb["structure"]["output_shape"] == ["batch", 1]
