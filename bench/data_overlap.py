"""Count duplicate reviews across the aclImdb splits: train vs test, unlabelled vs test, and within train.

    python bench/data_overlap.py [--labeled PATH] [--unsup PATH]

Reads both archives with ``tarfile`` (nothing is extracted or downloaded). Two reviews are duplicates when
their texts are equal after stripping leading and trailing whitespace. Also counts the movies (IMDb title
ids in ``urls_{pos,neg}.txt``) that train and test share. Standard library only.
Exit codes: 0 counts printed, 2 an archive is missing or unreadable.
"""

from __future__ import annotations

import argparse
import re
import sys
import tarfile
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA = REPO_ROOT.parent / "shared" / "data"
# aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt and aclImdb/train/unsup/<id>_0.txt
_LABELED = re.compile(r"(?:^|/)(train|test)/(pos|neg)/[^/]+\.txt$")
_UNSUP = re.compile(r"(?:^|/)train/(unsup)/[^/]+\.txt$")
_URLS = re.compile(r"(?:^|/)(train|test)/urls_(?:pos|neg)\.txt$")
_TITLE = re.compile(r"tt\d+")


def read_reviews(path: Path, pattern: re.Pattern[str]) -> list[tuple[str, str, str]]:
    """(split, label, stripped text) for every archive member whose name matches ``pattern``."""
    reviews = []
    with tarfile.open(path, "r:*") as archive:
        for member in archive:
            match = pattern.search(member.name)
            if not member.isfile() or not match:
                continue
            handle = archive.extractfile(member)
            if handle is None:
                continue
            text = handle.read().decode("utf-8", errors="replace").strip()
            split, label = (match.group(1), match.group(2)) if pattern.groups == 2 else ("unsup", "")
            reviews.append((split, label, text))
    return reviews


def read_movies(path: Path) -> dict[str, set[str]]:
    """IMDb title ids per split, from the labelled archive's ``{train,test}/urls_{pos,neg}.txt``."""
    movies: dict[str, set[str]] = {"train": set(), "test": set()}
    with tarfile.open(path, "r:*") as archive:
        for member in archive:
            match = _URLS.search(member.name)
            handle = archive.extractfile(member) if member.isfile() and match else None
            if handle is not None:
                movies[match.group(1)].update(_TITLE.findall(handle.read().decode("ascii", errors="replace")))
    return movies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/data_overlap.py", description=__doc__.splitlines()[0])
    parser.add_argument("--labeled", type=Path, default=DATA / "aclImdb_labeled.tar.gz",
                        metavar="PATH", help="archive with aclImdb/{train,test}/{pos,neg} (default: %(default)s)")
    parser.add_argument("--unsup", type=Path, default=DATA / "aclImdb_unsup.tar.gz",
                        metavar="PATH", help="archive with aclImdb/train/unsup (default: %(default)s)")
    args = parser.parse_args(argv)

    try:
        labeled = read_reviews(args.labeled, _LABELED)
        unsup = [text for _, _, text in read_reviews(args.unsup, _UNSUP)]
        movies = read_movies(args.labeled)
    except (OSError, tarfile.TarError, EOFError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    train = [(label, text) for split, label, text in labeled if split == "train"]
    test = [(label, text) for split, label, text in labeled if split == "test"]
    test_labels: dict[str, set[str]] = {}
    for label, text in test:
        test_labels.setdefault(text, set()).add(label)

    train_in_test = [(label, text) for label, text in train if text in test_labels]
    same_label = sum(1 for label, text in train_in_test if test_labels[text] == {label})
    unsup_in_test = [text for text in unsup if text in test_labels]
    train_counts = Counter(text for _, text in train)
    train_dups = {text: n for text, n in train_counts.items() if n > 1}
    train_dup_labels: dict[str, set[str]] = {}
    for label, text in train:
        if text in train_dups:
            train_dup_labels.setdefault(text, set()).add(label)
    conflicting = sum(1 for labels in train_dup_labels.values() if len(labels) > 1)

    print(f"labelled archive: {args.labeled}")
    print(f"unlabelled archive: {args.unsup}")
    print(f"reviews: train {len(train)}, test {len(test)}, unlabelled {len(unsup)}")
    print(f"(a) train reviews whose text equals a test review: {len(train_in_test)} "
          f"({len({text for _, text in train_in_test})} distinct texts; same label in train and test: {same_label})")
    print(f"(b) unlabelled reviews whose text equals a test review: {len(unsup_in_test)} "
          f"({len(set(unsup_in_test))} distinct texts)")
    print(f"(c) texts that occur more than once within train: {len(train_dups)} distinct texts in "
          f"{sum(train_dups.values())} reviews ({sum(train_dups.values()) - len(train_dups)} extra copies; "
          f"{conflicting} with both labels)")
    print(f"(d) movies in train {len(movies['train'])}, in test {len(movies['test'])}, in both: "
          f"{len(movies['train'] & movies['test'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
