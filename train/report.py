"""The training report (``training_report.json``): one typed reader and writer for train/, export/ and bench/.

``TrainingReport.load`` never raises ``KeyError``: a missing file, invalid JSON, another format or a
missing or mistyped key is a :class:`ReportError` with a one-line reason naming the key.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edge_infer.model_folder import TokenizerSpec
from edge_infer.storage import atomic_write_text
from edge_infer.task import Task

FORMAT = "edge-infer-training-report"
FORMAT_VERSION = 1
REPORT_FILE = "training_report.json"


class ReportError(Exception):
    """A training report that cannot be used; ``reason`` is one line."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = Path(path)
        self.reason = " ".join(reason.split())
        super().__init__(f"{self.path}: {self.reason}")


class _Invalid(Exception):
    """A reason, raised while parsing a dict (the caller adds the path)."""


_KINDS = {int: "an integer", float: "a number", str: "a string", bool: "true or false", dict: "an object",
          list: "a list"}


def _check(value: Any, kind: type, key: str) -> Any:
    """``value`` as ``kind`` (an int is a valid float; a bool is never a number)."""
    ok = isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not ok:
        raise _Invalid(f"key {key!r} is {type(value).__name__} {json.dumps(value)[:40]}, expected {_KINDS[kind]}")
    return value


def _get(obj: dict, key: str, kind: type, where: str = "", *, nullable: bool = False) -> Any:
    """``obj[key]`` checked against ``kind``; ``where`` is the dotted path of ``obj`` for the message."""
    dotted = f"{where}.{key}" if where else key
    if key not in obj:
        raise _Invalid(f"missing key {dotted!r}")
    if nullable and obj[key] is None:
        return None
    return _check(obj[key], kind, dotted)


def _object(obj: dict, key: str) -> dict:
    return _get(obj, key, dict)


def _tokenizer_spec(obj: dict, where: str = "tokenizer") -> TokenizerSpec:
    """The report's ``tokenizer`` object as the manifest's :class:`~edge_infer.model_folder.TokenizerSpec`
    (one class for both; export checks the values, this checks the types)."""
    return TokenizerSpec(normalization=_get(obj, "normalization", str, where), max_len=_get(obj, "max_len", int, where),
                         padding=_get(obj, "padding", str, where), truncating=_get(obj, "truncating", str, where),
                         pad_id=_get(obj, "pad_id", int, where), oov_id=_get(obj, "oov_id", int, where),
                         vocab_size=_get(obj, "vocab_size", int, where))


@dataclass(frozen=True)
class VocabularyInfo:
    """The vocabulary file beside the model and its sha256."""

    file: str
    sha256: str
    size: int

    @classmethod
    def from_dict(cls, obj: dict, where: str = "vocabulary") -> VocabularyInfo:
        return cls(file=_get(obj, "file", str, where), sha256=_get(obj, "sha256", str, where),
                   size=_get(obj, "size", int, where))


def _optional(obj: dict, key: str, kind: type, where: str) -> Any:
    """``obj[key]`` checked against ``kind``, or None when absent (reports written before the key existed)."""
    return _get(obj, key, kind, where, nullable=True) if key in obj else None


def _class_counts(obj: dict | None, where: str) -> dict[str, dict[str, int]] | None:
    if obj is None:
        return None
    return {split: {label: _check(n, int, f"{where}.{split}.{label}")
                    for label, n in _check(counts, dict, f"{where}.{split}").items()}
            for split, counts in obj.items()}


