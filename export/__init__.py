"""Export stage: a trained Keras model to ONNX files the runtime ships, gated by parity checks."""
