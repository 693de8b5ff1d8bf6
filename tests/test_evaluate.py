"""``edge-infer evaluate`` run as a user would (a subprocess on this checkout), checked against independent code."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import typer
from conftest import REPO

from edge_infer import SentimentClassifier

CLI = [sys.executable, "-m", "edge_infer"]
REVIEWS = 250
"""Under evaluate's chunk (256), so the command scores them in one batch exactly as the test does."""


def run(*args: str, code: str | None = None) -> subprocess.CompletedProcess:
    """The command with this checkout first on the path (``code``: a ``-c`` wrapper instead of ``-m``)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.fspath(REPO), os.environ.get("PYTHONPATH", "")])}
    argv = [sys.executable, "-c", code, *args] if code is not None else [*CLI, *args]
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def errors(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.strip()]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def reviews(data_path: Path) -> tuple[list[str], list[str]]:
    """250 stratified aclImdb test reviews and their labels."""
    from train.data import load_imdb, stratified_indices, subset

    test = load_imdb(data_path).test
    sample = subset(test, stratified_indices(test.labels, REVIEWS, 11))
    return list(sample.texts), ["positive" if y else "negative" for y in sample.labels]


@pytest.fixture(scope="module")
def reviews_jsonl(reviews, tmp_path_factory: pytest.TempPathFactory) -> Path:
    texts, labels = reviews
    return write_jsonl(tmp_path_factory.mktemp("eval") / "reviews.jsonl",
                       [{"review": t, "sentiment": y} for t, y in zip(texts, labels)])


@pytest.fixture(scope="module")
def predictions(reviews, default_model_dir: Path):
    """The library's predictions for the reviews (threads=1, like the command below)."""
    clf = SentimentClassifier.load(default_model_dir, threads=1)
    return clf.predict(reviews[0])


@pytest.fixture(scope="module")
def evaluated(reviews_jsonl: Path, default_model_dir: Path) -> dict:
    proc = run("evaluate", os.fspath(reviews_jsonl), "--text-field", "review", "--label-field", "sentiment",
               "--model", os.fspath(default_model_dir), "--threads", "1", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


# ----------------------------------------------------------------------------- independent reference code


def reference_metrics(truth: list[str], preds: list, labels: list[str]) -> dict:
    """The figures by plain loops over the library's predictions."""
    n = len(truth)
    predicted = [p.label for p in preds]
    out: dict = {"accuracy": sum(t == p for t, p in zip(truth, predicted)) / n, "per_class": {}}
    out["matrix"] = [[sum(1 for t, p in zip(truth, predicted) if t == a and p == b) for b in labels] for a in labels]
    for label in labels:
        tp = sum(1 for t, p in zip(truth, predicted) if t == label and p == label)
        n_pred = sum(1 for p in predicted if p == label)
        n_true = sum(1 for t in truth if t == label)
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / n_true if n_true else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out["per_class"][label] = {"precision": precision, "recall": recall, "f1": f1, "support": n_true}
    seen = [label for label in labels if label in truth or label in predicted]
    out["macro_f1"] = sum(out["per_class"][label]["f1"] for label in seen) / len(seen)
    pos = [p.scores[labels[1]] for t, p in zip(truth, preds) if t == labels[1]]
    neg = [p.scores[labels[1]] for t, p in zip(truth, preds) if t == labels[0]]
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in pos for b in neg)
    out["roc_auc"] = wins / (len(pos) * len(neg))
    out["log_loss"] = -sum(math.log(min(max(p.scores[t], 1e-15), 1 - 1e-15)) for t, p in zip(truth, preds)) / n
    bins: list[list[tuple[float, bool]]] = [[] for _ in range(10)]
    for t, p in zip(truth, preds):
        confidence = max(p.scores.values())
        winner = max(labels, key=lambda label: (p.scores[label], -labels.index(label)))
        bins[min(int(confidence * 10), 9)].append((confidence, winner == t))
    out["calibration"] = [(len(b), sum(c for c, _ in b) / len(b) if b else None,
                           sum(ok for _, ok in b) / len(b) if b else None) for b in bins]
    out["ece"] = sum(len(b) / n * abs(sum(ok for _, ok in b) / len(b) - sum(c for c, _ in b) / len(b))
                     for b in bins if b)
    return out


