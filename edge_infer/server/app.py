"""The ASGI application (Starlette): routes, JSON errors, access log and metrics around the micro-batcher."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge_infer import __version__
from edge_infer.classifier import Prediction
from edge_infer.server import logs, openapi
from edge_infer.server.batcher import Closed, MicroBatcher, QueueFull
from edge_infer.server.limits import ApiError, Limits, body_too_large, parse_predict
from edge_infer.server.metrics import CONTENT_TYPE, Metrics
from edge_infer.server.model import Loaded
from edge_infer.server.settings import Settings

log = logging.getLogger(logs.LOGGER)
TEXTS_KEY = "edge_infer.texts"
"""Scope key where the predict route leaves how many texts a request had (for the access line)."""
ROUTES = ("/v1/predict", "/v1/info", "/healthz", "/readyz", "/metrics", "/openapi.json")
TEST_PAUSE_ENV = "EDGE_INFER_SERVE_TEST_PAUSE"
"""Tests only: seconds the worker thread sleeps before each batch, to hold requests in flight."""
ERROR_CODES = {404: "not_found", 405: "method_not_allowed", 400: "bad_request", 413: "body_too_large"}


class ServerState:
    """What the routes share: classifier, settings, batcher, metrics, and whether the server is draining."""

    def __init__(self, loaded: Loaded, settings: Settings) -> None:
        self.loaded = loaded
        self.settings = settings
        self.limits = Limits(settings.max_body_bytes, settings.max_texts, settings.max_text_chars)
        self.batcher = MicroBatcher(self.run_batch, max_delay_s=settings.max_batch_delay_ms / 1000,
                                    max_batch_size=settings.max_batch_size, max_queue=settings.max_queue,
                                    on_batch=self._batch_done, arriving=lambda: self.arriving)
        self.metrics = Metrics(lambda: self.batcher.depth)
        self.draining = False
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

    def start_draining(self) -> None:
        """SIGTERM/SIGINT: refuse new predictions, run what is queued without waiting for batch windows."""
        if not self.draining:
            self.draining = True
            log.info("shutting down: finishing requests in flight, refusing new ones")
            self.batcher.drain()


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
            raise ApiError(503, "shutting_down", "the server is shutting down", {"Connection": "close"})
        state.arriving += 1
        try:
            body = await read_body(request, state.limits.max_body_bytes)
            req = parse_predict(body, state.limits, binary=clf.binary)
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
            raise ApiError(503, "shutting_down", "the server is shutting down", {"Connection": "close"}) from None
        except asyncio.TimeoutError:
            raise ApiError(504, "timeout", f"no answer within {settings.timeout_s:g} s (--timeout)") from None
        if req.ids is not None:
            answers = [{"id": ident, **answer} for ident, answer in zip(req.ids, answers)]
        return json_response({"model": model_name, "predictions": answers})

    async def info(request: Request) -> Response:
        return json_response(loaded.info)

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
    messages = {404: f"no such route: {request.url.path}",
                405: f"{request.method} is not allowed on {request.url.path}"}
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
            await self.app(scope, receive, send_status)
        finally:
            metrics.in_flight -= 1
            seconds = time.perf_counter() - start
            path = scope["path"]
            metrics.request_done(scope["method"], path if path in ROUTES else "other", status, seconds)
            client = scope.get("client")
            logs.access(scope["method"], path, status, scope.get(TEXTS_KEY, 0), seconds,
                        f"{client[0]}:{client[1]}" if client else "-")


def create_app(loaded: Loaded, settings: Settings) -> tuple[ASGIApp, ServerState]:
    """The ASGI app and its state (the batcher starts and stops with the app's lifespan)."""
    state = ServerState(loaded, settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state.batcher.start()
        try:
            yield
        finally:
            await state.batcher.stop()

    app = Starlette(routes=routes(state), lifespan=lifespan,
                    exception_handlers={HTTPException: _http_error, Exception: _http_error})
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
    return create_app(loaded, settings)[0]