@dataclass(frozen=True)
class DataInfo:
    """The dataset the model was trained on, and the review counts of each split.

    ``sources`` (role, kind, path, sha256, rows, skipped_empty of each file or folder read), ``text_field``,
    ``label_field``, ``test_split`` (how the test split was made) and ``class_counts`` (split -> label ->
    rows) are absent from reports written before training read other sources; they load as None.
    """

    path: str
    sha256: str
    train_reviews: int
    validation_reviews: int
    test_reviews: int
    sources: tuple[dict[str, Any], ...] | None = None
    text_field: str | None = None
    label_field: str | None = None
    test_split: dict[str, Any] | None = None
    class_counts: dict[str, dict[str, int]] | None = None

    @classmethod
    def from_dict(cls, obj: dict, where: str = "data") -> DataInfo:
        sources = _optional(obj, "sources", list, where)
        return cls(path=_get(obj, "path", str, where), sha256=_get(obj, "sha256", str, where),
                   train_reviews=_get(obj, "train_reviews", int, where),
                   validation_reviews=_get(obj, "validation_reviews", int, where),
                   test_reviews=_get(obj, "test_reviews", int, where),
                   sources=None if sources is None else tuple(
                       _check(s, dict, f"{where}.sources[{i}]") for i, s in enumerate(sources)),
                   text_field=_optional(obj, "text_field", str, where),
                   label_field=_optional(obj, "label_field", str, where),
                   test_split=_optional(obj, "test_split", dict, where),
                   class_counts=_class_counts(_optional(obj, "class_counts", dict, where), f"{where}.class_counts"))

    def to_dict(self) -> dict[str, Any]:
        doc = {"path": self.path, "sha256": self.sha256, "train_reviews": self.train_reviews,
               "validation_reviews": self.validation_reviews, "test_reviews": self.test_reviews}
        extra = {"sources": None if self.sources is None else [dict(s) for s in self.sources],
                 "text_field": self.text_field, "label_field": self.label_field, "test_split": self.test_split,
                 "class_counts": self.class_counts}
        return {**doc, **{k: v for k, v in extra.items() if v is not None}}


def _history(rows: list) -> tuple[dict[str, float], ...]:
    """Per-epoch rows: an integer ``epoch`` and numeric metrics."""
    parsed = []
    for i, row in enumerate(rows):
        where = f"history[{i}]"
        _check(row, dict, where)
        metrics = {key: _check(value, float, f"{where}.{key}") for key, value in row.items() if key != "epoch"}
        parsed.append({"epoch": _get(row, "epoch", int, where), **metrics})
    return tuple(parsed)


def _weights(obj: dict | None) -> dict[str, float] | None:
    return None if obj is None else {k: _check(v, float, f"class_weights.{k}") for k, v in obj.items()}


def _strings(values: list, key: str) -> tuple[str, ...]:
    return tuple(_check(value, str, f"{key}[{i}]") for i, value in enumerate(values))


