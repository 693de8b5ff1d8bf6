"""The server's settings: one frozen dataclass, passed to worker processes as JSON in the environment."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

ENV_VAR = "EDGE_INFER_SERVE_SETTINGS"
"""Worker processes (``--workers N``) read their :class:`Settings` from this variable."""


@dataclass(frozen=True)
class Settings:
    """Everything ``edge-infer serve`` was told; defaults are the command's defaults."""

    host: str = "127.0.0.1"
    port: int = 8000
    model: str | None = None
    int8: bool = False
    threads: int | None = None
    workers: int = 1
    max_batch_delay_ms: float = 2.0
    max_batch_size: int = 256
    max_queue: int = 1024
    max_body_bytes: int = 1_048_576
    max_texts: int = 256
    max_text_chars: int = 100_000
    timeout_s: float = 30.0
    explain_max_tokens: int = 256
    explain_concurrency: int = 1
    graceful_timeout_s: float = 30.0
    log_format: str = "text"
    header_timeout_s: float = 5.0
    body_timeout_s: float = 10.0
    keep_alive_timeout_s: float = 5.0
    max_header_bytes: int = 16_384
    max_connections: int | None = None
    """``None``: :data:`~edge_infer.server.protocol.DEFAULT_MAX_CONNECTIONS`, lowered to fit the fd limit."""
    allowed_hosts: tuple[str, ...] | None = None
    """``None``: the loopback names when bound to a loopback address, else any host."""

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> Settings:
        """The settings a parent process put in :data:`ENV_VAR`."""
        raw = os.environ.get(ENV_VAR)
        if not raw:
            raise RuntimeError(f"{ENV_VAR} is not set: worker processes are started by `edge-infer serve`")
        doc = json.loads(raw)
        if doc.get("allowed_hosts") is not None:
            doc["allowed_hosts"] = tuple(doc["allowed_hosts"])
        return cls(**doc)
