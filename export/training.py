"""What export reads from the training stage: ``training_report.json`` and ``vocab.txt`` beside ``model.keras``.

The one typed reader is :class:`train.report.TrainingReport`, and export uses the report it returns; here
its :class:`~train.report.ReportError` becomes an :class:`ExportInputError` naming the file and the field
(exit 2), never a ``KeyError`` deep inside the export, and the values export relies on are checked. No
TensorFlow here.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from edge_infer.task import is_model_threshold
from edge_infer.tokenizer import NORMALIZATION, Tokenizer, Vocabulary
from train.outdir import VOCAB_FILE
from train.report import REPORT_FILE, ReportError, TrainingReport

SIDES = ("pre", "post")


class ExportInputError(RuntimeError):
    """The Keras model, its vocabulary, its training report or the output folder is missing or unusable."""


class VocabularyMismatchError(RuntimeError):
    """The vocabulary beside the model is not the one it was trained with."""


def manifest_training(report: TrainingReport) -> dict[str, Any]:
    """The manifest's ``training`` object."""
    return {"preset": report.preset, "settings": dict(report.settings), "test_accuracy": report.test_accuracy,
            "validation_accuracy": report.validation_accuracy, "data_sha256": report.data.sha256}


def trained_tokenizer(report: TrainingReport, vocabulary: Vocabulary) -> Tokenizer:
    """The runtime's tokenizer with the trained settings."""
    spec = report.tokenizer
    return Tokenizer(vocabulary, spec.max_len, spec.padding, spec.truncating)  # type: ignore[arg-type]


def _check(report: TrainingReport, path: Path) -> None:
    """The value checks that only export makes on a parsed report."""
    def fail(message: str) -> ExportInputError:
        return ExportInputError(f"{path}: not a usable training report: {message}")

    tok, digest = report.tokenizer, report.vocabulary.sha256
    if len(report.labels) < 2 or not all(report.labels) or len(set(report.labels)) != len(report.labels):
        raise fail("labels must be two or more different non-empty strings")
    if not is_model_threshold(report.threshold):
        raise fail(f"threshold is {report.threshold!r}, not strictly between 0 and 1")
    if tok.max_len < 1:
        raise fail(f"tokenizer.max_len is {tok.max_len}, not positive")
    for key, side in (("padding", tok.padding), ("truncating", tok.truncating)):
        if side not in SIDES:
            raise fail(f"tokenizer.{key} is {side!r}, not one of {', '.join(SIDES)}")
    if len(digest) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digest):
        raise fail("vocabulary.sha256 is not a sha256 hex digest")
    for key, value in (("test_accuracy", report.test_accuracy), ("validation_accuracy", report.validation_accuracy)):
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise fail(f"{key} is {value!r}, not within [0, 1]")


def read_training(keras_path: Path) -> tuple[TrainingReport, Vocabulary]:
    """The training report and vocabulary beside the model, checked against each other and this tokenizer."""
    keras_path = Path(keras_path)
    if not keras_path.is_file():
        raise ExportInputError(f"{keras_path}: no such Keras model file")
    report_path, vocab_path = keras_path.parent / REPORT_FILE, keras_path.parent / VOCAB_FILE
    for path in (report_path, vocab_path):
        if not path.is_file():
            raise ExportInputError(f"{path}: missing (the training stage writes it beside the model)")
    try:
        report = TrainingReport.load(report_path)
    except ReportError as error:
        raise ExportInputError(str(error)) from None
    _check(report, report_path)
    if report.tokenizer.normalization != NORMALIZATION:
        raise ExportInputError(f"{report_path}: the model was trained with normalization "
                               f"{report.tokenizer.normalization!r}, this tokenizer is {NORMALIZATION!r}")
    try:
        vocabulary = Vocabulary.load(vocab_path)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ExportInputError(f"{vocab_path}: not a vocabulary ({_first_line(error)})") from None
    trained = report.vocabulary.sha256.lower()
    if vocabulary.sha256 != trained:
        raise VocabularyMismatchError(f"{vocab_path}: sha256 {vocabulary.sha256[:12]}... is not the trained "
                                      f"vocabulary's {trained[:12]}...")
    return report, vocabulary


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
