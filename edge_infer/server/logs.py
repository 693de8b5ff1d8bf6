"""Logging for the server: one stderr handler for edge-infer's and uvicorn's loggers, text or JSON lines."""

from __future__ import annotations

import json
import logging
import sys
import time

LOGGER = "edge_infer.server"
ACCESS_LOGGER = "edge_infer.server.access"


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
        return json.dumps(doc, ensure_ascii=False)


def setup(log_format: str) -> None:
    """Send ``edge_infer.server`` (INFO) and uvicorn (WARNING) to stderr, as ``text`` or ``json`` lines."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        formatter = logging.Formatter("%(asctime)s.%(msecs)03dZ %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S")
        formatter.converter = time.gmtime
        handler.setFormatter(formatter)
    for name, level in ((LOGGER, logging.INFO), ("uvicorn", logging.WARNING)):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
    logging.getLogger("uvicorn.access").disabled = True  # the app writes its own access lines


def access(method: str, path: str, status: int, texts: int, seconds: float, client: str) -> None:
    """One access line: ``client "METHOD path" status texts=N latency``."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not logger.isEnabledFor(logging.INFO):
        return
    ms = round(seconds * 1000, 3)
    logger.info('%s "%s %s" %d texts=%d %.3fms', client, method, path, status, texts, ms,
                extra={"fields": {"event": "access", "client": client, "method": method, "path": path,
                                  "status": status, "texts": texts, "latency_ms": ms}})
