"""A trained (not yet exported) Keras run folder on the held-out splits of ``../shared/data/multi``.

    python bench/keras_domains.py runs/general2

For comparing training runs before one is exported (``bench/domains.py`` measures exported folders). Prints
accuracy and ECE per split (binary rows: Amazon test, Yelp test, tweets test, SST-2 dev) and the scores of
issue 21's six sentences. Needs the train extra.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench import general_data  # noqa: E402
from edge_infer.metrics import expected_calibration_error, reliability_table  # noqa: E402
from edge_infer.tokenizer import Tokenizer, Vocabulary  # noqa: E402
from train.model import load_classifier  # noqa: E402

SIX = ["Not bad at all.", "Five stars.", "The battery died after two days.", "The screen cracked on day one.",
       "Broke after a week", "Fast shipping, exactly as described."]


def main(run: Path) -> int:
    report = json.loads((run / "training_report.json").read_text())
    spec = report["tokenizer"]
    tokenizer = Tokenizer(Vocabulary.load(run / "vocab.txt"), spec["max_len"], spec["padding"], spec["truncating"])
    model = load_classifier(run / "model.keras")

    def predict(texts: list[str]) -> np.ndarray:
        x = tokenizer.encode(texts)
        lengths = (x != 0).sum(1)
        order, out = np.argsort(lengths), np.empty(len(texts))
        for i in range(0, len(order), 256):  # batches of similar length, cut to their longest row
            rows = order[i:i + 256]
            out[rows] = model.predict(x[rows, :max(1, lengths[rows].max())], verbose=0)[:, 0]
        return out

    corpus = general_data.read_corpus(None)
    for split in ("amazon", "yelp", "tweets", "sst2"):
        rows = corpus.held_out[split]
        p, y = predict(list(rows.texts)), np.asarray(rows.labels)
        ece = expected_calibration_error(reliability_table(np.column_stack([1 - p, p]), y))
        print(f"{general_data.SPLIT_TITLES[split]:22s} rows {len(y):5d}  accuracy {np.mean((p >= 0.5) == y):.4f}"
              f"  ECE {ece:.4f}")
    for text, score in zip(SIX, predict(SIX)):
        print(f"{score:.3f}  {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
