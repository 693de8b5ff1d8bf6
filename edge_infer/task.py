"""THE task of a model: its labels, binary or N classes, the output width, the threshold and its range,
the decision rule (probabilities -> label) and the empty-text rule.

Every other module (classifier, CLI, server, Ray integration) asks this one; ``web/src/task.js`` mirrors
it and ``tests/task_vectors.json`` holds the cases both must agree on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def is_blank(text: str) -> bool:
    """The empty-text rule: an empty or whitespace-only text cannot be classified."""
    return not text or text.isspace()


def blank_error(text: str) -> str | None:
    """Why ``text`` cannot be classified under the empty-text rule (``"empty text"`` or
    ``"no text (only whitespace)"``), or ``None``."""
    if not text:
        return "empty text"
    return "no text (only whitespace)" if text.isspace() else None


def is_threshold(value: object) -> bool:
    """The threshold range check: a real number (not a bool) from 0 to 1, both included (NaN is not)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and 0.0 <= value <= 1.0)


def is_model_threshold(value: object) -> bool:
    """A manifest's own threshold: as :func:`is_threshold`, but strictly between 0 and 1."""
    return is_threshold(value) and 0.0 < value < 1.0  # type: ignore[operator]


THRESHOLD_RANGE = "a number from 0 to 1"
"""How the threshold's range is said in error messages."""


@dataclass(frozen=True)
class Task:
    """What a model's output means: ``labels`` in class order and, for two labels, the ``threshold``.

    Two labels: the model gives one column, P(``labels[1]``), and ``score >= threshold`` means ``labels[1]``.
    Three or more: one probability per label, and the most probable label wins (the first on a tie).
    """

    labels: tuple[str, ...]
    threshold: float

    @property
    def binary(self) -> bool:
        """Two labels: the score is P(``labels[1]``) and the threshold decides."""
        return len(self.labels) == 2

    @property
    def width(self) -> int:
        """Columns of the ONNX output: 1 for two labels (P(``labels[1]``)), else one per label."""
        return 1 if self.binary else len(self.labels)

    def check_threshold(self, value: object) -> float:
        """The threshold to decide with: the model's for ``None``, else ``value`` after the range check.

        Raises ``ValueError`` for a model of three or more labels or a value outside [0, 1] (NaN included).
        """
        if value is None:
            return self.threshold
        if not self.binary:
            raise ValueError("threshold applies to two-label models only")
        if not is_threshold(value):
            raise ValueError(f"threshold must be {THRESHOLD_RANGE}")
        return float(value)  # type: ignore[arg-type]

    def probabilities(self, outputs: np.ndarray) -> np.ndarray:
        """The model's ``[n, width]`` outputs as ``[n, len(labels)]`` class probabilities."""
        import numpy as np

        if self.binary:
            p = outputs[:, 0]
            return np.stack([1.0 - p, p], axis=1)
        return outputs

    def decide(self, probabilities: np.ndarray, threshold: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The decision rule on ``[n, len(labels)]`` class probabilities: ``(label indices, scores)``.

        Two labels: ``labels[1]`` where P(``labels[1]``) >= the threshold, and the score is P(``labels[1]``)
        whichever wins. Otherwise the most probable label (the first on a tie) and its probability.
        ``threshold`` overrides the model's (checked by :meth:`check_threshold`).
        """
        import numpy as np

        cut = self.check_threshold(threshold)
        p = np.asarray(probabilities, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != len(self.labels):
            raise ValueError(f"probabilities must be [n, {len(self.labels)}] (a column per label), not {list(p.shape)}")
        if self.binary:
            return (p[:, 1] >= cut).astype(np.int64), p[:, 1]
        best = p.argmax(axis=1)
        return best.astype(np.int64), p[np.arange(len(p)), best]

    def describe(self) -> str:
        """One line for ``edge-infer info``."""
        if self.binary:
            return (f"{self.labels[0]} / {self.labels[1]}  (score = P({self.labels[1]}), "
                    f"threshold {self.threshold:g})")
        return f"{' / '.join(self.labels)}  ({len(self.labels)} classes: the most probable wins)"