def brute_force_threshold(truth: list[bool], scores: list[float], target: float, by: str):
    """(threshold, precision, recall, accuracy): scan every distinct score."""
    rows = []
    for t in sorted(set(scores)):
        tp = sum(1 for y, s in zip(truth, scores) if s >= t and y)
        fp = sum(1 for y, s in zip(truth, scores) if s >= t and not y)
        n_pos = sum(truth)
        correct = sum(1 for y, s in zip(truth, scores) if (s >= t) == y)
        rows.append((t, tp / (tp + fp) if tp + fp else 0.0, tp / n_pos, correct / len(truth)))
    if by == "precision":
        return next((r for r in rows if r[1] >= target), None)
    return next((r for r in reversed(rows) if r[2] >= target), None)


# ----------------------------------------------------------------------------- the figures


def test_metrics_equal_independent_computation(evaluated: dict, reviews, predictions):
    truth = reviews[1]
    want = reference_metrics(truth, predictions, ["negative", "positive"])
    assert evaluated["data"] == {"records": REVIEWS, "failed": 0}
    for key in ("accuracy", "macro_f1", "roc_auc", "log_loss", "ece"):
        assert abs(evaluated[key] - want[key]) < 1e-9, key
    assert evaluated["confusion_matrix"] == {"labels": ["negative", "positive"], "matrix": want["matrix"]}
    for label, figures in want["per_class"].items():
        got = evaluated["per_class"][label]
        assert got["support"] == figures["support"]
        for key in ("precision", "recall", "f1"):
            assert abs(got[key] - figures[key]) < 1e-9, (label, key)
    assert len(evaluated["calibration"]) == 10
    for row, (count, confidence, accuracy) in zip(evaluated["calibration"], want["calibration"]):
        assert row["count"] == count
        assert (row["confidence"] is None) == (confidence is None) and (row["accuracy"] is None) == (accuracy is None)
        if count:
            assert abs(row["confidence"] - confidence) < 1e-9 and abs(row["accuracy"] - accuracy) < 1e-9
    assert evaluated["accuracy"] > 0.75  # the shipped model is far better than chance on real reviews


def test_csv_gives_the_same_figures(evaluated: dict, reviews, default_model_dir: Path, tmp_path: Path):
    path = tmp_path / "reviews.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "label"])
        writer.writerows((i, t, y) for i, (t, y) in enumerate(zip(*reviews)))
    proc = run("evaluate", os.fspath(path), "--model", os.fspath(default_model_dir), "--threads", "1",
               "--format", "json")
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    for key in ("accuracy", "macro_f1", "roc_auc", "log_loss", "ece", "per_class", "confusion_matrix"):
        assert got[key] == evaluated[key], key


@pytest.mark.parametrize(("option", "target", "positive"), [
    ("--target-precision", 0.9, "positive"), ("--target-recall", 0.95, "positive"),
    ("--target-precision", 0.92, "negative"),
])
def test_threshold_choice_matches_brute_force(option: str, target: float, positive: str, reviews, predictions,
                                              reviews_jsonl: Path, default_model_dir: Path):
    proc = run("evaluate", os.fspath(reviews_jsonl), "--text-field", "review", "--label-field", "sentiment",
               "--model", os.fspath(default_model_dir), "--threads", "1", "--format", "json", option, str(target),
               "--positive", positive)
    assert proc.returncode == 0, proc.stderr
    choice = json.loads(proc.stdout)["threshold_choice"]
    truth = [y == positive for y in reviews[1]]
    scores = [p.scores[positive] for p in predictions]
    want = brute_force_threshold(truth, scores, target, option.split("-")[-1])
    assert want is not None and choice["reachable"] and choice["positive"] == positive
    got = (choice["threshold"], choice["precision"], choice["recall"], choice["accuracy"])
    assert all(abs(a - b) < 1e-9 for a, b in zip(got, want)), (got, want)
    # predict's rule (score = P(positive) >= X means "positive") with the printed X gives that very split
    x = choice["predict_threshold"]
    split = [s >= want[0] for s in scores]
    assert [(p.scores["positive"] >= x) == (positive == "positive") for p in predictions] == split
    assert f"--threshold {x!r}" in choice["command"]


def test_text_output_has_the_tables_and_the_predict_command(reviews_jsonl: Path, default_model_dir: Path):
    proc = run("evaluate", os.fspath(reviews_jsonl), "--text-field", "review", "--label-field", "sentiment",
               "--model", os.fspath(default_model_dir), "--threads", "1", "--target-recall", "0.9")
    assert proc.returncode == 0, proc.stderr
    for heading in ("Accuracy", "Macro F1", "ROC AUC", "Log loss", "ECE", "Per class", "Confusion matrix",
                    "Reliability", "[0.9, 1.0]"):
        assert heading in proc.stdout, heading
    assert "edge-infer predict --model" in proc.stdout and "--threshold 0." in proc.stdout


