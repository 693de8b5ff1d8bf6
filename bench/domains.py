"""Accuracy, macro F1 and ECE per held-out domain for every model, VADER and a fastText bigram model (issue 21).

Splits (``bench/general_data.py``, binary rows only): Amazon test, Yelp test, tweets test (neutral left out),
SST-2 dev and the 25,000 IMDB test reviews. Models: every folder given with --model (default: every shipped
folder under models/ with the labels negative, positive); VADER (score = (compound + 1) / 2, positive when
compound >= 0); fastText (word bigrams) trained here on the training rows of ``general_data.training_rows``,
shuffled and seeded, one thread. The figures are ``edge-infer evaluate``'s (``edge_infer.evaluation.evaluate``):
ECE over 10 equal-width bins of the winning label's confidence.

    python bench/domains.py [--model PATH ...] [--sample N] [--imdb-sample N] [--train-sample N] [--out FILE]

Writes bench/results/domains.md (and --json), prints it, and lists issue 21's targets, met or missed, for the
model named by --targets (default ``general``). Needs ../shared/data (or --data DIR).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "bench"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import general_data  # noqa: E402
import reference_models as refs  # noqa: E402

from edge_infer.evaluation import evaluate  # noqa: E402
from edge_infer.task import Task  # noqa: E402

DEFAULT_OUT = ROOT / "bench" / "results" / "domains.md"
SPLITS = tuple(name for name, _, _ in general_data.HELD_OUT)
ACCURACY_TARGETS = {"amazon": 0.90, "yelp": 0.93, "sst2": 0.85, "tweets": 0.80, "imdb": 0.89}
ECE_TARGET = 0.03
INT8_GAP_PT = 0.3
ECE_SPLITS = ("amazon", "yelp", "tweets", "sst2")
"""Issue 21: ECE <= 0.03 on each of these; at or above VADER and fastText on each of these; the accuracy floors."""


@dataclass(frozen=True)
class Figures:
    """One model on one split."""

    model: str
    split: str
    rows: int
    accuracy: float
    macro_f1: float
    ece: float
    seconds: float


def measure(scorer: refs.Scorer, split: str, rows: general_data.Rows) -> Figures:
    """Score ``rows`` and compute accuracy, macro F1 and ECE as ``edge-infer evaluate`` does."""
    started = time.perf_counter()
    p = np.asarray(scorer.score(rows.texts), dtype=np.float64)
    seconds = time.perf_counter() - started
    y = np.asarray(rows.labels, dtype=np.int64)
    report = evaluate(Task(general_data.LABELS, scorer.threshold), y, np.stack([1.0 - p, p], axis=1))
    return Figures(scorer.name, split, len(rows), report["accuracy"], report["macro_f1"], report["ece"], seconds)


def _get(results: Sequence[Figures], model: str, split: str) -> Figures | None:
    return next((f for f in results if f.model == model and f.split == split), None)


def accuracy_table(results: Sequence[Figures], models: Sequence[str]) -> str:
    """Splits (rows) x models (columns): accuracy, as in the issue."""
    lines = ["| domain (split) | rows | " + " | ".join(models) + " |", "| --- | ---: |" + " ---: |" * len(models)]
    for split in SPLITS:
        first = _get(results, models[0], split)
        if first is None:
            continue
        cells = [f"{100 * f.accuracy:.2f} %" if (f := _get(results, m, split)) else "–" for m in models]
        lines.append(f"| {general_data.SPLIT_TITLES[split]} | {first.rows:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def full_table(results: Sequence[Figures]) -> str:
    """One line per split and model: rows, accuracy, macro F1, ECE and the seconds spent scoring."""
    lines = ["| domain (split) | model | rows | accuracy | macro F1 | ECE | scoring time |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for split in SPLITS:
        for f in (f for f in results if f.split == split):
            lines.append(f"| {general_data.SPLIT_TITLES[split]} | {f.model} | {f.rows:,} | {100 * f.accuracy:.2f} % | "
                         f"{f.macro_f1:.4f} | {f.ece:.4f} | {f.seconds:.1f} s |")
    return "\n".join(lines)


def targets(results: Sequence[Figures], model: str) -> list[str]:
    """Issue 21's per-domain targets for ``model``, one line each: ``met`` or ``missed`` with the numbers."""
    if not any(f.model == model for f in results):
        return [f"No model named {model} was measured: no targets checked."]
    lines = []

    def check(what: str, ok: bool, detail: str) -> None:
        lines.append(f"- {'met' if ok else '**missed**'}: {what} ({detail})")

    for split in SPLITS:
        mine = _get(results, model, split)
        if mine is None:
            continue
        title = general_data.SPLIT_TITLES[split]
        floor = ACCURACY_TARGETS[split]
        check(f"{title} accuracy >= {100 * floor:.0f} %", mine.accuracy >= floor, f"{100 * mine.accuracy:.2f} %")
        quantized = _get(results, f"{model} int8", split)
        if quantized is not None:
            gap = 100 * abs(quantized.accuracy - mine.accuracy)
            check(f"{title} int8 within {INT8_GAP_PT} pt of fp32", gap <= INT8_GAP_PT,
                  f"{100 * quantized.accuracy:.2f} % vs {100 * mine.accuracy:.2f} %")
        if split in ECE_SPLITS:
            check(f"{title} ECE <= {ECE_TARGET}", mine.ece <= ECE_TARGET, f"{mine.ece:.4f}")
            for other in ("VADER", "fastText"):
                theirs = _get(results, other, split)
                if theirs is not None:
                    check(f"{title} accuracy at or above {other}", mine.accuracy >= theirs.accuracy,
                          f"{100 * mine.accuracy:.2f} % vs {100 * theirs.accuracy:.2f} %")
    return lines


