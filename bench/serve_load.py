"""Load test of ``edge-infer serve`` against the library's own batch throughput, micro-batching on and off.

    python bench/serve_load.py [--model models/default] [--seconds 10] [--rss-seconds 60]

Starts the server (``python -m edge_infer serve --port 0``) on 127.0.0.1 in a subprocess, once with
micro-batching (``--max-batch-delay 2``) and once without (``0``), and drives it with an HTTP/1.1
keep-alive client written here on raw asyncio streams (not the server's code): ``C`` connections, each
sending one real test review per request (aclImdb test split, ``train.data.load_imdb``) as soon as the
previous answer arrived, for ``--seconds`` per concurrency level (1, 16, 64). Every level and run is
bounded in time and in requests. The library side (``SentimentClassifier.predict`` on the same reviews,
one process, same ``--threads``) is measured first, alone. Writes ``bench/results/serve.md`` and ``.json``.
Needs the serve extra and the dataset. Not a unit test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from compare import cpu_name, save_results  # noqa: E402

from edge_infer import SentimentClassifier  # noqa: E402

HOST = "127.0.0.1"
LEVELS = (1, 16, 64)
SEED = 1337
MAX_REQUESTS = 2_000_000
"""Hard cap on requests per level, besides the time limit."""
TARGETS = {"c64_vs_library": 0.7, "c64_on_vs_off": 3.0, "c1_added_p50_ms": 1.0, "rss_growth": 0.10}


# --------------------------------------------------------------------------- the server under test


class ServerProcess:
    """``python -m edge_infer serve --port 0`` in a subprocess; stderr (access lines) to a temporary file,
    so reading it costs the load generator nothing; stopped by SIGTERM."""

    def __init__(self, args: list[str]) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "-m", "edge_infer", "serve", "--host", HOST, "--port", "0",
                                      *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.log, env=env, cwd=ROOT)
        self.port = 0
        deadline = time.monotonic() + 60
        while not self.port and time.monotonic() < deadline and self.proc.poll() is None:
            time.sleep(0.05)
            self.log.seek(0)
            match = re.search(rb"http://127\.0\.0\.1:(\d+)", self.log.read(65536))
            self.port = int(match.group(1)) if match else 0
        if not self.port:
            self.stop()
            raise SystemExit(f"the server did not start: {self.log_text()[-2000:]!r}")

    def log_text(self) -> bytes:
        """What the server wrote on stderr so far."""
        self.log.seek(0)
        return self.log.read()

    def rss_bytes(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


# --------------------------------------------------------------------------- the load generator


async def _post(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body: bytes) -> tuple[int, bytes]:
    writer.write(b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    match = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
    if match is None:
        raise RuntimeError("answer without Content-Length")
    return status, await reader.readexactly(int(match.group(1)))


@dataclass
class Level:
    """One concurrency level's results."""

    concurrency: int
    seconds: float
    requests: int = 0
    reviews: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    def summary(self) -> dict:
        lat = np.asarray(self.latencies_ms) if self.latencies_ms else np.zeros(1)
        return {"concurrency": self.concurrency, "seconds": round(self.seconds, 3), "requests": self.requests,
                "errors": self.errors, "requests_per_s": self.requests / self.seconds,
                "reviews_per_s": self.reviews / self.seconds, "p50_ms": float(np.percentile(lat, 50)),
                "p95_ms": float(np.percentile(lat, 95)), "p99_ms": float(np.percentile(lat, 99))}


async def drive(port: int, bodies: list[bytes], labels: list[list[str]], concurrency: int, seconds: float,
                warmup: float = 1.0) -> Level:
    """``concurrency`` keep-alive connections sending reviews round-robin for ``seconds`` (after a warm-up);
    every answer's label is checked against the library's."""
    level = Level(concurrency, seconds)
    counter = iter(range(MAX_REQUESTS))
    loop = asyncio.get_running_loop()
    start = loop.time()
    measure_from = start + warmup
    stop_at = measure_from + seconds

    async def client() -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            for n in counter:
                i = n % len(bodies)
                sent = loop.time()
                if sent >= stop_at:
                    return
                status, answer = await _post(reader, writer, bodies[i])
                done = loop.time()
                if sent < measure_from:
                    continue
                level.requests += 1
                if status != 200 or [p["label"] for p in json.loads(answer)["predictions"]] != labels[i]:
                    level.errors += 1
                    continue
                level.reviews += len(labels[i])
                level.latencies_ms.append((done - sent) * 1000)
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(concurrency)))
    level.seconds = loop.time() - measure_from
    return level


