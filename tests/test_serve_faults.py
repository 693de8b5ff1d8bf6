"""`edge-infer serve` against bad and slow clients, bad headers, shutdown under load and a killed supervisor.

Raw sockets on 127.0.0.1 (ports chosen by the OS); servers run with timeouts of about a second so every
test takes a few seconds; each server is stopped in a ``finally`` and every wait is bounded.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import re
import resource
import signal
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from conftest import TINY_SENTENCES
from test_serve import HOST, START_TIMEOUT, Server

pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

from edge_infer.server.connections import watch_accept_errors  # noqa: E402
from edge_infer.server.limits import AllowedHosts, ApiError, check_content_type, host_name  # noqa: E402
from edge_infer.server.logs import escape  # noqa: E402
from edge_infer.server.metrics import CONNECTIONS  # noqa: E402

TIMEOUT_S = 1.0
"""--header-timeout, --body-timeout and --keep-alive-timeout of the shared server."""
MAX_HEAD = 4096


@pytest.fixture(scope="module")
def guarded(seed_model_dir: Path) -> Iterator[Server]:
    srv = Server("--model", str(seed_model_dir), "--threads", "1", "--header-timeout", str(TIMEOUT_S),
                 "--body-timeout", str(TIMEOUT_S), "--keep-alive-timeout", str(TIMEOUT_S),
                 "--max-header-bytes", str(MAX_HEAD), "--timeout", "2")
    try:
        yield srv
    finally:
        srv.stop()


# --------------------------------------------------------------------------- raw HTTP


class Raw:
    """A client socket whose answer is read by a thread as it arrives (so a reset caused by bytes sent
    after the server closed cannot hide an answer already received)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=10)
        self.started = time.monotonic()
        self.data = b""
        self.first_data_at: float | None = None
        self.closed_at: float | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            while chunk := self.sock.recv(65536):
                self.first_data_at = self.first_data_at or time.monotonic()
                self.data += chunk
        except OSError:
            pass
        self.closed_at = time.monotonic()

    def send_slowly(self, data: bytes, interval: float, limit: float) -> None:
        """One byte every ``interval`` seconds, until sent, ``limit`` seconds passed, or the server closed."""
        for i in range(len(data)):
            if self.closed_at is not None or time.monotonic() - self.started > limit:
                return
            try:
                self.sock.send(data[i:i + 1])
            except OSError:
                return
            time.sleep(interval)

    def wait_closed(self, timeout: float) -> float | None:
        """Seconds from connecting until the server closed the connection (``None``: still open)."""
        self._reader.join(timeout)
        return None if self.closed_at is None else self.closed_at - self.started

    def answer(self) -> tuple[int, dict[str, str], Any]:
        head, _, body = self.data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        doc = json.loads(body) if headers.get("content-type", "").startswith("application/json") else body
        return int(lines[0].split()[1]), headers, doc

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the reader; close() alone would wait for it
        except OSError:
            pass
        self.sock.close()
        self._reader.join(5)


def post_head(length: int, extra: str = "") -> bytes:
    return (f"POST /v1/predict HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n{extra}\r\n").encode()


def metrics(srv: Server) -> str:
    return srv.request("GET", "/metrics")[2]


# --------------------------------------------------------------------------- slow and idle clients (defect 7)


def test_a_connection_that_sends_nothing_gets_408_at_the_header_timeout(guarded: Server):
    raw = Raw(guarded.port)
    try:
        closed = raw.wait_closed(TIMEOUT_S + 3)
        assert closed is not None and closed < TIMEOUT_S + 1.5, closed
        status, head, doc = raw.answer()
        assert status == 408 and doc["error"]["code"] == "header_timeout" and head["connection"] == "close"
    finally:
        raw.close()


def test_headers_sent_one_byte_at_a_time_are_cut_at_the_header_timeout(guarded: Server):
    raw = Raw(guarded.port)
    try:
        raw.send_slowly(post_head(20, "X-Pad: " + "a" * 200 + "\r\n"), interval=0.02, limit=TIMEOUT_S + 3)
        closed = raw.wait_closed(5)
        assert closed is not None and closed < TIMEOUT_S + 1.5, closed
        assert raw.answer()[0] == 408
    finally:
        raw.close()


def test_a_body_sent_one_byte_at_a_time_gets_408_at_the_body_timeout(guarded: Server):
    body = json.dumps({"text": TINY_SENTENCES[0]}).encode()
    raw = Raw(guarded.port)
    try:
        raw.sock.sendall(post_head(len(body)))
        raw.send_slowly(body, interval=0.05, limit=TIMEOUT_S + 3)
        closed = raw.wait_closed(5)
        assert closed is not None and closed < TIMEOUT_S + 1.5, closed
        status, _, doc = raw.answer()
        assert status == 408 and doc["error"]["code"] == "body_timeout", doc
    finally:
        raw.close()


