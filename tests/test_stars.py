"""The committed 4-class star-rating model ``models/stars`` (docs/stars.md): its folder, report and predictions.

No TensorFlow: the folder is read as the runtime reads it. No figure depends on this CPU beyond the label set.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

STARS = Path(__file__).resolve().parent.parent / "models" / "stars"
LABELS = ["1-2", "3-4", "7-8", "9-10"]

pytestmark = pytest.mark.skipif(not (STARS / "manifest.json").is_file(),
                                reason="models/stars is not exported yet (docs/stars.md)")


def test_manifest_has_four_ordered_labels_and_a_four_column_output():
    manifest = json.loads((STARS / "manifest.json").read_text())
    assert manifest["labels"] == LABELS
    assert manifest["structure"]["output_shape"] == ["batch", 4]
    assert manifest["structure"]["recurrent_op"] == "LSTM" and manifest["structure"]["sequence_lens"] is True
    assert manifest["parity"]["reviews"] == 25_000 and manifest["parity"]["label_agreement"] == 1.0
    assert manifest["parity"]["max_abs_diff"] <= 1e-5


def test_training_report_records_the_star_source_and_every_split():
    report = json.loads((STARS / "training_report.json").read_text())
    data = report["data"]
    assert report["labels"] == LABELS and data["label_field"] == "stars"
    assert data["test_split"] == {"from": "aclImdb test"}
    assert sum(data["class_counts"]["test"].values()) == data["test_reviews"] == 25_000
    assert data["train_reviews"] + data["validation_reviews"] == 25_000
    assert report["settings"]["vocab_size"] == 30_000 and report["settings"]["max_len"] == 600


def test_folder_holds_no_checkpoint_and_no_optimizer_state():
    assert not (STARS / ".checkpoints").exists()
    with zipfile.ZipFile(STARS / "model.keras") as archive:
        config = json.loads(archive.read("config.json"))
        assert not [name for name in archive.namelist() if "optimizer" in name]
    assert not config.get("compile_config")  # saved uncompiled: no optimizer


@pytest.mark.parametrize("quantized", [False, True])
def test_predicts_one_of_the_star_classes(quantized):
    from edge_infer import SentimentClassifier

    manifest = json.loads((STARS / "manifest.json").read_text())
    if quantized and "int8" not in manifest["files"]:
        pytest.skip("the export refused int8 for this model")
    classifier = SentimentClassifier.load(STARS, quantized=quantized)
    predictions = classifier.predict(["The best film of the decade, a masterpiece.",
                                      "Dreadful. The worst thing I have ever watched."])
    for prediction in predictions:
        assert prediction.label in LABELS and list(prediction.scores) == LABELS
        assert sum(prediction.scores.values()) == pytest.approx(1.0, abs=1e-4)
