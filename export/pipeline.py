"""The whole export: read, convert, gate, quantize, gate, then switch the model folder to the new files at once."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from edge_infer.inference import SessionError
from edge_infer.model_folder import FP32, INT8, VOCAB, Manifest, TokenizerSpec
from edge_infer.tokenizer import PAD_ID, Tokenizer, Vocabulary
from export.convert import (
    OPSET,
    Structure,
    StructureError,
    check_keras_model,
    check_structure,
    is_masked,
    model_metadata,
    set_metadata,
    to_onnx,
)
from export.folder import export_folder, publish, stage_key
from export.parity import ATOL, PATHS, THREADS, ParityError, ParityResult, Scoring, check_parity
from export.quantize import MAX_ACCURACY_DROP, MIN_AGREEMENT, Int8Result, QuantizationError, int8_gate, quantize
from export.report import write_failed_report, write_parity_report
from export.training import (
    ExportInputError,
    VocabularyMismatchError,
    manifest_training,
    read_training,
    trained_tokenizer,
)
from train.report import TrainingReport

__all__ = ["ExportInputError", "ExportResult", "KerasSource", "Reviews", "VocabularyMismatchError", "export_model",
           "int8_variant", "load_source", "read_training"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reviews:
    """Labelled test reviews for the gates; ``labels`` are class indices into the model's labels."""

    texts: list[str]
    labels: np.ndarray


@dataclass(frozen=True)
class KerasSource:
    """A trained model checked before conversion: its training report, vocabulary and Keras model."""

    path: Path
    training: TrainingReport
    vocabulary: Vocabulary
    model: Any

    @property
    def tokenizer(self) -> Tokenizer:
        return trained_tokenizer(self.training, self.vocabulary)

    @property
    def masked(self) -> bool:
        return is_masked(self.model)


@dataclass(frozen=True)
class ExportResult:
    """What was written, and the figures of both gates."""

    out_dir: Path
    manifest: Manifest
    parity: ParityResult
    int8: Int8Result


def load_source(keras_path: str | os.PathLike[str]) -> KerasSource:
    """Read and check the training outputs, load the Keras model and run the structure gate on it.

    Raises :class:`ExportInputError` / :class:`VocabularyMismatchError` for unusable inputs and
    :class:`StructureError` for a model that cannot export (e.g. a SimpleRNN).
    """
    path = Path(keras_path)
    training, vocabulary = read_training(path)  # before TensorFlow loads: a bad folder fails at once
    from train.model import load_classifier

    try:
        model = load_classifier(path)
    except Exception as error:  # noqa: BLE001 - any load failure is the same user error
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ExportInputError(f"{path}: cannot load the Keras model ({first})") from None
    check_keras_model(model)
    return KerasSource(path, training, vocabulary, model)


def _versions() -> dict[str, str]:
    import tensorflow as tf

    names = ("keras", "tf2onnx", "onnx", "onnxruntime", "numpy")
    return {"tensorflow": tf.__version__, **{name: version(name) for name in names}}


def _convert(source: KerasSource, graph_hook: Callable[[onnx.ModelProto], None] | None
             ) -> tuple[onnx.ModelProto, Structure]:
    log.info("converting %s (masked=%s) with tf2onnx, opset %d", source.path, source.masked, OPSET)
    proto = to_onnx(source.model, max_len=source.training.tokenizer.max_len, pad_id=PAD_ID)
    set_metadata(proto, model_metadata(source.vocabulary.sha256))
    if graph_hook:
        graph_hook(proto)
    structure = check_structure(proto, masked=source.masked)
    log.info("structure: %s %s, sequence_lens=%s", structure.direction, structure.recurrent_op,
             structure.sequence_lens)
    return proto, structure


