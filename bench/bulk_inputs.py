"""What ``edge-infer bulk`` spends on its inputs before and while scoring: deciding the schema up front
(``plan_inputs``: Parquet footers, CSV headers, a full parse of JSON Lines) and reading every row
(``read_file``), per format, beside scoring the same rows with one ONNX Runtime thread (one actor's work).

    PYTHONPATH=. python bench/bulk_inputs.py --rows 100000

Reviews: the aclImdb ones (as bench/ray_bulk.py), repeated to ``--rows``, in one file per format.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from ray_bulk import DATA, reviews  # noqa: E402

from edge_infer.classifier import SentimentClassifier  # noqa: E402
from edge_infer.integrations.bulk_inputs import plan_inputs, read_file  # noqa: E402

SCORED = 5000
"""Reviews scored to measure one actor's rows/s (the model's speed does not depend on the row count)."""


def write_inputs(folder: Path, texts: list[str]) -> dict[str, Path]:
    ids = list(range(len(texts)))
    paths = {"parquet": folder / "in.parquet", "csv": folder / "in.csv", "jsonl": folder / "in.jsonl"}
    pq.write_table(pa.table({"id": ids, "text": texts}), paths["parquet"])
    with open(paths["csv"], "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["id", "text"])
        writer.writerows(zip(ids, texts))
    with open(paths["jsonl"], "w", encoding="utf-8") as stream:
        stream.writelines(json.dumps({"id": i, "text": t}) + "\n" for i, t in zip(ids, texts))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--model", default=str(REPO / "models" / "default"))
    args = parser.parse_args()
    texts = reviews(DATA / "aclImdb_labeled.tar.gz", DATA / "aclImdb_unsup.tar.gz")
    texts = (texts * (args.rows // len(texts) + 1))[:args.rows]
    clf = SentimentClassifier.load(args.model, threads=1)
    start = time.perf_counter()
    clf.predict(texts[:SCORED])
    score_s = (time.perf_counter() - start) * args.rows / SCORED
    work = Path(tempfile.mkdtemp(prefix="edge_infer_bulk_inputs_"))
    try:
        paths = write_inputs(work, texts)
        print(f"{args.rows:,} reviews ({platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
              f"load {os.getloadavg()[0]:.1f}); scoring them with 1 thread: {score_s:.1f} s (from {SCORED:,})")
        print("| format | MB | plan (before Ray) s | read s | plan / scoring | read / scoring |")
        print("|---|---:|---:|---:|---:|---:|")
        for fmt, path in paths.items():
            start = time.perf_counter()
            plan = plan_inputs([str(path)], fmt, "text", ["id"])
            plan_s = time.perf_counter() - start
            start = time.perf_counter()
            assert sum(t.num_rows for t in read_file(str(path), plan, 2048)) == args.rows
            read_s = time.perf_counter() - start
            print(f"| {fmt} | {path.stat().st_size / 1e6:.0f} | {plan_s:.2f} | {read_s:.2f} | "
                  f"{100 * plan_s / score_s:.1f} % | {100 * read_s / score_s:.1f} % |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