def test_an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout(guarded: Server):
    body = json.dumps({"text": TINY_SENTENCES[0]}).encode()
    raw = Raw(guarded.port)
    try:
        raw.sock.sendall(post_head(len(body)) + body)
        closed = raw.wait_closed(TIMEOUT_S + 3)
        assert closed is not None and closed < TIMEOUT_S + 1.5, closed
        status, _, doc = raw.answer()
        assert status == 200 and doc["predictions"][0]["label"] in ("positive", "negative")
    finally:
        raw.close()


def test_connections_over_the_cap_get_503_at_once_and_one_log_line(seed_model_dir: Path):
    srv = Server("--model", str(seed_model_dir), "--threads", "1", "--max-connections", "4",
                 "--header-timeout", "3", "--allowed-hosts", f"{HOST},*.corp.example")
    held: list[Raw] = []
    try:
        held = [Raw(srv.port) for _ in range(4)]
        time.sleep(0.3)
        refused = [Raw(srv.port) for _ in range(20)]
        for raw in refused:
            closed = raw.wait_closed(2)
            assert closed is not None and closed < 1.0, closed
            status, head, doc = raw.answer()
            assert status == 503 and doc["error"]["code"] == "too_many_connections" and head["retry-after"] == "1"
            raw.close()
        for raw in held:
            raw.close()
        time.sleep(0.3)
        assert srv.predict({"text": TINY_SENTENCES[0]})[0] == 200
        assert 'edge_infer_connections_refused_total{reason="over_capacity"} 20' in metrics(srv)
        # --allowed-hosts, while this server runs
        assert srv.request("GET", "/healthz", headers={"Host": "api.corp.example:80"})[0] == 200
        status, _, doc = srv.request("GET", "/healthz", headers={"Host": "localhost"})
        assert status == 421 and doc["error"]["code"] == "host_not_allowed"
    finally:
        for raw in held:
            raw.close()
        srv.stop()
    refusals = [line for line in srv.lines if "refused:" in line]
    assert 1 <= len(refusals) <= 3 and "over --max-connections 4" in refusals[0], srv.lines
    assert not any("Traceback" in line for line in srv.lines), srv.lines


def _nofile(limit: int) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))


def test_300_idle_sockets_against_256_file_descriptors_do_not_stop_the_service(seed_model_dir: Path):
    srv = Server("--model", str(seed_model_dir), "--threads", "1", "--header-timeout", str(TIMEOUT_S),
                 preexec_fn=lambda: _nofile(256))
    socks: list[socket.socket] = []
    try:
        for _ in range(300):
            socks.append(socket.create_connection((HOST, srv.port), timeout=5))
        deadline = time.monotonic() + TIMEOUT_S + 4
        status = 0
        while time.monotonic() < deadline and status != 200:
            try:
                status = srv.predict({"text": TINY_SENTENCES[0]}, timeout=2)[0]
            except OSError:
                time.sleep(0.1)
        assert status == 200
        log_bytes = sum(len(line) for line in srv.lines)
        assert log_bytes < 10_000 and not any("Traceback" in line for line in srv.lines), srv.lines[:20]
    finally:
        for sock in socks:
            sock.close()
        srv.stop()


# --------------------------------------------------------------------------- heads, routes, bodies (16, 18, notes)


def test_a_head_over_the_cap_gets_431(guarded: Server):
    status, _, doc = guarded.request("GET", "/healthz", headers={"X-Big": "a" * (MAX_HEAD + 100)})
    assert status == 431 and doc["error"]["code"] == "header_too_large"

    raw = Raw(guarded.port)  # a 10 MB header is refused as soon as it is over the cap, not read to its end
    try:
        raw.sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
        sent = 0
        try:
            while sent < 10_000_000 and time.monotonic() - raw.started < 5:
                raw.sock.sendall(b"a" * 65536)
                sent += 65536
        except OSError:
            pass
        assert raw.wait_closed(3) is not None and raw.answer()[0] == 431
        assert raw.first_data_at is not None and raw.first_data_at - raw.started < 1.0
    finally:
        raw.close()
    assert guarded.request("GET", "/healthz", headers={"X-Fine": "a" * (MAX_HEAD - 500)})[0] == 200