def report(command: str, results: Sequence[Figures], models: Sequence[str], notes: Sequence[str],
           target_model: str) -> str:
    return "\n".join([
        "# Per-domain accuracy, macro F1 and ECE", "", f"`{command}`", "",
        "Held-out splits of `../shared/data` (binary rows; `bench/general_data.py`). ECE: 10 equal-width bins of "
        "the winning label's confidence, as `edge-infer evaluate`; VADER's probability is (compound + 1) / 2.", "",
        "## Accuracy", "", accuracy_table(results, models), "",
        "## Accuracy, macro F1, ECE", "", full_table(results), "",
        *[f"- {note}" for note in notes], *([""] if notes else []),
        f"## Issue 21's per-domain targets for `{target_model}`", "", *targets(results, target_model), ""])


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = refs.parser(__doc__)
    parser.add_argument("--sample", type=refs.positive_int, metavar="N", help="a seeded N rows of each split but IMDB")
    parser.add_argument("--imdb-sample", type=refs.positive_int, metavar="N",
                        help="a seeded N of the 25,000 IMDB test reviews")
    parser.add_argument("--seed", type=int, default=0, help="sampling and fastText seed (default %(default)s)")
    parser.add_argument("--targets", default="general", metavar="NAME",
                        help="list issue 21's targets for this model (default %(default)s)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="the Markdown file (default %(default)s)")
    parser.add_argument("--json", metavar="FILE", help="also write every figure as JSON")
    parser.add_argument("--int8", action="store_true",
                        help="also measure each model's int8 file (column 'NAME int8'; target: within 0.3 pt)")
    return parser.parse_args(argv)


def run(args: argparse.Namespace, command: str) -> tuple[str, list[Figures]]:
    """Read the data, build every scorer, measure every split; the Markdown report and the figures."""
    refs.require("vaderSentiment")
    refs.require("fasttext")
    scorers = refs.requested_models(args.model, args.int8)
    corpus = refs.read_corpus(args.data)
    train = corpus.train.sample(args.train_sample, args.seed)
    started = time.perf_counter()
    scorers += [refs.vader_scorer(), refs.train_fasttext(train.texts, train.labels, seed=args.seed)]
    notes = [f"fastText: trained on {len(train):,} rows in {time.perf_counter() - started:.0f} s ("
             f"{corpus.dropped} training rows equal to a held-out text left out), word bigrams, seed {args.seed}, "
             "one thread; scoring times are for one process on this machine, for orientation only."]
    results = []
    for split in SPLITS:
        rows = corpus.held_out[split].sample(args.imdb_sample if split == "imdb" else args.sample, args.seed)
        results += [measure(s, split, rows) for s in scorers]
    names = [s.name for s in scorers]
    return report(command, results, names, notes, args.targets), results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    command = refs.command_line("bench/domains.py", argv)

    def work() -> tuple[str, list[tuple[str, str]]]:
        text, results = run(args, command)
        files = [(args.out, text)]
        if args.json:
            figures = {"command": command, "results": [asdict(f) for f in results]}
            files.append((args.json, json.dumps(figures, indent=1) + "\n"))
        return text, files

    return refs.run_bench("domains", work)


if __name__ == "__main__":
    sys.exit(main())
