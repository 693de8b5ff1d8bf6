"""The n-gram bag branch (``--bag-dim``): trained beside the BiLSTM, mixed on validation, exported in the same
graph with one fused LSTM, and covered by the parity and int8 gates."""

from __future__ import annotations

import os

import numpy as np
import pytest
from conftest import TINY_TRAINING, skip_module_without_train_extra

skip_module_without_train_extra()

import onnx  # noqa: E402

from edge_infer.inference import new_session  # noqa: E402
from edge_infer.model_folder import FP32, INT8  # noqa: E402

pytestmark = pytest.mark.needs_tf


@pytest.fixture(scope="module")
def bag_run(tmp_path_factory: pytest.TempPathFactory, data_path, gate_reviews):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from export.pipeline import export_model
    from train.presets import PRESETS
    from train.run import train

    folder = tmp_path_factory.mktemp("bag")
    settings = PRESETS["default"].with_overrides(**TINY_TRAINING, bag_dim=8, bag_buckets=4096, validation="random")
    report = train(data_path, folder, settings, "default")
    result = export_model(folder / "model.keras", gate_reviews, folder, name="bag", max_accuracy_drop=0.05,
                          min_agreement=0.9)
    return report, result


def test_report_has_both_branches_and_the_mixing_weight(bag_run):
    report, _ = bag_run
    branches = report.branches
    assert branches is not None and 0.0 <= branches["weight"] <= 1.0
    for name in ("bilstm", "ngram_bag"):
        assert 0.0 < branches[name]["test_accuracy"] <= 1.0 and 0.0 < branches[name]["validation_accuracy"] <= 1.0


def test_mixed_model_is_one_fused_lstm_and_passes_the_gates(bag_run):
    _, result = bag_run
    manifest = result.manifest
    assert result.parity.max_abs_diff <= 1e-5 and result.parity.label_agreement == 1.0
    assert result.int8.refused is None, result.int8.refused
    ops = [n.op_type for n in onnx.load(str(manifest.path_of(FP32))).graph.node]
    assert ops.count("LSTM") == 1 and not {"Loop", "Scan"} & set(ops)
    assert ops.count("Gather") >= 3  # the BiLSTM's embedding, the bag's unigrams and its hashed bigrams
    int8_ops = [n.op_type for n in onnx.load(str(manifest.path_of(INT8))).graph.node]
    assert int8_ops.count("DynamicQuantizeLSTM") == 1


def test_mixed_onnx_score_does_not_depend_on_trailing_padding(bag_run):
    _, result = bag_run
    session = new_session(result.manifest.path_of(FP32), 1)
    ids = np.arange(2, 30, dtype=np.int32)[None, :]
    bare = session.run(None, {"token_ids": ids})[0]
    for extra in (1, 50):
        padded = np.pad(ids, ((0, 0), (0, extra)))
        np.testing.assert_allclose(session.run(None, {"token_ids": padded})[0], bare, rtol=0, atol=1e-6)


def test_bag_needs_two_labels_and_a_masked_model():
    from train.presets import PRESETS, SettingsError

    with pytest.raises(SettingsError, match="--bag-dim needs a masked model"):
        PRESETS["seed"].with_overrides(bag_dim=8).check()
    with pytest.raises(SettingsError, match="at most 71000"):
        PRESETS["default"].with_overrides(bag_dim=8, vocab_size=80_000).check()
