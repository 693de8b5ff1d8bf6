"""The task's rules (edge_infer/task.py) against the shared vectors tests/task_vectors.json, which the web
package checks too (web/test/task.test.js); and every caller asks the task (server, CLI, classifier)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_infer.task import Task, blank_error, is_blank, is_model_threshold, is_threshold

VECTORS = json.loads((Path(__file__).resolve().parent / "task_vectors.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", VECTORS["blank"], ids=lambda c: repr(c["text"]))
def test_empty_text_rule(case):
    assert is_blank(case["text"]) is case["blank"]
    assert blank_error(case["text"]) == case["reason"]


@pytest.mark.parametrize("case", VECTORS["threshold"], ids=lambda c: repr(c["value"]))
def test_threshold_range(case):
    assert is_threshold(case["value"]) is case["ok"]
    task = Task(("negative", "positive"), 0.5)
    if case["ok"]:
        assert task.check_threshold(case["value"]) == case["value"]
    else:
        with pytest.raises(ValueError, match="threshold must be a number from 0 to 1"):
            task.check_threshold(case["value"])


def test_threshold_range_refuses_nan_and_infinity():  # not representable in JSON
    assert not any(is_threshold(v) for v in (float("nan"), float("inf"), -float("inf")))


@pytest.mark.parametrize("case", VECTORS["model_threshold"], ids=lambda c: repr(c["value"]))
def test_model_threshold_range(case):
    assert is_model_threshold(case["value"]) is case["ok"]


@pytest.mark.parametrize("spec", VECTORS["tasks"], ids=lambda s: f"{len(s['labels'])} labels")
def test_task_rules(spec):
    task = Task(tuple(spec["labels"]), spec["threshold"])
    assert (task.binary, task.width, task.describe()) == (spec["binary"], spec["width"], spec["describe"])
    assert task.check_threshold(None) == spec["threshold"]
    for case in spec["decide"]:
        row = np.array([case["row"]])
        if "error" in case:
            with pytest.raises(ValueError, match=case["error"]):
                task.decide(row, case["threshold"])
            continue
        chosen, scores = task.decide(row, case.get("threshold"))
        assert task.labels[int(chosen[0])] == case["label"]
        assert scores[0] == pytest.approx(case["score"], abs=1e-12)


def test_decide_refuses_rows_of_another_width():
    with pytest.raises(ValueError, match=r"\[n, 2\]"):
        Task(("negative", "positive"), 0.5).decide(np.full((4, 1), 0.5))


def test_binary_output_widens_to_two_columns():
    task = Task(("negative", "positive"), 0.5)
    assert task.probabilities(np.array([[0.25], [1.0]])).tolist() == [[0.75, 0.25], [0.0, 1.0]]
    four = Task(("a", "b", "c", "d"), 0.5)
    rows = np.full((2, 4), 0.25)
    assert four.probabilities(rows) is rows


def test_server_and_classifier_answer_as_the_task(seed_model_dir: Path):
    """The server's request check and the classifier refuse what the task refuses, with its reason."""
    from edge_infer import SentimentClassifier
    from edge_infer.server.limits import ApiError, Limits, parse_predict

    clf = SentimentClassifier.load(seed_model_dir)
    limits = Limits(1 << 20, 100, 10_000)
    for case in VECTORS["threshold"]:
        body = json.dumps({"text": "fine", "threshold": case["value"]}).encode()
        if case["ok"]:
            assert parse_predict(body, limits, task=clf.task).threshold == case["value"]
            clf.predict("fine", threshold=case["value"])
        else:
            with pytest.raises(ApiError, match="'threshold' must be a number from 0 to 1"):
                parse_predict(body, limits, task=clf.task)
            with pytest.raises(ValueError, match="threshold must be a number from 0 to 1"):
                clf.predict("fine", threshold=case["value"])
    for case in VECTORS["blank"]:
        body = json.dumps({"texts": [case["text"]]}).encode()
        if case["blank"]:
            with pytest.raises(ApiError, match="empty or whitespace-only"):
                parse_predict(body, limits, task=clf.task)
            with pytest.raises(ValueError, match="empty or whitespace-only"):
                clf.predict(case["text"])
        else:
            assert parse_predict(body, limits, task=clf.task).texts == [case["text"]]