def test_a_trailing_slash_is_a_json_404_without_redirect(guarded: Server):
    for method, path in (("POST", "/v1/predict/"), ("GET", "/healthz/")):
        status, head, doc = guarded.request(method, path, {"text": "fine"} if method == "POST" else None,
                                            headers={"Host": "localhost"})
        assert status == 404 and doc["error"]["code"] == "not_found" and "location" not in head, (path, head)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_a_body_that_is_not_utf8_is_400(guarded: Server, encoding: str):
    status, _, doc = guarded.predict(json.dumps({"text": "A fine film."}).encode(encoding))
    assert status == 400 and doc["error"]["code"] == "invalid_json"  # UTF-16-LE ASCII is UTF-8 with NULs
    assert encoding == "utf-16-le" or "not UTF-8" in doc["error"]["message"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "",
                                          "application/json; charset=utf-16"])
def test_post_needs_a_json_content_type(guarded: Server, content_type: str):
    status, _, doc = guarded.predict({"text": "A fine film."}, headers={"Content-Type": content_type})
    assert status == 415 and doc["error"]["code"] == "unsupported_media_type", doc
    assert guarded.predict({"text": "A fine film."},
                           headers={"Content-Type": "Application/JSON; charset=UTF-8"})[0] == 200


def test_the_host_header_must_be_a_loopback_name_by_default(guarded: Server):
    for host in ("evil.example", "evil.example:80", "127.0.0.1.nip.io"):
        status, _, doc = guarded.request("GET", "/v1/info", headers={"Host": host})
        assert status == 421 and doc["error"]["code"] == "host_not_allowed", host
    for host in ("localhost", f"localhost:{guarded.port}", "127.0.0.1", "[::1]:8000"):
        assert guarded.request("GET", "/v1/info", headers={"Host": host})[0] == 200, host


def test_malformed_http_gets_a_json_400(guarded: Server):
    raw = Raw(guarded.port)
    try:
        raw.sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nno colon here\r\n\r\n")
        assert raw.wait_closed(3) is not None
        status, head, doc = raw.answer()
        assert status == 400 and head["content-type"] == "application/json", raw.data
        assert doc["error"]["code"] == "bad_request"
    finally:
        raw.close()


# --------------------------------------------------------------------------- logs (defect 8)


FORGED = "2030-01-01T00:00:00.000Z INFO forged"


def _hostile_path() -> str:
    return "/x%0a" + FORGED.replace(" ", "%20") + "%1b[31mred%0d%e2%80%a8"


