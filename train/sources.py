"""Labelled text from any source: aclImdb, a CSV or JSONL file, or a folder with one subfolder per label.

- **aclImdb** (its folder or .tar.gz): the train and test splits as shipped; labels ``negative, positive``
  (``--label-field sentiment``, the default) or four star-rating classes ``1-2, 3-4, 7-8, 9-10``
  (``--label-field stars``).
- **CSV** (``.csv``; RFC 4180 with a header row, UTF-8; quoted fields may hold commas and newlines) and
  **JSONL** (``.jsonl``/``.ndjson``; one JSON object per line): the text and label columns are
  ``--text-field`` and ``--label-field`` (default ``text`` and ``label``). A label may be a string or an integer.
- **Folder per label** (as ``keras.utils.text_dataset_from_directory`` reads it): ``FOLDER/<label>/*.txt``.

CSV and JSONL are parsed by the runtime's readers (:mod:`edge_infer.inputs`). Bad rows stop the run with one
line naming the file and line (a missing field, invalid JSON, a label that is not a string or integer, an
empty label, a label not in ``--labels``); rows whose text is empty or only whitespace (the empty-text rule
of :mod:`edge_infer.task`) are skipped and counted in the training report. Without a separate test source, a seeded
stratified ``TEST_FRACTION`` of the rows is held out as the test split. No TensorFlow here.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from edge_infer.inputs.records import csv_values, jsonl_values
from edge_infer.storage import file_sha256
from edge_infer.task import is_blank
from train.data import LABELS, DataError, Split, hold_out, imdb_root, rating, read_imdb_items

TEST_FRACTION = 0.2
"""Share of the rows held out as the test split when no separate test source is given."""
STAR_BINS = (("1-2", (1, 2)), ("3-4", (3, 4)), ("7-8", (7, 8)), ("9-10", (9, 10)))
"""aclImdb ``--label-field stars``: classes of star ratings (5 and 6 stars are not in the labelled set)."""
SENTIMENT, STARS = "sentiment", "stars"
CSV_SUFFIXES = (".csv", ".csv.gz")
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")
DEFAULT_TEXT_FIELD, DEFAULT_LABEL_FIELD = "text", "label"


@dataclass(frozen=True)
class SourceSpec:
    """Where the labelled text comes from, as given on the command line."""

    data: Path
    text_field: str | None = None
    label_field: str | None = None
    labels: tuple[str, ...] | None = None
    test_data: Path | None = None
    mix: Any = None
    """A :class:`train.mixture.Mixture` (more training sources, split field, rates, soft labels), or None."""


@dataclass(frozen=True)
class Rows:
    """Texts and their label names as read from one file or folder, with what was skipped."""

    texts: list[str]
    names: list[str]
    where: list[str]  # "file:line" of each row, for error messages
    kind: str
    path: str
    sha256: str
    skipped_empty: int = 0
    fields: dict[str, list[str]] = field(default_factory=dict)
    """Values of the extra string fields asked for (e.g. ``split``, ``domain``), one per row ("" if absent)."""


@dataclass(frozen=True)
class Dataset:
    """Train and test splits with class indices into ``labels`` (in that order)."""

    train: Split
    test: Split
    labels: tuple[str, ...]
    sha256: str
    path: str
    sources: tuple[dict[str, Any], ...]
    text_field: str | None
    label_field: str | None
    test_split: dict[str, Any]
    equal_draws: bool = False
    """Draw validation rows in equal shares per class (the aclImdb sentiment recipe, kept as it was)."""
    fingerprint: dict[str, Any] = field(default_factory=dict)
    train_members: tuple[tuple[str, str], ...] | None = None
    """aclImdb only: (pos|neg, file name) of each training row, which names its movie (``train.movies``)."""
    soft: tuple[list[str], np.ndarray] | None = None
    """Training rows with a soft target for class 1 instead of a label (``--soft-label``), or None."""


# --------------------------------------------------------------------------------------------- readers

def kind_of(path: Path) -> str:
    """``aclimdb``, ``csv``, ``jsonl`` or ``folder`` (one subfolder per label); :class:`DataError` otherwise."""
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    name = path.name.lower()
    if path.is_dir():
        root = imdb_root(path)
        return "aclimdb" if (root / "train").is_dir() and (root / "test").is_dir() else "folder"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        return "aclimdb"
    raise DataError(f"{path}: not a .csv, .jsonl, folder or aclImdb .tar.gz")


def _label_name(value: Any, where: str, field_name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataError(f"{where}: label field {field_name!r} is {type(value).__name__}, not a string or integer")
    name = str(value).strip()
    if not name:
        raise DataError(f"{where}: empty label in field {field_name!r}")
    return name


def _open_binary(path: Path) -> BinaryIO:
    """``path`` opened for binary reading, through gzip when its name ends in ``.gz``."""
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def _records(path: Path, kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(``file:line``, fields) of each record of a CSV or JSONL file, parsed by :mod:`edge_infer.inputs` (the
    runtime's readers: the same CSV dialect, JSON Lines and UTF-8 rules); the first bad record is a DataError."""
    try:
        with _open_binary(path) as stream:
            for line, values, error in csv_values(stream) if kind == "csv" else jsonl_values(stream):
                where = str(path) if line is None else f"{path}:{line}"
                if values is None:
                    raise DataError(f"{where}: {error}")
                yield where, values
    except (OSError, EOFError) as error:  # unreadable, or a broken .gz
        raise DataError(f"{path}: cannot be read ({error})") from None


