"""Connection rules shared by the HTTP protocol and the app: limits, the connection cap, and refusal logging.

Plain Python (asyncio and the standard library). :mod:`edge_infer.server.protocol` enforces the limits on
each connection; every connection it refuses or closes is counted in
:data:`~edge_infer.server.metrics.CONNECTIONS` and reported by :data:`REFUSALS`: the first at once, the
others summed into at most one log line per :data:`LOG_INTERVAL_S`, so a flood of bad clients costs a
few lines, never a traceback per connection.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import math
from dataclasses import dataclass
from typing import Any

from edge_infer.server import logs
from edge_infer.server.metrics import CONNECTIONS, ConnectionStats
from edge_infer.server.settings import Settings

log = logging.getLogger(logs.LOGGER)

DEFAULT_MAX_CONNECTIONS = 1000
BACKLOG = 128
"""The listening socket's queue; asyncio also accepts up to this many connections in one go."""
FD_RESERVE = 64
"""Descriptors kept for everything but client connections (the listening socket, the event loop, logs...)."""
BODY_GRACE_S = 1.0
"""The protocol closes a connection whose body is still arriving this long after ``--body-timeout`` (the
predict route answers 408 itself at ``--body-timeout``; other routes do not read the body)."""
LOG_INTERVAL_S = 1.0
OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


@dataclass(frozen=True)
class ConnectionLimits:
    """Per-connection rules of the HTTP protocol (picklable: ``--workers`` processes receive them)."""

    header_timeout_s: float
    body_timeout_s: float
    max_header_bytes: int
    max_connections: int
    requested_connections: int | None = None
    """``--max-connections`` as given, when it was lowered to fit the fd limit."""


def fd_limit() -> int | None:
    """This process's soft limit on open file descriptors (``None``: unlimited, or not known here)."""
    try:
        import resource  # POSIX only
    except ImportError:
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def connection_cap(requested: int | None, fds: int | None) -> int:
    """Most client connections at once: ``requested`` (default :data:`DEFAULT_MAX_CONNECTIONS`), lowered so
    that they, a burst of :data:`BACKLOG` accepted connections and :data:`FD_RESERVE` fit in ``fds``."""
    cap = requested if requested is not None else DEFAULT_MAX_CONNECTIONS
    if fds is not None:
        cap = min(cap, fds - BACKLOG - FD_RESERVE)
    return max(1, cap)


def limits_for(settings: Settings) -> ConnectionLimits:
    cap = connection_cap(settings.max_connections, fd_limit())
    lowered = settings.max_connections if settings.max_connections not in (None, cap) else None
    return ConnectionLimits(settings.header_timeout_s, settings.body_timeout_s, settings.max_header_bytes, cap,
                            lowered)


REASONS = {
    "over_capacity": "connections over --max-connections {max_connections}",
    "header_timeout": "request heads not complete within --header-timeout {header_timeout_s:g} s",
    "body_timeout": "bodies not complete within --body-timeout {body_timeout_s:g} s",
    "header_too_large": "request heads over --max-header-bytes {max_header_bytes}",
    "bad_request": "malformed HTTP requests",
    "accept_failed": "accept() failures for lack of file descriptors (raise `ulimit -n` or lower --max-connections)",
}


class RefusalLog:
    """Counts refusals in ``stats`` and logs them: the first at once, then at most one line per interval."""

    def __init__(self, stats: ConnectionStats, interval_s: float = LOG_INTERVAL_S) -> None:
        self.stats = stats
        self.interval_s = interval_s
        self._pending: dict[str, int] = {}
        self._limits: ConnectionLimits | None = None
        self._last = -math.inf
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def refuse(self, reason: str, limits: ConnectionLimits | None) -> None:
        """One refusal (in the event loop)."""
        self.stats.count(reason)
        self._pending[reason] = self._pending.get(reason, 0) + 1
        self._limits = limits or self._limits
        loop = asyncio.get_running_loop()
        if self._handle is not None and self._loop is loop:
            return
        self._loop = loop
        delay = self._last + self.interval_s - loop.time()
        if delay <= 0:
            self._flush()
        else:
            self._handle = loop.call_later(delay, self._flush)

    def flush(self) -> None:
        """Log what is pending now (when the server stops)."""
        if self._handle is not None:
            self._handle.cancel()
        self._flush()

    def _flush(self) -> None:
        self._handle = None
        self._last = asyncio.get_running_loop().time()
        fields: dict[str, Any] = self._limits.__dict__ if self._limits is not None else {}
        counts = dict(sorted(self._pending.items()))
        self._pending.clear()
        if counts:
            log.warning("refused: %s", "; ".join(f"{n} {_describe(reason, fields)}" for reason, n in counts.items()),
                        extra={"fields": {"event": "refused", "counts": counts}})


def _describe(reason: str, fields: dict[str, Any]) -> str:
    try:
        return REASONS[reason].format(**fields)
    except (KeyError, IndexError):
        return reason


REFUSALS = RefusalLog(CONNECTIONS)
"""This process's refusal log (one event loop per process)."""


def watch_accept_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Route asyncio's "socket.accept() out of system resource" errors (logged with a traceback, once per
    connection waiting) to :data:`REFUSALS`; every other loop error goes to the handler already set."""
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in OUT_OF_RESOURCES and "accept" in str(context.get("message")):
            REFUSALS.refuse("accept_failed", None)
        elif previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
