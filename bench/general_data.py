"""Which rows of ``../shared/data`` the general English sentiment model (issue 21) trains on and is tested on.

One place for the row selection, so that the fastText baseline of ``bench/domains.py`` and the training of
``models/general`` read the same rows (this module has no dependency on bench/ and can move to ``train/``):

- **training** (:func:`training_rows`): every row with ``split == "train"`` and a binary label of
  ``multi/{amazon,yelp,tweets,sst2}.jsonl.gz`` (the tweets' neutral rows left out), plus the aclImdb train
  reviews. ``rt.jsonl.gz`` is not read: 731 of the 872 SST-2 dev sentences are rt rows. A training row whose
  text, as the tokenizer sees it, equals the text of any held-out row (dev or test of any source, aclImdb test)
  is dropped: 129 of 239,705 (123 aclImdb train copies of aclImdb test reviews, 4 SST-2, 2 tweets).
- **held out** (``read_corpus().held_out``): Amazon test, Yelp test, tweets test (binary rows), SST-2 dev and the
  25,000 aclImdb test reviews. The Yelp and tweets dev splits are neither trained on nor reported here.

Labels are ``0`` = negative, ``1`` = positive (:data:`LABELS`, the runtime's order).
"""

from __future__ import annotations

import gzip
import json
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from edge_infer.tokenizer import tokenize
from train.data import default_data_path, read_imdb_items

LABELS = ("negative", "positive")
MULTI_SOURCES = ("amazon", "yelp", "tweets", "sst2")
"""The files of ``multi/`` that are read; ``rt`` is not (it overlaps SST-2 dev)."""
HELD_OUT = (("amazon", "amazon", "test"), ("yelp", "yelp", "test"), ("tweets", "tweets", "test"),
            ("sst2", "sst2", "dev"), ("imdb", "imdb", "test"))
"""(split name, source, split) of each held-out split, in the order of the tables."""
SPLIT_TITLES = {"amazon": "Amazon test", "yelp": "Yelp test", "tweets": "tweets test (binary)",
                "sst2": "SST-2 dev", "imdb": "IMDB test"}


@dataclass(frozen=True)
class Rows:
    """Texts with labels (0 negative, 1 positive) and the source of each row."""

    texts: list[str]
    labels: list[int]
    sources: list[str]

    def __len__(self) -> int:
        return len(self.texts)

    def sample(self, count: int | None, seed: int = 0) -> Rows:
        """A seeded random ``count`` of the rows, in their original order (all rows when ``count`` is None)."""
        if count is None or count >= len(self):
            return self
        keep = sorted(random.Random(seed).sample(range(len(self)), count))
        return Rows([self.texts[i] for i in keep], [self.labels[i] for i in keep], [self.sources[i] for i in keep])


def data_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The shared data folder: ``path``, else the folder of the aclImdb archive (``$EDGE_INFER_DATA`` or
    ``../shared/data/aclImdb_labeled.tar.gz`` beside the repository). It holds ``multi/`` and the archive."""
    return Path(path) if path is not None else default_data_path().parent


def _imdb_archive(path: str | os.PathLike[str] | None) -> Path:
    return default_data_path() if path is None else Path(path) / "aclImdb_labeled.tar.gz"


def available(path: str | os.PathLike[str] | None = None) -> bool:
    """Whether every file the selection reads is there."""
    multi = data_dir(path) / "multi"
    return _imdb_archive(path).exists() and all((multi / f"{n}.jsonl.gz").is_file() for n in MULTI_SOURCES)


@dataclass(frozen=True)
class Corpus:
    """The training rows and the held-out splits by name (binary rows only)."""

    train: Rows
    held_out: dict[str, Rows]
    dropped: int
    """Training rows left out because their text equals a held-out (dev or test) row's."""


def _records(folder: Path, source: str) -> Iterator[dict]:
    with gzip.open(folder / "multi" / f"{source}.jsonl.gz", "rt", encoding="utf-8") as handle:
        for line in handle:
            yield json.loads(line)


def _key(text: str) -> str:
    return " ".join(tokenize(text))


class _Columns:
    def __init__(self) -> None:
        self.texts: list[str] = []
        self.labels: list[int] = []
        self.sources: list[str] = []

    def add(self, text: str, label: int, source: str) -> None:
        self.texts.append(text)
        self.labels.append(label)
        self.sources.append(source)


def read_corpus(path: str | os.PathLike[str] | None = None) -> Corpus:
    """Read the training rows and the held-out splits of issue 21's corpus (see the module's docstring).

    ``path`` is the shared data folder (:func:`data_dir`). Rows keep their file order (nothing is shuffled).
    """
    folder = data_dir(path)
    held = {name: _Columns() for name, _, _ in HELD_OUT}
    wanted = {(source, split): name for name, source, split in HELD_OUT}
    train = _Columns()
    held_keys: set[str] = set()
    for source in MULTI_SOURCES:
        for record in _records(folder, source):
            text, label, split = record["text"], record["label"], record["split"]
            if split != "train":
                held_keys.add(_key(text))
            if label not in LABELS:
                continue
            target = train if split == "train" else held.get(wanted.get((source, split), ""))
            if target is not None:
                target.add(text, LABELS.index(label), source)
    items, _, _ = read_imdb_items(_imdb_archive(path))
    for split, polarity, _, text in items:
        if split != "train":
            held_keys.add(_key(text))
        (train if split == "train" else held["imdb"]).add(text, 1 if polarity == "pos" else 0, "imdb")
    keep = [i for i, text in enumerate(train.texts) if _key(text) not in held_keys]
    rows = Rows([train.texts[i] for i in keep], [train.labels[i] for i in keep], [train.sources[i] for i in keep])
    return Corpus(rows, {name: Rows(c.texts, c.labels, c.sources) for name, c in held.items()},
                  len(train.texts) - len(keep))


def training_rows(path: str | os.PathLike[str] | None = None) -> Rows:
    """Every training row of issue 21's corpus, in file order: what fastText and ``models/general`` train on."""
    return read_corpus(path).train
