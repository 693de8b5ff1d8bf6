"""Read the labeled aclImdb reviews from a directory or a .tar.gz, without downloading anything."""

from __future__ import annotations

import hashlib
import os
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_infer.storage import file_sha256

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "aclImdb_labeled.tar.gz"
LABELS = ("negative", "positive")
# aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt ; train/unsup is ignored.
_MEMBER = re.compile(r"(?:^|/)(train|test)/(pos|neg)/([^/]+\.txt)$")


class DataError(Exception):
    """The dataset path is missing or is not an aclImdb layout."""


@dataclass(frozen=True)
class Split:
    texts: list[str]
    labels: np.ndarray  # int32, 1 = positive

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class Imdb:
    train: Split
    test: Split
    sha256: str
    path: str


def default_data_path() -> Path:
    """``$EDGE_INFER_DATA`` if set, else ``../shared/data/aclImdb_labeled.tar.gz`` beside the repo."""
    return Path(os.environ.get("EDGE_INFER_DATA", DEFAULT_DATA))


def imdb_root(folder: Path) -> Path:
    """The folder that holds ``train/`` and ``test/``: ``folder/aclImdb`` if there is one, else ``folder``."""
    return folder / "aclImdb" if (folder / "aclImdb").is_dir() else folder


def _collect(items: list[tuple[str, str, str, str]], where: str) -> tuple[Split, Split]:
    """items: (split, pos|neg, file name, text), sorted (:func:`read_imdb_items`)."""
    splits = {}
    for name in ("train", "test"):
        chosen = [item for item in items if item[0] == name]
        for polarity in ("pos", "neg"):
            if not any(item[1] == polarity for item in chosen):
                raise DataError(f"{where}: no {name}/{polarity}/*.txt reviews; is this an aclImdb folder or archive?")
        splits[name] = Split(
            texts=[item[3] for item in chosen],
            labels=np.array([1 if item[1] == "pos" else 0 for item in chosen], dtype=np.int32),
        )
    return splits["train"], splits["test"]


ARCHIVE_ERRORS = (tarfile.TarError, OSError, EOFError)
"""What reading a damaged or unreadable archive raises (:func:`archive_texts`)."""


def archive_texts(path: Path, pattern: re.Pattern[str]) -> Iterator[tuple[re.Match[str], str]]:
    """(match, UTF-8 text, errors replaced) of each file in the tar archive whose name ``pattern`` matches.

    Raises one of :data:`ARCHIVE_ERRORS` for an archive that cannot be read; the caller words the error.
    """
    with tarfile.open(path, "r:*") as archive:
        for member in archive:
            match = pattern.search(member.name)
            handle = archive.extractfile(member) if match and member.isfile() else None
            if match and handle is not None:
                yield match, handle.read().decode("utf-8", errors="replace")


def _read_archive(path: Path) -> list[tuple[str, str, str, str]]:
    try:
        return [(*match.groups(), text) for match, text in archive_texts(path, _MEMBER)]
    except ARCHIVE_ERRORS as exc:
        raise DataError(f"{path}: not a readable .tar.gz archive ({exc})") from None


def _read_directory(path: Path) -> list[tuple[str, str, str, str]]:
    root = imdb_root(path)
    items = []
    for split in ("train", "test"):
        for polarity in ("pos", "neg"):
            for file in (root / split / polarity).glob("*.txt"):
                items.append((split, polarity, file.name, file.read_text(encoding="utf-8", errors="replace")))
    return items


def _directory_sha256(items: list[tuple[str, str, str, str]]) -> str:
    digest = hashlib.sha256()
    for split, polarity, name, text in items:
        digest.update(f"{split}/{polarity}/{name}\0{text}\0".encode())
    return digest.hexdigest()


def read_imdb_items(path: str | os.PathLike[str] | None = None) -> tuple[list[tuple[str, str, str, str]], str, str]:
    """(items, sha256, path): every labelled review as (split, pos|neg, file name, text), sorted.

    The sha256 is the archive's, or for a folder a digest of the names and texts.
    """
    source = Path(path) if path is not None else default_data_path()
    if not source.exists():
        raise DataError(f"{source}: no such file or directory")
    if source.is_dir():
        items = _read_directory(source)
        sha = _directory_sha256(items)
    else:
        items = _read_archive(source)
        sha = file_sha256(source)
    items.sort(key=lambda item: item[:3])
    return items, sha, str(source)


def load_imdb(path: str | os.PathLike[str] | None = None) -> Imdb:
    """Load train and test reviews from an aclImdb directory or its .tar.gz (``train/unsup`` ignored)."""
    items, sha, where = read_imdb_items(path)
    train, test = _collect(items, where)
    return Imdb(train=train, test=test, sha256=sha, path=where)


def rating(file_name: str) -> int:
    """The star rating in an aclImdb file name (``123_8.txt`` -> 8)."""
    try:
        return int(file_name.rsplit(".", 1)[0].rsplit("_", 1)[1])
    except (IndexError, ValueError):
        raise DataError(f"{file_name}: not an aclImdb review name <id>_<rating>.txt") from None


def _shares(counts: list[int], count: int, proportional: bool) -> list[int]:
    """How many of ``count`` each class gives: equal shares (the last class takes the remainder), or
    shares proportional to ``counts`` (largest remainders; ties go to the later class)."""
    n = len(counts)
    if not proportional:
        return [count // n] * (n - 1) + [count - (n - 1) * (count // n)]
    total = sum(counts)
    exact = [count * c / total for c in counts]
    shares = [int(e) for e in exact]
    order = sorted(range(n), key=lambda i: (exact[i] - shares[i], i), reverse=True)
    for i in order[: count - sum(shares)]:
        shares[i] += 1
    return shares


def stratified_indices(labels: np.ndarray, count: int, seed: int, *, classes: int | None = None,
                       proportional: bool = False) -> np.ndarray:
    """``count`` seeded indices in ascending order, drawn class by class: equal shares per class (as for
    the balanced aclImdb), or ``proportional`` to the class sizes. A share is capped by its class size.

    ``classes`` defaults to 2 (labels 0 and 1); with two classes and equal shares this is the original draw.
    """
    rng = np.random.default_rng(seed)
    n = classes if classes is not None else 2
    members = [np.flatnonzero(labels == cls) for cls in range(n)]
    chosen = []
    for idx, share in zip(members, _shares([len(m) for m in members], count, proportional)):
        chosen.append(rng.choice(idx, size=min(share, len(idx)), replace=False))
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def subset(split: Split, indices: np.ndarray) -> Split:
    return Split(texts=[split.texts[i] for i in indices], labels=split.labels[indices])


def train_validation_split(split: Split, fraction: float, seed: int, *, classes: int | None = None,
                           proportional: bool = False) -> tuple[Split, Split]:
    """Seeded, stratified hold-out of ``fraction`` of the training reviews for validation."""
    return hold_out(split, max(2, round(len(split) * fraction)), seed, classes=classes, proportional=proportional)


def hold_out(split: Split, count: int, seed: int, *, classes: int | None = None,
             proportional: bool = False) -> tuple[Split, Split]:
    """(rest, held out): a seeded stratified draw of ``count`` rows, and every other row."""
    held = stratified_indices(split.labels, count, seed, classes=classes, proportional=proportional)
    mask = np.ones(len(split), dtype=bool)
    mask[held] = False
    return subset(split, np.flatnonzero(mask)), subset(split, held)
