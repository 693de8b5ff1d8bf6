"""The unlabelled aclImdb reviews (``aclImdb/train/unsup/*.txt``), with every copy of a test review dropped.

No test text may reach pretraining: 270 of the 50,000 unlabelled files (266 distinct texts) are verbatim
copies of test reviews (equal after stripping leading and trailing whitespace). :func:`drop_test_copies`
removes every unlabelled text that equals any test review; the count dropped goes in the report.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from edge_infer.storage import file_sha256
from train.data import ARCHIVE_ERRORS, DataError, archive_texts, imdb_root

DEFAULT_UNLABELED = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "aclImdb_unsup.tar.gz"
_MEMBER = re.compile(r"(?:^|/)train/unsup/([^/]+\.txt)$")


@dataclass(frozen=True)
class Unlabeled:
    """Unlabelled reviews in file-name order, test copies already dropped."""

    texts: list[str]
    names: list[str]
    sha256: str
    path: str
    dropped_test_copies: int


def default_unlabeled_path() -> Path:
    """``$EDGE_INFER_UNLABELED`` if set, else ``../shared/data/aclImdb_unsup.tar.gz`` beside the repo."""
    return Path(os.environ.get("EDGE_INFER_UNLABELED", DEFAULT_UNLABELED))


def _read(source: Path) -> tuple[list[tuple[str, str]], str]:
    if source.is_dir():
        root = imdb_root(source)
        files = sorted((root / "train" / "unsup").glob("*.txt"))
        items = [(f.name, f.read_text(encoding="utf-8", errors="replace")) for f in files]
        digest = hashlib.sha256()
        for name, text in items:
            digest.update(f"{name}\0{text}\0".encode())
        return items, digest.hexdigest()
    try:
        items = [(match.group(1), text) for match, text in archive_texts(source, _MEMBER)]
    except ARCHIVE_ERRORS as exc:
        raise DataError(f"{source}: not a readable .tar.gz archive ({exc})") from None
    return sorted(items), file_sha256(source)


def drop_test_copies(texts: Iterable[str], test_texts: Iterable[str]) -> tuple[list[int], int]:
    """(indices of ``texts`` to keep, count dropped): a text is dropped when, stripped, it equals a stripped
    test text."""
    test = {text.strip() for text in test_texts}
    keep, dropped = [], 0
    for index, text in enumerate(texts):
        if text.strip() in test:
            dropped += 1
        else:
            keep.append(index)
    return keep, dropped


def load_unlabeled(path: str | os.PathLike[str] | None, test_texts: Iterable[str]) -> Unlabeled:
    """Read ``train/unsup/*.txt`` from an aclImdb folder or archive and drop every copy of a test review."""
    source = Path(path) if path is not None else default_unlabeled_path()
    if not source.exists():
        raise DataError(f"{source}: no such file or directory (the unlabelled aclImdb reviews)")
    items, sha = _read(source)
    if not items:
        raise DataError(f"{source}: no train/unsup/*.txt reviews; is this the unlabelled aclImdb archive?")
    keep, dropped = drop_test_copies((text for _, text in items), test_texts)
    return Unlabeled(texts=[items[i][1] for i in keep], names=[items[i][0] for i in keep], sha256=sha,
                     path=str(source), dropped_test_copies=dropped)