def _collect(records: Iterator[tuple[str, dict[str, Any]]], text_field: str, label_field: str, kind: str,
             path: Path, keep: Sequence[str] = ()) -> Rows:
    texts, names, wheres, skipped = [], [], [], 0
    kept: dict[str, list[str]] = {name: [] for name in keep}
    for where, record in records:
        for key in (text_field, label_field):
            if key not in record:
                raise DataError(f"{where}: no field {key!r} (fields: {', '.join(map(str, record))[:120]}); "
                                "see --text-field and --label-field")
        text = record[text_field]
        if not isinstance(text, str):
            raise DataError(f"{where}: text field {text_field!r} is {type(text).__name__}, not a string")
        label = _label_name(record[label_field], where, label_field)
        if is_blank(text):
            skipped += 1
            continue
        texts.append(text)
        names.append(label)
        wheres.append(where)
        for name, values in kept.items():
            value = record.get(name, "")
            values.append(value if isinstance(value, str) else str(value))
    return Rows(texts, names, wheres, kind, str(path), file_sha256(path), skipped, kept)


def _read_folder(path: Path) -> Rows:
    """``path/<label>/*.txt``, sorted by label then file name."""
    texts, names, wheres = [], [], []
    digest, skipped = hashlib.sha256(), 0
    for sub in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for file in sorted(sub.glob("*.txt")):
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                raise DataError(f"{file}: cannot be read as UTF-8 text ({error})") from None
            digest.update(f"{sub.name}/{file.name}\0{text}\0".encode())
            if is_blank(text):
                skipped += 1
                continue
            texts.append(text)
            names.append(sub.name)
            wheres.append(str(file))
    if not texts:
        raise DataError(f"{path}: no <label>/*.txt files (expected one subfolder of .txt files per label)")
    return Rows(texts, names, wheres, "folder", str(path), digest.hexdigest(), skipped)


def read_rows(path: Path, text_field: str | None = None, label_field: str | None = None,
              keep: Sequence[str] = ()) -> Rows:
    """Every labelled row of a CSV, JSONL (either may be gzipped) or folder-per-label source; ``keep``:
    other fields whose values to record per row (:attr:`Rows.fields`)."""
    kind = kind_of(path)
    text_field = text_field or DEFAULT_TEXT_FIELD
    label_field = label_field or DEFAULT_LABEL_FIELD
    if kind in ("csv", "jsonl"):
        rows = _collect(_records(path, kind), text_field, label_field, kind, path, keep)
    elif kind == "folder":
        return _read_folder(path)
    else:
        raise DataError(f"{path}: an aclImdb source cannot be read as rows")
    if not rows.texts:
        raise DataError(f"{path}: no labelled rows")
    return rows


# --------------------------------------------------------------------------------------------- aclImdb

def _star_class(file_name: str) -> str:
    stars = rating(file_name)
    for name, members in STAR_BINS:
        if stars in members:
            return name
    raise DataError(f"{file_name}: {stars} stars is in no class of --label-field stars")


