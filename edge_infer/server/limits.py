"""Request bodies for ``POST /v1/predict``: parsing, types and limits, each failure an :class:`ApiError`.

Plain Python (no web framework), so the rules are testable alone and the same for every worker.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

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


def parse_predict(body: bytes, limits: Limits, *, binary: bool) -> PredictRequest:
    """Check a ``/v1/predict`` body; raises :class:`ApiError` (400, 413 or 422) saying what is wrong."""
    if len(body) > limits.max_body_bytes:
        raise body_too_large(limits.max_body_bytes)
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {str(exc).splitlines()[0][:200]}") from None
    if not isinstance(doc, dict):
        raise _invalid(f"the body must be a JSON object, not {_kind(doc)}")
    unknown = sorted(set(doc) - {*FIELDS, "threshold"})
    if unknown:
        raise _invalid(f"unknown field {unknown[0]!r} (expected one of text, texts, items, and threshold)")
    given = [name for name in FIELDS if name in doc]
    if len(given) != 1:
        raise _invalid("give exactly one of 'text', 'texts' or 'items'")
    texts, ids = _texts(given[0], doc[given[0]], limits)
    for i, text in enumerate(texts):
        if len(text) > limits.max_text_chars:
            raise ApiError(413, "text_too_long", f"text {i} has {len(text)} characters, more than "
                                                 f"{limits.max_text_chars} (--max-text-chars)")
        if not text or text.isspace():
            raise ApiError(422, "empty_text", f"text {i} is empty or whitespace-only")
    return PredictRequest(texts, ids, _threshold(doc.get("threshold"), binary))


def _texts(field: str, value: object, limits: Limits) -> tuple[list[str], list[str | int] | None]:
    if field == "text":
        if not isinstance(value, str):
            raise _invalid(f"'text' must be a string, not {_kind(value)}")
        return [value], None
    if not isinstance(value, list):
        raise _invalid(f"{field!r} must be an array, not {_kind(value)}")
    if not value:
        raise _invalid(f"{field!r} is empty")
    if len(value) > limits.max_texts:
        raise ApiError(413, "too_many_texts", f"{len(value)} texts, more than {limits.max_texts} (--max-texts)")
    if field == "texts":
        for i, text in enumerate(value):
            if not isinstance(text, str):
                raise _invalid(f"texts[{i}] must be a string, not {_kind(text)}")
        return list(value), None
    texts: list[str] = []
    ids: list[str | int] = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or set(item) != ITEM_FIELDS:
            raise _invalid(f"items[{i}] must be an object with exactly 'id' and 'text'")
        ident, text = item["id"], item["text"]
        if not isinstance(ident, (str, int)) or isinstance(ident, bool):
            raise _invalid(f"items[{i}].id must be a string or an integer, not {_kind(ident)}")
        if not isinstance(text, str):
            raise _invalid(f"items[{i}].text must be a string, not {_kind(text)}")
        ids.append(ident)
        texts.append(text)
    return texts, ids


def _threshold(value: object, binary: bool) -> float | None:
    if value is None:
        return None
    if not binary:
        raise ApiError(422, "invalid_threshold", "'threshold' applies to two-label models only")
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) \
            or not 0.0 <= value <= 1.0:
        raise ApiError(422, "invalid_threshold", "'threshold' must be a number from 0 to 1")
    return float(value)


def _invalid(message: str) -> ApiError:
    return ApiError(422, "invalid_request", message)


def _kind(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
             float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)
