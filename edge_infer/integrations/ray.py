"""Bulk scoring on Ray Data (``pip install "edge-infer[ray]"``): a ``map_batches`` callable and :func:`score_dataset`.

Batches are ``pyarrow`` tables (``batch_format="pyarrow"``): no pandas conversion, strings stay Arrow strings,
nulls stay nulls. Each actor unpickles the driver's classifier once, which loads and re-verifies the model
(:mod:`edge_infer.classifier`); a worker whose copy differs refuses with ``IntegrityError`` and the job fails.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from edge_infer.classifier import SentimentClassifier

if TYPE_CHECKING:
    from ray.data import Dataset

BATCH_FORMAT = "pyarrow"
BATCH_SIZE = 512
"""Rows per batch: large enough that Ray's per-batch overhead is small against tokenizing and the model."""
RESULT_COLUMNS = ("label", "score", "error")


def score_columns(labels: tuple[str, ...]) -> list[str]:
    """The ``score_<label>`` columns added for a model with more than two labels (none for two)."""
    return [f"score_{label}" for label in labels] if len(labels) > 2 else []


def row_error(text: Any) -> str | None:
    """Why a value cannot be scored (null, not a string, empty or whitespace-only), or ``None``."""
    if text is None:
        return "null text"
    if not isinstance(text, str):
        return f"not a string ({type(text).__name__})"
    if not text or text.isspace():
        return "empty or whitespace-only text"
    return None


class BatchScorer:
    """Callable class for ``Dataset.map_batches(..., batch_format="pyarrow", concurrency=N)``.

    Adds ``label`` (string), ``score`` (float64; as :class:`~edge_infer.classifier.Prediction`), one
    ``score_<label>`` per label for models with more than two labels, and ``error`` (null unless the row's
    text was null, empty or not a string: then ``label`` and the scores are null). ``classifier`` is pickled
    to each actor, which reloads and re-verifies it once.
    """

    def __init__(self, classifier: SentimentClassifier, text_column: str = "text",
                 keep_columns: list[str] | None = None, threshold: float | None = None) -> None:
        self.clf = classifier
        self.text_column = text_column
        self.keep_columns = keep_columns
        self.threshold = threshold

    def __call__(self, batch: pa.Table) -> pa.Table:
        if self.text_column not in batch.column_names:
            raise KeyError(f"no column {self.text_column!r} (columns: {', '.join(batch.column_names)})")
        texts = batch.column(self.text_column).to_pylist()
        errors = [row_error(t) for t in texts]
        good = [i for i, e in enumerate(errors) if e is None]
        preds = self.clf.predict([texts[i] for i in good], threshold=self.threshold) if good else []
        n = len(texts)
        labels: list[str | None] = [None] * n
        score = np.full(n, np.nan)
        probs = np.full((n, len(self.clf.labels)), np.nan)
        for i, p in zip(good, preds):
            labels[i] = p.label
            score[i] = p.score
            probs[i] = list(p.scores.values())
        mask = np.array([e is not None for e in errors], dtype=bool)
        out = batch if self.keep_columns is None else batch.select(self.keep_columns)
        columns: dict[str, pa.Array] = {"label": pa.array(labels, type=pa.string()),
                                        "score": pa.array(score, mask=mask)}
        for j, name in enumerate(score_columns(self.clf.labels)):
            columns[name] = pa.array(probs[:, j], mask=mask)
        columns["error"] = pa.array(errors, type=pa.string())
        for name, values in columns.items():
            if name in out.column_names:
                out = out.drop_columns([name])
            out = out.append_column(name, values)
        return out


def score_dataset(ds: Dataset, text_column: str = "text", model: str | os.PathLike[str] | None = None,
                  quantized: bool = False, threads: int | None = 1, concurrency: int = 2,
                  batch_size: int = BATCH_SIZE, keep_columns: list[str] | None = None,
                  threshold: float | None = None, num_cpus: float = 1,
                  rows_per_block: int | None = 4 * BATCH_SIZE) -> Dataset:
    """``ds`` with the :class:`BatchScorer` columns added, scored by ``concurrency`` actors (lazy, like Ray Data).

    The model is loaded and verified here first (a bad model fails at once, on the driver), then each
    actor reloads and re-verifies the same bytes. ``threads``: ONNX Runtime threads per actor.
    ``keep_columns``: the input columns to keep (default: all). ``num_cpus``: Ray CPUs each actor
    reserves. ``rows_per_block``: the input is re-cut (streaming, no shuffle) into blocks of at most this many
    rows first, so that every actor gets work even from one big file (``None``: as read). Row order is kept
    when the context's ``execution_options.preserve_order`` is set.
    """
    from ray.data import ActorPoolStrategy

    clf = SentimentClassifier.load(model, quantized=quantized, threads=threads)
    if rows_per_block:
        ds = ds.repartition(target_num_rows_per_block=rows_per_block)
    kwargs = {"classifier": clf, "text_column": text_column, "keep_columns": keep_columns, "threshold": threshold}
    return ds.map_batches(BatchScorer, fn_constructor_kwargs=kwargs, batch_format=BATCH_FORMAT,
                          batch_size=batch_size, compute=ActorPoolStrategy(size=concurrency), num_cpus=num_cpus)
