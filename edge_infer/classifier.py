"""The embeddable classifier: a verified model folder, the project's tokenizer and one ONNX Runtime session."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, overload

import numpy as np

from edge_infer import packaged
from edge_infer.explain import Explanation, occlusion
from edge_infer.inference import OnnxScorer, SessionError, check_signature, check_threads, new_session, session_metadata
from edge_infer.inputs.reading import Keep, byte_budget, keep_side
from edge_infer.model_folder import (
    FP32,
    INT8,
    MANIFEST_NAME,
    ONNX_KEYS,
    VOCAB,
    IntegrityError,
    Manifest,
    ModelError,
    UnknownModelError,
    check_onnx_metadata,
    read_verified,
    verify_file,
)
from edge_infer.task import Task, is_blank
from edge_infer.tokenizer import Tokenizer, Vocabulary

K = TypeVar("K")


def resolve_model(model: str | os.PathLike[str] | None) -> tuple[Path, str | None]:
    """Where ``model`` is: ``(folder or manifest path, packaged name or None)``.

    ``None`` is the default packaged model; an existing path or one holding a path separator is a model
    folder (or its ``manifest.json``); anything else is a packaged model's name (:mod:`edge_infer.packaged`).
    Raises :class:`~edge_infer.model_folder.UnknownModelError` for a name that is not installed.
    """
    if model is not None and packaged.looks_like_path(model):
        return Path(model), None
    name = packaged.DEFAULT if model is None else os.fspath(model)
    return packaged_folder(name, default=model is None), name


def packaged_folder(name: str, *, default: bool = False) -> Path:
    """The folder of the installed packaged model ``name``; :class:`UnknownModelError` when not installed."""
    present = packaged.installed()
    if name not in present:
        why = packaged.unknown_name_message(name, list(present))
        raise UnknownModelError(name, f"no default model: {why}; pass a model folder" if default else why)
    return present[name]


def default_model_path() -> Path:
    """The default packaged model's ``manifest.json``: inside the installed package, or in a source checkout."""
    return resolve_model(None)[0] / MANIFEST_NAME


@dataclass(frozen=True)
class Prediction:
    """One text's result.

    ``label`` is the predicted label. ``score``: for a two-label model, P(``labels[1]``) (for sentiment,
    P(positive)), whichever label won; for three or more labels, the winning label's probability.
    ``scores`` maps every label to its probability, in the model's label order.
    """

    label: str
    score: float
    scores: dict[str, float] = field(default_factory=dict, compare=False)


