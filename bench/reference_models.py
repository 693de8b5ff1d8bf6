"""The models the benches compare against: exported model folders, VADER and a fastText bigram model.

Each is a :class:`Scorer`: a name, a function from texts to P(positive) and the threshold at which a score
means ``positive``. ``vaderSentiment`` and ``fasttext`` come with the ``bench`` extra and are imported lazily.

- **model folder**: ``SentimentClassifier.load(path).scores``, the manifest's threshold.
- **VADER** (Hutto and Gilbert 2014): score = ``(compound + 1) / 2``, so ``compound >= 0`` (the usual reading,
  and the issue's) is ``score >= 0.5``. VADER has no probabilities; this linear map is what its ECE is of.
- **fastText** (Joulin et al. 2016): supervised, word bigrams (``wordNgrams=2``), otherwise fastText's
  defaults (lr 0.1, dim 100, 5 epochs, 2,000,000 buckets), one thread and a fixed seed, so the same rows give
  the same model. Texts go through the project's tokenizer (lowercase, contractions expanded, punctuation
  dropped except ``!`` and ``?``) and are joined with spaces, for training and for scoring. Rows are shuffled
  (seeded) before training.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import general_data
import numpy as np

from edge_infer.tokenizer import tokenize

ROOT = Path(__file__).resolve().parent.parent
FASTTEXT_SETTINGS = {"wordNgrams": 2, "lr": 0.1, "dim": 100, "epoch": 5, "bucket": 2_000_000, "minCount": 1}
_FT_LABELS = ("__label__negative", "__label__positive")


@dataclass(frozen=True)
class Scorer:
    """Something that scores texts: P(positive) per text, ``positive`` when ``score >= threshold``."""

    name: str
    score: Callable[[Sequence[str]], np.ndarray]
    threshold: float = 0.5


def model_scorer(path: str | os.PathLike[str], name: str | None = None, batch: int = 256) -> Scorer:
    """An exported two-label model folder (fp32), named after its folder unless ``name`` is given."""
    from edge_infer import SentimentClassifier

    clf = SentimentClassifier.load(path)
    if clf.labels != ("negative", "positive"):
        raise ValueError(f"{path}: labels {', '.join(clf.labels)}; the benches need negative, positive")

    def score(texts: Sequence[str]) -> np.ndarray:
        parts = [clf.scores(list(texts[i:i + batch])) for i in range(0, len(texts), batch)]
        return np.concatenate(parts) if parts else np.empty(0)

    return Scorer(name or Path(path).resolve().name, score, clf.threshold)


def shipped_models(root: Path = ROOT / "models") -> list[Path]:
    """Every exported folder under ``models/`` whose labels are ``negative, positive``, by name."""
    found = []
    for manifest in sorted(root.glob("*/manifest.json")):
        try:
            labels = json.loads(manifest.read_text(encoding="utf-8")).get("labels")
        except (OSError, ValueError):
            continue
        if labels == ["negative", "positive"]:
            found.append(manifest.parent)
    return found


class BenchError(Exception):
    """A bench cannot run: a missing package, model or data file; ``code`` is the exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def load_models(paths: Sequence[str | os.PathLike[str]]) -> list[Scorer]:
    """:func:`model_scorer` for each folder; :class:`BenchError` (exit code 3) for one that is refused."""
    from edge_infer import exit_codes
    from edge_infer.model_folder import ModelError

    scorers = []
    for path in paths:
        try:
            scorers.append(model_scorer(path))
        except (ModelError, ValueError) as exc:
            raise BenchError(f"{path}: {exc}", exit_codes.MODEL) from None
    names = [s.name for s in scorers]
    if len(set(names)) != len(names):
        raise BenchError(f"two models share a folder name: {', '.join(names)}", exit_codes.USAGE)
    return scorers


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def parser(description: str | None) -> argparse.ArgumentParser:
    """The options both benches take: --model (repeatable), --data, --train-sample."""
    from edge_infer import exit_codes

    out = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter,
                                  epilog=exit_codes.describe())
    out.add_argument("--model", action="append", default=[], metavar="PATH",
                     help="an exported model folder (repeatable); default: the shipped two-label models")
    out.add_argument("--data", metavar="DIR", help="the shared data folder (default: ../shared/data)")
    out.add_argument("--train-sample", type=positive_int, metavar="N",
                     help="train fastText on a seeded N of its rows")
    return out


def command_line(script: str, argv: Sequence[str] | None) -> str:
    """How the bench was run, for its report: ``python bench/NAME.py ARGS``."""
    return ("python " + script + " " + shlex.join(sys.argv[1:] if argv is None else list(argv))).strip()


def run_bench(prog: str, work: Callable[[], tuple[str, Sequence[tuple[str, str]]]]) -> int:
    """Run a bench's ``work`` (returning the text to print and the ``(path, content)`` files to write), write the
    files atomically and print the text; a :class:`BenchError` or a failed write is one line on stderr."""
    from edge_infer import exit_codes
    from edge_infer.storage import atomic_write_text

    try:
        text, files = work()
    except BenchError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return exc.code
    for path, content in files:
        try:
            atomic_write_text(path, content)
        except OSError as exc:
            print(f"{prog}: {path}: cannot write ({exc.strerror or exc})", file=sys.stderr)
            return exit_codes.USAGE
    print(text)
    return exit_codes.OK


def require(module: str) -> None:
    """:class:`BenchError` (exit code 2) naming the ``bench`` extra when ``module`` is not installed."""
    import importlib.util

    from edge_infer import exit_codes

    if importlib.util.find_spec(module) is None:
        raise BenchError(f"{module} is not installed: pip install -e '.[bench]'", exit_codes.USAGE)


def requested_models(paths: Sequence[str | os.PathLike[str]]) -> list[Scorer]:
    """The folders given with --model, else every shipped two-label model; loaded and verified."""
    from edge_infer import exit_codes

    models = list(paths) or shipped_models()
    if not models:
        raise BenchError("no model: pass --model PATH", exit_codes.USAGE)
    return load_models(models)


def read_corpus(data: str | None) -> general_data.Corpus:
    """``general_data.read_corpus``, or :class:`BenchError` (exit code 2) naming what is missing or unreadable."""
    from edge_infer import exit_codes
    from train.data import DataError

    where = general_data.data_dir(data)
    if not general_data.available(data):
        raise BenchError(f"{where}: the data is not there (multi/*.jsonl.gz, aclImdb_labeled.tar.gz); see --data",
                         exit_codes.USAGE)
    try:
        return general_data.read_corpus(data)
    except (OSError, ValueError, KeyError, DataError) as exc:
        raise BenchError(f"{where}: cannot read the data ({exc})", exit_codes.USAGE) from None


def vader_scorer() -> Scorer:
    """VADER's compound score mapped to ``(compound + 1) / 2``."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()

    def score(texts: Sequence[str]) -> np.ndarray:
        return np.array([(analyzer.polarity_scores(t)["compound"] + 1.0) / 2.0 for t in texts], dtype=np.float64)

    return Scorer("VADER", score, 0.5)


def fasttext_text(text: str) -> str:
    """A text as fastText reads it here: the project's tokens, joined with single spaces."""
    return " ".join(tokenize(text))


def train_fasttext(texts: Sequence[str], labels: Sequence[int], *, seed: int = 0, threads: int = 1,
                   name: str = "fastText") -> Scorer:
    """Train the fastText bigram model on ``texts`` (labels 0 negative, 1 positive), shuffled with ``seed``."""
    import fasttext

    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    handle, path = tempfile.mkstemp(suffix=".txt", prefix="fasttext-train-")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            for i in order:
                out.write(f"{_FT_LABELS[labels[i]]} {fasttext_text(texts[i])}\n")
        model = fasttext.train_supervised(path, thread=threads, seed=seed, verbose=0, **FASTTEXT_SETTINGS)
    finally:
        os.unlink(path)

    def score(batch: Sequence[str]) -> np.ndarray:
        if not batch:
            return np.empty(0)
        found, probabilities = model.predict([fasttext_text(t) for t in batch], k=2)
        positive = [dict(zip(names, probs)).get(_FT_LABELS[1], 0.0) for names, probs in zip(found, probabilities)]
        return np.clip(np.array(positive, dtype=np.float64), 0.0, 1.0)  # fastText's softmax can pass 1 by ~1e-5

    return Scorer(name, score, 0.5)