def _imdb_rows(path: Path, label_field: str) -> tuple[dict[str, Rows], str]:
    """The aclImdb train and test splits as rows labelled by sentiment or star class."""
    if label_field not in (SENTIMENT, STARS):
        raise DataError(f"--label-field for aclImdb is {SENTIMENT} or {STARS}, not {label_field!r}")
    items, sha, where = read_imdb_items(path)
    splits = {}
    for split in ("train", "test"):
        chosen = [item for item in items if item[0] == split]
        if label_field == SENTIMENT:
            names = [LABELS[1] if item[1] == "pos" else LABELS[0] for item in chosen]
        else:
            names = [_star_class(item[2]) for item in chosen]
        splits[split] = Rows([item[3] for item in chosen], names, [f"{where}:{split}/{i[1]}/{i[2]}" for i in chosen],
                             "aclimdb", where, sha)
    if not splits["train"].texts or not splits["test"].texts:
        raise DataError(f"{where}: no train or test reviews; is this an aclImdb folder or archive?")
    return splits, sha


# --------------------------------------------------------------------------------------------- labels

def parse_labels(text: str | None) -> tuple[str, ...] | None:
    """``--labels a,b,c`` as a tuple; :class:`DataError` for empty or repeated names."""
    if text is None:
        return None
    names = tuple(name.strip() for name in text.split(","))
    if len(names) < 2 or not all(names):
        raise DataError(f"--labels {text!r}: give two or more non-empty names separated by commas")
    if len(set(names)) != len(names):
        raise DataError(f"--labels {text!r}: a name is repeated")
    return names


def _label_order(rows: Rows, wanted: tuple[str, ...] | None, default: tuple[str, ...] | None) -> tuple[str, ...]:
    present = set(rows.names)
    if wanted is None:
        order = default if default is not None and present <= set(default) else tuple(sorted(present))
    else:
        order = wanted
        missing = [name for name in order if name not in present]
        if missing:
            raise DataError(f"{rows.path}: --labels names {', '.join(missing)}, which no row has")
    if len(order) < 2:
        raise DataError(f"{rows.path}: only one label ({', '.join(order)}); a classifier needs two or more")
    return order


def _indices(rows: Rows, labels: tuple[str, ...]) -> np.ndarray:
    index = {name: i for i, name in enumerate(labels)}
    for name, where in zip(rows.names, rows.where):
        if name not in index:
            raise DataError(f"{where}: label {name!r} is not one of {', '.join(labels)}")
    return np.array([index[name] for name in rows.names], dtype=np.int32)


def _split(rows: Rows, labels: tuple[str, ...]) -> Split:
    return Split(texts=list(rows.texts), labels=_indices(rows, labels))


def _source_info(rows: Rows, role: str) -> dict[str, Any]:
    return {"role": role, "kind": rows.kind, "path": rows.path, "sha256": rows.sha256, "rows": len(rows.texts),
            "skipped_empty": rows.skipped_empty}


# --------------------------------------------------------------------------------------------- dataset

def load_dataset(spec: SourceSpec, seed: int) -> Dataset:
    """Read ``spec`` into train and test splits (:class:`DataError` with one line if it cannot)."""
    if spec.mix is not None:
        raise DataError("several --data sources are read by train.mixture.load_mixture, not load_dataset")
    kind = kind_of(spec.data)
    if kind == "aclimdb":
        return _imdb_dataset(spec)
    rows = read_rows(spec.data, spec.text_field, spec.label_field)
    labels = _label_order(rows, spec.labels, None)
    train = _split(rows, labels)
    sources = [_source_info(rows, "data")]
    if spec.test_data is not None:
        test_rows = _test_rows(spec)
        test = _split(test_rows, labels)
        sources.append(_source_info(test_rows, "test"))
        how = {"from": "test-data"}
    else:
        count = round(len(train) * TEST_FRACTION)
        if count < len(labels) or len(train) - count < 2 * len(labels):
            raise DataError(f"{rows.path}: {len(train)} rows are too few to hold out a test split; give --test-data")
        train, test = hold_out(train, count, seed, classes=len(labels), proportional=True)
        how = {"from": "data", "fraction": TEST_FRACTION, "seed": seed, "stratified": "proportional"}
    return _dataset(spec, train, test, labels, sources, how, equal_draws=False)


def _test_rows(spec: SourceSpec) -> Rows:
    assert spec.test_data is not None
    if kind_of(spec.test_data) == "aclimdb":
        return _imdb_rows(spec.test_data, spec.label_field or SENTIMENT)[0]["test"]
    return read_rows(spec.test_data, spec.text_field, spec.label_field)


