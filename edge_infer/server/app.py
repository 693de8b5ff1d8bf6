"""The ASGI application (Starlette): routes, JSON errors, access log and metrics around the micro-batcher
(predictions) and the explanation pool."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge_infer import __version__
from edge_infer.classifier import Prediction
from edge_infer.server import explaining, logs, openapi
from edge_infer.server.batcher import Closed, MicroBatcher, QueueFull
from edge_infer.server.connections import REFUSALS, watch_accept_errors
from edge_infer.server.explaining import Busy, ExplainPool, ExplainRequest, parse_explain, too_many_tokens
from edge_infer.server.limits import (
    AllowedHosts,
    ApiError,
    Limits,
    body_too_large,
    check_content_type,
    not_allowed_host,
    parse_predict,
)
from edge_infer.server.metrics import CONTENT_TYPE, Metrics
from edge_infer.server.model import Loaded
from edge_infer.server.settings import Settings

log = logging.getLogger(logs.LOGGER)
TEXTS_KEY = "edge_infer.texts"
"""Scope key where the predict and explain routes leave how many texts a request had (for the access line)."""
ROUTES = ("/v1/predict", "/v1/explain", "/v1/info", "/healthz", "/readyz", "/metrics", "/openapi.json")
TEST_PAUSE_ENV = "EDGE_INFER_SERVE_TEST_PAUSE"
"""Tests only: seconds the worker threads sleep before each batch or explanation, to hold requests in flight."""
ERROR_CODES = {404: "not_found", 405: "method_not_allowed", 400: "bad_request", 413: "body_too_large"}
CLIENT_CLOSED = 499
"""Status recorded (metrics, access log) for a request whose client closed the connection before its answer."""
SUPERVISOR_ENV = "EDGE_INFER_SERVE_SUPERVISOR"
"""``--workers N`` processes: the supervisor's pid; a worker whose parent is no longer it stops itself."""
PARENT_POLL_S = 0.5
SWEEP_S = 0.1
"""How often request bodies are checked against ``--body-timeout``."""


def shutdown_margin(graceful_timeout_s: float) -> float:
    """How long before ``--graceful-timeout`` the requests still running are answered 503, so that the
    process has exited when the time is up."""
    return min(0.5, graceful_timeout_s / 4)


