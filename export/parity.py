"""The parity gate: Keras and the runtime's ONNX scoring must give the same probabilities on the same reviews.

A binary model's score is P(labels[1]), one number per review, and its label comes from the threshold; a
model of N >= 3 labels gives N probabilities per review, its label is the argmax, and a review's
difference is the largest over its N probabilities.

The ONNX side is exactly what users run: :func:`edge_infer.inference.new_session` (the runtime's session
options) and :class:`edge_infer.inference.OnnxScorer` (its batch-1 path for one text, its length-sorted
token-budget batches for many).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from edge_infer.inference import OnnxScorer, check_signature, new_session
from edge_infer.model_folder import INPUT_NAME, OUTPUT_NAME
from edge_infer.tokenizer import PAD_ID, Tokenizer, pad_batch

ATOL = 1e-5
THREADS = (1, 2)
SINGLE, BATCHED = "single", "batched"
PATHS = (SINGLE, BATCHED)
"""The runtime's two scoring paths: each case alone (``predict("text")``) and all cases batched by length."""


class ParityError(RuntimeError):
    """ONNX Runtime disagrees with Keras beyond the tolerance, or on a label."""

    def __init__(self, message: str, result: ParityResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class Case:
    """One input of the gate: a real review or a constructed edge case."""

    name: str
    ids: list[int]
    review: int | None = None  # position in the review list, for real reviews


def predicted(scores: np.ndarray, threshold: float) -> np.ndarray:
    """Class indices: ``score >= threshold`` for binary scores ``[n]``, the argmax for probabilities ``[n, N]``."""
    scores = np.asarray(scores)
    if scores.ndim == 1:
        return (scores >= threshold).astype(np.int64)
    return np.argmax(scores, axis=1)


def case_diffs(scores: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Each case's absolute difference: of the score, or the largest over its class probabilities."""
    diff = np.abs(np.asarray(scores) - np.asarray(reference))
    return diff if diff.ndim == 1 else diff.max(axis=1)


@dataclass(frozen=True)
class Scoring:
    """How the model folder's ONNX files are scored: the tokenizer, the length mode, the threshold, and the
    output width (``classes``: 1 for a binary model's P(labels[1]), else the number of labels)."""

    tokenizer: Tokenizer
    dynamic_length: bool
    threshold: float
    classes: int = 1

    def scorer(self, model: bytes | str | os.PathLike[str], threads: int) -> OnnxScorer:
        """The runtime's scorer on a new session; the graph signature is checked like the runtime does."""
        session = new_session(model, threads)
        check_signature(session, input_name=INPUT_NAME, output_name=OUTPUT_NAME, max_len=self.tokenizer.max_len,
                        dynamic_length=self.dynamic_length, classes=self.classes)
        return OnnxScorer(session, self.tokenizer.max_len, self.tokenizer.padding, self.dynamic_length, INPUT_NAME,
                          OUTPUT_NAME, PAD_ID)

    def scores(self, scorer: OnnxScorer, sequences: Sequence[Sequence[int]]) -> np.ndarray:
        """``[n]`` scores of a binary model, ``[n, classes]`` probabilities otherwise."""
        out = scorer.outputs(sequences)
        return out[:, 0] if self.classes == 1 else out


@dataclass(frozen=True)
class RunResult:
    """ONNX Runtime scores for every case on one scoring path and thread count."""

    path: str
    threads: int
    scores: np.ndarray = field(repr=False)
    max_abs_diff: float = 0.0
    worst_case: str = ""


@dataclass(frozen=True)
class ParityResult:
    """What the gate measured; ``passed`` is the verdict. ``cases`` lists the reviews first, then the edge cases."""

    reviews: int
    edge_cases: list[str]
    atol: float
    max_abs_diff: float
    mean_abs_diff: float
    label_agreement: float
    worst_case: str
    worst_run: str
    runs: list[RunResult] = field(repr=False)
    keras_scores: np.ndarray = field(repr=False)
    diffs: np.ndarray = field(repr=False)
    cases: list[Case] = field(repr=False, default_factory=list)

    @property
    def passed(self) -> bool:
        return self.max_abs_diff <= self.atol and self.label_agreement == 1.0

    @property
    def review_positions(self) -> np.ndarray:
        """Each scored review's position in the texts given to the gate (empty reviews are left out)."""
        return np.asarray([c.review for c in self.cases[: self.reviews]], dtype=np.int64)

    def review_scores(self) -> tuple[np.ndarray, int]:
        """The fp32 ONNX scores of the reviews on the batched path with the most threads, and that thread count."""
        run = max((r for r in self.runs if r.path == BATCHED), key=lambda r: r.threads, default=None)
        if run is None:
            run = max(self.runs, key=lambda r: r.threads)
        return run.scores[: self.reviews], run.threads

    def summary(self) -> dict:
        """The figures that go into the manifest."""
        return {
            "reviews": self.reviews,
            "edge_cases": len(self.edge_cases),
            "atol": self.atol,
            "max_abs_diff": self.max_abs_diff,
            "mean_abs_diff": self.mean_abs_diff,
            "label_agreement": self.label_agreement,
            "paths": sorted({r.path for r in self.runs}),
            "threads": sorted({r.threads for r in self.runs}),
            "worst_case": self.worst_case,
        }


def edge_cases(tokenizer: Tokenizer) -> list[Case]:
    """Constructed inputs: one token, all out-of-vocabulary, exactly and beyond max_len."""
    vocab = tokenizer.vocabulary
    words = list(vocab.tokens[2:])
    known = set(vocab.tokens)
    oov = [w for w in (f"zq{i}x" for i in range(10 * tokenizer.max_len)) if w not in known]
    n = tokenizer.max_len
    texts = {
        "one token: most frequent word": words[0],
        "one token: rarest word": words[-1],
        "one token: out of vocabulary": oov[0],
        "all out of vocabulary (50 tokens)": " ".join(oov[:50]),
        f"exactly max_len ({n}) tokens": " ".join(words[i % len(words)] for i in range(n)),
        f"max_len + 1 ({n + 1}) tokens": " ".join(words[(7 * i) % len(words)] for i in range(n + 1)),
        f"3 x max_len ({3 * n}) tokens": " ".join(words[(13 * i) % len(words)] for i in range(3 * n)),
    }
    return [Case(name, tokenizer.ids(text)) for name, text in texts.items()]


def review_cases(tokenizer: Tokenizer, texts: Sequence[str]) -> list[Case]:
    """Real reviews, named by their position in the given list; empty ones are left out."""
    cases = [Case(f"review #{i}", tokenizer.ids(text), i) for i, text in enumerate(texts)]
    return [c for c in cases if c.ids]


def keras_scores(model, tokenizer: Tokenizer, cases: Sequence[Case], batch_size: int = 256) -> np.ndarray:
    """The reference: Keras on every case padded to max_len, as in training; ``[n]`` for a one-column output
    (binary), ``[n, N]`` otherwise."""
    x = pad_batch([c.ids for c in cases], tokenizer.max_len, tokenizer.padding)
    out = np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float64)
    return out[:, 0] if out.shape[1] == 1 else out


def onnx_scores(scorer: OnnxScorer, cases: Sequence[Case], path: str, scoring: Scoring | None = None) -> np.ndarray:
    """The runtime's scores in case order: each case alone (``single``) or all at once (``batched``)."""
    ids = [c.ids for c in cases]
    run = (lambda seqs: scoring.scores(scorer, seqs)) if scoring is not None else scorer.scores
    if path == SINGLE:
        return np.concatenate([run([seq]) for seq in ids]) if ids else np.empty(0)
    if path == BATCHED:
        return run(ids)
    raise ValueError(f"unknown scoring path {path!r} (one of {', '.join(PATHS)})")


def check_parity(model, onnx_model: bytes | str | os.PathLike[str], scoring: Scoring, texts: Sequence[str], *,
                 atol: float = ATOL, threads: Sequence[int] = THREADS,
                 paths: Sequence[str] = PATHS) -> ParityResult:
    """Compare Keras with the runtime's ONNX scoring on ``texts`` plus the edge cases.

    Raises ``ParityError`` (carrying the result) on failure.
    """
    edges = edge_cases(scoring.tokenizer)
    cases = review_cases(scoring.tokenizer, texts) + edges
    reference = keras_scores(model, scoring.tokenizer, cases)
    runs: list[RunResult] = []
    for n_threads in threads:
        scorer = scoring.scorer(onnx_model, n_threads)
        runs += [_run(scorer, cases, reference, path, n_threads, scoring) for path in paths]
    result = _result(runs, cases, len(edges), reference, scoring.threshold, atol)
    if not result.passed:
        flips = round((1.0 - result.label_agreement) * result.diffs.size)
        raise ParityError(
            f"ONNX differs from Keras: max |diff| {result.max_abs_diff:.3g} > {atol:g} or {flips} label flip(s); "
            f"worst: {result.worst_case} at {result.worst_run}",
            result,
        )
    return result


def _run(scorer: OnnxScorer, cases: Sequence[Case], reference: np.ndarray, path: str, threads: int,
         scoring: Scoring) -> RunResult:
    scores = onnx_scores(scorer, cases, path, scoring)
    diff = case_diffs(scores, reference)
    worst = int(np.argmax(diff))
    return RunResult(path, threads, scores, float(diff[worst]), cases[worst].name)


def _result(runs: list[RunResult], cases: list[Case], n_edges: int, reference: np.ndarray, threshold: float,
            atol: float) -> ParityResult:
    diffs = np.stack([case_diffs(r.scores, reference) for r in runs])
    run_index, case_index = np.unravel_index(int(np.argmax(diffs)), diffs.shape)
    expected = predicted(reference, threshold)
    agree = np.stack([predicted(r.scores, threshold) == expected for r in runs])
    worst_run = runs[run_index]
    return ParityResult(
        reviews=len(cases) - n_edges,
        edge_cases=[c.name for c in cases[len(cases) - n_edges:]],
        atol=atol,
        max_abs_diff=float(diffs.max()),
        mean_abs_diff=float(diffs.mean()),
        label_agreement=float(agree.mean()),
        worst_case=cases[case_index].name,
        worst_run=f"{worst_run.path} path, {worst_run.threads} thread(s)",
        runs=runs,
        keras_scores=reference,
        diffs=diffs,
        cases=list(cases),
    )
