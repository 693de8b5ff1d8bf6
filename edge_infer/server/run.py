"""Binding the socket and running uvicorn: one process, or ``--workers N`` processes sharing the socket."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
from types import FrameType

import uvicorn

from edge_infer.server import logs
from edge_infer.server.app import ServerState, create_app
from edge_infer.server.model import Loaded
from edge_infer.server.settings import ENV_VAR, Settings

log = logging.getLogger(logs.LOGGER)


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


def _config(app: object, settings: Settings, **extra: object) -> uvicorn.Config:
    return uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", server_header=False,  # type: ignore[arg-type]
                          timeout_graceful_shutdown=math.ceil(settings.graceful_timeout_s), **extra)  # type: ignore[arg-type]


class _Server(uvicorn.Server):
    """uvicorn's server, told about draining on SIGTERM/SIGINT; a signal ends it normally (exit 0)."""

    def __init__(self, config: uvicorn.Config, state: ServerState, sock: socket.socket) -> None:
        super().__init__(config)
        self._state = state
        self._sock = sock
        self._loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)
        if self.started:
            log.info("edge-infer %s serving %s on %s", _variant(self._state), self._state.loaded.info["path"],
                     url(self._sock), extra={"fields": {"event": "listening", "url": url(self._sock)}})

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self._captured_signals.clear()  # do not re-raise the signal after a graceful shutdown
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._state.start_draining)


def _variant(state: ServerState) -> str:
    return "int8" if state.settings.int8 else "fp32"


def serve(loaded: Loaded, settings: Settings, sock: socket.socket) -> None:
    """Serve until SIGTERM/SIGINT: in-flight requests finish, new ones are refused, then return."""
    if settings.workers > 1:
        _serve_workers(settings, sock)
        return
    app, state = create_app(loaded, settings)
    _Server(_config(app, settings), state, sock).run(sockets=[sock])
    log.info("stopped")


def _serve_workers(settings: Settings, sock: socket.socket) -> None:
    """``--workers N``: uvicorn's supervisor starts N processes; each loads and verifies the model itself
    (the parent already did, before binding) and serves the shared socket."""
    from uvicorn.supervisors import Multiprocess

    os.environ[ENV_VAR] = settings.to_env()
    config = _config("edge_infer.server.app:app_from_env", settings, factory=True, workers=settings.workers)
    log.info("edge-infer serving with %d worker processes on %s", settings.workers, url(sock),
             extra={"fields": {"event": "listening", "url": url(sock), "workers": settings.workers}})
    Multiprocess(config, sockets=[sock]).run()
    log.info("stopped")
