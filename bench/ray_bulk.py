"""Bulk scoring throughput: ``edge_infer.integrations.ray`` (1 and 2 actors) against the plain Python API
(1 process, and 2 processes each scoring half), Parquet to Parquet, one ONNX Runtime thread per worker.

    PYTHONPATH=. python bench/ray_bulk.py --rows 200000 --out bench/results/ray

Reviews: the 50,000 labelled and 50,000 unlabelled aclImdb reviews, repeated to ``--rows``. ``--full`` runs
Ray with 2 actors once more on that many rows. Writes ``OUT.json`` and ``OUT.md``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing as mp
import os
import platform
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
DATA = Path("/work/shared/data")
BATCH = 512
ROW_GROUP = 5000
FILE_ROWS = 10_000


def reviews(labelled: Path, unsup: Path) -> list[str]:
    """The 50,000 labelled reviews (train + test, sorted) then the 50,000 unlabelled ones (archive order)."""
    from train.data import read_imdb_items

    texts = [item[3] for item in read_imdb_items(labelled)[0]]
    with tarfile.open(unsup) as archive:
        for member in archive:
            if member.isfile() and "/unsup/" in member.name and member.name.endswith(".txt"):
                handle = archive.extractfile(member)
                assert handle is not None
                texts.append(handle.read().decode("utf-8", errors="replace"))
    return texts


def write_input(folder: Path, texts: list[str], rows: int) -> None:
    """``rows`` reviews as a folder of Parquet files of ``FILE_ROWS`` rows (row groups of ``ROW_GROUP``)."""
    folder.mkdir(parents=True)
    chosen = list(itertools.islice(itertools.cycle(texts), rows))
    for n, first in enumerate(range(0, rows, FILE_ROWS)):
        part = chosen[first:first + FILE_ROWS]
        ids = pa.array(range(first, first + len(part)), pa.int64())
        pq.write_table(pa.table({"id": ids, "text": part}), folder / f"part-{n:04d}.parquet", row_group_size=ROW_GROUP)


def _plain_worker(model: str, src: str, out: str, part: int, parts: int) -> None:
    from edge_infer.classifier import SentimentClassifier

    clf = SentimentClassifier.load(model, threads=1)
    groups = [(f, g) for f in sorted(Path(src).iterdir()) for g in range(pq.ParquetFile(f).num_row_groups)]
    ids: list[int] = []
    labels: list[str] = []
    scores: list[float] = []
    for f, g in groups[part::parts]:
        table = pq.ParquetFile(f).read_row_group(g)
        texts = table.column("text").to_pylist()
        ids.extend(table.column("id").to_pylist())
        for i in range(0, len(texts), BATCH):
            for p in clf.predict(texts[i:i + BATCH]):
                labels.append(p.label)
                scores.append(p.score)
    pq.write_table(pa.table({"id": ids, "label": labels, "score": scores}), Path(out) / f"part-{part}.parquet")


def plain(model: str, src: Path, out: Path, procs: int) -> float:
    """Seconds for ``procs`` processes (model load, read, score, write), each scoring every procs-th row group
    of the input folder."""
    out.mkdir(parents=True)
    ctx = mp.get_context("spawn")
    start = time.perf_counter()
    workers = [ctx.Process(target=_plain_worker, args=(model, str(src), str(out), k, procs)) for k in range(procs)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
        if w.exitcode != 0:
            raise RuntimeError(f"a plain worker failed ({w.exitcode})")
    return time.perf_counter() - start


def with_ray(model: str, src: Path, out: Path, actors: int) -> tuple[float, float]:
    """(Ray start seconds, job seconds: read, actors' model loads, score, write) on a fresh local Ray."""
    import ray

    from edge_infer.integrations.ray import score_dataset, start_local_ray

    start = time.perf_counter()
    start_local_ray(actors + 1, 300 << 20, {"env_vars": {"PYTHONPATH": str(REPO)}})
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    ray.data.DataContext.get_current().enable_progress_bars = False
    started = time.perf_counter()
    try:
        ds = ray.data.read_parquet(str(src))
        score_dataset(ds, model=model, threads=1, concurrency=actors, batch_size=BATCH,
                      keep_columns=["id"]).write_parquet(str(out))
        return started - start, time.perf_counter() - started
    finally:
        ray.shutdown()


def labels_of(folder: Path) -> list[str]:
    table = pq.read_table(folder, columns=["id", "label"]).sort_by("id")
    return table.column("label").to_pylist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--full", type=int, default=0, help="also run Ray with 2 actors on this many rows")
    parser.add_argument("--model", default=str(REPO / "models" / "default"))
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "ray"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edge_infer_ray_bench_"))
    try:
        texts = reviews(DATA / "aclImdb_labeled.tar.gz", DATA / "aclImdb_unsup.tar.gz")
        src = work / "reviews"
        write_input(src, texts, args.rows)
        runs: dict[str, Any] = {"load_before": os.getloadavg()}
        for procs in (1, 2):
            runs[f"plain_{procs}"] = {"seconds": plain(args.model, src, work / f"plain_{procs}", procs)}
        for actors in (1, 2):
            ray_start, seconds = with_ray(args.model, src, work / f"ray_{actors}", actors)
            runs[f"ray_{actors}"] = {"seconds": seconds, "ray_start_seconds": ray_start}
        reference = labels_of(work / "plain_1")
        for name in ("plain_2", "ray_1", "ray_2"):
            runs[name]["labels_equal_plain_1"] = labels_of(work / name) == reference
        for run in runs.values():
            if isinstance(run, dict):
                run["rows_per_s"] = args.rows / run["seconds"]
        if args.full:
            big = work / "full"
            write_input(big, texts, args.full)
            ray_start, seconds = with_ray(args.model, big, work / "ray_full", 2)
            runs["ray_2_full"] = {"rows": args.full, "seconds": seconds, "ray_start_seconds": ray_start,
                                  "rows_per_s": args.full / seconds}
        runs["load_after"] = os.getloadavg()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {"rows": args.rows, "model": os.path.relpath(args.model, REPO), "batch_size": BATCH,
              "cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0],
              "ray": __import__("ray").__version__, "pyarrow": pa.__version__, "runs": runs,
              "scaling_ray_1_to_2": runs["ray_2"]["rows_per_s"] / runs["ray_1"]["rows_per_s"],
              "scaling_plain_1_to_2": runs["plain_2"]["rows_per_s"] / runs["plain_1"]["rows_per_s"],
              "ray_overhead_1": runs["ray_1"]["seconds"] / runs["plain_1"]["seconds"] - 1,
              "ray_overhead_2": runs["ray_2"]["seconds"] / runs["plain_2"]["seconds"] - 1}
    Path(args.out + ".json").write_text(json.dumps(result, indent=2) + "\n")
    Path(args.out + ".md").write_text(markdown(result))
    sys.stdout.write(markdown(result))


def markdown(r: dict[str, Any]) -> str:
    runs = r["runs"]
    lines = [f"# Bulk scoring: Ray Data against the plain API ({r['rows']:,} reviews, `{r['model']}`)", "",
             f"`PYTHONPATH=. python bench/ray_bulk.py --rows {r['rows']}`: Parquet in (files of {FILE_ROWS:,} "
             "rows), Parquet out, "
             f"batches of {r['batch_size']}, 1 ONNX Runtime thread per worker, {r['cpus']} CPUs; "
             f"ray {r['ray']}, pyarrow {r['pyarrow']}, Python {r['python']}.", "",
             "| run | seconds | reviews/s | labels = plain x1 |", "|---|---:|---:|---|"]
    names = {"plain_1": "plain API, 1 process", "plain_2": "plain API, 2 processes (half each)",
             "ray_1": "Ray, 1 actor", "ray_2": "Ray, 2 actors"}
    for key, name in names.items():
        run = runs[key]
        same = {True: "yes", False: "NO", None: "(reference)"}[run.get("labels_equal_plain_1")]
        lines.append(f"| {name} | {run['seconds']:.1f} | {run['rows_per_s']:.0f} | {same} |")
    if "ray_2_full" in runs:
        full = runs["ray_2_full"]
        lines.append(f"| Ray, 2 actors, {full['rows']:,} reviews | {full['seconds']:.1f} | "
                     f"{full['rows_per_s']:.0f} | |")
    lines += ["", f"- Scaling 1 -> 2 actors: **{r['scaling_ray_1_to_2']:.2f}x** (goal >= 1.7x); plain API 1 -> 2 "
              f"processes: {r['scaling_plain_1_to_2']:.2f}x.",
              f"- Ray's overhead against the plain API: {100 * r['ray_overhead_1']:+.1f} % at 1, "
              f"**{100 * r['ray_overhead_2']:+.1f} %** at 2 (goal <= 15 %).",
              f"- Ray start (not in the seconds above): {runs['ray_1']['ray_start_seconds']:.1f} s and "
              f"{runs['ray_2']['ray_start_seconds']:.1f} s. Seconds include each worker's model load, reading "
              "and writing.",
              f"- Load average before / after: {', '.join(f'{x:.2f}' for x in runs['load_before'])} / "
              f"{', '.join(f'{x:.2f}' for x in runs['load_after'])} (other engineers share the machine).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
