"""Reading speed of the CSV reader (issue 25: records split at newlines outside quotes, then parsed strictly).

    python bench/csv_read.py --rows 200000

Writes a CSV of N rows (every third one quoted, with a comma, "" and a newline in its text) to a temp
folder, then reads it with ``edge_infer.inputs.iter_records`` and with a bare ``csv.reader`` loop over the
same file, best of 3 each, and prints both and their ratio side by side.
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from edge_infer.inputs import iter_records


def write(path: Path, rows: int) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("id,text,label\n")
        for i in range(rows):
            if i % 3 == 0:
                f.write(f'{i},"A review, with ""quotes"" and\ntwo lines, number {i}",positive\n')
            else:
                f.write(f"{i},plain review text number {i} that is a little longer than short,negative\n")


def best(run: Callable[[], int], repeat: int = 3) -> tuple[float, int]:
    times, count = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        count = run()
        times.append(time.perf_counter() - start)
    return min(times), count


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=200_000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.csv"
        write(path, args.rows)
        size = os.path.getsize(path)

        def ours() -> int:
            return sum(1 for r in iter_records([os.fspath(path)], "csv", id_field="id", label_field="label",
                                               budget=16384, keep="tail") if r.error is None)

        def bare() -> int:
            with open(path, encoding="utf-8", newline="") as f:
                return sum(1 for _ in csv.reader(f)) - 1

        seconds, count = best(ours)
        base, base_count = best(bare)
    assert count == base_count == args.rows, (count, base_count)
    print(f"{args.rows:,} rows, {size / 1e6:.1f} MB")
    print(f"{'reader':<28}{'seconds':>9}{'MB/s':>8}{'ratio':>7}")
    print(f"{'csv.reader (no records)':<28}{base:>9.2f}{size / base / 1e6:>8.1f}{1.0:>7.2f}")
    print(f"{'iter_records (csv)':<28}{seconds:>9.2f}{size / seconds / 1e6:>8.1f}{seconds / base:>7.2f}")


if __name__ == "__main__":
    main()
