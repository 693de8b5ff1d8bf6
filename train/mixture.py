"""Training on several sources in one run (``--data`` given more than once): the general model's recipe.

- The first ``--data`` is the primary source. The run's test split is its own: aclImdb's test split,
  ``--test-data``, or the seeded hold-out, as for a single source. Every training row of it is used.
- Each further ``--data`` (CSV or JSONL, gzipped or not) gives training rows only. With ``--split-field``,
  only its rows whose split is ``train``; dev and test rows never reach training or validation, and any
  training row whose text equals one of them, or a primary test text, is dropped too (counted).
- ``--rate KEY=R`` keeps a seeded share R (0 < R <= 1) of the further sources' training rows whose file name
  or domain (``--domain-field``) is KEY; two matching rates multiply.
- ``--soft-label NAME=P`` (two labels) trains rows labelled NAME towards probability P of the second label
  instead of refusing them, e.g. ``neutral=0.5`` for tweets that are neither. They are kept out of
  validation, the teacher and the n-gram bag.

Validation is then drawn from the pooled training rows (stratified, in proportion). No TensorFlow here.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from train.data import DataError, Split
from train.sources import Dataset, SourceSpec, kind_of, load_dataset, read_rows

TRAIN_SPLIT = "train"


@dataclass(frozen=True)
class Mixture:
    """The options of a multi-source run beyond ``SourceSpec``."""

    extra: tuple[Path, ...] = ()
    split_field: str | None = None
    domain_field: str = "domain"
    rates: tuple[tuple[str, float], ...] = ()
    soft_labels: tuple[tuple[str, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"split_field": self.split_field, "domain_field": self.domain_field,
                "rates": {k: v for k, v in self.rates}, "soft_labels": {k: v for k, v in self.soft_labels}}


def parse_pairs(values: Sequence[str] | None, option: str, *, low: float, high: float,
                low_open: bool = False) -> tuple[tuple[str, float], ...]:
    """``["KEY=VALUE", ...]`` as pairs with VALUE a number in the interval; :class:`DataError` otherwise."""
    pairs: dict[str, float] = {}
    for text in values or ():
        key, sep, value = text.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        inside = (number > low if low_open else number >= low) and number <= high
        if not sep or not key.strip() or not inside:
            interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"
            raise DataError(f"{option} {text!r}: give KEY=VALUE with VALUE a number in {interval}")
        if key.strip() in pairs:
            raise DataError(f"{option}: {key.strip()!r} is given twice")
        pairs[key.strip()] = number
    return tuple(pairs.items())


def _key(text: str) -> str:
    return " ".join(text.split())


def _keep_mask(rows_keys: list[tuple[str, str]], rates: dict[str, float], rng: np.random.Generator) -> np.ndarray:
    """Row i is kept with probability rate(file) * rate(domain) (1 where no rate is given), seeded."""
    chance = np.array([rates.get(name, 1.0) * (rates.get(domain, 1.0) if domain != name else 1.0)
                       for name, domain in rows_keys])
    return rng.random(len(chance)) < chance


def load_mixture(spec: SourceSpec, seed: int) -> Dataset:
    """The primary source's dataset with every further source's training rows added (see the module doc)."""
    mix: Mixture = spec.mix
    base = load_dataset(replace(spec, mix=None), seed)
    labels = base.labels
    soft = dict(mix.soft_labels)
    if soft and len(labels) != 2:
        raise DataError(f"--soft-label needs two labels, not {len(labels)}")
    clash = sorted(set(soft) & set(labels))
    if clash:
        raise DataError(f"--soft-label {clash[0]}: a label of the model cannot also be a soft label")
    rates = dict(mix.rates)
    keep_fields = tuple(f for f in (mix.split_field, mix.domain_field) if f)
    read = []
    for path in mix.extra:
        if kind_of(path) not in ("csv", "jsonl"):
            raise DataError(f"{path}: a further --data source must be a .csv or .jsonl file (may be .gz)")
        read.append(read_rows(path, spec.text_field, spec.label_field, keep=keep_fields))
    held = {_key(t) for t in base.test.texts}
    for rows in read:
        splits = rows.fields.get(mix.split_field or "", [])
        held.update(_key(t) for t, s in zip(rows.texts, splits) if s != TRAIN_SPLIT)
    known = {Path(r.path).name for r in read} | {d for r in read for d in r.fields.get(mix.domain_field, [])}
    unknown = sorted(set(rates) - known)
    if unknown:
        raise DataError(f"--rate {unknown[0]}: no further source file or {mix.domain_field!r} value of that name")

    texts, label_ids = list(base.train.texts), [base.train.labels]
    soft_texts: list[str] = []
    soft_targets: list[float] = []
    index = {name: i for i, name in enumerate(labels)}
    sources = list(base.sources)
    for number, rows in enumerate(read):
        name = Path(rows.path).name
        splits = rows.fields.get(mix.split_field or "", [TRAIN_SPLIT] * len(rows.texts))
        domains = rows.fields.get(mix.domain_field, [""] * len(rows.texts))
        kept = _keep_mask([(name, d or name) for d in domains], rates, np.random.default_rng([seed, number]))
        counts: Counter[str] = Counter()
        source_ids = []
        for text, label, split, where, keep in zip(rows.texts, rows.names, splits, rows.where, kept):
            if split != TRAIN_SPLIT:
                counts["not_train_split"] += 1
            elif _key(text) in held:
                counts["dropped_equal_to_held_out"] += 1
            elif not keep:
                counts["left_out_by_rate"] += 1
            elif label in soft:
                soft_texts.append(text)
                soft_targets.append(soft[label])
                counts[f"soft:{label}"] += 1
            elif label in index:
                texts.append(text)
                source_ids.append(index[label])
                counts[f"train:{label}"] += 1
            else:
                raise DataError(f"{where}: label {label!r} is not one of {', '.join(labels)} "
                                f"(see --labels and --soft-label)")
        label_ids.append(np.array(source_ids, dtype=np.int32))
        sources.append({"role": "train", "kind": rows.kind, "path": rows.path, "sha256": rows.sha256,
                        "rows": len(rows.texts), "skipped_empty": rows.skipped_empty, "counts": dict(sorted(
                            counts.items()))})
    train = Split(texts=texts, labels=np.concatenate(label_ids))
    shas = [s["sha256"] for s in sources]
    fingerprint = {**(base.fingerprint or {"labels": list(labels)}), "sources": shas, "mixture": mix.to_dict()}
    sha = hashlib.sha256("\0".join(shas).encode()).hexdigest()
    return replace(base, train=train, sha256=sha, sources=tuple(sources), equal_draws=False, fingerprint=fingerprint,
                   train_members=None,
                   soft=(soft_texts, np.array(soft_targets, dtype=np.float32)) if soft_texts else None)
