"""The HTTP/1.1 connection: uvicorn's httptools protocol, with timeouts, a head size cap and a connection cap.

uvicorn reads a request head without a time or size limit and accepts connections until the process
runs out of file descriptors. :class:`GuardedHttpTools` adds, per connection
(:class:`~edge_infer.server.connections.ConnectionLimits`):

- **connection cap**: beyond ``max_connections`` open connections, a new one gets 503 and is closed at once;
- **header timeout**: a request head must be complete within ``header_timeout_s`` of the connection
  opening, of the previous answer, or of the first byte after it, else 408 and close (idle and slow
  clients alike); the idle time after an answer is uvicorn's keep-alive timeout;
- **head size**: a head over ``max_header_bytes`` gets 431 and is closed (at most one read chunk more is
  buffered);
- **body timeout backstop**: a body still arriving ``body_timeout_s`` + 1 s after its head closes the
  connection (the predict route answers 408 itself at ``body_timeout_s``);
- **malformed requests** get a JSON 400, not uvicorn's text/plain one.

No response is written while an earlier answer on the connection is pending (pipelining): the connection
is closed instead. Each refusal is counted and logged rate-limited (:data:`~edge_infer.server.connections.REFUSALS`).

Coupling to uvicorn's internals (uvicorn is pinned below 0.56), all in this class and each covered by
tests/test_serve_faults.py: the constructor's arguments; the httptools parser callbacks being methods of
the protocol (``on_message_begin``, ``on_url``, ``on_header``, ``on_headers_complete``, ``on_body``,
``on_message_complete``); ``on_response_complete`` being called when an answer is complete; and
``send_400_response`` answering a malformed request.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from edge_infer.server.connections import BODY_GRACE_S, REFUSALS, ConnectionLimits
from edge_infer.server.metrics import CONNECTIONS

LINGER_S = 1.0
LINGER_BYTES = 262_144
"""After a refusal answer, the connection is kept half-closed (what arrives dropped) for at most this long and
this many bytes, so that the client reads the answer before the connection is closed."""

ANSWERS = {
    "over_capacity": (503, "too_many_connections",
                      "the server has {max_connections} connections open (--max-connections); retry later"),
    "header_timeout": (408, "header_timeout",
                       "the request head was not complete within {header_timeout_s:g} s (--header-timeout)"),
    "header_too_large": (431, "header_too_large",
                         "the request head is larger than {max_header_bytes} bytes (--max-header-bytes)"),
    "bad_request": (400, "bad_request", "malformed HTTP request"),
}


@functools.lru_cache(maxsize=8)
def refusal_response(reason: str, limits: ConnectionLimits) -> bytes:
    """The whole HTTP response for a refusal: a JSON error, ``Connection: close``."""
    status, code, message = ANSWERS[reason]
    body = json.dumps({"error": {"code": code, "message": message.format(**limits.__dict__)}}).encode()
    extra = "retry-after: 1\r\n" if status == 503 else ""
    return (f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n{extra}connection: close\r\n\r\n").encode() + body


class GuardedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with :class:`ConnectionLimits` (see the module docstring)."""

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None, *, limits: ConnectionLimits) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._limits = limits
        self._conn: asyncio.Transport | None = None
        self._registered = False  # handed to uvicorn (not refused at connection time)
        self._refused = False
        self._dropped = 0  # bytes received after a refusal
        self._timer: asyncio.TimerHandle | None = None
        self._in_head = False  # waiting for or reading a request head
        self._in_message = False  # from the head's first byte to the body's last
        self._answers = 0  # requests handed to the app, answer not yet complete
        self._head_bytes = 0  # received while the head is incomplete: bounds what httptools buffers
        self._head_size = 0  # the head as parsed: request target, header names and values

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._conn = transport
        if CONNECTIONS.open >= self._limits.max_connections:
            self._refuse("over_capacity", answer=True)
            return
        CONNECTIONS.open += 1
        self._registered = True
        super().connection_made(transport)
        self._start_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        if not self._registered:
            return
        self._registered = False
        CONNECTIONS.open -= 1
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            self._dropped += len(data)
            if self._dropped > LINGER_BYTES and self._conn is not None:
                self._conn.close()
            return
        in_body = self._in_message and not self._in_head
        if not self._in_message and not self._in_head:
            self._start_head()  # the next request's first bytes (or stray line ends before it)
        super().data_received(data)
        if self._refused or not self._in_head or in_body:
            return
        self._head_bytes += len(data)
        if self._head_bytes > self._limits.max_header_bytes:
            self._refuse("header_too_large", answer=self._answers == 0)

    # -- httptools callbacks

    def on_message_begin(self) -> None:
        if self._refused:
            return
        self._in_message = True
        if not self._in_head:
            self._start_head()
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        if self._refused:
            return
        self._head_size += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._refused:
            return
        self._head_size += len(name) + len(value) + 4
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._in_head = False
        self._cancel()
        if self._head_size > self._limits.max_header_bytes:
            self._refuse("header_too_large", answer=self._answers == 0)
            return
        self._answers += 1
        self._arm(self._limits.body_timeout_s + BODY_GRACE_S, self._body_timed_out)
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._in_message = False
        self._cancel()
        super().on_message_complete()

    # -- uvicorn's hooks

    def on_response_complete(self) -> None:
        self._answers -= 1
        super().on_response_complete()
        self._arm_head_timer()

    def send_400_response(self, msg: str) -> None:
        if not self._refused:
            self._refuse("bad_request", answer=self._answers == 0)

    # -- timers and refusals

    def _start_head(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        self._head_size = 0
        self._arm_head_timer()

    def _arm_head_timer(self) -> None:
        """The head timer runs while a head is awaited and no answer is pending (the app's --timeout
        bounds those)."""
        if self._in_head and self._answers == 0 and self._timer is None and not self._refused:
            self._arm(self._limits.header_timeout_s, self._head_timed_out)

    def _arm(self, seconds: float, callback: Callable[[], None]) -> None:
        self._cancel()
        self._timer = asyncio.get_running_loop().call_later(seconds, callback)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_timed_out(self) -> None:
        self._timer = None
        self._refuse("header_timeout", answer=self._answers == 0)

    def _body_timed_out(self) -> None:
        self._timer = None
        self._refuse("body_timeout", answer=False)

    def _refuse(self, reason: str, *, answer: bool) -> None:
        self._refused = True
        self._cancel()
        REFUSALS.refuse(reason, self._limits)
        conn = self._conn
        if conn is None or conn.is_closing():
            return
        if answer:
            conn.write(refusal_response(reason, self._limits))
            if reason != "over_capacity" and conn.can_write_eof():
                # Half-close and drop what the client still sends for a moment: closing with unread data
                # would reset the connection, and the client could lose the answer.
                try:
                    conn.write_eof()
                except OSError:  # the client is gone already
                    conn.close()
                    return
                self._timer = asyncio.get_running_loop().call_later(LINGER_S, conn.close)
                return
        conn.close()



def protocol_factory(limits: ConnectionLimits) -> Callable[..., GuardedHttpTools]:
    """What to pass as uvicorn's ``http`` setting (picklable, for ``--workers`` processes)."""
    return functools.partial(GuardedHttpTools, limits=limits)
