"""``edge-infer serve``: an HTTP/JSON server over :class:`~edge_infer.classifier.SentimentClassifier`.

Needs the ``serve`` extra (uvicorn, starlette, httptools). Only :mod:`edge_infer.server.app`,
:mod:`edge_infer.server.protocol` and :mod:`edge_infer.server.run` import them; the other modules
(settings, request checks, connection rules, batcher, metrics, logging, OpenAPI document) are plain Python.
"""

from __future__ import annotations

EXTRA_MODULES = ("uvicorn", "starlette", "httptools")
"""What ``pip install "edge-infer[serve]"`` brings; the command checks for them before anything else."""


def missing_extra() -> list[str]:
    """The serve extra's modules that cannot be found (none when the extra is installed)."""
    import importlib.util

    return [name for name in EXTRA_MODULES if importlib.util.find_spec(name) is None]