class ServerState:
    """What the routes share: classifier, settings, batcher, explanation pool, metrics, and whether the server
    is draining."""

    def __init__(self, loaded: Loaded, settings: Settings) -> None:
        self.loaded = loaded
        self.settings = settings
        self.limits = Limits(settings.max_body_bytes, settings.max_texts, settings.max_text_chars)
        self.batcher = MicroBatcher(self.run_batch, max_delay_s=settings.max_batch_delay_ms / 1000,
                                    max_batch_size=settings.max_batch_size, max_queue=settings.max_queue,
                                    on_batch=self._batch_done, arriving=lambda: self.arriving)
        self.explainer = ExplainPool(self.run_explain, settings.explain_concurrency)
        self.metrics = Metrics(lambda: self.batcher.depth)
        self.hosts = AllowedHosts.parse(settings.allowed_hosts, settings.host)
        self.draining = False
        self.reading: dict[asyncio.Task[Any], float] = {}
        """Requests reading their bodies, and when they must be done (``--body-timeout``)."""
        self.expired: dict[asyncio.Task[Any], ApiError] = {}
        """Requests whose reading was cancelled (by :meth:`sweep` or :meth:`time_up`), and their answer."""
        self.arriving = 0
        """Predict requests being read and checked, not yet handed to the batcher."""
        self._pause = float(os.environ.get(TEST_PAUSE_ENV, "0") or 0)

    def _batch_done(self, texts: int) -> None:
        self.metrics.batch_done(texts)

    def run_batch(self, work: Sequence[tuple[Sequence[str], float | None]]) -> list[list[dict[str, Any]]]:
        """In the worker thread: one classifier call for all texts of the batch, answers split per request."""
        clf = self.loaded.classifier
        if self._pause > 0:
            time.sleep(self._pause)
        probabilities = clf.probabilities([text for texts, _ in work for text in texts])
        out, start = [], 0
        for texts, threshold in work:
            part = probabilities[start : start + len(texts)]
            out.append([_prediction(p) for p in clf.predictions(part, threshold=threshold)])
            start += len(texts)
        return out

    def run_explain(self, req: ExplainRequest) -> dict[str, Any]:
        """In an explanation thread: ``explain(...).to_dict()``, the cap ``--explain-max-tokens``."""
        if self._pause > 0:
            time.sleep(self._pause)
        try:
            explanation = self.loaded.classifier.explain(req.text, label=req.label, window=req.window,
                                                         max_tokens=self.settings.explain_max_tokens)
        except ValueError as exc:  # the body was checked: only the token cap is left to refuse
            raise too_many_tokens(exc) from None
        return explanation.to_dict()

    def start_draining(self) -> None:
        """SIGTERM/SIGINT (in the event loop): refuse new predictions, run what is queued without waiting for
        batch windows, and answer 503 to what still runs shortly before ``--graceful-timeout``."""
        if not self.draining:
            self.draining = True
            log.info("shutting down: finishing requests in flight, refusing new ones")
            self.batcher.drain()
            grace = self.settings.graceful_timeout_s
            asyncio.get_running_loop().call_later(grace - shutdown_margin(grace), self.time_up)

    def time_up(self) -> None:
        """The graceful shutdown time is up: every request still reading or waiting gets 503 ``shutting_down``."""
        in_flight = self.metrics.in_flight
        if in_flight:
            log.warning("graceful timeout: answering %d request(s) still in flight with 503", in_flight)
        for task in self.reading:
            self._expire(task, shutting_down())
        self.batcher.abort()
        self.explainer.abort()

    async def read_body(self, request: Request) -> bytes:
        """The request body within ``--body-timeout`` (else 408), refused with 413 as soon as it is over
        ``--max-body-bytes``; raises :class:`ClientDisconnect` if the client goes away.

        The deadline costs a dict entry, not a task per request: :meth:`sweep` cancels the late readers."""
        task = asyncio.current_task()
        assert task is not None
        self.reading[task] = asyncio.get_running_loop().time() + self.settings.body_timeout_s
        try:
            body = await read_body(request, self.limits.max_body_bytes)
            if task in self.expired:
                await asyncio.sleep(0)  # cancelled just as the body arrived: the cancellation lands here
            return body
        except asyncio.CancelledError:
            answer = self.expired.get(task)
            if answer is None:
                raise
            uncancel = getattr(task, "uncancel", None)  # Python >= 3.11
            if uncancel is not None:
                uncancel()
            raise answer from None
        finally:
            self.reading.pop(task, None)
            self.expired.pop(task, None)

    async def sweep(self) -> None:
        """Forever: every :data:`SWEEP_S`, cancel the readers past their ``--body-timeout``."""
        loop = asyncio.get_running_loop()
        late = ApiError(408, "body_timeout", f"the body was not complete within {self.settings.body_timeout_s:g} s "
                                             "(--body-timeout)", {"Connection": "close"})
        while True:
            await asyncio.sleep(SWEEP_S)
            now = loop.time()
            for task in [task for task, deadline in self.reading.items() if deadline <= now]:
                self._expire(task, late)

    def _expire(self, task: asyncio.Task[Any], answer: ApiError) -> None:
        if task not in self.expired:
            self.expired[task] = answer
            task.cancel()


def shutting_down() -> ApiError:
    return ApiError(503, "shutting_down", "the server is shutting down", {"Connection": "close"})


def no_answer(timeout_s: float) -> ApiError:
    return ApiError(504, "timeout", f"no answer within {timeout_s:g} s (--timeout)")


def _prediction(p: Prediction) -> dict[str, Any]:
    return {"label": p.label, "score": p.score, "scores": p.scores}