def _imdb_dataset(spec: SourceSpec) -> Dataset:
    label_field = spec.label_field or SENTIMENT
    if spec.text_field not in (None, DEFAULT_TEXT_FIELD):
        raise DataError(f"{spec.data}: aclImdb has no fields; --text-field does not apply")
    splits, _ = _imdb_rows(spec.data, label_field)
    default = LABELS if label_field == SENTIMENT else tuple(name for name, _ in STAR_BINS)
    labels = _label_order(splits["train"], spec.labels, default)
    sources = [_source_info(splits["train"], "data")]
    how: dict[str, Any] = {"from": "aclImdb test"}
    test_rows = splits["test"]
    if spec.test_data is not None:
        test_rows = _test_rows(spec)
        sources.append(_source_info(test_rows, "test"))
        how = {"from": "test-data"}
    equal = label_field == SENTIMENT and labels == LABELS
    data = _dataset(spec, _split(splits["train"], labels), _split(test_rows, labels), labels, sources, how,
                    equal_draws=equal, label_field=label_field)
    members = tuple((where.rsplit("/", 2)[1], where.rsplit("/", 1)[1]) for where in splits["train"].where)
    return replace(data, train_members=members)


def _dataset(spec: SourceSpec, train: Split, test: Split, labels: tuple[str, ...], sources: Sequence[dict],
             how: dict[str, Any], *, equal_draws: bool, label_field: str | None = None) -> Dataset:
    """Assemble the dataset; its fingerprint is what a resumed run must match besides the settings."""
    shas = [s["sha256"] for s in sources]
    sha = shas[0] if len(shas) == 1 else hashlib.sha256("\0".join(shas).encode()).hexdigest()
    text_field = None if sources[0]["kind"] in ("aclimdb", "folder") else spec.text_field or DEFAULT_TEXT_FIELD
    if label_field is None:
        label_field = None if sources[0]["kind"] == "folder" else spec.label_field or DEFAULT_LABEL_FIELD
    plain_imdb = equal_draws and len(sources) == 1
    fingerprint = {} if plain_imdb else {"labels": list(labels), "text_field": text_field,
                                         "label_field": label_field, "test_split": how,
                                         "sources": [s["sha256"] for s in sources]}
    return Dataset(train=train, test=test, labels=labels, sha256=sha, path=str(spec.data), sources=tuple(sources),
                   text_field=text_field, label_field=label_field, test_split=how, equal_draws=equal_draws,
                   fingerprint=fingerprint)


def class_counts(split: Split, labels: Sequence[str]) -> dict[str, int]:
    """Rows per label, in label order."""
    counts = np.bincount(split.labels, minlength=len(labels))
    return {name: int(counts[i]) for i, name in enumerate(labels)}


def balanced_weights(split: Split, labels: Sequence[str]) -> dict[str, float]:
    """``n_rows / (n_classes * rows_of_class)`` per label (scikit-learn's "balanced"); a class without rows
    is a :class:`DataError`."""
    counts = class_counts(split, labels)
    empty = [name for name, n in counts.items() if n == 0]
    if empty:
        raise DataError(f"no training rows of label {', '.join(empty)}: cannot weight it")
    total = sum(counts.values())
    return {name: total / (len(labels) * n) for name, n in counts.items()}


def source_spec(data: str | os.PathLike[str], text_field: str | None = None, label_field: str | None = None,
                labels: str | Sequence[str] | None = None, test_data: str | os.PathLike[str] | None = None
                ) -> SourceSpec:
    """A :class:`SourceSpec` from command-line strings (``labels`` as ``a,b,c`` or a sequence)."""
    order = parse_labels(labels) if isinstance(labels, str) or labels is None else tuple(labels)
    return SourceSpec(Path(data), text_field, label_field, order, Path(test_data) if test_data else None)


def load_test_split(spec: SourceSpec, seed: int) -> tuple[Split, bool]:
    """(test split, equal_draws) of ``spec`` as training made it: ``spec.test_data`` alone when given (every
    row), else the aclImdb test split or the seeded held-out share of ``spec.data``. ``spec.labels`` must be
    the model's labels, in order."""
    if spec.test_data is None:
        data = load_dataset(spec, seed)
        return data.test, data.equal_draws
    rows = _test_rows(spec)
    labels = spec.labels or tuple(sorted(set(rows.names)))
    equal = kind_of(spec.test_data) == "aclimdb" and (spec.label_field or SENTIMENT) == SENTIMENT and labels == LABELS
    return _split(rows, labels), equal
