"""Soak of ``edge-infer serve``: normal requests while hundreds of idle and slow connections hold on.

    python bench/serve_soak.py [--model models/default] [--idle 300] [--slow 300] [--requests 1000]

Starts ``python -m edge_infer serve --port 0`` on 127.0.0.1 (its default timeouts and limits unless given
after ``--``), then, from this process (asyncio streams, not the server's code):

- ``--idle`` connections that send nothing; each one closed by the server is opened again;
- ``--slow`` connections that send one byte every ``--slow-interval`` seconds: half of them a request
  head, half a body after a complete head; each one cut by the server is opened again;
- once those are all open: ``--requests`` normal ``POST /v1/predict`` requests (one review each) on
  ``--concurrency`` keep-alive connections, spread over at least ``--seconds`` (so that the idle and slow
  clients are cut and come back several times meanwhile), each answer's label checked against the library's.

Reports whether every normal request succeeded, their latency p50 / p99 / max against the server's
``--timeout``, how long the server let the idle and slow connections live against ``--header-timeout``
and ``--body-timeout``, the server's log size and its refusal counters. Bounded: the request count is
fixed, every wait has a timeout and the whole run stops after ``--max-seconds``. Not a unit test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from serve_load import ServerProcess  # noqa: E402

from edge_infer import SentimentClassifier  # noqa: E402

HOST = "127.0.0.1"
REVIEWS = [
    "A wonderful, moving film with great acting and a brilliant story.",
    "I loved every minute of it! The cast was superb and the music beautiful.",
    "Terrible plot, awful acting, a boring and stupid waste of time.",
    "The worst movie I have ever seen; bad script, bad direction, bad everything.",
    "It was fine. Some good scenes, some dull ones, an ok ending?",
    "Not my kind of film, but the photography is stunning and the lead is charming.",
    "Two hours I will never get back. Predictable, loud and empty.",
    "A small gem: funny, warm and sharply written from start to finish.",
]
DEFAULTS = {"timeout": 30.0, "header_timeout": 5.0, "body_timeout": 10.0}
"""The server's defaults (``edge-infer serve --help``), unless overridden after ``--``."""


# --------------------------------------------------------------------------- clients


@dataclass
class Hostile:
    """Connections of one kind: how many were opened, and how each one the server ended went."""

    kind: str
    opened: int = 0
    lifetimes: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    connect_errors: int = 0


async def _status_of(reader: asyncio.StreamReader, limit: float) -> str:
    """The status the server answered before closing (``closed``: none; ``open``: still open at ``limit``)."""
    try:
        data = await asyncio.wait_for(reader.read(4096), limit)
    except asyncio.TimeoutError:
        return "open"
    except OSError:
        return "reset"
    return data[9:12].decode("latin-1") if data.startswith(b"HTTP/1.1 ") else "closed"


async def hostile(port: int, kind: str, stats: Hostile, stop: asyncio.Event, interval: float, limit: float) -> None:
    """One idle or slow client, reconnecting each time the server closes it, until ``stop``."""
    body = json.dumps({"text": REVIEWS[0]}).encode()
    head = (f"POST /v1/predict HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nX-Padding: {'p' * 200}\r\n\r\n").encode()
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            stats.connect_errors += 1
            await asyncio.sleep(0.5)
            continue
        stats.opened += 1
        opened = time.monotonic()
        answer = asyncio.ensure_future(_status_of(reader, limit))
        try:
            if kind == "slow body":
                writer.write(head)
            trickle = head if kind == "slow head" else body if kind == "slow body" else b""
            for i in range(len(trickle)):
                if answer.done() or stop.is_set():
                    break
                writer.write(trickle[i:i + 1])
                await asyncio.sleep(interval)
            status = await asyncio.wait_for(answer, limit) if not stop.is_set() else "stopped"
        except (OSError, asyncio.TimeoutError):
            status = "reset"
        finally:
            answer.cancel()
            writer.close()
        if status != "stopped":
            stats.lifetimes.append(time.monotonic() - opened)
            stats.statuses[status] = stats.statuses.get(status, 0) + 1
            await asyncio.sleep(0.1)  # then connect again