class SentimentClassifier:
    """Classify movie reviews with an exported model; safe to share between threads.

    Create it with :meth:`load`; then ``predict("text")`` or ``predict(["text", ...])``.
    """

    def __init__(self, manifest: Manifest, tokenizer: Tokenizer, scorer: OnnxScorer, *, quantized: bool) -> None:
        self.manifest = manifest
        self.tokenizer = tokenizer
        self.quantized = quantized
        self._scorer = scorer
        self._model_ref: str | None = None if manifest.source is None else os.fspath(manifest.directory)
        self._packaged_name: str | None = None
        self._threads: int | None = None

    @classmethod
    def load(cls, model: str | os.PathLike[str] | None = None, *, quantized: bool = False,
             threads: int | None = None) -> SentimentClassifier:
        """Load and verify a model.

        ``model`` is a packaged model's name (``"imdb"``, ``"general"``: :func:`edge_infer.packaged.installed`),
        or a ``manifest.json`` or the folder holding one: an existing path, or one holding a path separator,
        is a path, anything else a name. ``None`` is the default packaged model. ``quantized`` picks the
        int8 ONNX file; a model whose manifest lists int8 alone (a packaged int8-only model) loads it either
        way (``quantized`` is then ``True`` on the result). ``threads`` sets ONNX Runtime's intra-op threads
        (``None``: ONNX Runtime's default, one per physical core; at most 256). The ONNX file and the
        vocabulary are checked (regular files, size, sha256) before any session exists; then the loaded
        graph's signature and its ``vocab_sha256`` metadata are checked against the manifest.

        Raises :class:`~edge_infer.model_folder.ManifestError` or
        :class:`~edge_infer.model_folder.IntegrityError` (both :class:`~edge_infer.model_folder.ModelError`),
        naming the file at fault; :class:`~edge_infer.model_folder.UnknownModelError` (a ``ManifestError``)
        for a name that is not installed, listing those that are; ``ValueError`` for bad ``threads``.
        """
        check_threads(threads)
        source, name = resolve_model(model)
        return cls._load(source, name, quantized, threads)

    @classmethod
    def _load(cls, source: Path, name: str | None, quantized: bool, threads: int | None) -> SentimentClassifier:
        manifest = Manifest.load(source)
        key = INT8 if quantized or not manifest.has_fp32 else FP32
        if quantized and not manifest.has_int8:
            why = manifest.int8_refused
            raise ModelError(manifest.directory / MANIFEST_NAME,
                             "this model has no int8 variant" + (f" ({why})" if why else ""))
        model_bytes, vocab_bytes = read_verified(manifest, key), read_verified(manifest, VOCAB)
        tokenizer = _tokenizer(manifest, vocab_bytes)
        session = _verified_session(manifest, key, model_bytes, threads)
        spec = manifest.tokenizer
        scorer = OnnxScorer(session, spec.max_len, spec.padding, manifest.dynamic_length, manifest.input_name,
                            manifest.output_name, spec.pad_id)
        clf = cls(manifest, tokenizer, scorer, quantized=key == INT8)
        clf._model_ref = name if name is not None else os.path.abspath(os.fspath(source))
        clf._packaged_name = name
        clf._threads = threads
        return clf

    # ------------------------------------------------------------------ pickling

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        """Pickle the model reference (a packaged name, found again where it is unpickled, or an absolute
        path), the options and the digests of what was verified, never the session.

        Unpickling (e.g. in a Ray worker) loads and verifies the model again and refuses, with
        :class:`~edge_infer.model_folder.IntegrityError`, a copy whose manifest or verified files differ.
        """
        return _unpickle, (self._pickle_state(),)

    def _pickle_state(self) -> dict[str, Any]:
        key = INT8 if self.quantized else FP32
        return {"model": self._model_ref, "packaged": self._packaged_name is not None,
                "quantized": self.quantized, "threads": self._threads,
                "manifest_sha256": manifest_digest(self.manifest),
                "files": {k: self.manifest.files[k].sha256 for k in (key, VOCAB)}}

    # ------------------------------------------------------------------ properties

    @property
    def labels(self) -> tuple[str, ...]:
        """The model's labels in class order. With two, ``labels[1]`` is the class whose probability is the score."""
        return self.manifest.labels

    @property
    def task(self) -> Task:
        """What the output means: labels, binary or N, threshold, decision rule (:class:`edge_infer.task.Task`)."""
        return self.manifest.task

    @property
    def binary(self) -> bool:
        """Two labels: ``score`` = P(``labels[1]``) and ``threshold`` decides; else the most probable label wins."""
        return self.task.binary

    @property
    def threshold(self) -> float:
        """The manifest's decision threshold for a two-label model: ``score >= threshold`` means ``labels[1]``."""
        return self.manifest.threshold

    @property
    def max_len(self) -> int:
        return self.manifest.tokenizer.max_len

    @property
    def byte_budget(self) -> int:
        """Bytes of a long text worth reading: enough for ``max_len`` tokens of any ordinary text
        (:func:`edge_infer.inputs.reading.byte_budget`); readers may clip a text to this many."""
        return byte_budget(self.max_len)

    @property
    def keep(self) -> Keep:
        """The end of a long text the model reads: ``"tail"`` when it truncates at the start, else ``"head"``."""
        return keep_side(self.manifest.tokenizer.truncating)

    # ------------------------------------------------------------------ inference

    @overload
    def predict(self, text: str, *, threshold: float | None = None) -> Prediction: ...  # type: ignore[overload-overlap]

    @overload
    def predict(self, text: Sequence[str], *, threshold: float | None = None) -> list[Prediction]: ...

    def predict(self, text: str | Sequence[str], *, threshold: float | None = None) -> Prediction | list[Prediction]:
        """Classify one text (returns a :class:`Prediction`) or a sequence of texts (a list, same order).

        ``threshold`` overrides the manifest's (two-label models only). An empty or whitespace-only text
        raises ``ValueError``.
        """
        single = isinstance(text, str)
        texts: list[str] = [text] if isinstance(text, str) else list(text)
        preds = self.predictions(self.probabilities(texts), threshold=threshold)
        return preds[0] if single else preds

    def predict_iter(self, texts: Iterable[str], *, batch_size: int = 256,
                     threshold: float | None = None) -> Iterator[Prediction]:
        """Classify a stream of texts lazily: one :class:`Prediction` per text, in order.

        ``texts`` is consumed ``batch_size`` at a time (each batch classified as by :meth:`predict`), so an
        endless generator or a file of millions of lines runs in bounded memory. Raises like
        :meth:`predict` at the batch holding a bad text.
        """
        records = self.predict_records(((None, t) for t in texts), batch_size=batch_size, threshold=threshold)
        return (prediction for _, prediction in records)

    def predict_records(self, pairs: Iterable[tuple[K, str]], *, batch_size: int = 256,
                        threshold: float | None = None) -> Iterator[tuple[K, Prediction]]:
        """Like :meth:`predict_iter` for ``(key, text)`` pairs: yields ``(key, prediction)`` in order.

        The key is anything (an id, a file and line) and is passed through untouched.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError("batch_size must be a positive integer")
        self.task.check_threshold(threshold)  # a bad argument fails here, before anything is read
        return self._batches(iter(pairs), batch_size, threshold)

    def _batches(self, pairs: Iterator[tuple[K, str]], batch_size: int,
                 threshold: float | None) -> Iterator[tuple[K, Prediction]]:
        while batch := list(itertools.islice(pairs, batch_size)):
            keys: list[Any] = [k for k, _ in batch]
            yield from zip(keys, self.predict([t for _, t in batch], threshold=threshold))

    def predictions(self, probabilities: np.ndarray, *, threshold: float | None = None) -> list[Prediction]:
        """Turn a ``[n, len(labels)]`` array of class probabilities into predictions (input order)."""
        rows = np.asarray(probabilities, dtype=np.float64)
        chosen, scores = self.task.decide(rows, threshold)
        return [Prediction(self.labels[i], float(score), {label: float(p) for label, p in zip(self.labels, row)})
                for i, score, row in zip(chosen.tolist(), scores.tolist(), rows)]

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """P(``labels[1]``) for each text of a two-label model, as a float array in the input order."""
        if not self.binary:
            raise ValueError(f"scores() is for two-label models; this one has {len(self.labels)}: use probabilities()")
        return self.probabilities(texts)[:, 1]

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities ``[len(texts), len(labels)]`` in the input order (columns in label order)."""
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"text {i} is a {type(t).__name__}, not a str")
            if is_blank(t):
                raise ValueError(f"text {i} is empty or whitespace-only")
        return self.probabilities_for_ids([self.tokenizer.ids(t) for t in texts])

    def probabilities_for_ids(self, sequences: Sequence[Sequence[int]]) -> np.ndarray:
        """Class probabilities for already-tokenized (and truncated) id sequences, batched by length."""
        out = self._scorer.outputs(sequences) if sequences else np.empty((0, self.task.width))
        return self.task.probabilities(out)

    def scores_for_ids(self, sequences: Sequence[Sequence[int]]) -> np.ndarray:
        """P(``labels[1]``) of a two-label model for already-tokenized id sequences."""
        return self.probabilities_for_ids(sequences)[:, 1]

    def explain(self, text: str, *, label: str | None = None, max_tokens: int | None = None,
                window: int = 1) -> Explanation:
        """Why ``text`` got its prediction: each word's contribution to ``label``'s probability (default:
        the predicted label), by occlusion in one batch through this classifier's session.

        A word's contribution is the drop in that probability when the word is left out (``window`` 2 or
        3: that many consecutive words at a time). Words cut by ``max_len`` are listed with ``seen=False``.
        ``max_tokens`` refuses (``ValueError``) texts of which the model reads more tokens (the cost grows
        with the square of that count). Raises like :meth:`predict` for an empty text.
        """
        return occlusion(self, self._scorer.run_batch, text, label=label, max_tokens=max_tokens, window=window)

    def __repr__(self) -> str:
        kind = "int8" if self.quantized else "fp32"
        return f"SentimentClassifier({str(self.manifest.directory)!r}, name={self.manifest.name!r}, {kind})"


