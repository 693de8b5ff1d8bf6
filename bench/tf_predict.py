"""The TensorFlow side of the cold-start benchmark: one review file in, one label printed.

``python bench/tf_predict.py MODEL_DIR REVIEW.txt`` does what ``edge-infer predict REVIEW.txt`` does,
with Keras: load the model and the vocabulary, tokenize with the project's tokenizer, predict, print.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    from edge_infer.tokenizer import Tokenizer, Vocabulary
    from train.model import load_classifier

    folder, review = Path(sys.argv[1]), Path(sys.argv[2])
    settings = json.loads((folder / "training_report.json").read_text())
    spec = settings["tokenizer"]
    tokenizer = Tokenizer(Vocabulary.load(folder / "vocab.txt"), spec["max_len"], spec["padding"], spec["truncating"])
    model = load_classifier(folder / "model.keras")
    score = float(model.predict(tokenizer.encode([review.read_text(encoding="utf-8")]), verbose=0)[0, 0])
    label = settings["labels"][int(score >= settings["threshold"])]
    print(f"{label}\t{score:.4f}\t{review}", flush=True)


if __name__ == "__main__":
    main()