@dataclass
class Normal:
    latencies: list[float] = field(default_factory=list)
    ok: int = 0
    failures: dict[str, int] = field(default_factory=dict)


async def normal_client(port: int, jobs: list[int], bodies: list[bytes], labels: list[str], out: Normal,
                        timeout: float, interval: float, offset: float) -> None:
    """Keep-alive requests for the job indexes given, one every ``interval`` seconds at most; any failure
    is counted, then a new connection."""
    reader = writer = None
    began = time.monotonic() + offset
    for n, i in enumerate(jobs):
        await asyncio.sleep(max(0.0, began + n * interval - time.monotonic()))
        start = time.monotonic()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(HOST, port)
            assert reader is not None
            writer.write(b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(bodies[i]), bodies[i]))
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
            length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
            body = await asyncio.wait_for(reader.readexactly(int(length.group(1)) if length else 0), timeout)
            status = head[9:12].decode()
            if status == "200" and json.loads(body)["predictions"][0]["label"] == labels[i]:
                out.ok += 1
                out.latencies.append(time.monotonic() - start)
                continue
            reason = f"status {status}" if status != "200" else "wrong label"
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            reason = type(exc).__name__
        out.failures[reason] = out.failures.get(reason, 0) + 1
        if writer is not None:
            writer.close()
        reader = writer = None
    if writer is not None:
        writer.close()


