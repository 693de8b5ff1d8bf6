"""Read the labeled aclImdb reviews from a directory or a .tar.gz, without downloading anything."""

from __future__ import annotations

import hashlib
import os
import re
import tarfile
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


def _collect(items: list[tuple[str, str, str, str]], where: str) -> tuple[Split, Split]:
    """items: (split, pos|neg, file name, text); sorted for a deterministic order."""
    items.sort(key=lambda item: item[:3])
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


def _read_archive(path: Path) -> list[tuple[str, str, str, str]]:
    items = []
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                match = _MEMBER.search(member.name)
                if not member.isfile() or not match:
                    continue
                handle = archive.extractfile(member)
                if handle is not None:
                    items.append((*match.groups(), handle.read().decode("utf-8", errors="replace")))
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .tar.gz archive ({exc})") from None
    return items


def _read_directory(path: Path) -> list[tuple[str, str, str, str]]:
    root = path / "aclImdb" if (path / "aclImdb").is_dir() else path
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


def load_imdb(path: str | os.PathLike[str] | None = None) -> Imdb:
    """Load train and test reviews from an aclImdb directory or its .tar.gz (``train/unsup`` ignored)."""
    source = Path(path) if path is not None else default_data_path()
    if not source.exists():
        raise DataError(f"{source}: no such file or directory")
    if source.is_dir():
        items = _read_directory(source)
        train, test = _collect(items, str(source))
        sha = _directory_sha256(items)
    else:
        items = _read_archive(source)
        train, test = _collect(items, str(source))
        sha = file_sha256(source)
    return Imdb(train=train, test=test, sha256=sha, path=str(source))


def stratified_indices(labels: np.ndarray, count: int, seed: int) -> np.ndarray:
    """``count`` indices, half from each class (seeded), in ascending order."""
    rng = np.random.default_rng(seed)
    chosen = []
    for cls, share in ((0, count // 2), (1, count - count // 2)):
        idx = np.flatnonzero(labels == cls)
        chosen.append(rng.choice(idx, size=min(share, len(idx)), replace=False))
    return np.sort(np.concatenate(chosen))


def subset(split: Split, indices: np.ndarray) -> Split:
    return Split(texts=[split.texts[i] for i in indices], labels=split.labels[indices])


def train_validation_split(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """Seeded, stratified hold-out of ``fraction`` of the training reviews for validation."""
    val_idx = stratified_indices(split.labels, max(2, round(len(split) * fraction)), seed)
    mask = np.ones(len(split), dtype=bool)
    mask[val_idx] = False
    return subset(split, np.flatnonzero(mask)), subset(split, val_idx)