def test_unreachable_target_is_reported_with_exit_0(default_model_dir: Path, tmp_path: Path):
    data = write_jsonl(tmp_path / "d.jsonl", [{"text": "A wonderful film.", "label": "negative"},
                                              {"text": "Awful, boring, the worst.", "label": "positive"}])
    proc = run("evaluate", os.fspath(data), "--model", os.fspath(default_model_dir), "--target-precision", "0.9")
    assert proc.returncode == 0, proc.stderr
    assert "not reachable" in proc.stdout and "--threshold" not in proc.stdout


@pytest.mark.parametrize("label", ["negative", "positive"])
def test_target_on_one_class_cannot_be_judged(label: str, default_model_dir: Path, tmp_path: Path):
    """Issue 25: on one class, evaluate suggested `--threshold 0.0`; any threshold "reaches" a target there."""
    data = write_jsonl(tmp_path / "d.jsonl", [{"text": "A wonderful film.", "label": label},
                                              {"text": "Awful, boring, the worst.", "label": label}])
    proc = run("evaluate", os.fspath(data), "--model", os.fspath(default_model_dir), "--target-recall", "0.5")
    assert proc.returncode == 0, proc.stderr
    assert f"cannot be judged on one class (every record here is {label})" in proc.stdout
    assert "--threshold" not in proc.stdout
    proc = run("evaluate", os.fspath(data), "--model", os.fspath(default_model_dir), "--target-precision", "0.5",
               "--format", "json")
    doc = json.loads(proc.stdout)
    assert proc.returncode == 0 and doc["roc_auc"] is None
    choice = doc["threshold_choice"]
    assert choice["reachable"] is False and choice["one_class"] == label
    assert choice["threshold"] is None and choice["command"] is None


# ----------------------------------------------------------------------------- inputs and errors


def test_unknown_labels_are_one_usage_error(seed_model_dir: Path, tmp_path: Path):
    data = write_jsonl(tmp_path / "d.jsonl", [{"text": "Fine.", "label": "neutral"},
                                              {"text": "Great!", "label": "positive"}])
    proc = run("evaluate", os.fspath(data), "--model", os.fspath(seed_model_dir))
    assert proc.returncode == 2 and proc.stdout == ""
    (line,) = errors(proc)
    assert "neutral" in line and "negative, positive" in line and "DATA has: neutral, positive" in line


def test_bad_records_are_reported_left_out_and_exit_1(seed_model_dir: Path, tmp_path: Path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "A wonderful film, I loved it.", "label": "positive"}\n'
                    '{"text": "broken\n'
                    '{"text": "No label here."}\n'
                    '{"text": "   ", "label": "negative"}\n'
                    '{"text": "Awful and boring.", "label": "negative"}\n', encoding="utf-8")
    proc = run("evaluate", os.fspath(data), "--model", os.fspath(seed_model_dir), "--format", "json")
    assert proc.returncode == 1
    lines = errors(proc)
    assert len(lines) == 3 and all(line.startswith(f"edge-infer: error: {data}:") for line in lines)
    assert [line[len(f"edge-infer: error: {data}:"):].split(":")[0] for line in lines] == ["2", "3", "4"]
    assert json.loads(proc.stdout)["data"] == {"records": 2, "failed": 3}


def test_missing_path_fails_alone_and_stdin_reads_jsonl(seed_model_dir: Path, tmp_path: Path):
    env = {**os.environ, "PYTHONPATH": os.fspath(REPO)}
    rows = '{"text": "Great, I loved it.", "label": "positive"}\n{"text": "Awful.", "label": "negative"}\n'
    proc = subprocess.run([*CLI, "evaluate", "--jsonl", "-", os.fspath(tmp_path / "absent.jsonl"), "--model",
                           os.fspath(seed_model_dir), "--format", "json"], input=rows, capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=300)
    assert proc.returncode == 1
    assert errors(proc) == [f"edge-infer: error: {tmp_path / 'absent.jsonl'}: no such file or directory"]
    assert json.loads(proc.stdout)["data"] == {"records": 2, "failed": 1}


