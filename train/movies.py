"""Movie-grouped validation (``--validation movie``): hold out whole movies, as the test split does.

aclImdb's ``urls_{pos,neg}.txt`` give, on line i, the IMDb page of review ``i_<rating>.txt``; the title id
(``tt0453418``) names the movie. The test split's movies are disjoint from the training split's (1 shared
of about 3,500), so a validation split that shares movies with the fit split flatters the model: it holds
out whole movies instead.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from train.data import ARCHIVE_ERRORS, DataError, Split, archive_texts, imdb_root

_URLS = re.compile(r"(?:^|/)(train|test)/urls_(pos|neg)\.txt$")
_TITLE = re.compile(r"/title/(tt\d+)")


def _movie(url: str) -> str:
    match = _TITLE.search(url)
    return match.group(1) if match else url.strip()


def read_movie_lists(path: str | os.PathLike[str]) -> dict[tuple[str, str], list[str]]:
    """(split, pos|neg) -> movie id per review id (line number), from an aclImdb folder or archive."""
    source = Path(path)
    lists: dict[tuple[str, str], list[str]] = {}
    try:
        if source.is_dir():
            root = imdb_root(source)
            for split in ("train", "test"):
                for polarity in ("pos", "neg"):
                    file = root / split / f"urls_{polarity}.txt"
                    if file.is_file():
                        lists[split, polarity] = [_movie(u) for u in file.read_text().splitlines()]
        else:
            for match, text in archive_texts(source, _URLS):
                lists[match.group(1), match.group(2)] = [_movie(u) for u in text.splitlines()]
    except ARCHIVE_ERRORS as exc:
        raise DataError(f"{source}: cannot read the urls_*.txt files ({exc})") from None
    return lists


def review_movies(path: str | os.PathLike[str], split: str, members: list[tuple[str, str]]) -> list[str]:
    """The movie of each review, given as (pos|neg, file name ``<id>_<rating>.txt``)."""
    lists = read_movie_lists(path)
    movies = []
    for polarity, name in members:
        urls = lists.get((split, polarity))
        if urls is None:
            raise DataError(f"{path}: no {split}/urls_{polarity}.txt; --validation movie needs aclImdb's urls files")
        try:
            movies.append(urls[int(name.split("_", 1)[0])])
        except (ValueError, IndexError):
            raise DataError(f"{path}: {split}/{polarity}/{name} has no line in urls_{polarity}.txt") from None
    return movies


def movie_hold_out(split: Split, movies: list[str], fraction: float, seed: int, classes: int = 2
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(fit indices, held-out indices): whole movies, drawn in a seeded order, until each class holds about
    ``fraction`` of its reviews. A movie that would take a class past its share is passed over, so no
    movie is on both sides and the classes keep their proportions (within a movie's reviews)."""
    if len(movies) != len(split):
        raise ValueError("one movie per review")
    names, group = np.unique(np.asarray(movies), return_inverse=True)
    counts = np.zeros((len(names), classes), dtype=np.int64)
    np.add.at(counts, (group, split.labels), 1)
    target = np.round(np.bincount(split.labels, minlength=classes) * fraction).astype(np.int64)
    taken = np.zeros(classes, dtype=np.int64)
    chosen = np.zeros(len(names), dtype=bool)
    for movie in np.random.default_rng([seed, 3]).permutation(len(names)):
        if (taken >= target).all():
            break
        if (taken + counts[movie] <= target).all():
            chosen[movie] = True
            taken += counts[movie]
    held = chosen[group]
    return np.flatnonzero(~held), np.flatnonzero(held)
