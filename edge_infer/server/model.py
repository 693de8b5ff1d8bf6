"""Loading the model for the server: through :meth:`SentimentClassifier.load`, before any socket is bound."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from edge_infer.classifier import SentimentClassifier, info_document, verify_rest
from edge_infer.server.settings import Settings


@dataclass(frozen=True)
class Loaded:
    """The verified classifier and the ``GET /v1/info`` document (what ``edge-infer info --format json`` prints)."""

    classifier: SentimentClassifier
    info: dict[str, Any]


def default_threads() -> int:
    """ONNX Runtime threads when ``--threads`` is not given: one less than the CPUs (at least 1), leaving a
    core to the event loop. On 2 cores, 2 threads served about half as many reviews/s as 1 (bench/serve_load.py)."""
    return max(1, (os.cpu_count() or 2) - 1)


def load_model(settings: Settings) -> Loaded:
    """Load and verify the model as the CLI does; raises :class:`~edge_infer.model_folder.ModelError`
    (a tampered or unusable model) or ``ValueError`` (bad ``threads``)."""
    threads = settings.threads if settings.threads is not None else default_threads()
    clf = SentimentClassifier.load(settings.model, quantized=settings.int8, threads=threads)
    manifest = verify_rest(clf)  # with load: every listed file verified once, as `edge-infer info` does
    return Loaded(clf, info_document(manifest))