# --------------------------------------------------------------------------- the library side


def library(clf: SentimentClassifier, reviews: list[str], repeats: int) -> dict:
    """Batch throughput (``predict`` on all reviews at once) and batch-1 latency, medians over repeats."""
    clf.predict(reviews[:200])
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        clf.predict(reviews)
        rates.append(len(reviews) / (time.perf_counter() - start))
    singles = []
    for text in reviews[:500]:
        start = time.perf_counter()
        clf.predict(text)
        singles.append((time.perf_counter() - start) * 1000)
    return {"batch_reviews_per_s": statistics.median(rates), "batch_repeats": rates,
            "serial_batch1_reviews_per_s": len(singles) / (sum(singles) / 1000),
            "batch1_p50_ms": float(np.percentile(singles, 50)), "batch1_p95_ms": float(np.percentile(singles, 95))}


# --------------------------------------------------------------------------- run and report


def run_mode(name: str, server_args: list[str], bodies: list[bytes], labels: list[list[str]], seconds: float,
             levels: tuple[int, ...], grouped: tuple[list[bytes], list[list[str]]] | None = None) -> dict:
    """Each concurrency level with one review per request; with ``grouped``, also c=16 with
    several reviews per request (key ``"16x<n>"``)."""
    srv = ServerProcess(server_args)
    try:
        results = {}
        runs = [(str(c), c, bodies, labels) for c in levels]
        if grouped is not None:
            runs.append((f"16x{len(grouped[1][0])}", 16, *grouped))
        for key, c, b, lab in runs:
            level = asyncio.run(drive(srv.port, b, lab, c, seconds))
            results[key] = s = level.summary()
            print(f"  {name:<14} c={key:<5} {s['reviews_per_s']:8.0f} reviews/s  p50 {s['p50_ms']:7.2f} ms  "
                  f"p95 {s['p95_ms']:7.2f} ms  p99 {s['p99_ms']:7.2f} ms  errors {s['errors']}", flush=True)
        return results
    finally:
        srv.stop()


