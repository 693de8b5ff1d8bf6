"""edge-infer: IMDB sentiment with ONNX Runtime, no TensorFlow.

>>> from edge_infer import SentimentClassifier
>>> clf = SentimentClassifier.load()          # the packaged default model
>>> clf.predict("A wonderful, moving film.")  # Prediction(label='positive', score=0.97...)
"""

from edge_infer.classifier import Prediction, SentimentClassifier
from edge_infer.model_folder import IntegrityError, ManifestError, ModelError

__version__ = "0.1.0"
__all__ = ["IntegrityError", "ManifestError", "ModelError", "Prediction", "SentimentClassifier", "__version__"]
