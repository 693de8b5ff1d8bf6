"""The behaviour suite (CheckList style): failure rate per test (rows) and model (columns), against issue 21's targets.

The cases come from ``bench/behaviour_cases.py`` (templates x small vocabularies, seeded): negation, change of
opinion, short texts, invariance to names, places, numbers, identity words, typos, punctuation and
contractions, and neutral statements. See docs/behaviour.md.

    python bench/behaviour.py [--model PATH ...] [--vader] [--fasttext] [--sample N] [--out FILE]

Without --model: every shipped folder under models/ with the labels negative, positive. --fasttext trains
the fastText bigram model of ``bench/domains.py`` on the same rows (``bench/general_data.py``; needs
../shared/data). Writes the table as Markdown (default bench/results/behaviour.md) and prints it.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "bench"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import behaviour_cases as cases  # noqa: E402
import reference_models as refs  # noqa: E402

DEFAULT_OUT = ROOT / "bench" / "results" / "behaviour.md"


def cell(result: cases.Outcome) -> str:
    """``12.4 % met`` / ``93.0 % missed`` / ``40.2 %`` (no target)."""
    rate = f"{100 * result.rate:.1f} %"
    return rate if result.met is None else f"{rate} {'met' if result.met else '**missed**'}"


def table(suite: Sequence[cases.BehaviourTest], names: Sequence[str],
          results: Sequence[Sequence[cases.Outcome]]) -> str:
    """The Markdown table: one row per test, one column per model (results in the order of ``names``)."""
    lines = ["| test | cases | target (failures) | " + " | ".join(names) + " |",
             "| --- | ---: | --- |" + " ---: |" * len(names)]
    for i, test in enumerate(suite):
        target = "–" if test.target is None else f"<= {100 * test.target:.0f} %"
        lines.append(f"| {test.title} | {len(test.cases)} | {target} | "
                     + " | ".join(cell(r[i]) for r in results) + " |")
    return "\n".join(lines)


def examples(suite: Sequence[cases.BehaviourTest]) -> str:
    """One example case per test."""
    lines = []
    for test in suite:
        first = test.cases[0]
        if isinstance(first, cases.Pair):
            lines.append(f"- {test.name}: \"{first.original}\" / \"{first.perturbed}\"")
        else:
            lines.append(f"- {test.name}: \"{first.text}\" (expected: {first.expect.replace('_', ' ')})")
    return "\n".join(lines)


def report(command: str, suite: Sequence[cases.BehaviourTest], names: Sequence[str],
           results: Sequence[Sequence[cases.Outcome]], size: int, seed: int, notes: Sequence[str]) -> str:
    return "\n".join([
        "# Behaviour suite: failure rate per test (lower is better)", "",
        f"`{command}`", "",
        f"Cases per test: {size} drawn (seed {seed}), scored as listed. Expectation tests: the share of cases "
        "that miss the expected reading (negative/positive: the model's label; not negative: a score below 1/3; "
        "neutral: a score outside [1/3, 2/3]). Invariance tests: the share of pairs whose three-way reading "
        "(below 1/3, [1/3, 2/3], above 2/3) differs. Targets from issue 21; see docs/behaviour.md.", "",
        table(suite, names, results), "",
        *[f"- {note}" for note in notes], *([""] if notes else []),
        "Examples:", "", examples(suite), ""])


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = refs.parser(__doc__)
    parser.add_argument("--vader", action="store_true", help="add VADER (score = (compound + 1) / 2)")
    parser.add_argument("--fasttext", action="store_true", help="add the fastText bigram model (trained here)")
    parser.add_argument("--sample", type=refs.positive_int, metavar="N", help="only the first N cases of each test")
    parser.add_argument("--size", type=refs.positive_int, default=cases.SIZE,
                        help="cases drawn per test (default %(default)s)")
    parser.add_argument("--seed", type=int, default=cases.SEED)
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="the Markdown file (default %(default)s)")
    return parser.parse_args(argv)


def scorers(args: argparse.Namespace) -> tuple[list[refs.Scorer], list[str]]:
    """The models to run, in column order, and notes on how the reference models were made."""
    if args.vader:
        refs.require("vaderSentiment")
    if args.fasttext:
        refs.require("fasttext")
    out = refs.requested_models(args.model)
    notes = []
    if args.vader:
        out.append(refs.vader_scorer())
    if args.fasttext:
        rows = refs.read_corpus(args.data).train.sample(args.train_sample, args.seed)
        started = time.perf_counter()
        out.append(refs.train_fasttext(rows.texts, rows.labels, seed=args.seed))
        notes.append(f"fastText: trained on {len(rows):,} rows (bench/general_data.py) in "
                     f"{time.perf_counter() - started:.0f} s, word bigrams, seed {args.seed}, one thread.")
    return out, notes


def run(args: argparse.Namespace, command: str) -> str:
    """Build the suite, score it with every model and return the Markdown report."""
    suite = cases.sample(cases.build_suite(args.size, args.seed), args.sample)
    subjects, notes = scorers(args)
    results = [cases.run_suite(suite, s.score, s.threshold) for s in subjects]
    size = min(args.size, args.sample or args.size)
    return report(command, suite, [s.name for s in subjects], results, size, args.seed, notes)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    command = refs.command_line("bench/behaviour.py", argv)

    def work() -> tuple[str, list[tuple[str, str]]]:
        text = run(args, command)
        return text, [(args.out, text)]

    return refs.run_bench("behaviour", work)


if __name__ == "__main__":
    sys.exit(main())
