"""The embeddable classifier: a verified model folder, the project's tokenizer and one ONNX Runtime session."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import overload

import numpy as np

from edge_infer.manifest import (
    IntegrityError,
    Manifest,
    ManifestError,
    ModelError,
    verify_model,
)
from edge_infer.tokenizer import Tokenizer, Vocabulary, pad_batch

BATCH_SIZE = 64
"""Rows per ONNX Runtime call; texts are sorted by length first so that little padding is fed."""
DEFAULT_THREADS = 1
"""ONNX Runtime intra-op threads unless told otherwise. One LSTM step is a few microseconds of work, too
little to split across cores, and a long list keeps a second core busy tokenizing (bench/results)."""
PIPELINE_CHUNK = 512
"""Longer inputs are tokenized chunk by chunk on a helper thread, overlapping with inference."""

_PACKAGED = Path(__file__).resolve().parent / "_default_model"
_CHECKOUT = Path(__file__).resolve().parent.parent / "models" / "default"


def default_model_path() -> Path:
    """The shipped default model: inside the installed package, or ``models/default`` in a source checkout."""
    for folder in (_PACKAGED, _CHECKOUT):
        if (folder / "manifest.json").is_file():
            return folder / "manifest.json"
    raise ManifestError(_PACKAGED, "no default model is installed (and no models/default/manifest.json in a "
                                   "source checkout); pass a model folder")


@dataclass(frozen=True)
class Prediction:
    """One text's result: ``label`` (``"positive"`` or ``"negative"``) and ``score`` = P(positive)."""

    label: str
    score: float


