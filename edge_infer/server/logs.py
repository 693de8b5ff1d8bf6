"""Logging for the server: one stderr handler for edge-infer's and uvicorn's loggers, text or JSON lines.

Every line is one line: control characters (C0, DEL, C1, line and paragraph separators, bidi overrides)
in any message or field are written as ``\\xNN`` / ``\\uNNNN`` escapes, so a client cannot forge a log
line or send escape sequences to a terminal through a URL path or a header.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time

LOGGER = "edge_infer.server"
ACCESS_LOGGER = "edge_infer.server.access"
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""Characters never written raw: C0 and C1 controls, DEL, U+2028/2029, bidi embeddings and isolates."""
UVICORN_BAD_REQUEST = "Invalid HTTP request received."
"""uvicorn's warning per malformed request; dropped: the server counts and logs those refusals itself, rate-limited."""


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape(text: str, *, quotes: bool = False) -> str:
    """``text`` with control characters escaped; with ``quotes``, also backslashes and double quotes (a
    field written between double quotes then reads back unambiguously)."""
    if quotes:
        text = text.replace("\\", "\\\\").replace('"', '\\"')
    return UNSAFE.sub(_escape_char, text)


def _escape_json(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and an access line's fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            doc.update(fields)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        # json.dumps escapes C0 itself; the other unsafe characters may only occur inside strings, where
        # a \\u escape is valid JSON.
        return UNSAFE.sub(_escape_json, json.dumps(doc, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    """``time LEVEL message``, the message's control characters escaped."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        record.message = escape(record.message)
        return super().formatMessage(record)


class _DropUvicornBadRequest(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != UVICORN_BAD_REQUEST


def setup(log_format: str) -> None:
    """Send ``edge_infer.server`` (INFO) and uvicorn (WARNING) to stderr, as ``text`` or ``json`` lines."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        formatter = TextFormatter("%(asctime)s.%(msecs)03dZ %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S")
        formatter.converter = time.gmtime
        handler.setFormatter(formatter)
    for name, level in ((LOGGER, logging.INFO), ("uvicorn", logging.WARNING)):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
    errors = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _DropUvicornBadRequest) for f in errors.filters):
        errors.addFilter(_DropUvicornBadRequest())
    logging.getLogger("uvicorn.access").disabled = True  # the app writes its own access lines


def access(method: str, path: str, status: int, texts: int, seconds: float, client: str) -> None:
    """One access line: ``client "METHOD path" status texts=N latency`` (path and method escaped)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not logger.isEnabledFor(logging.INFO):
        return
    ms = round(seconds * 1000, 3)
    logger.info('%s "%s %s" %d texts=%d %.3fms', escape(client, quotes=True), escape(method, quotes=True),
                escape(path, quotes=True), status, texts, ms,
                extra={"fields": {"event": "access", "client": client, "method": method, "path": path,
                                  "status": status, "texts": texts, "latency_ms": ms}})