def test_aclimdb_folder_layout(seed_model_dir: Path, tmp_path: Path):
    root = tmp_path / "aclImdb"
    texts = {"test/pos": ["A wonderful, moving film.", "Brilliant acting, I loved it."],
             "test/neg": ["Awful and boring.", "The worst movie ever."],
             "train/pos": ["Great."], "train/neg": ["Bad."], "train/unsup": ["Unlabelled."]}
    for folder, reviews in texts.items():
        (root / folder).mkdir(parents=True)
        for i, text in enumerate(reviews):
            (root / folder / f"{i}_7.txt").write_text(text, encoding="utf-8")
    (root / "test" / "urls_pos.txt").write_text("http://example.com\n", encoding="utf-8")
    for arg, records in ((root, 4), (tmp_path, 4), (root / "test", 4), (root / "train", 2)):
        proc = run("evaluate", os.fspath(arg), "--model", os.fspath(seed_model_dir), "--format", "json")
        assert proc.returncode == 0, (arg, proc.stderr)
        doc = json.loads(proc.stdout)
        assert doc["data"]["records"] == records
        assert sum(c["support"] for c in doc["per_class"].values()) == records


def test_label_folders_with_lines(seed_model_dir: Path, tmp_path: Path):
    (tmp_path / "positive").mkdir()
    (tmp_path / "negative").mkdir()
    (tmp_path / "positive" / "a.txt").write_text("A wonderful film.\nI loved it!\n\nBrilliant.\n", encoding="utf-8")
    (tmp_path / "negative" / "b.txt").write_text("Awful.\nBoring and stupid.\n", encoding="utf-8")
    proc = run("evaluate", os.fspath(tmp_path), "--lines", "--model", os.fspath(seed_model_dir), "--format", "json")
    assert proc.returncode == 1  # the empty line is a bad record, as in `predict --lines`
    assert errors(proc) == [f"edge-infer: error: {tmp_path / 'positive' / 'a.txt'}:3: empty line"]
    doc = json.loads(proc.stdout)
    assert {k: v["support"] for k, v in doc["per_class"].items()} == {"negative": 2, "positive": 3}
    assert doc["data"] == {"records": 5, "failed": 1}


@pytest.mark.parametrize("args", [
    ["--target-precision", "0.9", "--target-recall", "0.9"],
    ["--target-precision", "1.5"],
    ["--positive", "neutral", "--target-recall", "0.5"],
    ["--jsonl", "--csv"],
    ["--delimiter", "ab"],
])
def test_bad_options_are_usage_errors(args: list[str], seed_model_dir: Path, tmp_path: Path):
    data = write_jsonl(tmp_path / "d.jsonl", [{"text": "Great!", "label": "positive"}])
    proc = run("evaluate", os.fspath(data), "--model", os.fspath(seed_model_dir), *args)
    assert proc.returncode == 2 and len(errors(proc)) == 1, proc.stderr


def test_plot_into_a_directory_is_a_usage_error(seed_model_dir: Path, tmp_path: Path):
    data = write_jsonl(tmp_path / "d.jsonl", [{"text": "Great!", "label": "positive"}])
    proc = run("evaluate", os.fspath(data), "--model", os.fspath(seed_model_dir), "--plot", os.fspath(tmp_path))
    assert proc.returncode == 2 and "is a directory" in proc.stderr and proc.stdout == ""


def test_tsv_by_suffix_and_csv_columns(seed_model_dir: Path, tmp_path: Path):
    tsv = tmp_path / "d.tsv"
    tsv.write_text("review\tgold\nGreat, I loved it.\tpositive\nAwful, a bore.\tnegative\n", encoding="utf-8")
    (tmp_path / "e.csv").write_text('review,gold\n"Fine, I guess.",positive\n', encoding="utf-8")
    for args in ([os.fspath(tsv)], ["--csv", os.fspath(tmp_path)]):  # issue 25: a folder's *.tsv were read with commas
        proc = run("evaluate", *args, "--text-column", "review", "--label-column", "gold", "--model",
                   os.fspath(seed_model_dir), "--format", "json")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["data"] == {"records": 2 if len(args) == 1 else 3, "failed": 0}


def test_unknown_format_is_a_usage_error(seed_model_dir: Path, tmp_path: Path):
    data = tmp_path / "d.txt"
    data.write_text("Great!\n", encoding="utf-8")
    proc = run("evaluate", os.fspath(data), "--model", os.fspath(seed_model_dir))
    assert proc.returncode == 2 and "--jsonl or --csv" in proc.stderr


