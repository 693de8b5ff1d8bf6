"""Cost of ``POST /v1/explain`` beside the library's ``explain``, and its concurrency limit under a burst.

    python bench/serve_explain.py [--model models/default] [--repeats 30] [--clients 4] [--burst 10]

The texts are aclImdb test reviews cut to 20 and 200 words (as in bench/explain.py). Library: the p50
wall time of ``SentimentClassifier.explain`` (one ONNX Runtime thread). Server: ``edge-infer serve
--threads 1`` on 127.0.0.1 (port chosen by the OS), the p50 time of one request on a keep-alive
connection, sequential, the same texts (answers checked equal to the library's within 2e-6). Burst:
``--clients`` threads each send ``--burst`` 200-word explanations back to back to a server with
``--explain-concurrency 1``: how many got 200 and 503 ``explain_busy``, and how fast the 503s came.
Bounded in requests; every request has a timeout. Writes ``bench/results/serve_explain.md`` and ``.json``.
Needs the serve extra and the dataset. Not a unit test.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from compare import save_results, text_of_tokens  # noqa: E402
from serve_load import HOST, ServerProcess  # noqa: E402

from edge_infer import SentimentClassifier  # noqa: E402
from train.data import default_data_path, load_imdb  # noqa: E402

WORDS = (20, 200)
TIMEOUT_S = 60.0


def post(conn: http.client.HTTPConnection, body: dict[str, Any]) -> tuple[int, Any, float]:
    """One ``POST /v1/explain`` on ``conn``: status, JSON answer, seconds."""
    started = time.perf_counter()
    conn.request("POST", "/v1/explain", body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    doc = json.loads(resp.read())
    return resp.status, doc, time.perf_counter() - started


def same(got: Any, want: Any) -> bool:
    if isinstance(want, float):
        return isinstance(got, (int, float)) and abs(got - want) <= 2e-6
    if isinstance(want, dict):
        return isinstance(got, dict) and got.keys() == want.keys() and all(same(got[k], want[k]) for k in want)
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(map(same, got, want))
    return bool(got == want)


def sequential(port: int, clf: SentimentClassifier, texts: dict[int, str], repeats: int) -> list[dict]:
    rows = []
    conn = http.client.HTTPConnection(HOST, port, timeout=TIMEOUT_S)
    try:
        for words, text in texts.items():
            want = clf.explain(text).to_dict()
            library, server = [], []
            for _ in range(repeats + 1):  # the first of each is a warm-up
                started = time.perf_counter()
                clf.explain(text)
                library.append(time.perf_counter() - started)
                status, doc, seconds = post(conn, {"text": text})
                if status != 200 or not same(doc, want):
                    raise SystemExit(f"the server's answer differs from the library's: {status} {doc}")
                server.append(seconds)
            rows.append({"words": words, "tokens": len(clf.tokenizer.ids(text)), "repeats": repeats,
                         "library_p50_ms": statistics.median(library[1:]) * 1000,
                         "server_p50_ms": statistics.median(server[1:]) * 1000})
    finally:
        conn.close()
    return rows


def burst(port: int, text: str, clients: int, count: int) -> dict:
    def client(_: int) -> list[tuple[int, float]]:
        conn = http.client.HTTPConnection(HOST, port, timeout=TIMEOUT_S)
        try:
            return [(status, seconds) for status, _, seconds in (post(conn, {"text": text}) for _ in range(count))]
        finally:
            conn.close()

    with ThreadPoolExecutor(max_workers=clients) as pool:
        answers = [a for part in pool.map(client, range(clients)) for a in part]
    by_status: dict[str, int] = {}
    for status, _ in answers:
        by_status[str(status)] = by_status.get(str(status), 0) + 1
    busy = [seconds * 1000 for status, seconds in answers if status == 503]
    ok = [seconds * 1000 for status, seconds in answers if status == 200]
    return {"clients": clients, "requests": len(answers), "status": by_status,
            "p50_200_ms": statistics.median(ok) if ok else None,
            "p50_503_ms": statistics.median(busy) if busy else None,
            "max_503_ms": max(busy) if busy else None}


def render(doc: dict) -> str:
    lines = ["# POST /v1/explain: cost and concurrency limit\n", f"`{doc['command']}`\n",
             f"Model `{doc['model']}`, one ONNX Runtime thread on both sides; {doc['cpus']} CPUs; load average "
             f"before {doc['load_before']}, after {doc['load_after']}. Answers equal to the library's "
             "(numbers within 2e-6).\n",
             "| words | tokens | library explain p50 | server /v1/explain p50 | added |",
             "| --- | --- | --- | --- | --- |"]
    for r in doc["sequential"]:
        lines.append(f"| {r['words']} | {r['tokens']} | {r['library_p50_ms']:.2f} ms | {r['server_p50_ms']:.2f} ms | "
                     f"{r['server_p50_ms'] - r['library_p50_ms']:.2f} ms |")
    b = doc["burst"]

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f} ms"

    lines += ["", f"Burst, `--explain-concurrency 1`: {b['clients']} clients x {doc['burst_count']} 200-word "
                  f"explanations back to back ({b['requests']} requests).\n",
              "| answers by status | p50 of 200s | p50 of 503s | max of 503s |", "| --- | --- | --- | --- |",
              f"| {json.dumps(b['status'])} | {ms(b['p50_200_ms'])} | {ms(b['p50_503_ms'])} | {ms(b['max_503_ms'])} |"]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=ROOT / "models" / "default")
    p.add_argument("--data", type=Path, default=default_data_path())
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--burst", type=int, default=10)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "serve_explain.md")
    args = p.parse_args()
    load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
    clf = SentimentClassifier.load(args.model, threads=1)
    reviews = load_imdb(args.data).test.texts[:2000]
    texts = {words: text_of_tokens(reviews, words) for words in WORDS}
    server = ServerProcess(["--model", str(args.model), "--threads", "1", "--explain-concurrency", "1"])
    try:
        rows = sequential(server.port, clf, texts, args.repeats)
        crowd = burst(server.port, texts[200], args.clients, args.burst)
    finally:
        server.stop()
    data = f" --data {args.data}" if args.data != default_data_path() else ""
    command = "python bench/serve_explain.py" + data + "".join(
        f" {flag} {value}" for flag, value, default in (("--repeats", args.repeats, 30), ("--clients", args.clients, 4),
                                                        ("--burst", args.burst, 10)) if value != default)
    doc = {"command": command, "model": os.path.relpath(args.model, ROOT), "cpus": os.cpu_count(),
           "load_before": load_before, "load_after": " ".join(f"{x:.1f}" for x in os.getloadavg()),
           "sequential": rows, "burst": crowd, "burst_count": args.burst}
    save_results(args.out, render(doc), doc)


if __name__ == "__main__":
    main()
