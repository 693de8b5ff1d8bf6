"""The whole export: convert, gate, quantize, gate, then write every artifact or none."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np

from edge_infer.storage import atomic_write_bytes, file_sha256, temp_path_beside
from edge_infer.tokenizer import NORMALIZATION, OOV_ID, PAD_ID, Tokenizer, Vocabulary
from export.convert import INPUT_NAME, OPSET, OUTPUT_NAME, check_structure, is_masked, set_metadata, to_onnx
from export.parity import ATOL, ParityResult, check_parity, onnx_scores, review_cases, session
from export.quantize import Int8Result, check_quantized_structure, copy_metadata, int8_gate, quantize

log = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.json"
FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
VOCAB_FILE = "vocab.txt"
REPORT_FILE = "training_report.json"
PARITY_REPORT_FILE = "parity_report.md"
PARITY_PLOT_FILE = "parity_diff_hist.png"
FORMAT = "edge-infer-model"
FORMAT_VERSION = 1


class ExportInputError(RuntimeError):
    """The Keras model, its vocabulary or its training report is missing or unusable."""


class VocabularyMismatchError(RuntimeError):
    """The vocabulary beside the model is not the one it was trained with."""


@dataclass(frozen=True)
class Reviews:
    """Labelled test reviews for the gates."""

    texts: list[str]
    labels: np.ndarray


@dataclass(frozen=True)
class ExportResult:
    """What was written, and the figures of both gates."""

    out_dir: Path
    manifest: dict
    parity: ParityResult
    int8: Int8Result


def _file_entry(name: str, path: Path) -> dict:
    return {"path": name, "sha256": file_sha256(path), "size": path.stat().st_size}


def _versions() -> dict[str, str]:
    import tensorflow as tf

    return {"tensorflow": tf.__version__, **{name: version(name) for name in ("keras", "tf2onnx", "onnx", "onnxruntime",
                                                                          "numpy")}}


def read_training(keras_path: Path) -> tuple[dict, Vocabulary]:
    """The training report and vocabulary beside the model, checked against each other."""
    if not keras_path.is_file():
        raise ExportInputError(f"{keras_path}: no such Keras model file")
    report_path, vocab_path = keras_path.parent / REPORT_FILE, keras_path.parent / VOCAB_FILE
    for path in (report_path, vocab_path):
        if not path.is_file():
            raise ExportInputError(f"{path}: missing (the training stage writes it beside the model)")
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
        expected = report["vocabulary"]["sha256"]
        report["tokenizer"]["max_len"]
    except (ValueError, KeyError, TypeError) as error:
        raise ExportInputError(f"{report_path}: not a training report ({error})") from None
    vocabulary = Vocabulary.load(vocab_path)
    if vocabulary.sha256 != expected:
        raise VocabularyMismatchError(
            f"{vocab_path}: sha256 {vocabulary.sha256[:12]}... is not the trained vocabulary's {expected[:12]}...")
    return report, vocabulary


def _tokenizer(report: dict, vocabulary: Vocabulary) -> Tokenizer:
    settings = report["tokenizer"]
    if settings["normalization"] != NORMALIZATION:
        raise ExportInputError(f"model was trained with normalization {settings['normalization']!r}, "
                               f"this tokenizer is {NORMALIZATION!r}")
    return Tokenizer(vocabulary, settings["max_len"], settings["padding"], settings["truncating"])


def _manifest(name: str, report: dict, files: dict[str, tuple[str, Path]], dynamic: bool, parity: ParityResult,
              int8: Int8Result) -> dict:
    tokenizer = {k: report["tokenizer"][k] for k in ("normalization", "max_len", "padding", "truncating")}
    parity_figures = parity.summary()
    parity_figures["int8"] = int8.summary()
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "labels": report["labels"],
        "threshold": report["threshold"],
        "tokenizer": {**tokenizer, "pad_id": PAD_ID, "oov_id": OOV_ID, "vocab_size": report["vocabulary"]["size"]},
        "input": {"name": INPUT_NAME, "dtype": "int32", "dynamic_length": dynamic},
        "output": {"name": OUTPUT_NAME},
        "files": {key: _file_entry(name, path) for key, (name, path) in files.items()},
        "opset": OPSET,
        "versions": _versions(),
        "training": {"preset": report["preset"], "settings": report["settings"],
                     "test_accuracy": report["test_accuracy"],
                     "validation_accuracy": report.get("validation_accuracy"),
                     "data_sha256": report.get("data", {}).get("sha256")},
        "parity": parity_figures,
    }


def export_model(keras_path: str | os.PathLike[str], reviews: Reviews, out_dir: str | os.PathLike[str] | None = None,
                 *, name: str | None = None, int8: bool = True, atol: float = ATOL,
                 batch_sizes: Sequence[int] = (1, 256), threads: Sequence[int] = (1, 2),
                 graph_hook=None) -> ExportResult:
    """Export the model at ``keras_path`` into ``out_dir`` (default: its folder).

    Nothing in ``out_dir`` changes unless the structure and parity gates pass. ``graph_hook``, if
    given, is called on the ONNX model before it is written (tests use it to break the graph).
    """
    import keras

    keras_path = Path(keras_path)
    out = Path(out_dir) if out_dir else keras_path.parent
    report, vocabulary = read_training(keras_path)
    tokenizer = _tokenizer(report, vocabulary)
    try:
        model = keras.models.load_model(keras_path, safe_mode=True)
    except Exception as error:  # noqa: BLE001 - any load failure is the same user error
        raise ExportInputError(f"{keras_path}: cannot load the Keras model ({error})") from None
    masked = is_masked(model)

    log.info("converting %s (masked=%s) with tf2onnx, opset %d", keras_path, masked, OPSET)
    proto = to_onnx(model, max_len=tokenizer.max_len, pad_id=PAD_ID)
    set_metadata(proto, {"vocab_sha256": vocabulary.sha256, "edge_infer_format": f"{FORMAT}/{FORMAT_VERSION}"})
    if graph_hook:
        graph_hook(proto)
    structure = check_structure(proto, masked=masked)
    log.info("structure: %s %s, sequence_lens=%s", structure.direction, structure.recurrent_op,
             structure.sequence_lens)

    out.mkdir(parents=True, exist_ok=True)
    staged: dict[str, Path] = {}
    try:
        staged[FP32_FILE] = temp_path_beside(out / FP32_FILE)
        staged[FP32_FILE].write_bytes(proto.SerializeToString())
        log.info("parity gate on %d reviews plus edge cases", len(reviews.texts))
        parity = check_parity(model, staged[FP32_FILE], tokenizer, reviews.texts, threshold=report["threshold"],
                              dynamic_length=masked, atol=atol, batch_sizes=batch_sizes, threads=threads)
        log.info("parity: max |diff| %.3g, label agreement %.4f", parity.max_abs_diff, parity.label_agreement)

        int8_result = _int8(staged, out, proto, tokenizer, reviews, report["threshold"], masked) if int8 else \
            Int8Result(0, 0.0, 0.0, 0.0, 0.0, [], False, refused="not requested (--no-int8)")

        vocab_source = keras_path.parent / VOCAB_FILE
        if out.resolve() != keras_path.parent.resolve():
            staged[VOCAB_FILE] = temp_path_beside(out / VOCAB_FILE)
            shutil.copyfile(vocab_source, staged[VOCAB_FILE])
        from export.report import write_parity_report

        staged[PARITY_REPORT_FILE], staged[PARITY_PLOT_FILE] = write_parity_report(
            out, parity, int8_result, structure, name or out.name)

        files = {"fp32": (FP32_FILE, staged[FP32_FILE]), "vocab": (VOCAB_FILE, staged.get(VOCAB_FILE, vocab_source))}
        if INT8_FILE in staged:
            files["int8"] = (INT8_FILE, staged[INT8_FILE])
        manifest = _manifest(name or out.name, report, files, masked, parity, int8_result)
        manifest["structure"] = {"recurrent_op": structure.recurrent_op, "direction": structure.direction,
                                 "sequence_lens": structure.sequence_lens}
        staged[MANIFEST_FILE] = temp_path_beside(out / MANIFEST_FILE)
        staged[MANIFEST_FILE].write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")

        # Commit: every gate has passed. The manifest goes last, so a reader never sees it ahead of its files.
        if INT8_FILE not in staged:
            (out / INT8_FILE).unlink(missing_ok=True)  # a stale int8 file must not outlive its manifest
        for final in sorted(staged, key=lambda f: f == MANIFEST_FILE):
            staged[final].replace(out / final)
        staged.clear()
    finally:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)
    return ExportResult(out, manifest, parity, int8_result)


def _int8(staged: dict[str, Path], out: Path, proto, tokenizer: Tokenizer, reviews: Reviews, threshold: float,
          masked: bool) -> Int8Result:
    """Quantize (embedding too when that passes the gate, else without it); stage the file if it passes."""
    cases = review_cases(tokenizer, reviews.texts)  # empty reviews are left out
    labels = reviews.labels[[case.review for case in cases]]
    fp32 = onnx_scores(session(staged[FP32_FILE], 2), tokenizer, cases, batch_size=256, dynamic_length=masked)
    result: Int8Result | None = None
    for embedding in (True, False):
        tmp = temp_path_beside(out / INT8_FILE)
        try:
            ops = quantize(staged[FP32_FILE], tmp, embedding=embedding)
            import onnx

            check_quantized_structure(onnx.load(str(tmp)))
            atomic_write_bytes(tmp, copy_metadata(proto, tmp))
            scores = onnx_scores(session(tmp, 2), tokenizer, cases, batch_size=256, dynamic_length=masked)
            result = int8_gate(fp32, scores, labels, threshold=threshold, quantized_ops=ops,
                               embedding_quantized=embedding)
            log.info("int8 (embedding %s): accuracy %.4f vs fp32 %.4f, agreement %.4f%s", embedding,
                     result.int8_accuracy, result.fp32_accuracy, result.label_agreement,
                     f", refused: {result.refused}" if result.refused else "")
            if result.refused is None:
                staged[INT8_FILE] = tmp
                return result
        finally:
            if staged.get(INT8_FILE) != tmp:
                tmp.unlink(missing_ok=True)
    assert result is not None
    return result
