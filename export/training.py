"""What export reads from the training stage: ``training_report.json`` and ``vocab.txt`` beside ``model.keras``.

A typed reader: every missing or mistyped field is an :class:`ExportInputError` naming the file and the
field (exit 2), never a ``KeyError`` deep inside the export. No TensorFlow here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_infer.tokenizer import NORMALIZATION, Tokenizer, Vocabulary
from train.run import REPORT_FILE, VOCAB_FILE

REPORT_FORMAT = "edge-infer-training-report"
REPORT_FORMAT_VERSION = 1
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
    labels: tuple[str, str]
    threshold: float
    normalization: str
    max_len: int
    padding: str
    truncating: str
    vocab_sha256: str
    test_accuracy: float
    validation_accuracy: float | None
    data_sha256: str | None

    def tokenizer(self, vocabulary: Vocabulary) -> Tokenizer:
        return Tokenizer(vocabulary, self.max_len, self.padding, self.truncating)  # type: ignore[arg-type]

    def manifest_training(self) -> dict[str, Any]:
        """The manifest's ``training`` object."""
        return {"preset": self.preset, "settings": dict(self.settings), "test_accuracy": self.test_accuracy,
                "validation_accuracy": self.validation_accuracy, "data_sha256": self.data_sha256}


class _Fields:
    """Typed access to a decoded JSON object; any problem is an :class:`ExportInputError`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, message: str) -> ExportInputError:
        return ExportInputError(f"{self.path}: not a usable training report: {message}")

    def get(self, obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str = "") -> Any:
        value = obj.get(key)
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _tuple(kind)):
            raise self.fail(f"{where}{key} is missing or not {_name(kind)}")
        return value

    def number(self, obj: Mapping[str, Any], key: str, low: float, high: float, where: str = "") -> float:
        value = float(self.get(obj, key, (int, float), where))
        if not (math.isfinite(value) and low <= value <= high):
            raise self.fail(f"{where}{key} is {value!r}, not within [{low:g}, {high:g}]")
        return value

    def optional_number(self, obj: Mapping[str, Any], key: str) -> float | None:
        return None if obj.get(key) is None else self.number(obj, key, 0.0, 1.0)

    def choice(self, obj: Mapping[str, Any], key: str, allowed: tuple[str, ...], where: str = "") -> str:
        value = self.get(obj, key, str, where)
        if value not in allowed:
            raise self.fail(f"{where}{key} is {value!r}, not one of {', '.join(allowed)}")
        return value


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _name(kind: type | tuple[type, ...]) -> str:
    names = {dict: "an object", list: "a list", str: "a string", int: "an integer", float: "a number",
             bool: "a boolean"}
    return " or ".join(names.get(k, k.__name__) for k in _tuple(kind))


def parse_report(raw: Any, path: Path) -> TrainingInfo:
    """Check the decoded ``training_report.json``; raises :class:`ExportInputError` naming the bad field."""
    f = _Fields(path)
    if not isinstance(raw, dict):
        raise f.fail("the report is not a JSON object")
    if raw.get("format") != REPORT_FORMAT or raw.get("format_version") != REPORT_FORMAT_VERSION:
        raise f.fail(f"format/format_version is not {REPORT_FORMAT!r}/{REPORT_FORMAT_VERSION}")
    labels = f.get(raw, "labels", list)
    if len(labels) != 2 or not all(isinstance(x, str) and x for x in labels) or labels[0] == labels[1]:
        raise f.fail("labels must be two different non-empty strings")
    tok = f.get(raw, "tokenizer", dict)
    max_len = f.get(tok, "max_len", int, "tokenizer.")
    if max_len < 1:
        raise f.fail(f"tokenizer.max_len is {max_len}, not positive")
    vocab = f.get(raw, "vocabulary", dict)
    digest = f.get(vocab, "sha256", str, "vocabulary.")
    if len(digest) != 64:
        raise f.fail("vocabulary.sha256 is not a sha256 hex digest")
    data = raw.get("data")
    data_sha = f.get(data, "sha256", str, "data.") if isinstance(data, dict) and "sha256" in data else None
    return TrainingInfo(
        path=path, preset=f.get(raw, "preset", str), settings=f.get(raw, "settings", dict),
        labels=(labels[0], labels[1]), threshold=_threshold(f, raw),
        normalization=f.get(tok, "normalization", str, "tokenizer."), max_len=max_len,
        padding=f.choice(tok, "padding", SIDES, "tokenizer."), truncating=f.choice(tok, "truncating", SIDES,
                                                                                  "tokenizer."),
        vocab_sha256=digest.lower(), test_accuracy=f.number(raw, "test_accuracy", 0.0, 1.0),
        validation_accuracy=f.optional_number(raw, "validation_accuracy"), data_sha256=data_sha,
    )


def _threshold(f: _Fields, raw: Mapping[str, Any]) -> float:
    value = f.number(raw, "threshold", 0.0, 1.0)
    if value in (0.0, 1.0):
        raise f.fail(f"threshold is {value!r}, not strictly between 0 and 1")
    return value


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
        raw = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ExportInputError(f"{report_path}: not a training report ({_first_line(error)})") from None
    info = parse_report(raw, report_path)
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
