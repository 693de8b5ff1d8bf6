"""Does the language-model pretraining help the classifier learn? A quick probe on 4,000 training reviews.

Trains the ``default`` classifier (random validation on the last 500 of them, 3 epochs) from scratch and
from parts of a ``python -m train pretrain`` artifact, and prints each run's validation accuracy per epoch:

- ``scratch``: random initialization (with the artifact's vocabulary, so only the weights differ);
- ``all``: embedding and BiLSTM from the artifact; ``emb`` / ``lstm``: only one of them;
- ``all_lr3``: ``all`` with learning rate 3e-3; ``emb_nodrop``: ``emb`` without embedding dropout;
- ``emb_scaled``: the artifact's embedding times 0.2.

    python bench/pretrain_probe.py --pretrained runs/pretrain [--max-len 600] [MODE ...]

Reads only training reviews. Not a unit test.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from edge_infer.tokenizer import Tokenizer  # noqa: E402
from train.data import load_imdb, stratified_indices, subset  # noqa: E402
from train.presets import PRESETS  # noqa: E402
from train.pretrain import load_pretrained  # noqa: E402

MODES = ("scratch", "all", "emb", "lstm", "all_lr3", "emb_nodrop", "emb_scaled")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pretrained", required=True, type=Path)
    parser.add_argument("--max-len", type=int, default=600)
    parser.add_argument("modes", nargs="*", choices=MODES, default=list(MODES))
    args = parser.parse_args()

    import keras

    from train.model import build_model

    encoder = load_pretrained(args.pretrained)
    weights = encoder.weights()
    train = load_imdb().train
    rows = subset(train, stratified_indices(train.labels, 4000, 1))
    base = PRESETS["default"].with_overrides(validation="random", max_len=args.max_len)
    x = Tokenizer(encoder.vocabulary, base.max_len, base.padding, base.truncating).encode(rows.texts)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], rows.labels[order]
    for mode in args.modes:
        keras.utils.set_random_seed(1)
        settings = base
        if mode == "all_lr3":
            settings = base.with_overrides(learning_rate=3e-3)
        if mode == "emb_nodrop":
            settings = base.with_overrides(embedding_dropout=0.0)
        model = build_model(settings)
        if mode.startswith(("all", "emb")):
            scale = 0.2 if mode == "emb_scaled" else 1.0
            model.get_layer("embedding").set_weights([weights["embedding"][0] * scale])
        if mode.startswith("all") or mode == "lstm":
            model.get_layer("bidirectional").set_weights(weights["bidirectional"])
        started = time.time()
        history = model.fit(x[:3500], y[:3500], validation_data=(x[3500:], y[3500:]), epochs=3, batch_size=128,
                            verbose=0)
        accuracies = ", ".join(f"{a:.1%}" for a in history.history["val_accuracy"])
        print(f"{mode:<11} validation accuracy by epoch: {accuracies} ({time.time() - started:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