def manifest_digest(manifest: Manifest) -> str:
    """sha256 of the manifest's canonical JSON (sorted keys): what was parsed and used, not its whitespace."""
    text = json.dumps(manifest.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _unpickle(state: dict[str, Any]) -> SentimentClassifier:
    """Reload a pickled classifier and check it is the model the pickling side verified."""
    ref = state["model"]
    if state.get("packaged"):  # the name, even where a file of that name sits in the worker's folder
        source, name = packaged_folder(ref), ref
    else:
        source, name = resolve_model(ref)
    clf = SentimentClassifier._load(source, name, state["quantized"], state["threads"])
    manifest = clf.manifest
    for key, digest in state["files"].items():
        entry = manifest.files.get(key)
        if entry is None or entry.sha256 != digest:
            found = "missing" if entry is None else f"sha256 {entry.sha256[:12]}..."
            raise IntegrityError(manifest.path_of(key) if entry else manifest.directory / MANIFEST_NAME,
                                 f"differs from the model that was pickled ({found}, expected "
                                 f"{digest[:12]}...): another copy of the model?")
    if manifest_digest(manifest) != state["manifest_sha256"]:
        raise IntegrityError(manifest.directory / MANIFEST_NAME,
                             "differs from the manifest that was pickled: another copy of the model?")
    return clf


def verify(model: str | os.PathLike[str] | None = None) -> Manifest:
    """Verify a whole model folder without classifying: every listed file (size, sha256), and each ONNX
    file's graph signature and ``vocab_sha256`` on a session. Returns the manifest; raises :class:`ModelError`."""
    manifest = Manifest.load(resolve_model(model)[0])
    _verify_files(manifest, manifest.files)
    return manifest


def verify_rest(clf: SentimentClassifier) -> Manifest:
    """Verify what :meth:`SentimentClassifier.load` did not read of ``clf``'s model folder (the other
    precision, any further listed file) as :func:`verify` does, so that load and this together check every
    listed file once. Returns ``clf.manifest``; raises :class:`ModelError`."""
    manifest = clf.manifest
    read = {INT8 if clf.quantized else FP32, VOCAB}
    _verify_files(manifest, [key for key in manifest.files if key not in read])
    return manifest


def _verify_files(manifest: Manifest, keys: Iterable[str]) -> None:
    for key in keys:
        if key in ONNX_KEYS:
            _verified_session(manifest, key, read_verified(manifest, key), threads=1)
        elif key == VOCAB:
            _tokenizer(manifest, read_verified(manifest, key))
        else:
            verify_file(manifest, key)


def info_document(manifest: Manifest) -> dict[str, Any]:
    """What ``edge-infer info --format json`` prints and ``GET /v1/info`` answers for a manifest that :func:`verify`
    (or :func:`verify_rest`) returned: the manifest plus ``path`` (its ``manifest.json``) and ``verified``."""
    doc = manifest.to_dict()
    doc["path"] = os.fspath(manifest.directory / MANIFEST_NAME)
    doc["verified"] = True
    return doc


def _tokenizer(manifest: Manifest, vocab_bytes: bytes) -> Tokenizer:
    path = manifest.path_of(VOCAB)
    try:
        vocabulary = Vocabulary(tuple(_vocab_lines(vocab_bytes)))
    except (UnicodeDecodeError, ValueError) as exc:
        raise IntegrityError(path, f"not a vocabulary: {exc}") from None
    spec = manifest.tokenizer
    if len(vocabulary) > spec.vocab_size:
        raise IntegrityError(path, f"{len(vocabulary)} tokens, more than tokenizer.vocab_size {spec.vocab_size}")
    return Tokenizer(vocabulary, spec.max_len, spec.padding, spec.truncating)


def _verified_session(manifest: Manifest, key: str, model_bytes: bytes, threads: int | None) -> object:
    path = manifest.path_of(key)
    try:
        session = new_session(model_bytes, threads)
        check_signature(session, input_name=manifest.input_name, output_name=manifest.output_name,
                        max_len=manifest.tokenizer.max_len, dynamic_length=manifest.dynamic_length,
                        classes=manifest.task.width)
    except SessionError as exc:
        raise IntegrityError(path, str(exc)) from None
    check_onnx_metadata(manifest, key, session_metadata(session))
    return session


def _vocab_lines(data: bytes) -> list[str]:
    lines = data.decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines
