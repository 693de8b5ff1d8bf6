"""``tokenize_with_offsets`` against ``tokenize`` on many real texts: same tokens, how often a normalization
step could not be split (its output then tied to the whole text), and the cost.

    python bench/offsets.py [--per-source 20000] [--fuzz 20000] [--against OLD/edge_infer/tokenizer.py]

Texts: all labelled aclImdb reviews, up to ``--per-source`` rows of each ``../shared/data/multi/*.jsonl.gz``,
the hard cases and ``--fuzz`` fuzz strings of web/make_vectors.py. ``--against``: another copy of
tokenizer.py (e.g. main's) whose ``tokenize`` must give the same tokens. Prints one line per check.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import itertools
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "web"))

import make_vectors  # noqa: E402

from edge_infer.tokenizer import _mapped_normalize, normalize, tokenize, tokenize_with_offsets  # noqa: E402
from train.data import default_data_path  # noqa: E402


def load_other(path: Path):
    spec = importlib.util.spec_from_file_location("other_tokenizer", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["other_tokenizer"] = module  # dataclasses look the module up
    spec.loader.exec_module(module)
    return module


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=default_data_path())
    p.add_argument("--per-source", type=int, default=20000)
    p.add_argument("--fuzz", type=int, default=20000)
    p.add_argument("--against", type=Path)
    args = p.parse_args()
    sources = {"aclImdb labelled": [text for _, text in make_vectors.member_texts(args.data)]}
    for path in sorted((args.data.parent / "multi").glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            sources[path.name] = [json.loads(line)["text"] for line in itertools.islice(handle, args.per_source)]
    sources["hard cases"] = [text for _, text in make_vectors.CASES]
    sources["fuzz"] = make_vectors.fuzz_texts(args.fuzz, 3)
    other = load_other(args.against) if args.against else None
    for name, texts in sources.items():
        differ = coarse = other_differ = 0
        started = time.perf_counter()
        for text in texts:
            mapped = _mapped_normalize(text)
            coarse += mapped.coarse
            differ += mapped.s != normalize(text) or tokenize_with_offsets(text)[0] != tokenize(text)
        offsets_s = time.perf_counter() - started
        started = time.perf_counter()
        for text in texts:
            tokenize(text)
        tokenize_s = time.perf_counter() - started
        if other is not None:
            other_differ = sum(other.tokenize(text) != tokenize(text) for text in texts)
        line = (f"{name}: {len(texts)} texts, tokens differ {differ}, steps tied to the whole text {coarse}, "
                f"offsets {offsets_s / len(texts) * 1e6:.0f} us/text (with the checks) vs tokenize "
                f"{tokenize_s / len(texts) * 1e6:.0f} us")
        if other is not None:
            line += f", tokenize differs from {args.against}: {other_differ}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
