"""The parity gate: Keras and ONNX Runtime must give the same probabilities on the same reviews."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_infer.tokenizer import Tokenizer, pad_batch

ATOL = 1e-5
BATCH_SIZES = (1, 256)
THREADS = (1, 2)


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


@dataclass(frozen=True)
class RunResult:
    """ONNX Runtime scores for every case at one batch size and thread count."""

    batch_size: int
    threads: int
    scores: np.ndarray = field(repr=False)
    max_abs_diff: float = 0.0
    worst_case: str = ""


@dataclass(frozen=True)
class ParityResult:
    """What the gate measured; ``passed`` is the verdict."""

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

    @property
    def passed(self) -> bool:
        return self.max_abs_diff <= self.atol and self.label_agreement == 1.0

    def summary(self) -> dict:
        """The figures that go into the manifest."""
        return {
            "reviews": self.reviews,
            "edge_cases": len(self.edge_cases),
            "atol": self.atol,
            "max_abs_diff": self.max_abs_diff,
            "mean_abs_diff": self.mean_abs_diff,
            "label_agreement": self.label_agreement,
            "batch_sizes": sorted({r.batch_size for r in self.runs}),
            "threads": sorted({r.threads for r in self.runs}),
            "worst_case": self.worst_case,
        }


def edge_cases(tokenizer: Tokenizer) -> list[Case]:
    """Constructed inputs: one token, all out-of-vocabulary, exactly and beyond max_len."""
    vocab = tokenizer.vocabulary
    words = list(vocab.tokens[2:])
    oov = [w for w in (f"zq{i}x" for i in range(10 * tokenizer.max_len)) if w not in set(vocab.tokens)]
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
    """The reference: Keras on every case padded to max_len, as in training."""
    x = pad_batch([c.ids for c in cases], tokenizer.max_len, tokenizer.padding)
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float64)[:, 0]


def session(onnx_path: str | Path, threads: int):
    """An ONNX Runtime CPU session with explicit thread counts."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])


def onnx_scores(sess, tokenizer: Tokenizer, cases: Sequence[Case], *, batch_size: int,
                dynamic_length: bool) -> np.ndarray:
    """ONNX Runtime scores in input order; dynamic models get length-sorted batches padded to their longest."""
    input_name = sess.get_inputs()[0].name
    order = sorted(range(len(cases)), key=lambda i: len(cases[i].ids)) if dynamic_length else range(len(cases))
    order = list(order)
    scores = np.empty(len(cases), dtype=np.float64)
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        seqs = [cases[i].ids for i in rows]
        length = max(len(s) for s in seqs) if dynamic_length else tokenizer.max_len
        x = pad_batch(seqs, length, tokenizer.padding)
        scores[rows] = sess.run(None, {input_name: x})[0][:, 0]
    return scores


def check_parity(model, onnx_path: str | Path, tokenizer: Tokenizer, texts: Sequence[str], *, threshold: float,
                 dynamic_length: bool, atol: float = ATOL, batch_sizes: Sequence[int] = BATCH_SIZES,
                 threads: Sequence[int] = THREADS) -> ParityResult:
    """Compare Keras with ONNX Runtime on ``texts`` plus the edge cases; raise ``ParityError`` on failure."""
    edges = edge_cases(tokenizer)
    cases = review_cases(tokenizer, texts) + edges
    reference = keras_scores(model, tokenizer, cases)
    runs: list[RunResult] = []
    for n_threads in threads:
        sess = session(onnx_path, n_threads)
        for batch_size in batch_sizes:
            scores = onnx_scores(sess, tokenizer, cases, batch_size=batch_size, dynamic_length=dynamic_length)
            diff = np.abs(scores - reference)
            worst = int(np.argmax(diff))
            runs.append(RunResult(batch_size, n_threads, scores, float(diff[worst]), cases[worst].name))

    diffs = np.stack([np.abs(r.scores - reference) for r in runs])
    run_index, case_index = np.unravel_index(int(np.argmax(diffs)), diffs.shape)
    agree = np.stack([(r.scores >= threshold) == (reference >= threshold) for r in runs])
    worst_run = runs[run_index]
    result = ParityResult(
        reviews=len(cases) - len(edges),
        edge_cases=[c.name for c in edges],
        atol=atol,
        max_abs_diff=float(diffs.max()),
        mean_abs_diff=float(diffs.mean()),
        label_agreement=float(agree.mean()),
        worst_case=cases[case_index].name,
        worst_run=f"batch {worst_run.batch_size}, {worst_run.threads} thread(s)",
        runs=runs,
        keras_scores=reference,
        diffs=diffs,
    )
    if not result.passed:
        flips = int((~agree).sum())
        raise ParityError(
            f"ONNX differs from Keras: max |diff| {result.max_abs_diff:.3g} > {atol:g} or {flips} label flip(s); "
            f"worst: {result.worst_case} at {result.worst_run}",
            result,
        )
    return result
