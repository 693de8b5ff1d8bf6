"""What the BiLSTM buys: two bag-of-n-grams baselines trained on the shipped default's split.

- **n-gram bag (logistic regression)**: one weight per unigram and hashed bigram present in the review
  (binary features, 2**20 buckets), summed, plus a bias (``train.teacher``: the ``--unlabeled`` teacher).
- **fastText-style**: 16-d embeddings of each unigram and hashed bigram, averaged, then one Dense
  (``train.bag``, the same branch the default can carry inside its graph).

Both use ``edge_infer``'s tokenizer and the ``default`` preset's fit/validation split (``--validation`` as the
preset says), stop early on validation loss, and read the 25,000 test reviews once, after the choice.

    python bench/baselines.py [--data PATH] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from edge_infer.tokenizer import Tokenizer, build_vocabulary  # noqa: E402
from train.data import default_data_path  # noqa: E402
from train.presets import PRESETS  # noqa: E402
from train.run import _splits  # noqa: E402
from train.sources import SourceSpec, load_dataset  # noqa: E402


def fit_and_test(name: str, model, x: tuple, y: tuple, batch_size: int) -> dict:
    import keras

    started = time.time()
    stop = keras.callbacks.EarlyStopping(patience=2, restore_best_weights=True)
    history = model.fit(x[0], y[0], validation_data=(x[1], y[1]), epochs=30, batch_size=batch_size,
                        callbacks=[stop], verbose=2)
    seconds = time.time() - started
    val_loss, val_accuracy = model.evaluate(x[1], y[1], batch_size=512, verbose=0)
    test_loss, test_accuracy = model.evaluate(x[2], y[2], batch_size=512, verbose=0)  # read once
    return {"model": name, "validation_loss": val_loss, "validation_accuracy": val_accuracy,
            "test_accuracy": test_accuracy, "epochs": len(history.history["loss"]),
            "best_epoch": int(np.argmin(history.history["val_loss"])) + 1, "train_s": round(seconds, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(default_data_path()))
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    import keras

    from train.bag import build_bag_model
    from train.teacher import logistic_regression, ngram_features

    settings = PRESETS["default"]
    data = load_dataset(SourceSpec(Path(args.data)), settings.seed)
    fit, validation, test = _splits(data, settings)
    tokenizer = Tokenizer(build_vocabulary(fit.texts, settings.vocab_size), settings.max_len, settings.padding,
                          settings.truncating)
    ids = [tokenizer.encode(split.texts) for split in (fit, validation, test)]
    labels = tuple(split.labels for split in (fit, validation, test))
    results = []
    keras.utils.set_random_seed(settings.seed)
    results.append(fit_and_test("n-gram bag (logistic regression)", logistic_regression(),
                                tuple(ngram_features(x) for x in ids), labels, 64))
    keras.utils.set_random_seed(settings.seed)
    results.append(fit_and_test("fastText-style (16-d unigram + bigram embeddings)",
                                build_bag_model(settings.vocab_size), tuple(ids), labels, 128))
    print(f"split: {len(fit)} fit, {len(validation)} validation ({settings.validation}), {len(test)} test\n")
    print("| model | validation accuracy | test accuracy | epochs (best) | training time |")
    print("| --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {r['model']} | {r['validation_accuracy']:.2%} | {r['test_accuracy']:.2%} | "
              f"{r['epochs']} ({r['best_epoch']}) | {r['train_s']:.0f} s |")
    if args.json:
        Path(args.json).write_text(json.dumps({"validation": settings.validation, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
