"""Request bodies for ``POST /v1/predict`` (and the checks ``/v1/explain`` shares): parsing, types and limits,
each failure an :class:`ApiError`.

Plain Python (no web framework), so the rules are testable alone and the same for every worker.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any

from edge_infer.task import Task, is_blank

FIELDS = ("text", "texts", "items")
ITEM_FIELDS = frozenset(("id", "text"))


class ApiError(Exception):
    """An error answer: HTTP ``status``, a stable machine-readable ``code`` and a one-line ``message``."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


@dataclass(frozen=True)
class Limits:
    """Per-request limits (``--max-body-bytes``, ``--max-texts``, ``--max-text-chars``)."""

    max_body_bytes: int
    max_texts: int
    max_text_chars: int


@dataclass(frozen=True)
class PredictRequest:
    """A checked request: the texts in order, their ids (``items`` form only) and the threshold override."""

    texts: list[str]
    ids: list[str | int] | None
    threshold: float | None


def body_too_large(limit: int) -> ApiError:
    return ApiError(413, "body_too_large", f"the request body is larger than {limit} bytes (--max-body-bytes)")


def check_content_type(value: str | None) -> None:
    """A ``POST`` body must be declared ``application/json`` (charset, if given, UTF-8); else 415.

    A web page can send a cross-site "simple" request (``text/plain``, a form) to a local server without
    asking it first; it cannot send ``application/json`` without a CORS preflight, which this server
    does not answer."""
    media, _, params = (value or "").partition(";")
    charset = next((v.strip().strip('"').lower() for k, _, v in (p.partition("=") for p in params.split(";"))
                    if k.strip().lower() == "charset"), "utf-8")
    if media.strip().lower() != "application/json" or charset not in ("utf-8", "utf8"):
        shown = repr(value[:100]) if value else "none"
        raise ApiError(415, "unsupported_media_type", f"the body must be sent as Content-Type: application/json "
                                                      f"(UTF-8); got {shown}")


def parse_predict(body: bytes, limits: Limits, *, task: Task) -> PredictRequest:
    """Check a ``/v1/predict`` body; raises :class:`ApiError` (400, 413 or 422) saying what is wrong."""
    doc = json_object(body, limits)
    unknown = sorted(set(doc) - {*FIELDS, "threshold"})
    if unknown:
        raise invalid(f"unknown field {unknown[0]!r} (expected one of text, texts, items, and threshold)")
    given = [name for name in FIELDS if name in doc]
    if len(given) != 1:
        raise invalid("give exactly one of 'text', 'texts' or 'items'")
    texts, ids = _texts(given[0], doc[given[0]], limits)
    for i, text in enumerate(texts):
        check_text(text, limits, f"text {i}")
    return PredictRequest(texts, ids, _threshold(doc.get("threshold"), task))


def json_object(body: bytes, limits: Limits) -> dict[str, Any]:
    """A POST body as a JSON object (UTF-8, at most ``--max-body-bytes``); else :class:`ApiError` 400, 413, 422."""
    if len(body) > limits.max_body_bytes:
        raise body_too_large(limits.max_body_bytes)
    try:
        text = body.decode("utf-8-sig")  # json.loads(bytes) would also take UTF-16 and UTF-32
    except UnicodeDecodeError as exc:
        raise ApiError(400, "invalid_json", f"the body is not UTF-8 (byte {exc.start})") from None
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {str(exc).splitlines()[0][:200]}") from None
    if not isinstance(doc, dict):
        raise invalid(f"the body must be a JSON object, not {kind(doc)}")
    return doc


def check_text(text: str, limits: Limits, name: str = "the text") -> None:
    """413 ``text_too_long`` over ``--max-text-chars``; 422 ``empty_text`` when empty or whitespace-only."""
    if len(text) > limits.max_text_chars:
        raise ApiError(413, "text_too_long", f"{name} has {len(text)} characters, more than "
                                             f"{limits.max_text_chars} (--max-text-chars)")
    if is_blank(text):
        raise ApiError(422, "empty_text", f"{name} is empty or whitespace-only")


