"""edge-infer: IMDB sentiment with ONNX Runtime, no TensorFlow.

>>> from edge_infer import SentimentClassifier
>>> clf = SentimentClassifier.load()          # the packaged default model; load("imdb"), load("path/to/folder")
>>> clf.predict("A wonderful, moving film.")  # Prediction(label='positive', score=0.97...)

The names below are imported on first use, so ``import edge_infer`` (and the CLI's start) stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["IntegrityError", "ManifestError", "ModelError", "Prediction", "SentimentClassifier", "UnknownModelError",
           "__version__"]

_LAZY = {
    "SentimentClassifier": "edge_infer.classifier",
    "Prediction": "edge_infer.classifier",
    "ModelError": "edge_infer.model_folder",
    "ManifestError": "edge_infer.model_folder",
    "IntegrityError": "edge_infer.model_folder",
    "UnknownModelError": "edge_infer.model_folder",
}

if TYPE_CHECKING:
    from edge_infer.classifier import Prediction, SentimentClassifier
    from edge_infer.model_folder import IntegrityError, ManifestError, ModelError, UnknownModelError


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'edge_infer' has no attribute {name!r}")