def test_options_for_two_labels_are_usage_errors_on_three():
    from edge_infer.cli.evaluate import _check_binary_options

    three = SimpleNamespace(binary=False, labels=("bad", "meh", "good"))
    for args in ((0.5, None, None, None), (None, 0.9, None, None), (None, None, 0.9, None), (None, None, None, "good")):
        with pytest.raises(typer.BadParameter, match="only for two-label models"):
            _check_binary_options(three, *args)
    assert _check_binary_options(three, None, None, None, None) is None


def test_three_label_report():
    from edge_infer.cli.evaluate import text_lines
    from edge_infer.evaluation import evaluate
    from edge_infer.task import Task

    labels = ("bad", "meh", "good")
    probs = np.array([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.1, 0.3, 0.6], [0.4, 0.35, 0.25]])
    y_true = np.array([0, 1, 2, 2])
    report = evaluate(Task(labels, 0.5), y_true, probs)
    assert report["roc_auc"] is None and report["accuracy"] == 0.75
    assert report["confusion_matrix"]["matrix"] == [[1, 0, 0], [0, 1, 0], [1, 0, 1]]
    report["model"] = {"name": "m", "path": "m", "int8": False, "labels": list(labels)}
    report["data"] = {"records": 4, "failed": 0}
    text = "\n".join(text_lines(report))
    assert "ROC AUC" not in text and "meh" in text


def test_help_explains_and_lists_exit_codes():
    proc = run("evaluate", "--help")
    assert proc.returncode == 0
    flat = " ".join(proc.stdout.split())
    for words in ("--target-precision", "--label-field", "--plot", "exit codes", "left out of the metrics",
                  "exit code is then 1", 'pip install "edge-infer[plot]"'):
        assert words in flat, words


# ----------------------------------------------------------------------------- plotting


def test_plot_writes_a_png(seed_model_dir: Path, tmp_path: Path):
    pytest.importorskip("matplotlib")
    data = write_jsonl(tmp_path / "d.jsonl", [{"text": "A wonderful film.", "label": "positive"},
                                              {"text": "Awful, boring, the worst.", "label": "negative"},
                                              {"text": "Loved it, brilliant.", "label": "positive"}])
    out = tmp_path / "plots" / "eval.png"
    out.parent.mkdir()
    proc = run("evaluate", os.fspath(data), "--model", os.fspath(seed_model_dir), "--plot", os.fspath(out))
    assert proc.returncode == 0, proc.stderr
    png = out.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    assert [p.name for p in out.parent.iterdir()] == ["eval.png"]  # no temp file left


_NO_MATPLOTLIB = """
import sys
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("No module named 'matplotlib'")
sys.meta_path.insert(0, Blocker())
sys.argv = ["edge-infer", *sys.argv[1:]]
from edge_infer.cli import main
main()
"""


def test_plot_without_matplotlib_is_one_line_and_exit_2(seed_model_dir: Path, tmp_path: Path):
    data = write_jsonl(tmp_path / "d.jsonl", [{"text": "Great!", "label": "positive"}])
    out = tmp_path / "eval.png"
    proc = run("evaluate", os.fspath(data), "--model", os.fspath(seed_model_dir), "--plot", os.fspath(out),
               code=_NO_MATPLOTLIB)
    assert proc.returncode == 2 and proc.stdout == ""
    assert errors(proc) == ['edge-infer: error: --plot needs matplotlib, which is not installed: '
                            'pip install "edge-infer[plot]"']
    assert not out.exists()


_MODULES_AFTER = """
import sys
import edge_infer
after_import = "matplotlib" in sys.modules
from edge_infer.cli import main
sys.argv = ["edge-infer"]
for args in (["predict", "--model", sys.argv_model, sys.argv_text],
             ["evaluate", "--model", sys.argv_model, sys.argv_data]):
    try:
        main(args)
    except SystemExit as exc:
        assert exc.code == 0, (args, exc.code)
print("MATPLOTLIB", after_import, "matplotlib" in sys.modules)
"""


