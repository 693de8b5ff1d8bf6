"""edge_infer.metrics on tiny hand-made cases, and the threshold choice against a brute-force scan."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge_infer import metrics


def test_accuracy_perfect_all_wrong_and_empty():
    assert metrics.accuracy(np.array([0, 1, 1]), np.array([0, 1, 1])) == 1.0
    assert metrics.accuracy(np.array([0, 1, 1]), np.array([1, 0, 0])) == 0.0
    assert metrics.accuracy(np.array([0, 1, 1, 0]), np.array([0, 1, 0, 1])) == 0.5
    assert metrics.accuracy(np.array([], dtype=int), np.array([], dtype=int)) == 0.0


def test_three_class_confusion_matrix_rows_true_columns_predicted():
    y_true = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    y_pred = np.array([0, 1, 2, 1, 1, 2, 2, 0, 1])
    cm = metrics.confusion_matrix(y_true, y_pred, 3)
    assert cm.tolist() == [[1, 1, 1], [0, 2, 0], [1, 1, 2]]
    scores = metrics.per_class(cm)
    assert [c.support for c in scores] == [3, 2, 4]
    assert scores[0].precision == pytest.approx(1 / 2) and scores[0].recall == pytest.approx(1 / 3)
    assert scores[1].precision == pytest.approx(2 / 4) and scores[1].recall == pytest.approx(1.0)
    assert scores[2].precision == pytest.approx(2 / 3) and scores[2].recall == pytest.approx(2 / 4)
    f1 = [2 * p * r / (p + r) for p, r in ((1 / 2, 1 / 3), (1 / 2, 1.0), (2 / 3, 1 / 2))]
    assert [c.f1 for c in scores] == pytest.approx(f1)
    assert metrics.macro_f1(scores) == pytest.approx(sum(f1) / 3)


def test_class_never_predicted_or_absent_scores_zero():
    cm = metrics.confusion_matrix(np.array([0, 0, 1]), np.array([0, 0, 0]), 3)
    scores = metrics.per_class(cm)
    assert scores[1] == metrics.ClassScores(0.0, 0.0, 0.0, 1, 0)
    assert scores[2] == metrics.ClassScores(0.0, 0.0, 0.0, 0, 0)
    assert scores[0].precision == pytest.approx(2 / 3) and scores[0].recall == 1.0
    assert metrics.macro_f1(scores) == pytest.approx((0.8 + 0.0) / 2)  # class 2 never occurs: not averaged


def test_roc_auc_perfect_inverted_ties_and_one_class():
    y = np.array([0, 0, 1, 1])
    assert metrics.roc_auc(y, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert metrics.roc_auc(y, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert metrics.roc_auc(y, np.array([0.5, 0.5, 0.5, 0.5])) == 0.5
    # pairs (pos, neg): 0.7>0.3, 0.7>0.5, 0.5=0.5 (half), 0.5>0.3 -> 3.5 / 4
    assert metrics.roc_auc(np.array([1, 0, 1, 0]), np.array([0.7, 0.5, 0.5, 0.3])) == 3.5 / 4
    assert metrics.roc_auc(np.array([1, 1]), np.array([0.2, 0.4])) is None


def test_average_ranks_share_ties():
    assert metrics.average_ranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1.0, 3.5, 2.0]


def test_roc_curve_points_and_area():
    y = np.array([1, 0, 1, 0])
    s = np.array([0.7, 0.5, 0.5, 0.3])
    fpr, tpr, thresholds = metrics.roc_curve(y, s)
    assert fpr.tolist() == [0.0, 0.0, 0.5, 1.0] and tpr.tolist() == [0.0, 0.5, 1.0, 1.0]
    assert thresholds[0] == math.inf and thresholds[1:].tolist() == [0.7, 0.5, 0.3]
    assert float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2)) == metrics.roc_auc(y, s)


def test_log_loss_perfect_wrong_and_clipped():
    assert metrics.log_loss(np.array([0, 1]), np.array([[1.0, 0.0], [0.0, 1.0]])) == pytest.approx(0.0, abs=1e-12)
    assert metrics.log_loss(np.array([0, 1]), np.array([[0.5, 0.5], [0.5, 0.5]])) == pytest.approx(math.log(2))
    worst = metrics.log_loss(np.array([0]), np.array([[0.0, 1.0]]))
    assert worst == pytest.approx(-math.log(metrics.LOG_LOSS_EPS))
    three = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    assert metrics.log_loss(np.array([2, 1]), three) == pytest.approx(-(math.log(0.5) + math.log(0.3)) / 2)


def test_reliability_table_and_ece():
    probs = np.array([[0.05, 0.95], [0.05, 0.95], [0.35, 0.65], [0.7, 0.3], [0.5, 0.5]])
    y = np.array([1, 0, 1, 1, 0])
    table = metrics.reliability_table(probs, y)
    assert len(table) == 10 and table[0].low == 0.0 and table[-1].high == 1.0
    counts = {i: b.count for i, b in enumerate(table) if b.count}
    assert counts == {5: 1, 6: 1, 7: 1, 9: 2}  # 0.5 -> [0.5, 0.6), 0.65 -> [0.6, 0.7), 0.7 -> [0.7, 0.8)
    assert table[9].confidence == pytest.approx(0.95) and table[9].accuracy == 0.5
    assert table[6].confidence == pytest.approx(0.65) and table[6].accuracy == 1.0
    assert table[7].confidence == pytest.approx(0.7) and table[7].accuracy == 0.0
    assert table[5].accuracy == 1.0  # argmax of a tie is the first class, which is true
    assert table[0].confidence is None and table[0].accuracy is None
    ece = metrics.expected_calibration_error(table)
    assert ece == pytest.approx((2 * 0.45 + 0.35 + 0.7 + 0.5) / 5)


def test_perfectly_confident_and_right_is_calibrated():
    probs = np.array([[1.0, 0.0], [0.0, 1.0]])
    table = metrics.reliability_table(probs, np.array([0, 1]))
    assert table[-1].count == 2 and metrics.expected_calibration_error(table) == 0.0


def _brute(y: np.ndarray, s: np.ndarray) -> list[tuple[float, float, float, float]]:
    """(threshold, precision, recall, accuracy) for every distinct score, by plain loops."""
    out = []
    for t in sorted(set(s.tolist())):
        tp = sum(1 for yi, si in zip(y, s) if si >= t and yi == 1)
        fp = sum(1 for yi, si in zip(y, s) if si >= t and yi == 0)
        fn = sum(1 for yi, si in zip(y, s) if si < t and yi == 1)
        correct = sum(1 for yi, si in zip(y, s) if (si >= t) == (yi == 1))
        out.append((t, tp / (tp + fp) if tp + fp else 0.0, tp / (tp + fn) if tp + fn else 0.0, correct / len(y)))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_threshold_choice_matches_brute_force(seed: int):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 200)
    s = np.clip(y * 0.3 + rng.random(200) * 0.7, 0, 1).round(2)  # rounded: many ties
    brute = _brute(y, s)
    sweep = [(c.threshold, c.precision, c.recall, c.accuracy) for c in metrics.threshold_sweep(y, s)]
    assert len(sweep) == len(brute)
    for row, want_row in zip(sweep, brute):
        assert row == pytest.approx(want_row)
    for target in (0.5, 0.8, 0.9, 0.95, 1.0):
        want = next((row for row in brute if row[1] >= target), None)
        got = metrics.threshold_for_precision(y, s, target)
        assert (got is None) == (want is None)
        if got is not None:
            assert (got.threshold, got.precision, got.recall, got.accuracy) == pytest.approx(want)
    for target in (0.1, 0.5, 0.9, 1.0):
        want = next(row for row in reversed(brute) if row[2] >= target)
        got = metrics.threshold_for_recall(y, s, target)
        assert got is not None and (got.threshold, got.precision, got.recall, got.accuracy) == pytest.approx(want)


def test_unreachable_thresholds_are_none():
    y = np.array([0, 1, 0])
    s = np.array([0.9, 0.5, 0.1])  # the top score is a negative: precision 1 is out of reach
    assert metrics.threshold_for_precision(y, s, 1.0) is None
    assert metrics.threshold_for_precision(y, s, 0.5).threshold == 0.5
    assert metrics.threshold_for_recall(np.array([0, 0]), np.array([0.2, 0.3]), 0.5) is None
