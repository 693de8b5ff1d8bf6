"""``python -m train``: train a sentiment model from the aclImdb reviews.

Exit codes: 0 done, 2 usage error or unreadable dataset, 1 unexpected failure.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from train.data import DataError, default_data_path
from train.presets import PRESETS


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m train",
        description="Train the IMDB sentiment BiLSTM. Writes model.keras, vocab.txt, training_report.json and "
        "training_curves.png to --out. Killed mid-run? Run the same command again: it resumes from the last "
        "finished epoch.",
        epilog="Exit codes: 0 success, 2 bad arguments or dataset, 1 unexpected error.",
    )
    p.add_argument("--data", default=str(default_data_path()),
                   help="aclImdb folder or its .tar.gz (default: %(default)s, or $EDGE_INFER_DATA)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="default", help="base recipe (default: %(default)s)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--epochs", type=int)
    p.add_argument("--max-samples", type=int, help="stratified subset of N train and N test reviews (smoke runs)")
    p.add_argument("--vocab-size", type=int)
    p.add_argument("--max-len", type=int)
    p.add_argument("--cell", choices=["lstm", "gru"])
    p.add_argument("--units", type=int)
    p.add_argument("--embedding-dim", type=int)
    p.add_argument("--embedding-dropout", type=float, help="SpatialDropout1D rate on the embeddings (0: none)")
    p.add_argument("--dropout", type=float)
    p.add_argument("--max-norm", type=float, help="MaxNorm kernel constraint on the recurrent and dense layers")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--learning-rate", type=float, help="Adam learning rate")
    p.add_argument("--weight-decay", type=float, help="decoupled weight decay in Adam (AdamW style)")
    p.add_argument("--patience", type=int, help="EarlyStopping patience on validation loss")
    p.add_argument("--seed", type=int)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if k not in ("data", "preset", "out")}
    settings = PRESETS[args.preset].with_overrides(**overrides)
    if settings.max_samples is not None and settings.max_samples < 20:
        print("error: --max-samples must be at least 20", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from train.run import train

    try:
        report = train(args.data, args.out, settings, args.preset)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"test accuracy {report['test_accuracy']:.4f} ({report['data']['test_reviews']} reviews), "
          f"{report['wall_time_s']:.0f} s; artifacts in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
