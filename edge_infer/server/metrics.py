"""Prometheus text exposition (format 0.0.4) of the server's counters, histograms and gauges; no dependency."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Sequence

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Histogram:
    """Cumulative buckets, sum and count, as Prometheus expects them."""

    def __init__(self, name: str, help_text: str, buckets: Sequence[float]) -> None:
        self.name = name
        self.help_text = help_text
        self.buckets = tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)  # the last one is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value
        self.count += 1

    def lines(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help_text}", f"# TYPE {self.name} histogram"]
        running = 0
        for bound, count in zip((*self.buckets, float("inf")), self.counts):
            running += count
            out.append(f'{self.name}_bucket{{le="{_number(bound)}"}} {running}')
        out.append(f"{self.name}_sum {_number(self.sum)}")
        out.append(f"{self.name}_count {self.count}")
        return out


class ConnectionStats:
    """Connection-level counts of this process, kept by the HTTP protocol (connections closed before any
    request reached the app) and shown by ``GET /metrics``."""

    def __init__(self) -> None:
        self.open = 0
        self.refused: dict[str, int] = {}

    def count(self, reason: str) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + 1

    def lines(self) -> list[str]:
        out = ["# HELP edge_infer_connections_open Client connections open.",
               "# TYPE edge_infer_connections_open gauge", f"edge_infer_connections_open {self.open}",
               "# HELP edge_infer_connections_refused_total Connections refused or closed by the server before "
               "a request reached the app, by reason.",
               "# TYPE edge_infer_connections_refused_total counter"]
        out += [f'edge_infer_connections_refused_total{{reason="{_label(reason)}"}} {count}'
                for reason, count in sorted(self.refused.items())]
        return out


CONNECTIONS = ConnectionStats()
"""This process's connection counts (one event loop per process)."""


class Metrics:
    """What ``GET /metrics`` shows: requests by method, route and status, request latency, batch sizes,
    texts classified, queue depth, requests in flight, and :data:`CONNECTIONS`. Per process (each ``--workers``
    process has its own). A client that closes its connection before its answer is counted as status 499."""

    def __init__(self, queue_depth: Callable[[], int], connections: ConnectionStats = CONNECTIONS) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = {}
        self.latency = Histogram("edge_infer_request_duration_seconds",
                                 "Time from request start to the end of the response.", LATENCY_BUCKETS)
        self.batches = Histogram("edge_infer_batch_size", "Texts per micro-batch run by the model.", BATCH_BUCKETS)
        self.texts = 0
        self.in_flight = 0
        self._queue_depth = queue_depth
        self._connections = connections

    def request_done(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            key = (method, route, status)
            self.requests[key] = self.requests.get(key, 0) + 1
            self.latency.observe(seconds)

    def batch_done(self, texts: int) -> None:
        with self._lock:
            self.batches.observe(texts)
            self.texts += texts

    def render(self) -> str:
        with self._lock:
            lines = ["# HELP edge_infer_requests_total HTTP requests answered, by method, route and status.",
                     "# TYPE edge_infer_requests_total counter"]
            for (method, route, status), count in sorted(self.requests.items()):
                lines.append(f'edge_infer_requests_total{{method="{_label(method)}",route="{_label(route)}",'
                             f'status="{status}"}} {count}')
            lines += self.latency.lines() + self.batches.lines()
            lines += ["# HELP edge_infer_texts_total Texts classified.", "# TYPE edge_infer_texts_total counter",
                      f"edge_infer_texts_total {self.texts}",
                      "# HELP edge_infer_queue_depth Requests waiting for a micro-batch.",
                      "# TYPE edge_infer_queue_depth gauge", f"edge_infer_queue_depth {self._queue_depth()}",
                      "# HELP edge_infer_requests_in_flight Requests being answered.",
                      "# TYPE edge_infer_requests_in_flight gauge", f"edge_infer_requests_in_flight {self.in_flight}"]
            lines += self._connections.lines()
        return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    return repr(float(value)) if isinstance(value, float) else str(value)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