def json_response(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    try:
        body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate echoed back in an id
        body = json.dumps(doc, separators=(",", ":")).encode("ascii")
    return Response(body, status, headers, media_type="application/json")


def error_response(exc: ApiError) -> Response:
    return json_response(exc.body(), exc.status, exc.headers)


Endpoint = Callable[[Request], Awaitable[Response]]


def _guarded(endpoint: Endpoint) -> Endpoint:
    """An endpoint whose :class:`ApiError` becomes its JSON answer, and any other exception a JSON 500."""

    async def run(request: Request) -> Response:
        try:
            return await endpoint(request)
        except ApiError as exc:
            return error_response(exc)
        except ClientDisconnect:  # nobody reads this answer; the status is for the access line and metrics
            return Response(status_code=CLIENT_CLOSED)
        except Exception as exc:  # noqa: BLE001 - one log line, never a stack trace to the client
            log.error("internal error on %s %s: %s: %s", request.method, request.url.path, type(exc).__name__,
                      str(exc).splitlines()[0] if str(exc) else "")
            return error_response(ApiError(500, "internal", "internal server error"))

    return run


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to be over ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise body_too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise body_too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def routes(state: ServerState) -> list[Route]:
    loaded, settings = state.loaded, state.settings
    clf = loaded.classifier
    model_name = clf.manifest.name
    spec = openapi.document(__version__)

    async def predict(request: Request) -> Response:
        if state.draining:
            raise shutting_down()
        check_content_type(request.headers.get("content-type"))
        state.arriving += 1
        try:
            body = await state.read_body(request)
            req = parse_predict(body, state.limits, task=clf.task)
        finally:
            state.arriving -= 1
            state.batcher.nudge()
        request.scope[TEXTS_KEY] = len(req.texts)
        try:
            answers = await state.batcher.submit(req.texts, req.threshold, settings.timeout_s)
        except QueueFull:
            raise ApiError(503, "queue_full", f"the queue is full ({settings.max_queue} requests waiting); "
                                              "retry later", {"Retry-After": "1"}) from None
        except Closed:
            raise shutting_down() from None
        except asyncio.TimeoutError:
            raise no_answer(settings.timeout_s) from None
        if req.ids is not None:
            answers = [{"id": ident, **answer} for ident, answer in zip(req.ids, answers)]
        return json_response({"model": model_name, "predictions": answers})

    async def explain(request: Request) -> Response:
        if state.draining:
            raise shutting_down()
        check_content_type(request.headers.get("content-type"))
        req = parse_explain(await state.read_body(request), state.limits, clf.labels)
        request.scope[TEXTS_KEY] = 1
        try:
            return json_response(await state.explainer.run(req, settings.timeout_s))
        except Busy:
            raise ApiError(503, "explain_busy", f"{state.explainer.slots} explanation(s) already running "
                                                "(--explain-concurrency); retry later", {"Retry-After": "1"}) from None
        except Closed:
            raise shutting_down() from None
        except asyncio.TimeoutError:
            raise no_answer(settings.timeout_s) from None

    info_doc = {**loaded.info, "explain": explaining.info(settings.explain_max_tokens, settings.explain_concurrency)}

    async def info(request: Request) -> Response:
        return json_response(info_doc)

    async def healthz(request: Request) -> Response:
        return json_response({"status": "alive"})

    async def readyz(request: Request) -> Response:
        if state.draining:
            raise ApiError(503, "shutting_down", "the server is shutting down")
        return json_response({"status": "ready", "model": model_name, "verified": True})

    async def metrics(request: Request) -> Response:
        return Response(state.metrics.render(), media_type=CONTENT_TYPE)

    async def openapi_json(request: Request) -> Response:
        return json_response(spec)

    return [
        Route("/v1/predict", _guarded(predict), methods=["POST"]),
        Route("/v1/explain", _guarded(explain), methods=["POST"]),
        Route("/v1/info", _guarded(info), methods=["GET"]),
        Route("/healthz", _guarded(healthz), methods=["GET"]),
        Route("/readyz", _guarded(readyz), methods=["GET"]),
        Route("/metrics", _guarded(metrics), methods=["GET"]),
        Route("/openapi.json", _guarded(openapi_json), methods=["GET"]),
    ]


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else {}
    code = ERROR_CODES.get(status, "error")
    path = request.url.path
    hint = f" (without the trailing slash: {path.rstrip('/')})" if path.rstrip("/") in ROUTES else ""
    messages = {404: f"no such route: {path}{hint}", 405: f"{request.method} is not allowed on {path}"}
    message = messages.get(status, exc.detail if isinstance(exc, HTTPException) else "internal server error")
    return error_response(ApiError(status, code, message, headers))


class AccessLog:
    """Pure ASGI middleware: one access line and the request metrics per HTTP request."""

    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        metrics = self.state.metrics
        metrics.in_flight += 1
        try:
            host = _host_header(scope)
            if self.state.hosts.allows(host):
                await self.app(scope, receive, send_status)
            else:
                await error_response(not_allowed_host(host))(scope, receive, send_status)
        finally:
            metrics.in_flight -= 1
            seconds = time.perf_counter() - start
            path = scope["path"]
            metrics.request_done(scope["method"], path if path in ROUTES else "other", status, seconds)
            client = scope.get("client")
            logs.access(scope["method"], path, status, scope.get(TEXTS_KEY, 0), seconds,
                        f"{client[0]}:{client[1]}" if client else "-")


def _host_header(scope: Scope) -> str | None:
    """The request's one ``Host`` header (``None``: none, or several)."""
    hosts = [value for name, value in scope["headers"] if name == b"host"]
    return hosts[0].decode("latin-1") if len(hosts) == 1 else None


def _also_on_stop_signals(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    """On SIGINT/SIGTERM, also run ``callback`` in the loop, then the handler already installed (uvicorn's,
    which stops the server; it is installed before the app starts and restored when the server ends)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(sig)

        def handler(signum: int, frame: Any, previous: Any = previous) -> None:
            loop.call_soon_threadsafe(callback)
            if callable(previous):
                previous(signum, frame)

        signal.signal(sig, handler)


async def _watch_supervisor(pid: int) -> None:
    """``--workers`` processes: stop (as on SIGTERM) once the supervisor ``pid`` is no longer the parent,
    e.g. after it was killed with SIGKILL, instead of serving the port on as orphans."""
    while os.getppid() == pid:
        await asyncio.sleep(PARENT_POLL_S)
    log.warning("the supervisor process (pid %d) is gone: stopping", pid)
    os.kill(os.getpid(), signal.SIGTERM)


def create_app(loaded: Loaded, settings: Settings, supervisor: int | None = None) -> tuple[ASGIApp, ServerState]:
    """The ASGI app and its state (the batcher starts and stops with the app's lifespan); ``supervisor``:
    the pid of the ``--workers`` supervisor this process stops without."""
    state = ServerState(loaded, settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        watch_accept_errors(loop)
        _also_on_stop_signals(loop, state.start_draining)
        state.batcher.start()
        state.explainer.start()
        helpers = [loop.create_task(state.sweep())]
        if supervisor:
            helpers.append(loop.create_task(_watch_supervisor(supervisor)))
        try:
            yield
        finally:
            for helper in helpers:
                helper.cancel()
            await state.batcher.stop()
            state.explainer.stop()
            REFUSALS.flush()

    app = Starlette(routes=routes(state), lifespan=lifespan,
                    exception_handlers={HTTPException: _http_error, Exception: _http_error})
    app.router.redirect_slashes = False  # else a 307 whose Location is built from the Host header
    return AccessLog(app, state), state


def app_from_env() -> ASGIApp:
    """Factory for ``--workers N`` processes: settings from the environment, model loaded and verified here."""
    import sys

    from edge_infer.model_folder import ModelError
    from edge_infer.server.model import load_model

    settings = Settings.from_env()
    logs.setup(settings.log_format)
    try:
        loaded = load_model(settings)
    except ModelError as exc:
        log.error("edge-infer: error: %s", exc)
        sys.exit(3)
    return create_app(loaded, settings, supervisor=int(os.environ.get(SUPERVISOR_ENV, "0")) or None)[0]