@dataclass(frozen=True, kw_only=True)
class TrainingReport:
    """What the training stage reports about the model beside it (``training_report.json``)."""

    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    preset: str
    settings: dict[str, Any]
    labels: tuple[str, ...]
    threshold: float
    tokenizer: TokenizerSpec
    vocabulary: VocabularyInfo
    data: DataInfo
    history: tuple[dict[str, float], ...]
    best_epoch: int | None
    validation_accuracy: float
    validation_loss: float
    test_accuracy: float
    test_loss: float
    wall_time_s: float
    resumed: bool
    versions: dict[str, str]
    class_weights: dict[str, float] | None = None
    """``--class-weight balanced``: the loss weight of each label (absent when not used)."""
    pretrained: dict[str, Any] | None = None
    branches: dict[str, Any] | None = None
    distillation: dict[str, Any] | None = None
    calibration: dict[str, Any] | None = None
    """``calibrate``: the temperature folded into the last layer(s) and the validation figures before/after."""
    """``--unlabeled``: the unlabelled reviews used, the test copies dropped, and the teacher's figures."""
    """``--bag-dim``: the mixing weight and each branch's validation and test accuracy (absent without it)."""
    """``--pretrained``: the pretraining artifact the encoder started from (absent when not used)."""

    @property
    def task(self) -> Task:
        """What the model's output means (:mod:`edge_infer.task`)."""
        return Task(self.labels, self.threshold)

    @property
    def classes(self) -> int:
        """The model's output width: 1 for two labels (P(labels[1])), else the number of labels."""
        return self.task.width

    @classmethod
    def from_dict(cls, obj: Any, source: str | os.PathLike[str] = "<dict>") -> TrainingReport:
        """Parse a decoded report; :class:`ReportError` (naming ``source``) if it is not one."""
        try:
            return cls._parse(obj)
        except _Invalid as error:
            raise ReportError(source, str(error)) from None

    @classmethod
    def _parse(cls, obj: Any) -> TrainingReport:
        if not isinstance(obj, dict):
            raise _Invalid(f"not a JSON object but {type(obj).__name__}")
        if _get(obj, "format", str) != FORMAT:
            raise _Invalid(f"format is {obj['format']!r}, not {FORMAT!r}: not a training report")
        if _get(obj, "format_version", int) != FORMAT_VERSION:
            raise _Invalid(f"format_version {obj['format_version']} is not supported (this reader knows "
                           f"{FORMAT_VERSION})")
        versions = _object(obj, "versions")
        return cls(
            preset=_get(obj, "preset", str),
            settings=dict(_object(obj, "settings")),
            labels=_strings(_get(obj, "labels", list), "labels"),
            threshold=_get(obj, "threshold", float),
            tokenizer=_tokenizer_spec(_object(obj, "tokenizer")),
            vocabulary=VocabularyInfo.from_dict(_object(obj, "vocabulary")),
            data=DataInfo.from_dict(_object(obj, "data")),
            history=_history(_get(obj, "history", list)),
            best_epoch=_get(obj, "best_epoch", int, nullable=True),
            validation_accuracy=_get(obj, "validation_accuracy", float),
            validation_loss=_get(obj, "validation_loss", float),
            test_accuracy=_get(obj, "test_accuracy", float),
            test_loss=_get(obj, "test_loss", float),
            wall_time_s=_get(obj, "wall_time_s", float),
            resumed=_get(obj, "resumed", bool),
            versions={key: _check(value, str, f"versions.{key}") for key, value in versions.items()},
            class_weights=_weights(_optional(obj, "class_weights", dict, "")),
            pretrained=_optional(obj, "pretrained", dict, ""),
            branches=_optional(obj, "branches", dict, ""),
            distillation=_optional(obj, "distillation", dict, ""),
            calibration=_optional(obj, "calibration", dict, ""),
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TrainingReport:
        """Read ``path``; :class:`ReportError` for a missing file, invalid JSON or an invalid report."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ReportError(path, "no such file (the training stage writes it beside the model)") from None
        except (OSError, UnicodeDecodeError) as error:
            raise ReportError(path, f"cannot be read ({error})") from None
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError) as error:
            raise ReportError(path, f"invalid JSON ({str(error) or type(error).__name__})") from None
        return cls.from_dict(obj, path)

    def to_dict(self) -> dict[str, Any]:
        """The JSON layout of ``training_report.json``."""
        return {
            "format": self.format,
            "format_version": self.format_version,
            "preset": self.preset,
            "settings": dict(self.settings),
            "labels": list(self.labels),
            "threshold": self.threshold,
            "tokenizer": self.tokenizer.to_dict(),
            "vocabulary": asdict(self.vocabulary),
            "data": self.data.to_dict(),
            "history": [dict(row) for row in self.history],
            "best_epoch": self.best_epoch,
            "validation_accuracy": self.validation_accuracy,
            "validation_loss": self.validation_loss,
            "test_accuracy": self.test_accuracy,
            "test_loss": self.test_loss,
            "wall_time_s": self.wall_time_s,
            "resumed": self.resumed,
            "versions": dict(self.versions),
            **({} if self.class_weights is None else {"class_weights": dict(self.class_weights)}),
            **({} if self.pretrained is None else {"pretrained": dict(self.pretrained)}),
            **({} if self.branches is None else {"branches": dict(self.branches)}),
            **({} if self.distillation is None else {"distillation": dict(self.distillation)}),
            **({} if self.calibration is None else {"calibration": dict(self.calibration)}),
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the report atomically (temp file, fsync, rename, fsync the folder)."""
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")
