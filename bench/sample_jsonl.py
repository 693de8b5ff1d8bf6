"""Write a seeded, stratified sample of aclImdb reviews as JSONL (``text``, ``label``) for evaluate and predict.

    python bench/sample_jsonl.py --split test --count 500 --out /tmp/test500.jsonl
    edge-infer evaluate --jsonl /tmp/test500.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from train.data import LABELS, default_data_path, load_imdb, stratified_indices, subset  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(default_data_path()), help="aclImdb folder or .tar.gz")
    p.add_argument("--split", choices=("train", "test"), default="test")
    p.add_argument("--count", type=int, default=500)
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    imdb = load_imdb(args.data)
    split = imdb.test if args.split == "test" else imdb.train
    sample = subset(split, stratified_indices(split.labels, args.count, args.seed))
    with open(args.out, "w", encoding="utf-8") as handle:
        for text, label in zip(sample.texts, sample.labels):
            handle.write(json.dumps({"text": text, "label": LABELS[int(label)]}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
