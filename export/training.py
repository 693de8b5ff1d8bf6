"""What export reads from the training stage: ``training_report.json`` and ``vocab.txt`` beside ``model.keras``.

The one typed reader is :class:`train.report.TrainingReport`; here its :class:`~train.report.ReportError`
becomes an :class:`ExportInputError` naming the file and the field (exit 2), never a ``KeyError`` deep
inside the export, and the values export relies on are checked. No TensorFlow here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_infer.tokenizer import NORMALIZATION, Tokenizer, Vocabulary
from train.report import DataInfo, ReportError, TrainingReport
from train.run import REPORT_FILE, VOCAB_FILE

SIDES = ("pre", "post")


class ExportInputError(RuntimeError):
    """The Keras model, its vocabulary, its training report or the output folder is missing or unusable."""


class VocabularyMismatchError(RuntimeError):
    """The vocabulary beside the model is not the one it was trained with."""


@dataclass(frozen=True)
class TrainingInfo:
    """The fields of ``training_report.json`` that export uses, checked."""

    path: Path
    preset: str
    settings: Mapping[str, Any]
    labels: tuple[str, ...]
    threshold: float
    normalization: str
    max_len: int
    padding: str
    truncating: str
    vocab_sha256: str
    test_accuracy: float
    validation_accuracy: float | None
    data_sha256: str | None
    data: DataInfo | None = None

    @property
    def classes(self) -> int:
        """The ONNX output width: 1 for two labels (P(labels[1])), else the number of labels."""
        return 1 if len(self.labels) == 2 else len(self.labels)

    def tokenizer(self, vocabulary: Vocabulary) -> Tokenizer:
        return Tokenizer(vocabulary, self.max_len, self.padding, self.truncating)  # type: ignore[arg-type]

    def manifest_training(self) -> dict[str, Any]:
        """The manifest's ``training`` object."""
        return {"preset": self.preset, "settings": dict(self.settings), "test_accuracy": self.test_accuracy,
                "validation_accuracy": self.validation_accuracy, "data_sha256": self.data_sha256}


def _info(report: TrainingReport, path: Path) -> TrainingInfo:
    """What export needs from a parsed report, with the value checks that only export makes."""
    def fail(message: str) -> ExportInputError:
        return ExportInputError(f"{path}: not a usable training report: {message}")

    tok, digest = report.tokenizer, report.vocabulary.sha256
    if len(report.labels) < 2 or not all(report.labels) or len(set(report.labels)) != len(report.labels):
        raise fail("labels must be two or more different non-empty strings")
    if not (math.isfinite(report.threshold) and 0.0 < report.threshold < 1.0):
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
    return TrainingInfo(
        path=path, preset=report.preset, settings=report.settings, labels=tuple(report.labels),
        threshold=report.threshold, normalization=tok.normalization, max_len=tok.max_len, padding=tok.padding,
        truncating=tok.truncating, vocab_sha256=digest.lower(), test_accuracy=report.test_accuracy,
        validation_accuracy=report.validation_accuracy, data_sha256=report.data.sha256, data=report.data,
    )


def read_training(keras_path: Path) -> tuple[TrainingInfo, Vocabulary]:
    """The training report and vocabulary beside the model, checked against each other and this tokenizer."""
    keras_path = Path(keras_path)
    if not keras_path.is_file():
        raise ExportInputError(f"{keras_path}: no such Keras model file")
    report_path, vocab_path = keras_path.parent / REPORT_FILE, keras_path.parent / VOCAB_FILE
    for path in (report_path, vocab_path):
        if not path.is_file():
            raise ExportInputError(f"{path}: missing (the training stage writes it beside the model)")
    try:
        info = _info(TrainingReport.load(report_path), report_path)
    except ReportError as error:
        raise ExportInputError(str(error)) from None
    if info.normalization != NORMALIZATION:
        raise ExportInputError(f"{report_path}: the model was trained with normalization {info.normalization!r}, "
                               f"this tokenizer is {NORMALIZATION!r}")
    try:
        vocabulary = Vocabulary.load(vocab_path)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ExportInputError(f"{vocab_path}: not a vocabulary ({_first_line(error)})") from None
    if vocabulary.sha256 != info.vocab_sha256:
        raise VocabularyMismatchError(f"{vocab_path}: sha256 {vocabulary.sha256[:12]}... is not the trained "
                                      f"vocabulary's {info.vocab_sha256[:12]}...")
    return info, vocabulary


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
