"""``POST /v1/explain``: the body's checks and a small pool of worker threads with a hard concurrency limit.

An explanation is already one batch (the text and each of its occluded variants, in one session call), so
it does not go through the micro-batcher: it runs on one of ``slots`` daemon threads. When every slot is
taken, :meth:`ExplainPool.run` raises :class:`Busy` at once (the route answers 503) instead of queueing
without bound. Plain Python (no web framework), like :mod:`edge_infer.server.limits`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edge_infer.explain import MAX_WINDOW, METHOD
from edge_infer.server.batcher import Closed, Worker
from edge_infer.server.limits import ApiError, Limits, check_text, invalid, json_object, kind

FIELDS = ("text", "label", "window")
WINDOWS = tuple(range(1, MAX_WINDOW + 1))


@dataclass(frozen=True)
class ExplainRequest:
    """A checked ``/v1/explain`` body: the text, the label to explain (``None``: the predicted one), the window."""

    text: str
    label: str | None
    window: int


class Busy(Exception):
    """Every explanation slot is taken."""


def parse_explain(body: bytes, limits: Limits, labels: tuple[str, ...]) -> ExplainRequest:
    """Check a ``/v1/explain`` body; raises :class:`ApiError` (400, 413 or 422) saying what is wrong."""
    doc = json_object(body, limits)
    unknown = sorted(set(doc) - set(FIELDS))
    if unknown:
        raise invalid(f"unknown field {unknown[0]!r} (expected text, and optionally label and window)")
    if "text" not in doc:
        raise invalid("'text' is required")
    text = doc["text"]
    if not isinstance(text, str):
        raise invalid(f"'text' must be a string, not {kind(text)}")
    check_text(text, limits)
    label = doc.get("label")
    if label is not None and (not isinstance(label, str) or label not in labels):
        shown = repr(label[:100]) if isinstance(label, str) else kind(label)
        raise ApiError(422, "invalid_label", f"'label' must be one of {', '.join(map(repr, labels))}, not {shown}")
    window = doc.get("window", 1)
    if isinstance(window, bool) or not isinstance(window, int) or window not in WINDOWS:
        raise ApiError(422, "invalid_window", f"'window' must be an integer from 1 to {MAX_WINDOW}")
    return ExplainRequest(text, label, window)


def info(max_tokens: int, slots: int) -> dict[str, Any]:
    """What ``GET /v1/info`` says about explanations (its ``explain`` field)."""
    return {"route": "/v1/explain", "method": METHOD, "windows": list(WINDOWS), "max_tokens": max_tokens,
            "concurrency": slots}


class ExplainPool:
    """``slots`` daemon threads running ``explain(request)``; at most one explanation per thread at a time.

    A slot is freed when its thread has finished, not when its request gave up (``--timeout``), so slow
    explanations cannot pile up on the CPU behind answered requests."""

    def __init__(self, explain: Callable[[ExplainRequest], Any], slots: int) -> None:
        self._explain = explain
        self.slots = slots
        self._workers: list[Worker] = []
        self._free: list[Worker] = []
        self._running: set[asyncio.Future[Any]] = set()
        self._closed = False

    @property
    def busy(self) -> int:
        """Explanations running now."""
        return len(self._running)

    def start(self) -> None:
        """Start the threads (call inside the running event loop)."""
        self._workers = [Worker(f"edge-infer-explain-{i}") for i in range(self.slots)]
        self._free = list(self._workers)

    async def run(self, request: ExplainRequest, timeout: float | None) -> Any:
        """``explain(request)``'s result; raises :class:`Busy`, :class:`Closed`, ``asyncio.TimeoutError``
        after ``timeout`` seconds, or what ``explain`` raised."""
        if self._closed:
            raise Closed
        if not self._free:
            raise Busy
        worker = self._free.pop()
        future = worker.call(self._explain, request)
        self._running.add(future)

        def done(f: asyncio.Future[Any]) -> None:
            self._running.discard(f)
            if not f.cancelled():
                f.exception()  # retrieved: a request that timed out does not leave an unread error behind
            if not self._closed:
                self._free.append(worker)

        future.add_done_callback(done)
        return await asyncio.wait_for(asyncio.shield(future), timeout)

    def abort(self) -> None:
        """Time is up (graceful shutdown): every explanation running gets :class:`Closed`; the threads finish
        unobserved."""
        self._closed = True
        for future in list(self._running):
            if not future.done():
                future.set_exception(Closed())

    def stop(self) -> None:
        """Refuse new work, answer what runs with :class:`Closed`, and let the threads end."""
        self.abort()
        for worker in self._workers:
            worker.stop()
        self._free = []


def too_many_tokens(exc: ValueError) -> ApiError:
    """The answer to a text of which the model reads more tokens than ``--explain-max-tokens``."""
    return ApiError(413, "too_many_tokens", f"{exc} (--explain-max-tokens)")
