"""The 4-class star model (``models/stars``) against two baselines, on the 25,000 aclImdb test reviews.

- **stars**: the exported model (fp32 ONNX, and int8 if the folder has it), argmax of the 4 probabilities.
- **majority**: always the most frequent class of the stars model's fit split.
- **ordinal**: the binary ``models/default``'s P(positive) cut into the four classes by three thresholds,
  chosen to maximise accuracy on the stars model's validation split (an exact search over cut points of
  the sorted scores, not a grid), then applied to the test split.

The validation split is rebuilt as training made it (same source, labels, seed and draw). Note: that split
comes from the aclImdb train reviews, some of which ``models/default`` trained on; this can only flatter the
ordinal baseline's thresholds.

    python bench/stars_baselines.py [--stars models/stars] [--binary models/default] [--data PATH] [--json OUT]

Prints a Markdown report (accuracy, macro F1, confusion matrices).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from edge_infer import SentimentClassifier  # noqa: E402
from train.data import default_data_path  # noqa: E402
from train.presets import Settings  # noqa: E402
from train.report import TrainingReport  # noqa: E402
from train.run import _splits  # noqa: E402
from train.sources import SourceSpec, load_dataset  # noqa: E402


def confusion(truth: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """Rows: true class; columns: predicted class."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (truth, predicted), 1)
    return matrix


def macro_f1(matrix: np.ndarray) -> float:
    """Unweighted mean over classes of F1 (a class never predicted nor present counts 0)."""
    tp = np.diag(matrix).astype(float)
    precision = np.divide(tp, matrix.sum(axis=0), out=np.zeros_like(tp), where=matrix.sum(axis=0) > 0)
    recall = np.divide(tp, matrix.sum(axis=1), out=np.zeros_like(tp), where=matrix.sum(axis=1) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp), where=precision + recall > 0)
    return float(f1.mean())


def best_cuts(scores: np.ndarray, truth: np.ndarray, classes: int) -> list[float]:
    """``classes - 1`` increasing thresholds on ``scores`` maximising accuracy of ``digitize(scores, cuts)``.

    Exact: the classes are ordered, so each is a contiguous run of the sorted scores; dynamic programming
    over the run boundaries. A threshold lies halfway between the two scores it separates.
    """
    order = np.argsort(scores, kind="stable")
    s, t = np.asarray(scores)[order], np.asarray(truth)[order]
    n = len(s)
    prefix = np.stack([np.concatenate([[0], np.cumsum(t == k)]) for k in range(classes)])  # class k in s[:j]
    best = prefix[0].astype(float)  # best[j]: most correct rows when s[:j] holds the classes so far
    # a boundary may not split equal scores: a threshold cannot separate them
    allowed = np.concatenate([[True], s[1:] > s[:-1], [True]])
    starts = []
    for k in range(1, classes):
        gain = np.where(allowed, best - prefix[k], -np.inf)  # class k starts at row i
        start = np.zeros(n + 1, dtype=np.int64)
        current = 0
        for j in range(n + 1):  # start[j]: the best i <= j
            if gain[j] > gain[current]:
                current = j
            start[j] = current
        starts.append(start)
        best = gain[start] + prefix[k]
    bounds, j = [], n
    for start in reversed(starts):
        j = int(start[j])
        bounds.append(j)
    bounds.reverse()
    padded = np.concatenate([[-np.inf], s, [np.inf]])
    cuts = []
    for i in bounds:  # between s[i - 1] and s[i]
        low, high = padded[i], padded[i + 1]
        cuts.append(float(high if np.isinf(low) else np.nextafter(low, np.inf) if np.isinf(high) else (low + high) / 2))
    return cuts


def figures(name: str, truth: np.ndarray, predicted: np.ndarray, labels: tuple[str, ...]) -> dict:
    matrix = confusion(truth, predicted, len(labels))
    return {"name": name, "accuracy": float(np.mean(truth == predicted)), "macro_f1": macro_f1(matrix),
            "confusion": matrix.tolist()}


def _markdown(results: list[dict], labels: tuple[str, ...], extra: dict) -> str:
    lines = ["| model | test accuracy | macro F1 |", "| --- | --- | --- |"]
    lines += [f"| {r['name']} | {100 * r['accuracy']:.2f} % | {r['macro_f1']:.4f} |" for r in results]
    for r in results:
        lines += ["", f"Confusion matrix, {r['name']} (rows: true, columns: predicted):", "",
                  "| true \\ predicted | " + " | ".join(labels) + " |", "| --- |" + " --- |" * len(labels)]
        lines += [f"| {label} | " + " | ".join(f"{n:,}" for n in row) + " |"
                  for label, row in zip(labels, r["confusion"])]
    lines += ["", "```", json.dumps(extra, indent=2), "```"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stars", type=Path, default=ROOT / "models" / "stars")
    p.add_argument("--binary", type=Path, default=ROOT / "models" / "default")
    p.add_argument("--data", type=Path, default=default_data_path())
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args(argv)

    report = TrainingReport.load(args.stars / "training_report.json")
    settings = Settings(**report.settings)
    data = load_dataset(SourceSpec(args.data, label_field=report.data.label_field, labels=report.labels),
                        settings.seed)
    fit, validation, test = _splits(data, settings)
    labels = data.labels

    started = time.time()
    stars = SentimentClassifier.load(args.stars)
    results = [figures("stars (fp32 ONNX)", test.labels, np.argmax(stars.probabilities(test.texts), axis=1), labels)]
    if stars.manifest.has_int8:
        int8 = SentimentClassifier.load(args.stars, quantized=True)
        results.append(figures("stars (int8 ONNX)", test.labels, np.argmax(int8.probabilities(test.texts), axis=1),
                               labels))
    majority = int(np.argmax(np.bincount(fit.labels, minlength=len(labels))))
    results.append(figures(f"majority class ({labels[majority]})", test.labels,
                           np.full(len(test), majority), labels))
    binary = SentimentClassifier.load(args.binary)
    cuts = best_cuts(binary.scores(validation.texts), validation.labels, len(labels))
    validation_accuracy = float(np.mean(np.digitize(binary.scores(validation.texts), cuts) == validation.labels))
    results.append(figures("ordinal: models/default P(positive), 3 cuts", test.labels,
                           np.digitize(binary.scores(test.texts), cuts), labels))
    extra = {"labels": list(labels), "fit": len(fit), "validation": len(validation), "test": len(test),
             "ordinal_cuts": cuts, "ordinal_validation_accuracy": validation_accuracy,
             "training_wall_time_s": report.wall_time_s, "best_epoch": report.best_epoch,
             "keras_test_accuracy": report.test_accuracy, "scoring_s": round(time.time() - started, 1)}
    print(_markdown(results, labels, extra))
    if args.json:
        args.json.write_text(json.dumps({"results": results, **extra}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