def test_import_predict_and_evaluate_do_not_load_matplotlib(seed_model_dir: Path, tmp_path: Path):
    text = tmp_path / "r.txt"
    text.write_text("A wonderful film.", encoding="utf-8")
    data = write_jsonl(tmp_path / "d.jsonl", [{"text": "Great!", "label": "positive"}])
    code = (f"import sys; sys.argv_model, sys.argv_text, sys.argv_data = "
            f"{os.fspath(seed_model_dir)!r}, {os.fspath(text)!r}, {os.fspath(data)!r}\n" + _MODULES_AFTER)
    proc = run(code=code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "MATPLOTLIB False False"


def test_predict_threshold_is_short_and_reproduces_the_split():
    from edge_infer.evaluation import predict_threshold

    s = np.array([0.1, 0.41234, 0.41871, 0.9])
    assert predict_threshold(s, s >= 0.41871) == 0.418  # the shortest decimal in (0.41234, 0.41871]
    assert predict_threshold(s, s >= 0.9) == 0.9 and predict_threshold(s, s >= 0.1) == 0.0
    assert predict_threshold(s, np.zeros(4, dtype=bool)) == 1.0  # nothing positive: above every score
    assert predict_threshold(np.array([0.2, 1.0]), np.zeros(2, dtype=bool)) is None
    for cut in s:
        x = predict_threshold(s, s >= cut)
        assert x is not None and ((s >= x) == (s >= cut)).all()


def test_library_evaluate_returns_a_plain_dict_and_checks_its_options():
    """edge_infer.evaluation.evaluate is the report of `edge-infer evaluate` without the CLI: JSON-ready, the
    task's decision rule, and ValueError for options that do not fit the task."""
    from edge_infer.evaluation import evaluate
    from edge_infer.task import Task

    two = Task(("negative", "positive"), 0.5)
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.55, 0.45], [0.2, 0.8]])
    y_true = np.array([0, 1, 1, 1])
    report = evaluate(two, y_true, probs)
    assert json.loads(json.dumps(report)) == report and report["threshold"] == 0.5 and report["accuracy"] == 0.75
    assert evaluate(two, y_true, probs, threshold=0.4)["accuracy"] == 1.0
    choice = evaluate(two, y_true, probs, target=("recall", 1.0))["threshold_choice"]
    assert choice["reachable"] and choice["recall"] == 1.0 and choice["predict_threshold"] is not None
    assert ((probs[:, 1] >= choice["predict_threshold"]) == (probs[:, 1] >= choice["threshold"])).all()
    negative = evaluate(two, y_true, probs, target=("precision", 1.0), positive="negative")["threshold_choice"]
    assert negative["positive"] == "negative" and negative["precision"] == 1.0
    three = Task(("bad", "meh", "good"), 0.5)
    rows = np.array([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3]])
    for kwargs in ({"threshold": 0.5}, {"target": ("precision", 0.9)}):
        with pytest.raises(ValueError, match="two-label models only"):
            evaluate(three, np.array([0, 1]), rows, **kwargs)
    for kwargs in ({"target": ("f1", 0.9)}, {"target": ("recall", 1.5)}, {"target": ("recall", 0.9), "positive": "x"},
                   {"positive": "positive"}, {"threshold": 2.0}):
        with pytest.raises(ValueError):
            evaluate(two, y_true, probs, **kwargs)


def test_the_command_prints_the_library_report(seed_model_dir: Path, tmp_path: Path):
    """`edge-infer evaluate --format json` is edge_infer.evaluation.evaluate on the same probabilities, plus
    model and data (the CLI reads, calls and prints)."""
    from edge_infer.evaluation import evaluate

    rows = [{"text": t, "label": y} for t, y in (("Loved it, a wonderful film.", "positive"),
                                                ("A dull waste of time.", "negative"),
                                                ("Not bad at all.", "positive"), ("Awful acting.", "negative"))]
    data = write_jsonl(tmp_path / "four.jsonl", rows)
    proc = run("evaluate", os.fspath(data), "--model", os.fspath(seed_model_dir), "--format", "json",
               "--target-recall", "0.5")
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    clf = SentimentClassifier.load(seed_model_dir)
    expected = evaluate(clf.task, np.array([clf.labels.index(r["label"]) for r in rows]),
                        clf.probabilities([r["text"] for r in rows]), target=("recall", 0.5))
    assert set(printed) == {*expected, "model", "data"}
    assert printed["accuracy"] == expected["accuracy"] and printed["confusion_matrix"] == expected["confusion_matrix"]
    assert printed["log_loss"] == pytest.approx(expected["log_loss"], rel=1e-6, abs=1e-9)
    assert printed["threshold_choice"]["predict_threshold"] == expected["threshold_choice"]["predict_threshold"]
