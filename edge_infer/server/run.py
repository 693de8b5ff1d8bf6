"""Binding the socket and running uvicorn: one process, or ``--workers N`` processes sharing the socket."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import socket
import threading
from collections.abc import Iterator

import uvicorn

from edge_infer.server import logs
from edge_infer.server.app import SUPERVISOR_ENV, ServerState, create_app
from edge_infer.server.connections import BACKLOG, ConnectionLimits, fd_limit, limits_for
from edge_infer.server.limits import AllowedHosts
from edge_infer.server.model import Loaded
from edge_infer.server.protocol import protocol_factory
from edge_infer.server.settings import ENV_VAR, Settings

log = logging.getLogger(logs.LOGGER)

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""The signals that stop the server gracefully."""


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (port 0: a free one); raises ``OSError``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: accepted sockets inherit it, and asyncio sets TCP_NODELAY only on sockets
    # whose proto says TCP (without it every answer waits ~40 ms for a delayed ACK).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _limits(settings: Settings) -> ConnectionLimits:
    """The connection rules, logged once."""
    limits = limits_for(settings)
    if limits.requested_connections is not None:
        log.warning("--max-connections %d lowered to %d: the file descriptor limit is %s (ulimit -n)",
                    limits.requested_connections, limits.max_connections, fd_limit())
    log.info("at most %d connections; request head within %g s and %d bytes, body within %g s, keep-alive %g s; "
             "hosts: %s", limits.max_connections, limits.header_timeout_s, limits.max_header_bytes,
             limits.body_timeout_s, settings.keep_alive_timeout_s,
             AllowedHosts.parse(settings.allowed_hosts, settings.host).describe())
    return limits


def _config(app: object, settings: Settings, limits: ConnectionLimits, **extra: object) -> uvicorn.Config:
    """uvicorn's settings: our HTTP protocol (timeouts, caps), the plain asyncio loop (whose accept errors
    are handled), no websockets, and the graceful timeout as a backstop after the app's own."""
    return uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", server_header=False,  # type: ignore[arg-type]
                          http=protocol_factory(limits), loop="asyncio", ws="none",  # type: ignore[arg-type]
                          backlog=BACKLOG, timeout_keep_alive=settings.keep_alive_timeout_s,  # type: ignore[arg-type]
                          timeout_graceful_shutdown=math.ceil(settings.graceful_timeout_s), **extra)  # type: ignore[arg-type]


class GracefulServer(uvicorn.Server):
    """uvicorn's server, except that a signal ends it normally (exit 0): SIGTERM/SIGINT start its graceful
    shutdown, and :meth:`serve` returns. The app learns about the signal itself (its lifespan)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The one point where this module leans on uvicorn beyond its documented API: Server.serve() wraps the
        # serving in self.capture_signals(), and uvicorn's own version raises each captured signal again once
        # the server has stopped (0.29+), which would turn a graceful SIGTERM into death by SIGTERM. This
        # override installs the same handler (handle_exit, public) and restores the old handlers, without
        # raising anything again. tests/test_serve.py::test_uvicorn_still_serves_inside_capture_signals
        # fails if a uvicorn release stops calling it or changes what a signal does.
        if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in HANDLED_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


class _Server(GracefulServer):
    """:class:`GracefulServer` that logs where it listens once started."""

    def __init__(self, config: uvicorn.Config, state: ServerState, sock: socket.socket) -> None:
        super().__init__(config)
        self._state = state
        self._sock = sock

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            log.info("edge-infer %s serving %s on %s", _variant(self._state), self._state.loaded.info["path"],
                     url(self._sock), extra={"fields": {"event": "listening", "url": url(self._sock)}})


def _variant(state: ServerState) -> str:
    return "int8" if state.settings.int8 else "fp32"


def serve(loaded: Loaded, settings: Settings, sock: socket.socket) -> None:
    """Serve until SIGTERM/SIGINT: in-flight requests finish, new ones are refused, then return."""
    if settings.workers > 1:
        _serve_workers(settings, sock)
        return
    app, state = create_app(loaded, settings)
    _Server(_config(app, settings, _limits(settings)), state, sock).run(sockets=[sock])
    log.info("stopped")


def _serve_workers(settings: Settings, sock: socket.socket) -> None:
    """``--workers N``: uvicorn's supervisor starts N processes; each loads and verifies the model itself
    (the parent already did, before binding) and serves the shared socket."""
    from uvicorn.supervisors import Multiprocess

    os.environ[ENV_VAR] = settings.to_env()
    os.environ[SUPERVISOR_ENV] = str(os.getpid())
    config = _config("edge_infer.server.app:app_from_env", settings, _limits(settings), factory=True,
                     workers=settings.workers)
    log.info("edge-infer serving with %d worker processes on %s", settings.workers, url(sock),
             extra={"fields": {"event": "listening", "url": url(sock), "workers": settings.workers}})
    Multiprocess(config, sockets=[sock]).run()
    log.info("stopped")