def export_model(keras: str | os.PathLike[str] | KerasSource, reviews: Reviews,
                 out_dir: str | os.PathLike[str] | None = None, *, name: str | None = None, int8: bool = True,
                 atol: float = ATOL, threads: Sequence[int] = THREADS, paths: Sequence[str] = PATHS,
                 max_accuracy_drop: float = MAX_ACCURACY_DROP, min_agreement: float = MIN_AGREEMENT,
                 graph_hook: Callable[[onnx.ModelProto], None] | None = None) -> ExportResult:
    """Export ``keras`` (a ``model.keras`` path or a :func:`load_source` result) into ``out_dir``.

    ``out_dir`` defaults to the model's folder. No file the current manifest lists changes unless both
    gates pass; then the folder switches to the new files at once. ``graph_hook``, if given, is called on
    the ONNX model before the gates (tests use it to break the graph).
    """
    source = keras if isinstance(keras, KerasSource) else load_source(keras)
    if not reviews.texts or len(reviews.texts) != len(reviews.labels):
        raise ExportInputError("the gates need labelled test reviews (one label per text)")
    n_labels = len(source.training.labels)
    if np.any(np.asarray(reviews.labels) < 0) or np.any(np.asarray(reviews.labels) >= n_labels):
        raise ExportInputError(f"the gate reviews' labels must be class indices 0..{n_labels - 1} "
                               f"({', '.join(source.training.labels)})")
    out = Path(out_dir) if out_dir else source.path.parent
    proto, structure = _convert(source, graph_hook)
    gates = _Gates(atol, tuple(threads), tuple(paths), int8, max_accuracy_drop, min_agreement)
    with export_folder(out):
        temps: dict[str, Path] = {}
        try:
            return _export(source, reviews, out, name or out.resolve().name, proto, structure, gates, temps)
        finally:
            for tmp in temps.values():
                tmp.unlink(missing_ok=True)  # published files were renamed away already


@dataclass(frozen=True)
class _Gates:
    atol: float
    threads: tuple[int, ...]
    paths: tuple[str, ...]
    int8: bool
    max_accuracy_drop: float
    min_agreement: float


def _export(source: KerasSource, reviews: Reviews, out: Path, name: str, proto: onnx.ModelProto, structure: Structure,
            gates: _Gates, temps: dict[str, Path]) -> ExportResult:
    """Stage every file in ``out`` (registered in ``temps``), run the gates, publish."""
    scoring = Scoring(source.tokenizer, source.masked, source.training.threshold, source.training.classes)
    temps[FP32] = stage_key(out, FP32)
    temps[FP32].write_bytes(proto.SerializeToString())
    parity = _parity(source, reviews, out, name, structure, scoring, temps[FP32], gates)
    if gates.int8:
        int8, int8_file = int8_variant(temps[FP32], out, proto.metadata_props, parity, reviews.labels, scoring,
                                       max_accuracy_drop=gates.max_accuracy_drop, min_agreement=gates.min_agreement)
        if int8_file is not None:
            temps[INT8] = int8_file
    else:
        int8 = Int8Result.not_made("not requested (--no-int8)", max_accuracy_drop=gates.max_accuracy_drop,
                                   min_agreement=gates.min_agreement)
    temps[VOCAB] = stage_key(out, VOCAB)
    temps[VOCAB].write_text(source.vocabulary.to_text(), encoding="utf-8", newline="\n")
    reports = write_parity_report(out, parity, int8, structure, name)
    temps.update({f"report:{k}": v for k, v in reports.items()})
    manifest = _manifest(source, name, parity, int8, structure)
    published = publish(out, manifest, {k: temps[k] for k in (FP32, INT8, VOCAB) if k in temps}, reports)
    return ExportResult(out, published, parity, int8)