def rss_run(server_args: list[str], bodies: list[bytes], labels: list[list[str]], seconds: float) -> dict:
    """RSS of the server over ``seconds`` of load at concurrency 64 (after a 5 s warm-up), sampled every 5 s."""
    srv = ServerProcess(server_args)
    samples, requests, errors = [], 0, 0
    try:
        asyncio.run(drive(srv.port, bodies, labels, 64, 5.0, warmup=0.0))
        samples.append(srv.rss_bytes() / 2**20)
        for _ in range(max(1, round(seconds / 5))):
            level = asyncio.run(drive(srv.port, bodies, labels, 64, 5.0, warmup=0.0))
            requests, errors = requests + level.requests, errors + level.errors
            samples.append(srv.rss_bytes() / 2**20)
    finally:
        srv.stop()
    return {"seconds": seconds, "rss_before_mb": samples[0], "rss_after_mb": samples[-1],
            "growth": (samples[-1] - samples[0]) / samples[0], "samples_mb": samples, "requests": requests,
            "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "models" / "default"))
    parser.add_argument("--reviews", type=int, default=2000, help="test reviews sampled (deterministic)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per concurrency level")
    parser.add_argument("--rss-seconds", type=float, default=60.0, help="RSS run length (0: skip)")
    parser.add_argument("--threads", type=int, default=None,
                        help="the server's ONNX Runtime threads (default: the server's default)")
    parser.add_argument("--batch-delay", type=float, default=2.0, help="--max-batch-delay (ms) with batching on")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--group", type=int, default=16, help="reviews per request in the extra c=16 run (1: skip)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "serve")
    args = parser.parse_args()
    began = time.perf_counter()
    load_before = os.getloadavg()

    from train.data import default_data_path, load_imdb

    test = load_imdb(default_data_path()).test
    rng = random.Random(SEED)
    reviews = [test.texts[i] for i in rng.sample(range(len(test.texts)), args.reviews)]
    from edge_infer.server.model import default_threads

    server_threads = args.threads or default_threads()
    sides = {}
    for threads in dict.fromkeys([None, server_threads]):  # the library's default, and the server's count
        clf = SentimentClassifier.load(args.model, threads=threads)
        if not sides:
            review_labels = [p.label for p in clf.predict(reviews)]
        sides[f"threads={threads or 'default'}"] = result = library(clf, reviews, args.repeats)
        print(f"  library threads={threads or 'default':<7} batch {result['batch_reviews_per_s']:8.0f} reviews/s  "
              f"batch-1 p50 {result['batch1_p50_ms']:.3f} ms", flush=True)
        del clf
    lib = {"sides": sides, "batch_reviews_per_s": max(r["batch_reviews_per_s"] for r in sides.values()),
           "batch1_p50_ms": min(r["batch1_p50_ms"] for r in sides.values())}
    bodies = [json.dumps({"text": r}).encode() for r in reviews]
    labels = [[label] for label in review_labels]
    n = args.group
    grouped = ([json.dumps({"texts": reviews[i:i + n]}).encode() for i in range(0, len(reviews) - n + 1, n)],
               [review_labels[i:i + n] for i in range(0, len(reviews) - n + 1, n)])
    common = ["--model", args.model, "--threads", str(server_threads)]
    on = run_mode("batching on", [*common, "--max-batch-delay", str(args.batch_delay)], bodies, labels,
                  args.seconds, LEVELS, grouped if n > 1 else None)
    off = run_mode("batching off", [*common, "--max-batch-delay", "0"], bodies, labels, args.seconds, LEVELS)
    rss = (rss_run([*common, "--max-batch-delay", str(args.batch_delay)], bodies, labels, args.rss_seconds)
           if args.rss_seconds > 0 else None)

    ratios = {"c64_vs_library": on["64"]["reviews_per_s"] / lib["batch_reviews_per_s"],
              "c64_on_vs_off": on["64"]["reviews_per_s"] / off["64"]["reviews_per_s"],
              "c1_added_p50_ms": on["1"]["p50_ms"] - lib["batch1_p50_ms"],
              "c1_added_p50_ms_off": off["1"]["p50_ms"] - lib["batch1_p50_ms"],
              "rss_growth": rss["growth"] if rss else None}
    doc = {"command": "python bench/serve_load.py " + " ".join(sys.argv[1:]), "model": args.model,
           "reviews": args.reviews, "seconds_per_level": args.seconds, "threads": server_threads,
           "batch_delay_ms": args.batch_delay, "library": lib, "batching_on": on, "batching_off": off,
           "rss": rss, "ratios": ratios, "load_average_before": load_before, "load_average_after": os.getloadavg(),
           "machine": _machine(), "wall_s": time.perf_counter() - began}
    save_results(args.out.with_suffix(".md"), report(doc), doc)


def _machine() -> dict:
    cpu = cpu_name()
    versions = {}
    for name in ("edge-infer", "onnxruntime", "numpy", "uvicorn", "starlette", "httptools"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "?"
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "versions": versions}


