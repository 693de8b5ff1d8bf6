"""Would the teacher itself, as the graph's second branch, close the gap? A probe, not a unit test.

Takes the shipped ``models/default`` (distilled BiLSTM + n-gram bag), reads its BiLSTM's logit (the
``bilstm_logit`` layer divided by the folded mixing weight), fits the distillation teacher again on the
same fit split (``train.teacher``, same seed), mixes the two logits with the weight that minimises
validation log loss (steps of 0.05), and prints validation and test accuracy of the mix, the teacher
alone and the BiLSTM alone.

    python bench/teacher_mix_probe.py [--model models/default]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from edge_infer.tokenizer import Tokenizer, Vocabulary  # noqa: E402
from train.data import default_data_path  # noqa: E402
from train.presets import PRESETS  # noqa: E402
from train.run import _logit, _splits, log_loss, mix_weight  # noqa: E402
from train.sources import SourceSpec, load_dataset  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "default")
    args = parser.parse_args()

    import keras

    from train.model import load_classifier
    from train.teacher import fit_teacher, ngram_features

    report = json.loads((args.model / "training_report.json").read_text())
    weight = report["branches"]["weight"]
    settings = PRESETS["default"]
    data = load_dataset(SourceSpec(default_data_path()), settings.seed)
    fit, validation, test = _splits(data, settings)
    tokenizer = Tokenizer(Vocabulary.load(args.model / "vocab.txt"), settings.max_len, settings.padding,
                          settings.truncating)
    x_fit, x_val, x_test = (tokenizer.encode(split.texts) for split in (fit, validation, test))
    model = load_classifier(args.model / "model.keras")
    branch = keras.Model(model.input, model.get_layer("bilstm_logit").output)
    bilstm = [branch.predict(x, batch_size=256, verbose=0)[:, 0] / weight for x in (x_val, x_test)]
    teacher, _ = fit_teacher((x_fit, fit.labels), (x_val, validation.labels), settings.seed, verbose=0)
    taught = [_logit(teacher.predict(ngram_features(x), batch_size=512, verbose=0)[:, 0]) for x in (x_val, x_test)]
    best, _ = mix_weight(bilstm[0], taught[0], validation.labels)
    for name, w in (("mix", best), ("teacher alone", 0.0), ("BiLSTM alone", 1.0)):
        val, tst = (w * b + (1 - w) * t for b, t in zip(bilstm, taught))
        print(f"{name} (BiLSTM weight {w:.2f}): validation accuracy {np.mean((val > 0) == validation.labels):.2%}, "
              f"log loss {log_loss(val, validation.labels):.4f}; test accuracy {np.mean((tst > 0) == test.labels):.2%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
