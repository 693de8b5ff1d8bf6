"""Per-word explanations by occlusion, over the classifier's own ONNX session.

Each word the model sees is left out of the token-id sequence (deleted, not masked), and the drop in the
explained label's probability is that word's contribution. The full sequence and every variant go through
the session in ONE batch, so the numbers come from the very graph that classifies: for the mixed
BiLSTM + n-gram-bag model, leaving a token out changes the BiLSTM's input and the bag's unigram and hashed
bigrams alike (its two bigrams go, the bigram of its neighbours comes). A window of 2 or 3 leaves out
that many consecutive tokens at a time; a word's contribution is then the mean drop of the windows that
hold it. Offsets are character (code point) offsets into the raw text, from
:func:`~edge_infer.tokenizer.tokenize_with_offsets`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from edge_infer.task import is_blank
from edge_infer.tokenizer import Tokenizer, tokenize_with_offsets, truncate

if TYPE_CHECKING:
    from edge_infer.classifier import Prediction

METHOD = "occlusion"
MAX_WINDOW = 3

Run = Callable[[Sequence[Sequence[int]]], np.ndarray]
"""One session call: token-id rows in, the graph's output ``[rows, width]`` out."""


class Model(Protocol):
    """What an explanation needs from a classifier (:class:`~edge_infer.classifier.SentimentClassifier`)."""

    @property
    def tokenizer(self) -> Tokenizer: ...

    @property
    def labels(self) -> tuple[str, ...]: ...

    @property
    def binary(self) -> bool: ...

    def predictions(self, probabilities: np.ndarray, *, threshold: float | None = None) -> list[Prediction]: ...


@dataclass(frozen=True)
class Word:
    """One token of the input.

    ``start``/``end``: its span in the raw text (``text[start:end]``, code points); ``text``: that span;
    ``token``: the normalized token; ``contribution``: how much the explained label's probability drops
    when it is left out (positive: the word speaks for that label, negative: against it); ``seen``: ``False`` for a
    token cut by ``max_len`` (its contribution is then 0: the model never reads it).
    """

    start: int
    end: int
    text: str
    token: str
    contribution: float
    seen: bool


@dataclass(frozen=True)
class Explanation:
    """A prediction and the contribution of each word to ``label``'s probability ``probability``."""

    prediction: Prediction
    label: str
    probability: float
    words: tuple[Word, ...]
    method: str = METHOD
    window: int = 1

    def top(self, k: int | None = None) -> list[Word]:
        """The seen words by decreasing ``|contribution|`` (all of them, or the first ``k``)."""
        ranked = sorted((w for w in self.words if w.seen), key=lambda w: -abs(w.contribution))
        return ranked if k is None else ranked[:k]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (the CLI's ``--format json``): the prediction's fields, then the explanation's."""
        p = self.prediction

        def r(x: float) -> float:
            return round(x, 6) + 0.0  # + 0.0: no "-0.0"

        return {
            "label": p.label, "score": r(p.score), "scores": {k: r(v) for k, v in p.scores.items()},
            "explained_label": self.label, "probability": r(self.probability),
            "method": self.method, "window": self.window, "offsets": "code points",
            "words": [{"start": w.start, "end": w.end, "text": w.text, "token": w.token,
                       "contribution": r(w.contribution), "seen": w.seen} for w in self.words],
        }


def occlusion(model: Model, run: Run, text: str, *, label: str | None = None, max_tokens: int | None = None,
              window: int = 1) -> Explanation:
    """Explain ``model``'s prediction for ``text`` by leaving out ``window`` consecutive tokens at a time.

    ``run`` is one call of the model's session. ``label``: the label whose probability is explained
    (default: the predicted one). ``max_tokens``: refuse (``ValueError``) a text of which the model sees
    more tokens (cost grows with the square of that count); ``None``: no cap beyond ``max_len``.
    """
    if not isinstance(text, str):
        raise TypeError(f"text is a {type(text).__name__}, not a str")
    if is_blank(text):
        raise ValueError("the text is empty or whitespace-only")
    if label is not None and label not in model.labels:
        raise ValueError(f"label must be one of {', '.join(map(repr, model.labels))}, not {label!r}")
    if isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= MAX_WINDOW:
        raise ValueError(f"window must be an integer from 1 to {MAX_WINDOW}")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        raise ValueError("max_tokens must be a positive integer or None")
    tok = model.tokenizer
    tokens, spans = tokenize_with_offsets(text)
    ids = tok.vocabulary.ids(tokens)
    seen_ids = truncate(ids, tok.max_len, tok.truncating)
    first = len(ids) - len(seen_ids) if tok.truncating == "pre" else 0
    m = len(seen_ids)
    if max_tokens is not None and m > max_tokens:
        raise ValueError(f"the model reads {m} tokens of this text; explanations are capped at {max_tokens}")
    width = min(window, m)
    rows = [seen_ids] + [seen_ids[:j] + seen_ids[j + width:] for j in range(m - width + 1 if m else 0)]
    out = np.asarray(run(rows), dtype=np.float64)
    probabilities = np.stack([1.0 - out[:, 0], out[:, 0]], axis=1) if model.binary else out
    prediction = model.predictions(probabilities[:1])[0]
    chosen = prediction.label if label is None else label
    column = probabilities[:, model.labels.index(chosen)]
    contributions = _per_token(column[0] - column[1:], m, width)
    words = tuple(
        Word(start, end, text[start:end], token, float(contributions[i - first]) if first <= i < first + m else 0.0,
             first <= i < first + m)
        for i, (token, (start, end)) in enumerate(zip(tokens, spans)))
    return Explanation(prediction, chosen, float(column[0]), words, METHOD, window)


def _per_token(drops: np.ndarray, m: int, width: int) -> np.ndarray:
    """Each of ``m`` tokens: the mean drop of the windows of ``width`` tokens that hold it."""
    if width <= 1:
        return drops
    sums = np.concatenate([[0.0], np.cumsum(drops)])
    k = np.arange(m)
    lo = np.maximum(0, k - width + 1)
    hi = np.minimum(k, m - width) + 1  # windows lo..hi-1 hold token k
    return (sums[hi] - sums[lo]) / (hi - lo)
