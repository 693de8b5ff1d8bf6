"""Serving cost of one model against another, side by side in one run: batch-1 latency and throughput.

    python bench/serving_ratio.py --model models/general --baseline models/default [--repeats 3]

Both models score the same texts (real test reviews and short held-out texts: ``--texts``), fp32 and int8,
interleaved repeat by repeat so that load on the machine hits both alike. Prints, per precision: batch-1
p50 latency (a model's own single-text calls) and throughput (``predict`` of the whole list), each a
median over ``--repeats``, and the ratio model / baseline, against issue 21's bounds (latency <= 2x,
throughput >= 0.7x). Not a unit test.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench.compare import latency, throughput  # noqa: E402
from edge_infer import SentimentClassifier  # noqa: E402
from train.data import default_data_path, load_imdb  # noqa: E402

LATENCY_BOUND, THROUGHPUT_BOUND = 2.0, 0.7


def texts(count: int, seed: int = 1337) -> list[str]:
    """Half IMDB test reviews, half short held-out texts (tweets test, SST-2 dev), seeded."""
    rng = np.random.default_rng(seed)
    reviews = load_imdb(default_data_path()).test.texts
    short = []
    for name, split in (("tweets", "test"), ("sst2", "dev")):
        path = default_data_path().parent / "multi" / f"{name}.jsonl.gz"
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            short += [row["text"] for row in map(json.loads, handle) if row["split"] == split]
    half = count // 2
    return ([reviews[i] for i in rng.choice(len(reviews), half, replace=False)]
            + [short[i] for i in rng.choice(len(short), count - half, replace=False)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--baseline", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--texts", type=int, default=2000, help="texts for throughput (latency: a tenth of them)")
    args = parser.parse_args()
    sample = texts(args.texts)
    rows = []
    for quantized in (False, True):
        pair = [SentimentClassifier.load(m, quantized=quantized) for m in (args.model, args.baseline)]
        p50 = [[], []]
        rate = [[], []]
        for _ in range(args.repeats):  # interleaved: a busy spell slows both
            for i, clf in enumerate(pair):
                p50[i].append(latency(clf.predict, sample[: len(sample) // 10], 1)[0].median)
                rate[i].append(throughput(clf.predict, sample, 1).median)
        lat = [statistics.median(x) for x in p50]
        thr = [statistics.median(x) for x in rate]
        precision = "int8" if quantized else "fp32"
        rows.append((f"batch-1 p50 {precision}", f"{1000 * lat[0]:.3f} ms", f"{1000 * lat[1]:.3f} ms",
                     lat[0] / lat[1], f"<= {LATENCY_BOUND:g}x", lat[0] / lat[1] <= LATENCY_BOUND))
        rows.append((f"throughput {precision}", f"{thr[0]:,.0f}/s", f"{thr[1]:,.0f}/s", thr[0] / thr[1],
                     f">= {THROUGHPUT_BOUND:g}x", thr[0] / thr[1] >= THROUGHPUT_BOUND))
    print(f"`python bench/serving_ratio.py --model {args.model} --baseline {args.baseline} --repeats {args.repeats}`"
          f" ({len(sample)} texts: half IMDB test reviews, half tweets test / SST-2 dev)\n")
    print(f"| figure | {args.model} | {args.baseline} | ratio | bound |")
    print("| --- | ---: | ---: | ---: | --- |")
    for name, mine, base, ratio, bound, ok in rows:
        print(f"| {name} | {mine} | {base} | {ratio:.2f}x | {bound}, {'met' if ok else '**missed**'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
