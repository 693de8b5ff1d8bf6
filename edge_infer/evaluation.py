"""Evaluate a model on labelled data: every figure of ``edge-infer evaluate`` as a plain dict (numpy only).

The CLI reads the records, calls :func:`evaluate` and prints; a library user calls it the same way with
:meth:`SentimentClassifier.probabilities <edge_infer.classifier.SentimentClassifier.probabilities>` of
their own texts.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from edge_infer import metrics
from edge_infer.task import Task, is_threshold

TARGETS = ("precision", "recall")


def evaluate(task: Task, y_true: np.ndarray, probabilities: np.ndarray, *, threshold: float | None = None,
             positive: str | None = None, target: tuple[str, float] | None = None) -> dict[str, Any]:
    """Every figure as plain JSON values (floats unrounded; ``None`` where a figure is undefined).

    ``y_true`` holds label indices, ``probabilities`` is ``[n, len(labels)]``; labels are predicted by the
    task's decision rule (``threshold`` overrides the model's, two labels only). ``target``
    (``("precision", P)`` or ``("recall", R)``, two labels only) adds ``threshold_choice``: the threshold on
    P(``positive``) (default ``labels[1]``) that reaches it, and the ``predict --threshold`` value giving the
    same split. Raises ``ValueError`` for options that do not fit the task.
    """
    labels = task.labels
    y_true = np.asarray(y_true, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    y_pred, _ = task.decide(probabilities, threshold)
    matrix = metrics.confusion_matrix(y_true, y_pred, len(labels))
    classes = metrics.per_class(matrix)
    table = metrics.reliability_table(probabilities, y_true)
    report: dict[str, Any] = {
        "threshold": task.check_threshold(threshold) if task.binary else None,
        "accuracy": metrics.accuracy(y_true, y_pred),
        "macro_f1": metrics.macro_f1(classes),
        "roc_auc": metrics.roc_auc((y_true == 1).astype(np.int64), probabilities[:, 1]) if task.binary else None,
        "log_loss": metrics.log_loss(y_true, probabilities),
        "ece": metrics.expected_calibration_error(table),
        "per_class": {label: {"precision": c.precision, "recall": c.recall, "f1": c.f1, "support": c.support}
                      for label, c in zip(labels, classes)},
        "confusion_matrix": {"labels": list(labels), "matrix": matrix.tolist()},
        "calibration": [{"low": b.low, "high": b.high, "count": b.count, "confidence": b.confidence,
                         "accuracy": b.accuracy} for b in table],
    }
    if target is not None:
        report["threshold_choice"] = threshold_choice(task, y_true, probabilities, target, positive)
    elif positive is not None:
        raise ValueError("positive applies with a target only")
    return report


def threshold_choice(task: Task, y_true: np.ndarray, probabilities: np.ndarray, target: tuple[str, float],
                     positive: str | None = None) -> dict[str, Any]:
    """The threshold on P(``positive``) reaching ``target`` (see :func:`evaluate`), as a plain dict."""
    labels = task.labels
    what, value = target
    if not task.binary:
        raise ValueError(f"a target applies to two-label models only; this one has {len(labels)} labels")
    if what not in TARGETS or not is_threshold(value):
        raise ValueError(f"target must be ('precision' or 'recall', a number from 0 to 1), not {target!r}")
    if positive is not None and positive not in labels:
        raise ValueError(f"{positive!r} is not one of the model's labels ({', '.join(labels)})")
    pos = labels.index(positive) if positive is not None else 1
    is_pos = (y_true == pos).astype(np.int64)
    scores = probabilities[:, pos]
    find = metrics.threshold_for_precision if what == "precision" else metrics.threshold_for_recall
    choice = find(is_pos, scores, value)
    one_class = None if 0 < is_pos.sum() < len(is_pos) else labels[pos if is_pos.all() else 1 - pos]
    out: dict[str, Any] = {"target": what, "value": value, "positive": labels[pos],
                           "reachable": choice is not None and one_class is None, "one_class": one_class,
                           "threshold": None, "predict_threshold": None, "precision": None, "recall": None,
                           "accuracy": None, "predicted_positive": None}
    if choice is None or one_class is not None:  # one class: any threshold "reaches" the target; that says nothing
        return out
    chosen = scores >= choice.threshold  # predicted positive
    out.update(threshold=choice.threshold, precision=choice.precision, recall=choice.recall,
               accuracy=choice.accuracy, predicted_positive=choice.predicted_positive,
               predict_threshold=predict_threshold(probabilities[:, 1], chosen if pos == 1 else ~chosen))
    return out


def predict_threshold(score: np.ndarray, mask: np.ndarray) -> float | None:
    """A short decimal ``X`` in [0, 1] with ``score >= X`` exactly where ``mask`` is true (predict's rule), or
    None when there is none (everything must be labels[0] but a score is 1.0)."""
    lo = float(score[~mask].max()) if (~mask).any() else None  # X must be above this
    hi = float(score[mask].min()) if mask.any() else 1.0  # and at most this
    if lo is not None and (lo >= hi if mask.any() else lo >= 1.0):
        return None
    for digits in range(18):
        x = math.floor(hi * 10**digits) / 10**digits
        if x <= hi and (x > lo if lo is not None else x >= 0.0):
            return x
    return hi