async def soak(args: argparse.Namespace, port: int, labels: list[str]) -> tuple[Normal, list[Hostile], dict]:
    stop = asyncio.Event()
    limit = max(DEFAULTS["header_timeout"], DEFAULTS["body_timeout"]) + 10  # how long a hostile waits, at most
    groups = [Hostile("idle"), Hostile("slow head"), Hostile("slow body")]
    counts = [args.idle, args.slow - args.slow // 2, args.slow // 2]
    tasks = [asyncio.ensure_future(hostile(port, g.kind, g, stop, args.slow_interval, limit))
             for g, n in zip(groups, counts) for _ in range(n)]
    deadline = time.monotonic() + 30
    while sum(g.opened for g in groups) < args.idle + args.slow and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    held_at_start = sum(g.opened for g in groups)
    bodies = [json.dumps({"text": REVIEWS[i % len(REVIEWS)] + f" Seen {i} times."}).encode()
              for i in range(args.requests)]
    normal = Normal()
    began = time.monotonic()
    jobs = [list(range(c, args.requests, args.concurrency)) for c in range(args.concurrency)]
    interval = args.seconds * args.concurrency / args.requests
    load = asyncio.gather(*(normal_client(port, j, bodies, labels, normal, DEFAULTS["timeout"] + 5, interval,
                                          offset=c * interval / args.concurrency) for c, j in enumerate(jobs)))
    try:
        await asyncio.wait_for(load, args.max_seconds)
    except asyncio.TimeoutError:
        normal.failures["soak time limit"] = args.requests - normal.ok - sum(normal.failures.values())
    wall = time.monotonic() - began
    # Let the hostile clients go on until each kind has been cut at least once past its timeout.
    settle = time.monotonic() + DEFAULTS["body_timeout"] + 3
    while time.monotonic() < settle and any(not g.lifetimes for g in groups if g.opened):
        await asyncio.sleep(0.1)
    stop.set()
    if tasks:
        await asyncio.wait(tasks, timeout=limit + 5)
    for task in tasks:
        task.cancel()
    return normal, groups, {"normal_wall_s": wall, "hostile_open_at_start": held_at_start}


# --------------------------------------------------------------------------- report


def _metrics(port: int) -> str:
    import http.client

    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "models" / "default"))
    parser.add_argument("--idle", type=int, default=300)
    parser.add_argument("--slow", type=int, default=300)
    parser.add_argument("--slow-interval", type=float, default=0.25, help="seconds between a slow client's bytes")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0, help="spread the normal requests over this long")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="limit on the normal requests' run")
    parser.add_argument("server_args", nargs="*", help="after --: more `edge-infer serve` options")
    args = parser.parse_args()
    for name, flag in (("timeout", "--timeout"), ("header_timeout", "--header-timeout"),
                       ("body_timeout", "--body-timeout")):
        if flag in args.server_args:
            DEFAULTS[name] = float(args.server_args[args.server_args.index(flag) + 1])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.idle + args.slow + args.concurrency + 64
    if soft != resource.RLIM_INFINITY and soft < need:  # this client's own sockets; the server keeps its limit
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))

    load_before = os.getloadavg()
    clf = SentimentClassifier.load(args.model, threads=1)
    labels = [clf.predict(REVIEWS[i % len(REVIEWS)] + f" Seen {i} times.").label for i in range(args.requests)]
    server = ServerProcess(["--model", args.model, *args.server_args])
    try:
        rss_before = server.rss_bytes() / 2**20
        normal, groups, info = asyncio.run(soak(args, server.port, labels))
        rss_after = server.rss_bytes() / 2**20
        metrics = _metrics(server.port)
    finally:
        stopping = time.monotonic()
        server.stop()
        exit_s = time.monotonic() - stopping
    log = server.log_text().decode("utf-8", "replace")
    refused = dict(re.findall(r'edge_infer_connections_refused_total\{reason="(\w+)"\} (\d+)', metrics))
    lat = [x * 1000 for x in normal.latencies]
    timeout_ms = DEFAULTS["timeout"] * 1000
    all_ok = normal.ok == args.requests and max(lat, default=float("inf")) <= timeout_ms
    command = " ".join(["python bench/serve_soak.py", *sys.argv[1:]])
    lines = [
        f"`{command}`", "",
        f"Model `{Path(args.model).name}`; {os.cpu_count()} cores; load average before the run "
        f"{' '.join(f'{x:.2f}' for x in load_before)}; {args.idle} idle + {args.slow} slow connections "
        f"({info['hostile_open_at_start']} open when the normal requests began), {args.requests} normal requests "
        f"on {args.concurrency} keep-alive connections in {info['normal_wall_s']:.1f} s.", "",
        "| normal requests | succeeded | failed | p50 | p99 | max | --timeout | all within |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| {args.requests} | {normal.ok} | {sum(normal.failures.values())}"
        f"{' ' + json.dumps(normal.failures) if normal.failures else ''} | {_pct(lat, 50):.1f} ms | "
        f"{_pct(lat, 99):.1f} ms | {max(lat, default=float('nan')):.1f} ms | {timeout_ms / 1000:g} s | "
        f"{'yes' if all_ok else '**no**'} |", "",
        "| hostile connections | opened | ended by the server | answers | median life | max life | limit |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for g in groups:
        limit = DEFAULTS["body_timeout"] if g.kind == "slow body" else DEFAULTS["header_timeout"]
        option = "--body-timeout" if g.kind == "slow body" else "--header-timeout"
        lines.append(f"| {g.kind} | {g.opened} | {len(g.lifetimes)} | "
                     f"{', '.join(f'{k}: {v}' for k, v in sorted(g.statuses.items()))} | "
                     f"{statistics.median(g.lifetimes) if g.lifetimes else float('nan'):.2f} s | "
                     f"{max(g.lifetimes, default=float('nan')):.2f} s | {option} {limit:g} s |")
    lines += ["", f"Server: RSS {rss_before:.0f} -> {rss_after:.0f} MiB; stderr {len(log.splitlines())} lines "
              f"({len(log.encode())} bytes), {log.count('Traceback')} tracebacks; refused by reason: "
              f"{json.dumps(refused)}; exit after SIGTERM in {exit_s:.2f} s."]
    print("\n".join(lines))
    if not all_ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
