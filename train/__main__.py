"""``python -m train``: train a text classifier from aclImdb or from your own labelled text.

``--data`` is aclImdb (folder or .tar.gz), a CSV or JSONL file, or a folder with one subfolder of .txt
files per label (see ``train.sources``).

Settings, the ``--out`` folder, the dataset and any checkpoint in ``--out`` are checked before TensorFlow
is imported. A run killed mid-way resumes from its last finished epoch when the same command is run again;
a checkpoint of other settings or data is refused (``--restart`` discards it).

Exit codes (``edge_infer.exit_codes``): 0 done; 2 bad option value, unusable dataset or ``--out`` folder,
or a checkpoint of other settings; 4 unexpected error (one line, no traceback); 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from edge_infer import exit_codes
from train import run
from train.cli_common import OneLineParser, run_stage
from train.data import default_data_path
from train.mixture import Mixture, parse_pairs
from train.presets import PRESETS
from train.sources import source_spec

DESCRIPTION = """\
Train the BiLSTM text classifier (`python -m train pretrain --help`: pretrain its embedding and BiLSTM
on unlabelled text first). Writes model.keras, vocab.txt, training_report.json and
training_curves.png to --out.

--data is aclImdb (folder or .tar.gz; labels negative, positive, or with --label-field stars the
classes 1-2, 3-4, 7-8, 9-10), a .csv (header row; RFC 4180) or .jsonl file with --text-field and
--label-field columns, or a folder with one subfolder of .txt files per label. Without --test-data a
seeded, stratified 20 % of a CSV/JSONL/folder source is held out as the test split (aclImdb keeps its
own test split), read once after training. Two labels train a sigmoid head, three or more a softmax.
A malformed row stops the run (exit 2, naming file and line); rows with empty text are skipped and
counted in the report.

Killed mid-run? Run the same command again: it resumes from the last finished epoch, and ends as
the uninterrupted run would. A checkpoint left by a run with other settings or data is refused;
add --restart to discard it. An --out holding an exported model (manifest.json) or files that
training does not write is refused; add --force to train into it anyway (removes the exported
model's files, manifest.json first)."""


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m train", description=DESCRIPTION, epilog=exit_codes.describe(),
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", action="append",
                   help="aclImdb folder or .tar.gz, FILE.csv, FILE.jsonl (either may be .gz), or FOLDER/<label>/*.txt "
                        f"(default: {default_data_path()}, or $EDGE_INFER_DATA). Give it again to add training rows "
                        "from more CSV/JSONL sources; the first one's test split stays the run's test split")
    p.add_argument("--split-field", help="CSV column / JSON key naming each row's split: only rows whose value is "
                                         "'train' are trained on; dev/test rows (and training rows equal to them) "
                                         "never reach training or validation")
    p.add_argument("--domain-field", default="domain",
                   help="CSV column / JSON key naming a row's domain, for --rate (default: %(default)s)")
    p.add_argument("--rate", action="append", metavar="KEY=R",
                   help="keep a seeded share R in (0, 1] of the further sources' training rows whose file name or "
                        "domain is KEY, e.g. twitter/sentiment140=0.3 (repeatable)")
    p.add_argument("--soft-label", action="append", metavar="NAME=P",
                   help="two labels: train rows labelled NAME towards probability P of the second label instead "
                        "of refusing them, e.g. neutral=0.5 (repeatable)")
    p.add_argument("--text-field", help="CSV column / JSON key of the text (default: text)")
    p.add_argument("--label-field", help="CSV column / JSON key of the label (default: label); for aclImdb "
                                         "sentiment (default) or stars")
    p.add_argument("--labels", help="label order, comma-separated, e.g. bad,meh,good (default: sorted; "
                                    "aclImdb: negative,positive); every row's label must be one of them")
    p.add_argument("--test-data", help="a separate labelled test source (same fields); default: hold out 20 %% "
                                       "of --data (aclImdb: its test split)")
    p.add_argument("--class-weight", choices=["balanced"],
                   help="weight the loss by n_rows / (n_labels * rows_of_label) of the fit split (default: none)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="default", help="base recipe (default: %(default)s)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--restart", action="store_true",
                   help="discard the checkpoint of an interrupted run in --out and start over")
    p.add_argument("--force", action="store_true",
                   help="train into an --out holding an exported model (its files are removed) or foreign files")
    p.add_argument("--epochs", type=int)
    p.add_argument("--max-samples", type=int, help="stratified subset of N train and N test reviews (smoke runs)")
    p.add_argument("--vocab-size", type=int)
    p.add_argument("--max-len", type=int)
    p.add_argument("--cell", choices=["lstm", "gru"], help="lstm (default) or gru; both export")
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
    p.add_argument("--unlabeled", metavar="PATH",
                   help="distil: also train on these unlabelled reviews (folder or .tar.gz with train/unsup/*.txt; "
                        "copies of test reviews dropped), with soft targets from an n-gram teacher fitted on the "
                        "fit split (two labels)")
    p.add_argument("--bag-dim", type=int,
                   help="also train an n-gram bag (unigram + hashed bigram embeddings of this width) and mix its "
                        "logit into the score, weighted on validation; 0: the BiLSTM alone (default: preset's)")
    p.add_argument("--bag-buckets", type=int, help="hash buckets of the bag's bigrams (default: 65536)")
    p.add_argument("--validation", choices=["random", "movie", "auto"],
                   help="hold out a stratified random draw, or whole movies (aclImdb: the test split shares no "
                        "movie with training); auto: movie for aclImdb, else random (default: preset's)")
    p.add_argument("--pretrained", metavar="FOLDER",
                   help="start the embedding and BiLSTM from a `python -m train pretrain` folder (its vocabulary "
                        "too); --vocab-size, --embedding-dim and --units must match it")
    return p


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["pretrain"]:
        from train.pretrain_cli import main as pretrain_main

        return pretrain_main(argv[1:])
    args = _parser().parse_args(argv)
    own = ("data", "preset", "out", "restart", "force", "text_field", "label_field", "labels", "test_data",
           "class_weight", "pretrained", "unlabeled", "split_field", "domain_field", "rate", "soft_label")
    overrides = {k: v for k, v in vars(args).items() if k not in own}
    settings = PRESETS[args.preset].with_overrides(**overrides)

    def stage():
        data = args.data or [str(default_data_path())]
        spec = source_spec(data[0], args.text_field, args.label_field, args.labels, args.test_data)
        if len(data) > 1 or args.split_field or args.rate or args.soft_label:
            spec = replace(spec, mix=Mixture(
                tuple(Path(d) for d in data[1:]), args.split_field, args.domain_field,
                parse_pairs(args.rate, "--rate", low=0.0, high=1.0, low_open=True),
                parse_pairs(args.soft_label, "--soft-label", low=0.0, high=1.0)))
        return run.train(spec, args.out, settings, args.preset, restart=args.restart, force=args.force,
                         class_weight=args.class_weight, pretrained=args.pretrained, unlabeled=args.unlabeled)

    code, report = run_stage(settings, stage)
    if report is None:
        return code
    print(f"test accuracy {report.test_accuracy:.4f} ({report.data.test_reviews} rows; labels "
          f"{', '.join(report.labels)}), "
          f"{report.wall_time_s:.0f} s; artifacts in {args.out}")
    return exit_codes.OK


if __name__ == "__main__":
    sys.exit(main())