def _parity(source: KerasSource, reviews: Reviews, out: Path, name: str, structure: Structure, scoring: Scoring,
            fp32: Path, gates: _Gates) -> ParityResult:
    """The parity gate; a refusal leaves ``parity_report.failed.md`` in ``out`` and raises."""
    log.info("parity gate on %d reviews plus edge cases", len(reviews.texts))
    try:
        parity = check_parity(source.model, fp32, scoring, reviews.texts, atol=gates.atol, threads=gates.threads,
                              paths=gates.paths)
    except SessionError as error:
        raise StructureError(f"the runtime refuses the graph: {error}") from None
    except ParityError as error:
        try:
            write_failed_report(out, error.result, structure, name)
        except Exception as report_error:  # noqa: BLE001 - the refusal matters more than its report
            log.warning("could not write the failed parity report: %s", report_error)
        raise
    if parity.reviews == 0:
        raise ExportInputError("no test review has a token in this vocabulary: nothing to check parity on")
    log.info("parity: max |diff| %.3g, label agreement %.4f", parity.max_abs_diff, parity.label_agreement)
    return parity


def _manifest(source: KerasSource, name: str, parity: ParityResult, int8: Int8Result, structure: Structure
              ) -> Manifest:
    """The new manifest, without its files (:func:`export.folder.publish` names them)."""
    training, runtime = source.training, source.tokenizer
    spec = TokenizerSpec(training.tokenizer.normalization, runtime.max_len, runtime.padding, runtime.truncating,
                         len(source.vocabulary))
    return Manifest(
        name=name, labels=training.labels, threshold=training.threshold, tokenizer=spec,
        dynamic_length=source.masked, files={}, opset=OPSET, versions=_versions(),
        training=manifest_training(training), parity={**parity.summary(), "int8": int8.summary()},
        structure={"recurrent_op": structure.recurrent_op, "direction": structure.direction,
                   "sequence_lens": structure.sequence_lens, "output_shape": ["batch", training.classes]},
    )


def int8_variant(fp32: Path, out: Path, metadata: Sequence[onnx.StringStringEntryProto], parity: ParityResult,
                 labels: np.ndarray, scoring: Scoring, *, max_accuracy_drop: float = MAX_ACCURACY_DROP,
                 min_agreement: float = MIN_AGREEMENT) -> tuple[Int8Result, Path | None]:
    """Quantize with the embedding, else without it; return the verdict and the staged file if one passed.

    The fp32 side of the gate is the parity gate's own ONNX scores (``parity.review_scores()``);
    ``labels`` are those of the texts given to the parity gate. A quantizer failure or an unexpected
    int8 graph refuses int8 (the reason goes in the manifest); it never aborts the export.
    """
    fp32_scores, threads = parity.review_scores()
    truth = np.asarray(labels)[parity.review_positions]
    ids = [case.ids for case in parity.cases[: parity.reviews]]
    limits = {"max_accuracy_drop": max_accuracy_drop, "min_agreement": min_agreement}
    notes: list[str] = []
    last: Int8Result | None = None
    for embedding in (True, False):
        what = "with the int8 embedding" if embedding else "with an fp32 embedding"
        tmp, keep = stage_key(out, INT8), False
        try:
            ops = quantize(fp32, tmp, embedding=embedding, metadata=metadata)
            scores = scoring.scores(scoring.scorer(tmp, threads), ids)
            last = int8_gate(fp32_scores, scores, truth, threshold=scoring.threshold, quantized_ops=ops,
                             embedding_quantized=embedding, **limits)
            keep = last.refused is None
        except (QuantizationError, SessionError) as error:
            notes.append(f"{what}: {error}")
            log.info("int8 %s refused: %s", what, error)
            continue
        finally:
            if not keep:
                tmp.unlink(missing_ok=True)
        log.info("int8 %s: accuracy %.4f vs fp32 %.4f, agreement %.4f%s", what, last.int8_accuracy,
                 last.fp32_accuracy, last.label_agreement, f", refused: {last.refused}" if last.refused else "")
        if keep:
            return last, tmp
        notes.append(f"{what}: {last.refused}")
    reason = "; ".join(notes)
    if last is None:
        return Int8Result.not_made(reason, **limits), None
    return replace(last, refused=reason), None