def _texts(field: str, value: object, limits: Limits) -> tuple[list[str], list[str | int] | None]:
    if field == "text":
        if not isinstance(value, str):
            raise invalid(f"'text' must be a string, not {kind(value)}")
        return [value], None
    if not isinstance(value, list):
        raise invalid(f"{field!r} must be an array, not {kind(value)}")
    if not value:
        raise invalid(f"{field!r} is empty")
    if len(value) > limits.max_texts:
        raise ApiError(413, "too_many_texts", f"{len(value)} texts, more than {limits.max_texts} (--max-texts)")
    if field == "texts":
        for i, text in enumerate(value):
            if not isinstance(text, str):
                raise invalid(f"texts[{i}] must be a string, not {kind(text)}")
        return list(value), None
    texts: list[str] = []
    ids: list[str | int] = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or set(item) != ITEM_FIELDS:
            raise invalid(f"items[{i}] must be an object with exactly 'id' and 'text'")
        ident, text = item["id"], item["text"]
        if not isinstance(ident, (str, int)) or isinstance(ident, bool):
            raise invalid(f"items[{i}].id must be a string or an integer, not {kind(ident)}")
        if not isinstance(text, str):
            raise invalid(f"items[{i}].text must be a string, not {kind(text)}")
        ids.append(ident)
        texts.append(text)
    return texts, ids


def _threshold(value: object, task: Task) -> float | None:
    if value is None:
        return None
    try:
        return task.check_threshold(value)
    except ValueError as exc:
        raise ApiError(422, "invalid_threshold", str(exc).replace("threshold", "'threshold'", 1)) from None


def invalid(message: str) -> ApiError:
    return ApiError(422, "invalid_request", message)


def kind(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
             float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class AllowedHosts:
    """Host header names the server answers (``--allowed-hosts``): exact names, ``*.suffix`` patterns, or any.

    A server bound to loopback answers only loopback names by default, so a web page cannot reach it
    through DNS rebinding (an attacker's name that resolves to 127.0.0.1)."""

    names: frozenset[str]
    suffixes: tuple[str, ...]
    any: bool = False

    @classmethod
    def parse(cls, entries: tuple[str, ...] | None, bind_host: str) -> AllowedHosts:
        """``entries`` as given (``None``: the default for ``bind_host``); ``*`` allows any host."""
        if entries is None:
            entries = (*LOOPBACK_NAMES, bind_host) if is_loopback(bind_host) else ("*",)
        names = {_normal(e) for e in entries if e.strip() and not e.strip().startswith("*")}
        suffixes = tuple(_normal(e)[1:] for e in entries if e.strip().startswith("*."))
        return cls(frozenset(names), suffixes, any=any(e.strip() == "*" for e in entries))

    def allows(self, host_header: str | None) -> bool:
        """Whether a request with this ``Host`` header (``None``: none sent) is answered."""
        if self.any:
            return True
        name = host_name(host_header) if host_header is not None else None
        return name is not None and (name in self.names or name.endswith(self.suffixes))

    def describe(self) -> str:
        return "any" if self.any else ", ".join(sorted(self.names) + ["*" + s for s in self.suffixes])


def is_loopback(host: str) -> bool:
    """Whether a ``--host`` value is a loopback address (or ``localhost``)."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str | None:
    """The name in a ``Host`` header, lower-case, without port, brackets or trailing dot (``None``: malformed)."""
    header = header.strip()
    if header.startswith("["):
        name, sep, rest = header[1:].partition("]")
        if not sep or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
    else:
        name, sep, port = header.partition(":")
        if sep and not port.isdigit():
            return None
    return _normal(name) or None


def _normal(name: str) -> str:
    return name.strip().strip("[]").rstrip(".").lower()


def not_allowed_host(host_header: str | None) -> ApiError:
    shown = "no Host header" if host_header is None else f"Host {host_header[:100]!r}"
    return ApiError(421, "host_not_allowed", f"{shown} is not served here (--allowed-hosts)")
