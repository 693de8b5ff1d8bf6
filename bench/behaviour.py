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
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "bench"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import behaviour_cases as cases  # noqa: E402
import general_data  # noqa: E402
import reference_models as refs  # noqa: E402

from edge_infer import exit_codes  # noqa: E402
from edge_infer.storage import atomic_write_text  # noqa: E402

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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=exit_codes.describe())
    parser.add_argument("--model", action="append", default=[], metavar="PATH",
                        help="an exported model folder (repeatable); default: the shipped two-label models")
    parser.add_argument("--vader", action="store_true", help="add VADER (score = (compound + 1) / 2)")
    parser.add_argument("--fasttext", action="store_true", help="add the fastText bigram model (trained here)")
    parser.add_argument("--sample", type=int, metavar="N", help="only the first N cases of each test")
    parser.add_argument("--size", type=int, default=cases.SIZE, help="cases drawn per test (default %(default)s)")
    parser.add_argument("--seed", type=int, default=cases.SEED)
    parser.add_argument("--data", metavar="DIR", help="the shared data folder for --fasttext (default: ../shared/data)")
    parser.add_argument("--train-sample", type=int, metavar="N", help="train fastText on a seeded N of its rows")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="the Markdown file (default %(default)s)")
    args = parser.parse_args(argv)
    for name in ("sample", "size", "train_sample"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer")
    return args


def scorers(args: argparse.Namespace) -> tuple[list[refs.Scorer], list[str]]:
    """The models to run, in column order, and notes on how the reference models were made."""
    if args.vader:
        refs.require("vaderSentiment")
    if args.fasttext:
        refs.require("fasttext")
        if not general_data.available(args.data):
            raise refs.BenchError(f"{general_data.data_dir(args.data)}: the training data of --fasttext is not "
                                  "there (multi/*.jsonl.gz, aclImdb_labeled.tar.gz); see --data",
                                  exit_codes.USAGE)
    models = args.model or refs.shipped_models()
    if not models:
        raise refs.BenchError("no model: pass --model PATH", exit_codes.USAGE)
    out = refs.load_models(models)
    notes = []
    if args.vader:
        out.append(refs.vader_scorer())
    if args.fasttext:
        rows = general_data.training_rows(args.data).sample(args.train_sample, args.seed)
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
    command = "python bench/behaviour.py " + shlex.join(sys.argv[1:] if argv is None else list(argv))
    try:
        text = run(args, command.strip())
    except refs.BenchError as exc:
        print(f"behaviour: {exc}", file=sys.stderr)
        return exc.code
    try:
        atomic_write_text(args.out, text)
    except OSError as exc:
        print(f"behaviour: {args.out}: cannot write ({exc.strerror or exc})", file=sys.stderr)
        return exit_codes.USAGE
    print(text)
    return exit_codes.OK


if __name__ == "__main__":
    sys.exit(main())
