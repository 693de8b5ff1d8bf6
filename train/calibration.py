"""Temperature scaling (Guo et al. 2017), folded into the model so the exported graph is calibrated as it is.

One temperature T divides every logit: the probabilities keep their order (accuracy and ROC AUC do not
change) and their confidence moves towards what the validation rows show. T is chosen on validation log
loss over a grid, then folded into the last Dense layer(s): ``(x W + b) / T = x (W / T) + b / T``, so no
operator is added to the graph. Imports TensorFlow (Keras) only through the model passed in.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edge_infer.metrics import expected_calibration_error, log_loss, reliability_table

TEMPERATURES = np.round(np.arange(0.50, 4.0001, 0.01), 2)
LOGIT_LAYERS = {False: ("score",), True: ("bilstm_logit", "ngram_bag_logit")}
"""The layers whose output is the logit: the BiLSTM's head, or both branches of the mixed model."""


def _probabilities(scores: np.ndarray) -> np.ndarray:
    """(n, classes) class probabilities from a model's output: P(class 1) for a one-column output."""
    scores = np.asarray(scores, dtype=np.float64)
    return np.column_stack([1 - scores[:, 0], scores[:, 0]]) if scores.shape[1] == 1 else scores


def _logits(probabilities: np.ndarray) -> np.ndarray:
    """Logits up to a per-row constant (softmax is unchanged by it)."""
    return np.log(np.clip(probabilities, 1e-12, 1.0))


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def best_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The T of :data:`TEMPERATURES` with the lowest log loss of ``softmax(log p / T)`` on ``labels``."""
    logits = _logits(probabilities)
    losses = [log_loss(labels, _softmax(logits / t)) for t in TEMPERATURES]
    return float(TEMPERATURES[int(np.argmin(losses))])


def figures(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Log loss and ECE (10 equal-width bins of the winning class's confidence)."""
    return {"log_loss": log_loss(labels, probabilities),
            "ece": expected_calibration_error(reliability_table(probabilities, labels))}


def fold_temperature(model: Any, temperature: float, combined: bool) -> None:
    """Divide the weights of the model's logit layer(s) by ``temperature``, in place."""
    for name in LOGIT_LAYERS[combined]:
        layer = model.get_layer(name)
        layer.set_weights([w / np.float32(temperature) for w in layer.get_weights()])


def calibrate(model: Any, x_val: np.ndarray, labels: np.ndarray, *, combined: bool) -> dict[str, Any]:
    """Choose T on the validation rows, fold it into ``model``, and return the report's entry."""
    before = _probabilities(model.predict(x_val, batch_size=256, verbose=0))
    temperature = best_temperature(before, labels)
    fold_temperature(model, temperature, combined)
    after = _probabilities(model.predict(x_val, batch_size=256, verbose=0))
    return {"method": "temperature scaling on the validation rows, folded into the logit layer(s)",
            "temperature": temperature, "validation_rows": int(len(labels)),
            "before": figures(before, labels), "after": figures(after, labels)}