def test_control_characters_in_the_path_are_escaped_in_text_logs(guarded: Server):
    raw = Raw(guarded.port)
    try:
        raw.sock.sendall(f"GET {_hostile_path()} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not raw.data:
            time.sleep(0.02)
        assert raw.answer()[0] == 404
    finally:
        raw.close()
    time.sleep(0.2)
    assert not any(line.startswith(FORGED[:10]) for line in guarded.lines), guarded.lines
    assert not any(ch in line for line in guarded.lines for ch in "\x1b\r\u2028")
    line = next(line for line in guarded.lines if "forged" in line)
    assert '"GET /x\\x0a2030-01-01T00:00:00.000Z INFO forged\\x1b[31mred\\x0d\\u2028" 404' in line, line


def test_control_characters_are_escaped_in_json_logs(seed_model_dir: Path):
    srv = Server("--model", str(seed_model_dir), "--threads", "1", "--log-format", "json")
    try:
        raw = Raw(srv.port)
        raw.sock.sendall(f"GET {_hostile_path()} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        raw.wait_closed(0.5)
        raw.close()
    finally:
        srv.stop()
    assert not any(ch in line for line in srv.lines for ch in "\x1b\r\u2028")
    records = [json.loads(line) for line in srv.lines]  # every line is one JSON object
    access = next(r for r in records if r.get("event") == "access" and "forged" in r["path"])
    assert access["path"] == "/x\n" + FORGED + "\x1b[31mred\r\u2028" and access["status"] == 404


def test_escape_writes_control_characters_as_escapes():
    assert escape("a\nb\x1b[0m\x7f\x85\u2028\u202e") == "a\\x0ab\\x1b[0m\\x7f\\x85\\u2028\\u202e"
    assert escape('say "hi" \\ ok', quotes=True) == 'say \\"hi\\" \\\\ ok'
    assert escape("plain text, é ü 日本") == "plain text, é ü 日本"


# --------------------------------------------------------------------------- client gone (defect 13)


def test_a_client_that_disconnects_mid_body_is_499_not_an_error(guarded: Server):
    raw = Raw(guarded.port)
    raw.sock.sendall(post_head(1000) + b'{"text": "half')
    time.sleep(0.2)
    raw.close()
    deadline = time.monotonic() + 3
    text = ""
    while time.monotonic() < deadline and 'status="499"' not in text:
        time.sleep(0.05)
        text = metrics(guarded)
    assert re.search(r'edge_infer_requests_total\{method="POST",route="/v1/predict",status="499"\} 1', text), text
    assert 'status="500"' not in text
    assert not any(" ERROR " in line for line in guarded.lines), guarded.lines
    assert any('"POST /v1/predict" 499 ' in line for line in guarded.lines)


# --------------------------------------------------------------------------- shutdown (defect 14)


def test_a_request_still_running_at_the_graceful_timeout_gets_json_503_and_the_process_exits(seed_model_dir: Path):
    grace = 2.0
    srv = Server("--model", str(seed_model_dir), "--threads", "1", "--graceful-timeout", str(grace), pause=10.0)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            running = pool.submit(srv.predict, {"text": TINY_SENTENCES[0]}, timeout=15)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and "edge_infer_batch_size_count 1" not in metrics(srv):
                time.sleep(0.05)
            signalled = time.monotonic()
            srv.proc.send_signal(signal.SIGTERM)
            status, head, doc = running.result(timeout=grace + 3)
            answered = time.monotonic() - signalled
        assert status == 503 and head["content-type"] == "application/json", (status, head, doc)
        assert doc["error"]["code"] == "shutting_down" and answered <= grace, answered
        assert srv.proc.wait(grace + 3) == 0
        exited = time.monotonic() - signalled
        assert exited <= grace + 0.5, exited
    finally:
        srv.stop()
    assert not any("Traceback" in line for line in srv.lines), srv.lines


# --------------------------------------------------------------------------- orphaned workers (note)


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc to find the worker processes")
def test_workers_stop_when_their_supervisor_is_killed(seed_model_dir: Path):
    srv = Server("--model", str(seed_model_dir), "--workers", "2", "--threads", "1")
    workers: list[int] = []
    try:
        deadline = time.monotonic() + START_TIMEOUT
        status = 0
        while time.monotonic() < deadline and status != 200:
            try:
                status = srv.predict({"text": TINY_SENTENCES[0]}, timeout=10)[0]
            except OSError:
                time.sleep(0.2)
        assert status == 200
        workers = _children(srv.proc.pid)
        assert len(workers) >= 2, workers
        srv.proc.kill()
        srv.proc.wait(10)
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in workers)
        with pytest.raises(OSError):
            srv.request("GET", "/healthz", timeout=2)
    finally:
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        srv.stop()


# --------------------------------------------------------------------------- the rules alone


def test_host_names_and_patterns():
    loopback = AllowedHosts.parse(None, "127.0.0.1")
    assert all(loopback.allows(h) for h in ("localhost", "LOCALHOST:1", "127.0.0.1:8000", "[::1]", "localhost."))
    assert not any(loopback.allows(h) for h in ("evil.example", "::1", "127.0.0.1:x", "", None))
    assert AllowedHosts.parse(None, "0.0.0.0").allows("anything.example")
    corp = AllowedHosts.parse(("*.corp.example", "api.example"), "0.0.0.0")
    assert corp.allows("a.corp.example:443") and corp.allows("api.example")
    assert not corp.allows("corp.example") and not corp.allows("xapi.example")
    assert host_name("[::1]:80") == "::1" and host_name("[::1]x") is None


def test_content_type_rule():
    check_content_type("application/json")
    check_content_type("application/json;charset=\"utf-8\"")
    for bad in (None, "", "text/json", "application/json; charset=latin-1", "application/jsonx"):
        with pytest.raises(ApiError) as info:
            check_content_type(bad)
        assert info.value.status == 415


def test_accept_errors_for_lack_of_descriptors_are_counted_and_logged_once(caplog: pytest.LogCaptureFixture):
    before = CONNECTIONS.refused.get("accept_failed", 0)

    async def flood() -> None:
        loop = asyncio.get_running_loop()
        watch_accept_errors(loop)
        for _ in range(50):  # what asyncio reports for each connection it cannot accept
            loop.call_exception_handler({"message": "socket.accept() out of system resource",
                                         "exception": OSError(errno.EMFILE, "Too many open files")})

    with caplog.at_level(logging.WARNING):
        asyncio.run(flood())
    assert CONNECTIONS.refused["accept_failed"] - before == 50
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and "1 accept() failures" in lines[0].getMessage(), [r.getMessage() for r in lines]
    assert not any(r.exc_info for r in caplog.records)
