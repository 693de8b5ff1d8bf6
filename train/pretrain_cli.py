"""``python -m train pretrain``: the command line of :mod:`train.pretrain`."""

from __future__ import annotations

import argparse
import sys

from edge_infer import exit_codes
from train.cli_common import OneLineParser, run_stage
from train.data import default_data_path
from train.pretrain_settings import PRETRAIN_PRESET
from train.unlabeled import default_unlabeled_path

DESCRIPTION = """\
Pretrain the classifier's embedding and BiLSTM as two language models (forward: next word; backward:
previous word) on the labelled training reviews plus the unlabelled ones. Every text equal to a test
review is dropped first (the test split is read only to find them). Writes encoder.npz, vocab.txt,
pretrain_curves.png and, last, pretrain_report.json (settings, data sha256, counts, times, curve) to
--out. Then: python -m train --pretrained OUT ...

Killed mid-run? Run the same command again: it resumes from the last finished epoch. A checkpoint of
other settings or data is refused; add --restart to discard it."""


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m train pretrain", description=DESCRIPTION, epilog=exit_codes.describe(),
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    d = PRETRAIN_PRESET
    p.add_argument("--data", default=str(default_data_path()),
                   help="the labelled aclImdb folder or .tar.gz (default: %(default)s, or $EDGE_INFER_DATA)")
    p.add_argument("--unlabeled", default=str(default_unlabeled_path()),
                   help="folder or .tar.gz with aclImdb/train/unsup/*.txt (default: %(default)s, or "
                        "$EDGE_INFER_UNLABELED)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--restart", action="store_true", help="discard the checkpoint of an interrupted run")
    p.add_argument("--force", action="store_true", help="write into an --out holding files pretraining does "
                                                        "not write")
    p.add_argument("--epochs", type=int, help=f"(default: {d.epochs}; early stopping on held-out loss)")
    p.add_argument("--max-reviews", type=int, help="a seeded subset of N reviews (smoke runs)")
    p.add_argument("--vocab-size", type=int, help=f"(default: {d.vocab_size})")
    p.add_argument("--embedding-dim", type=int, help=f"(default: {d.embedding_dim})")
    p.add_argument("--units", type=int, help=f"LSTM units per direction (default: {d.units})")
    p.add_argument("--chunk-len", type=int, help=f"tokens per training piece (default: {d.chunk_len})")
    p.add_argument("--negatives", type=int, help=f"sampled-softmax negatives (default: {d.negatives})")
    p.add_argument("--batch-size", type=int, help=f"(default: {d.batch_size})")
    p.add_argument("--learning-rate", type=float, help=f"Adam learning rate (default: {d.learning_rate:g})")
    p.add_argument("--patience", type=int, help=f"early-stopping patience on held-out loss (default: {d.patience})")
    p.add_argument("--seed", type=int, help=f"(default: {d.seed})")
    return p


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    own = ("data", "unlabeled", "out", "restart", "force")
    settings = PRETRAIN_PRESET.with_overrides(**{k: v for k, v in vars(args).items() if k not in own})

    def stage():
        from train.pretrain import pretrain

        return pretrain(args.data, args.unlabeled, args.out, settings, restart=args.restart, force=args.force)

    code, report = run_stage(settings, stage)
    if report is None:
        return code
    print(f"pretrained on {report['data']['fit_reviews']} reviews, held-out loss {report['validation_loss']:.4f} "
          f"(epoch {report['best_epoch']}), {report['wall_time_s']:.0f} s; artifacts in {args.out}",
          file=sys.stdout)
    return exit_codes.OK