class SentimentClassifier:
    """Classify movie reviews with an exported model; safe to share between threads.

    Create it with :meth:`load`; then ``predict("text")`` or ``predict(["text", ...])``.
    """

    def __init__(self, manifest: Manifest, tokenizer: Tokenizer, session: object, *, quantized: bool) -> None:
        self.manifest = manifest
        self.tokenizer = tokenizer
        self.quantized = quantized
        self._session = session
        self._output_names = [manifest.output_name]

    @classmethod
    def load(cls, model: str | os.PathLike[str] | None = None, *, quantized: bool = False,
             threads: int | None = None) -> SentimentClassifier:
        """Load and verify a model.

        ``model`` is a ``manifest.json`` or the folder holding one; ``None`` is the packaged default
        model. ``quantized`` picks the int8 ONNX file. ``threads`` sets ONNX Runtime's intra-op threads
        (``None``: ``DEFAULT_THREADS``, 1; see ``bench/`` for why). Every file listed in the manifest is checked (size,
        sha256) and the ONNX file's ``vocab_sha256`` against the vocabulary before any session exists.

        Raises :class:`~edge_infer.manifest.ManifestError` or :class:`~edge_infer.manifest.IntegrityError`
        (both :class:`~edge_infer.manifest.ModelError`), naming the file at fault.
        """
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ValueError("threads must be a positive integer or None")
        manifest = Manifest.load(default_model_path() if model is None else Path(model))
        key = "int8" if quantized else "fp32"
        if quantized and not manifest.has_int8:
            why = manifest.int8_refused
            raise ModelError(manifest.source, "this model has no int8 variant" + (f" ({why})" if why else ""))

        verified = verify_model(manifest, keep=(key, "vocab"))
        model_bytes, vocab_bytes = verified[key], verified["vocab"]
        try:
            vocabulary = Vocabulary(tuple(_vocab_lines(vocab_bytes)))
        except (UnicodeDecodeError, ValueError) as exc:
            raise IntegrityError(manifest.path_of("vocab"), f"not a vocabulary: {exc}") from None
        spec = manifest.tokenizer
        if len(vocabulary) > spec.vocab_size:
            raise IntegrityError(manifest.path_of("vocab"),
                                 f"{len(vocabulary)} tokens, more than tokenizer.vocab_size {spec.vocab_size}")
        tokenizer = Tokenizer(vocabulary, spec.max_len, spec.padding, spec.truncating)
        session = _session(manifest, key, model_bytes, threads)
        return cls(manifest, tokenizer, session, quantized=quantized)

    # ------------------------------------------------------------------ properties

    @property
    def labels(self) -> tuple[str, str]:
        """``(negative_label, positive_label)``: ``labels[1]`` is the class whose probability is the score."""
        return self.manifest.labels

    @property
    def threshold(self) -> float:
        """The manifest's decision threshold: ``score >= threshold`` means ``labels[1]``."""
        return self.manifest.threshold

    @property
    def max_len(self) -> int:
        return self.manifest.tokenizer.max_len

    # ------------------------------------------------------------------ inference

    @overload
    def predict(self, text: str, *, threshold: float | None = None) -> Prediction: ...

    @overload
    def predict(self, text: Sequence[str], *, threshold: float | None = None) -> list[Prediction]: ...

    def predict(self, text: str | Sequence[str], *, threshold: float | None = None) -> Prediction | list[Prediction]:
        """Classify one text (returns a :class:`Prediction`) or a sequence of texts (a list, same order).

        ``threshold`` overrides the manifest's. An empty or whitespace-only text raises ``ValueError``.
        """
        cut = self.threshold if threshold is None else float(threshold)
        if not 0.0 <= cut <= 1.0:
            raise ValueError("threshold must be within [0, 1]")
        single = isinstance(text, str)
        texts = [text] if single else list(text)
        scores = self.scores(texts)
        neg, pos = self.labels
        preds = [Prediction(pos if s >= cut else neg, float(s)) for s in scores]
        return preds[0] if single else preds

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """P(``labels[1]``) for each text, as a float array in the input order."""
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"text {i} is a {type(t).__name__}, not a str")
            if not t or t.isspace():
                raise ValueError(f"text {i} is empty or whitespace-only")
        if len(texts) <= PIPELINE_CHUNK:
            return self.scores_for_ids([self.tokenizer.ids(t) for t in texts])
        return self._pipelined_scores(texts)

    def _pipelined_scores(self, texts: Sequence[str]) -> np.ndarray:
        """Tokenize the next chunk on a helper thread while ONNX Runtime (which releases the GIL) runs this one."""
        from concurrent.futures import ThreadPoolExecutor  # only long lists need it; keeps cold start short

        out = np.empty(len(texts), dtype=np.float64)
        encode = self.tokenizer.ids

        def tokenize(chunk: Sequence[str]) -> list[list[int]]:
            return [encode(text) for text in chunk]

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="edge-infer-tokenize") as pool:
            pending = pool.submit(tokenize, texts[:PIPELINE_CHUNK])
            for start in range(0, len(texts), PIPELINE_CHUNK):
                ids = pending.result()
                following = texts[start + PIPELINE_CHUNK:start + 2 * PIPELINE_CHUNK]
                if following:
                    pending = pool.submit(tokenize, following)
                out[start:start + len(ids)] = self.scores_for_ids(ids)
        return out

    def scores_for_ids(self, sequences: Sequence[Sequence[int]]) -> np.ndarray:
        """Scores for already-tokenized (and truncated) id sequences, batched by length."""
        out = np.empty(len(sequences), dtype=np.float64)
        if not sequences:
            return out
        if len(sequences) == 1:  # the latency path: no sorting, no batching
            seq = sequences[0]
            length = max(1, len(seq)) if self.manifest.dynamic_length else self.max_len
            ids = pad_batch(sequences, length, self.tokenizer.padding, self.manifest.tokenizer.pad_id)
            result = self._session.run(self._output_names, {self.manifest.input_name: ids})[0]  # type: ignore[attr-defined]
            out[0] = result.flat[0]
            return out
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
        dynamic = self.manifest.dynamic_length
        for start in range(0, len(order), BATCH_SIZE):
            rows = order[start : start + BATCH_SIZE]
            batch = [sequences[i] for i in rows]
            length = max(1, max(len(s) for s in batch)) if dynamic else self.max_len
            ids = pad_batch(batch, length, self.tokenizer.padding, self.manifest.tokenizer.pad_id)
            result = self._session.run(self._output_names, {self.manifest.input_name: ids})[0]  # type: ignore[attr-defined]
            out[rows] = np.asarray(result, dtype=np.float64).reshape(len(rows), -1)[:, 0]
        return out

    def __repr__(self) -> str:
        kind = "int8" if self.quantized else "fp32"
        return f"SentimentClassifier({str(self.manifest.directory)!r}, name={self.manifest.name!r}, {kind})"


def _vocab_lines(data: bytes) -> list[str]:
    lines = data.decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _session(manifest: Manifest, key: str, model_bytes: bytes, threads: int | None) -> object:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or DEFAULT_THREADS
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    path = manifest.path_of(key)
    try:
        session = ort.InferenceSession(model_bytes, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(path, f"ONNX Runtime cannot load it: {first_line}") from None
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name for o in session.get_outputs()}
    if manifest.input_name not in inputs or len(inputs) != 1:
        raise ModelError(path, f"expected one input named {manifest.input_name!r}, found {sorted(inputs)}")
    if manifest.output_name not in outputs:
        raise ModelError(path, f"has no output named {manifest.output_name!r} (found {sorted(outputs)})")
    if inputs[manifest.input_name].type != "tensor(int32)":
        raise ModelError(path, f"input {manifest.input_name!r} is {inputs[manifest.input_name].type}, not int32")
    return session
