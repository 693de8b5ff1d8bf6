"""Classification metrics for ``edge-infer evaluate``: numpy only, one small function per figure.

Classes are integer indices into the model's label order. ``y_true`` and ``y_pred`` are 1-D integer arrays;
``probabilities`` is ``[n, n_classes]`` (rows sum to 1); a binary ``scores`` array is P(positive class).
A ratio whose denominator is zero (e.g. precision of a class never predicted) is reported as 0.0, as
scikit-learn does by default.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CALIBRATION_BINS = 10
LOG_LOSS_EPS = 1e-15
"""Probabilities are clipped to ``[eps, 1 - eps]`` before the logarithm, so a confident mistake costs ~34.5."""


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else 0.0


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Share of predictions equal to the true class (0.0 for no samples)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return _ratio(int(np.sum(y_true == y_pred)), len(y_true))


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """``[n_classes, n_classes]`` counts: row = true class, column = predicted class."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return matrix


@dataclass(frozen=True)
class ClassScores:
    """Precision, recall, F1, support (true count) and predicted count of one class."""

    precision: float
    recall: float
    f1: float
    support: int
    predicted: int


def per_class(matrix: np.ndarray) -> list[ClassScores]:
    """Precision, recall, F1 and support of each class from a confusion matrix (rows true, columns predicted)."""
    out = []
    for k in range(matrix.shape[0]):
        tp = int(matrix[k, k])
        predicted, actual = int(matrix[:, k].sum()), int(matrix[k, :].sum())
        precision, recall = _ratio(tp, predicted), _ratio(tp, actual)
        out.append(ClassScores(precision, recall, f1_score(precision, recall), actual, predicted))
    return out


def f1_score(precision: float, recall: float) -> float:
    """Harmonic mean of precision and recall (0.0 when both are 0)."""
    return _ratio(2 * precision * recall, precision + recall)


def macro_f1(classes: list[ClassScores]) -> float:
    """Unweighted mean of the F1 scores of the classes that occur (true or predicted), as scikit-learn's
    ``f1_score(average="macro")``: a label absent from the data and never predicted does not count."""
    seen = [c.f1 for c in classes if c.support or c.predicted]
    return float(np.mean(seen)) if seen else 0.0


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve for binary labels (1 = positive): the Mann-Whitney U statistic.

    Equals the probability that a random positive scores above a random negative, ties counting one
    half (average ranks). ``None`` when the data holds only one class.
    """
    y = np.asarray(y_true) == 1
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = average_ranks(np.asarray(scores, dtype=np.float64))
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values``; tied values share the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(len(values), dtype=np.float64)
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    for start, end in zip(starts, ends):
        ranks[order[start:end]] = (start + 1 + end) / 2.0
    return ranks


def roc_curve(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)``: one point per distinct score (predict positive when score >= threshold),
    from (0, 0) at threshold +inf to (1, 1). Needs both classes present."""
    y = np.asarray(y_true) == 1
    s = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(s[1:] != s[:-1]), len(s) - 1]  # last index of each distinct score
    tps, fps = np.cumsum(y)[last], np.cumsum(~y)[last]
    tpr = np.r_[0.0, tps / max(int(y.sum()), 1)]
    fpr = np.r_[0.0, fps / max(int((~y).sum()), 1)]
    return fpr, tpr, np.r_[np.inf, s[last]]


def log_loss(y_true: np.ndarray, probabilities: np.ndarray, eps: float = LOG_LOSS_EPS) -> float:
    """Mean negative log-probability of the true class, probabilities clipped to ``[eps, 1 - eps]``."""
    probs = np.asarray(probabilities, dtype=np.float64)
    if len(probs) == 0:
        return 0.0
    p_true = np.clip(probs[np.arange(len(probs)), np.asarray(y_true, dtype=np.int64)], eps, 1 - eps)
    return float(-np.mean(np.log(p_true)))


@dataclass(frozen=True)
class CalibrationBin:
    """One reliability-table row: confidences in ``[low, high)`` (the last bin includes 1.0)."""

    low: float
    high: float
    count: int
    confidence: float | None  # mean confidence, None for an empty bin
    accuracy: float | None  # share correct, None for an empty bin


def reliability_table(probabilities: np.ndarray, y_true: np.ndarray,
                      bins: int = CALIBRATION_BINS) -> list[CalibrationBin]:
    """Equal-width bins over the winning-class confidence (the row's largest probability; the winner is
    ``argmax``, the first on a tie): count, mean confidence and accuracy per bin."""
    probs = np.asarray(probabilities, dtype=np.float64).reshape(len(y_true), -1)
    confidence = probs.max(axis=1) if len(probs) else np.empty(0)
    correct = probs.argmax(axis=1) == np.asarray(y_true) if len(probs) else np.empty(0, dtype=bool)
    index = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    table = []
    for b in range(bins):
        member = index == b
        count = int(member.sum())
        table.append(CalibrationBin(b / bins, (b + 1) / bins, count,
                                    float(confidence[member].mean()) if count else None,
                                    float(correct[member].mean()) if count else None))
    return table


def expected_calibration_error(table: list[CalibrationBin]) -> float:
    """ECE: the count-weighted mean of ``|accuracy - mean confidence|`` over the reliability table's bins."""
    total = sum(b.count for b in table)
    return _ratio(sum(b.count * abs(b.accuracy - b.confidence) for b in table
                      if b.accuracy is not None and b.confidence is not None), total)


@dataclass(frozen=True)
class ThresholdChoice:
    """A decision threshold on P(positive) (positive when score >= threshold) and the figures there."""

    threshold: float
    precision: float
    recall: float
    accuracy: float
    predicted_positive: int


def threshold_sweep(y_true: np.ndarray, scores: np.ndarray) -> list[ThresholdChoice]:
    """Every distinct score as a threshold, ascending, with precision, recall and accuracy for positive (1)."""
    y = np.asarray(y_true) == 1
    s = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last = np.r_[np.flatnonzero(s_sorted[1:] != s_sorted[:-1]), len(s) - 1]
    tps, fps = np.cumsum(y_sorted)[last], np.cumsum(~y_sorted)[last]
    n_pos, n = int(y.sum()), len(s)
    out = [ThresholdChoice(float(s_sorted[i]), _ratio(tp, tp + fp), _ratio(tp, n_pos),
                           _ratio(tp + (n - n_pos - fp), n), int(tp + fp))
           for i, tp, fp in zip(last, tps.tolist(), fps.tolist())]
    return out[::-1]


def threshold_for_precision(y_true: np.ndarray, scores: np.ndarray, target: float) -> ThresholdChoice | None:
    """The smallest threshold whose precision is >= ``target``; ``None`` when none reaches it."""
    return next((c for c in threshold_sweep(y_true, scores) if c.precision >= target), None)


def threshold_for_recall(y_true: np.ndarray, scores: np.ndarray, target: float) -> ThresholdChoice | None:
    """The largest threshold whose recall is >= ``target``; ``None`` when none reaches it (no positives)."""
    if not np.any(np.asarray(y_true) == 1):
        return None
    return next((c for c in reversed(threshold_sweep(y_true, scores)) if c.recall >= target), None)