def report(doc: dict) -> str:
    lib, on, off, ratios, rss = doc["library"], doc["batching_on"], doc["batching_off"], doc["ratios"], doc["rss"]
    m = doc["machine"]
    met = {"c64_vs_library": ratios["c64_vs_library"] >= TARGETS["c64_vs_library"],
           "c64_on_vs_off": ratios["c64_on_vs_off"] >= TARGETS["c64_on_vs_off"],
           "c1_added_p50_ms": ratios["c1_added_p50_ms"] <= TARGETS["c1_added_p50_ms"],
           "rss_growth": rss is not None and ratios["rss_growth"] < TARGETS["rss_growth"]}

    def yes(key: str) -> str:
        return "yes" if met[key] else "**no**"

    lines = [
        "# Benchmark: `edge-infer serve`", "",
        f"`{doc['command']}`", "",
        f"{m['cpu']}, {m['cores']} cores; Python {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items())
        + f". Model `{Path(doc['model']).name}`, server ONNX Runtime threads {doc['threads']}, "
        f"{doc['reviews']} aclImdb test reviews, one review per request, {doc['seconds_per_level']:g} s per level "
        f"after 1 s warm-up. Load average before / after: "
        f"{' '.join(f'{x:.2f}' for x in doc['load_average_before'])} / "
        f"{' '.join(f'{x:.2f}' for x in doc['load_average_after'])} (machine shared). "
        f"Whole run {doc['wall_s']:.0f} s.", "",
        "## Targets", "",
        "| target | measured | required | met |", "| --- | --- | --- | --- |",
        f"| c=64, batching on: server / library batch reviews/s | {ratios['c64_vs_library']:.2f}x | >= 0.7x | "
        f"{yes('c64_vs_library')} |",
        f"| c=64: batching on / off reviews/s | {ratios['c64_on_vs_off']:.2f}x | >= 3x | {yes('c64_on_vs_off')} |",
        f"| c=1: server p50 - library batch-1 p50 | {ratios['c1_added_p50_ms']:+.3f} ms | <= 1 ms | "
        f"{yes('c1_added_p50_ms')} |",
        "| RSS growth over the RSS run | "
        + (f"{100 * rss['growth']:+.1f} % ({rss['seconds']:g} s at c=64; MiB every 5 s: "
           + " ".join(f"{x:.0f}" for x in rss["samples_mb"])
           + f"; from the 2nd sample on: {100 * (rss['samples_mb'][-1] / rss['samples_mb'][1] - 1):+.1f} %)"
           if rss else "not run")
        + f" | < 10 % | {yes('rss_growth')} |", "",
        "## Side by side", "",
        "Library: `SentimentClassifier.predict` in one process (the server runs one), on all reviews in one "
        "call, median of repeats; measured alone before the servers start, with its default threads and with "
        "the server's. Ratios use the better library figure (the higher reviews/s, the lower batch-1 p50).", "",
        "| library | batch reviews/s | one review per call, reviews/s | batch / one per call | batch-1 p50 | "
        "batch-1 p95 |", "| --- | --- | --- | --- | --- | --- |",
        *(f"| {name} | {r['batch_reviews_per_s']:.0f} | {r['serial_batch1_reviews_per_s']:.0f} | "
          f"{r['batch_reviews_per_s'] / r['serial_batch1_reviews_per_s']:.2f}x | {r['batch1_p50_ms']:.3f} ms | "
          f"{r['batch1_p95_ms']:.3f} ms |" for name, r in lib["sides"].items()), "",
        "*batch / one per call* is what batching wins in the library itself: the most micro-batching can win "
        "over one request per call, before any HTTP cost.", "",
        "| batching | concurrency | requests/s | reviews/s | / library batch | p50 | p95 | p99 | errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, mode in (("on", on), ("off", off)):
        for c, s in mode.items():
            lines.append(f"| {name} | {c.replace('x', ' (x', 1) + ' per request)' if 'x' in c else c} | "
                         f"{s['requests_per_s']:.0f} | {s['reviews_per_s']:.0f} | "
                         f"{s['reviews_per_s'] / lib['batch_reviews_per_s']:.2f}x | {s['p50_ms']:.2f} ms | "
                         f"{s['p95_ms']:.2f} ms | {s['p99_ms']:.2f} ms | {s['errors']} |")
    lines += ["", "Errors count non-200 answers and labels differing from the library's. The load generator "
              "runs on the same 2 cores as the server, so its own CPU time is part of what is measured.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
