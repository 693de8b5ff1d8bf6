"""edge-infer: IMDB sentiment with ONNX Runtime, no TensorFlow."""

__version__ = "0.1.0"
