"""Loading the model for the server: through :meth:`SentimentClassifier.load`, before any socket is bound."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from edge_infer.classifier import SentimentClassifier, verify
from edge_infer.model_folder import MANIFEST_NAME
from edge_infer.server.settings import Settings


@dataclass(frozen=True)
class Loaded:
    """The verified classifier and the ``GET /v1/info`` document (what ``edge-infer info --format json`` prints)."""

    classifier: SentimentClassifier
    info: dict[str, Any]


def load_model(settings: Settings) -> Loaded:
    """Load and verify the model as the CLI does; raises :class:`~edge_infer.model_folder.ModelError`
    (a tampered or unusable model) or ``ValueError`` (bad ``threads``)."""
    clf = SentimentClassifier.load(settings.model, quantized=settings.int8, threads=settings.threads)
    manifest = verify(clf.manifest.directory)  # every listed file, as `edge-infer info` does
    doc = manifest.to_dict()
    doc["path"] = os.fspath(manifest.directory / MANIFEST_NAME)
    doc["verified"] = True
    return Loaded(clf, doc)
