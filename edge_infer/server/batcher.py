"""The micro-batcher: concurrent requests gathered for a short window, run as one batch in a worker thread.

Each request is a *job* (its texts and threshold). When the worker is free, the oldest waiting job
opens a window of ``max_delay_s``; jobs arriving in it join, until the window closes or
``max_batch_size`` texts are waiting. The window is only waited while ``arriving()`` says other
requests are already being received (their bodies read and checked): a lone request never waits, so
batching costs nothing at concurrency 1. The gathered jobs run as one call on a single worker thread
(the classifier sorts the texts by length and cuts them into ONNX Runtime batches) while the event loop
keeps accepting requests; jobs that arrive during that call have waited longer than the window, so the
next batch takes them at once. ``max_delay_s == 0`` turns batching off: one job per call. A job is never
split across calls.

The queue holds at most ``max_queue`` jobs; :meth:`MicroBatcher.submit` raises :class:`QueueFull`
beyond that instead of letting the queue grow.

The worker is a daemon thread: when the graceful shutdown time is up, :meth:`MicroBatcher.abort` answers
every waiting and running job with :class:`Closed` and the process exits without waiting for the batch
still running on the model.
"""

from __future__ import annotations

import asyncio
import collections
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Work = Sequence[tuple[Sequence[str], "float | None"]]
RunBatch = Callable[[Work], list[Any]]
"""Runs ``[(texts, threshold), ...]`` in the worker thread; returns one result per job, in order."""


class QueueFull(Exception):
    """The queue already holds ``max_queue`` waiting requests."""


class Closed(Exception):
    """The batcher is stopping and takes no new work."""


@dataclass(eq=False)
class _Job:
    texts: Sequence[str]
    threshold: float | None
    future: asyncio.Future[Any]
    enqueued: float
    size: int = field(init=False)

    def __post_init__(self) -> None:
        self.size = len(self.texts)


class Worker:
    """One daemon thread running calls one at a time; results are handed back to the event loop."""

    def __init__(self, name: str) -> None:
        self._calls: queue.SimpleQueue[tuple[asyncio.AbstractEventLoop, asyncio.Future[Any], Callable[[Any], Any],
                                             Any] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def call(self, fn: Callable[[Any], Any], arg: Any) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._calls.put((loop, future, fn, arg))
        return future

    def stop(self) -> None:
        """The thread ends after the call it is running, if any; nobody waits for it."""
        self._calls.put(None)

    def _run(self) -> None:
        while (item := self._calls.get()) is not None:
            loop, future, fn, arg = item
            try:
                result, error = fn(arg), None
            except Exception as exc:  # noqa: BLE001 - handed to the waiting requests
                result, error = None, exc
            try:
                loop.call_soon_threadsafe(_settle, future, result, error)
            except RuntimeError:  # the loop is closed: nobody waits any more
                return


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if not future.done():
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


class MicroBatcher:
    """Gathers jobs into batches and runs them with ``run_batch`` on one worker thread.

    ``on_batch(texts)`` is called (in the event loop) with the size of every batch run; ``arriving()``
    counts requests received but not yet submitted (default: none, so windows are always waited in full).
    """

    def __init__(self, run_batch: RunBatch, *, max_delay_s: float, max_batch_size: int, max_queue: int,
                 on_batch: Callable[[int], None] | None = None, arriving: Callable[[], int] | None = None) -> None:
        self._run_batch = run_batch
        self._arriving = arriving
        self.max_delay_s = max_delay_s
        self.max_batch_size = max_batch_size
        self.max_queue = max_queue
        self._on_batch = on_batch
        self._pending: collections.deque[_Job] = collections.deque()
        self._pending_texts = 0
        self._wake = asyncio.Event()
        self._flush = False
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self._worker: Worker | None = None
        self._running: list[_Job] = []

    @property
    def depth(self) -> int:
        """Requests waiting for a batch (not counting the one running)."""
        return len(self._pending)

    def start(self) -> None:
        """Start the batching task (call inside the running event loop)."""
        self._worker = Worker("edge-infer-batch")
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="edge-infer-batcher")

    def nudge(self) -> None:
        """Something the window may be waiting for changed (a request arrived or gave up before submitting)."""
        self._wake.set()

    def drain(self) -> None:
        """Stop waiting for batch windows: what is queued runs now (on shutdown)."""
        self._flush = True
        self._wake.set()

    def abort(self) -> None:
        """Time is up (graceful shutdown): every job waiting or running gets :class:`Closed`; the batch running
        on the worker thread, if any, finishes unobserved."""
        self._closed = True
        jobs = [*self._pending, *self._running]
        self._pending.clear()
        self._pending_texts = 0
        for job in jobs:
            if not job.future.done():
                job.future.set_exception(Closed())
        self._wake.set()

    async def stop(self) -> None:
        """Run what is queued, then stop the task and the worker thread; new submissions raise :class:`Closed`."""
        self._closed = True
        self.drain()
        while self._pending and self._task is not None and not self._task.done():
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self.abort()
        if self._worker is not None:
            self._worker.stop()

    async def submit(self, texts: Sequence[str], threshold: float | None, timeout: float | None) -> Any:
        """Queue one job and wait for its result; raises :class:`QueueFull`, :class:`Closed`,
        ``TimeoutError`` (``asyncio.TimeoutError``) after ``timeout`` seconds, or what ``run_batch`` raised."""
        if self._closed:
            raise Closed
        if len(self._pending) >= self.max_queue:
            raise QueueFull
        loop = asyncio.get_running_loop()
        job = _Job(texts, threshold, loop.create_future(), loop.time())
        self._pending.append(job)
        self._pending_texts += job.size
        self._wake.set()
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), timeout)
        except asyncio.TimeoutError:
            self._discard(job)
            raise

    def _discard(self, job: _Job) -> None:
        try:
            self._pending.remove(job)
            self._pending_texts -= job.size
        except ValueError:  # already taken into a batch: its result is dropped
            pass
        job.future.cancel()

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._pending:
                self._wake.clear()
                await self._wake.wait()
            if self.max_delay_s > 0:
                await self._gather(loop, self._pending[0].enqueued + self.max_delay_s)
                if not self._pending:  # the waiting requests timed out meanwhile
                    continue
            jobs = self._take()
            if self._on_batch is not None:
                self._on_batch(sum(job.size for job in jobs))
            work = [(job.texts, job.threshold) for job in jobs]
            assert self._worker is not None
            self._running = jobs
            try:
                results = await self._worker.call(self._run_batch, work)
            except Exception as exc:  # noqa: BLE001 - handed to each waiting request
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            finally:
                self._running = []
            for job, result in zip(jobs, results):
                if not job.future.done():
                    job.future.set_result(result)

    async def _gather(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        """Wait until the window closes, the batch is full, no other request is arriving, or the batcher drains."""
        while not self._flush and self._pending_texts < self.max_batch_size:
            if self._arriving is not None and self._arriving() == 0:
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except asyncio.TimeoutError:
                return

    def _take(self) -> list[_Job]:
        """The oldest jobs that fit the batch size (always at least one; only one when batching is off)."""
        jobs = [self._pending.popleft()]
        total = jobs[0].size
        if self.max_delay_s > 0:
            while self._pending and total + self._pending[0].size <= self.max_batch_size:
                job = self._pending.popleft()
                total += job.size
                jobs.append(job)
        self._pending_texts -= total
        return jobs
