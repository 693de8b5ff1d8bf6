"""Export stage: gates on tiny models trained here, refusals that change nothing, the committed models."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import skip_module_without_train_extra

skip_module_without_train_extra()

import onnx  # noqa: E402

from edge_infer.classifier import verify  # noqa: E402
from edge_infer.inference import new_session  # noqa: E402
from edge_infer.model_folder import FP32, INT8, VOCAB, Manifest, versioned_name  # noqa: E402
from edge_infer.storage import temp_path_beside  # noqa: E402
from edge_infer.tokenizer import Tokenizer, Vocabulary  # noqa: E402
from export.convert import StructureError, check_structure, to_onnx  # noqa: E402
from export.parity import ParityError, Scoring, check_parity  # noqa: E402
from export.pipeline import Reviews, VocabularyMismatchError, export_model  # noqa: E402
from train.data import default_data_path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = default_data_path()
pytestmark = [pytest.mark.needs_tf, pytest.mark.skipif(not DATA.exists(), reason=f"{DATA} is not there")]
SCHEMA = json.loads((ROOT / "docs" / "manifest.schema.json").read_text())


@pytest.fixture(scope="module")
def reviews(gate_reviews) -> Reviews:
    return gate_reviews


@pytest.fixture(scope="module")
def fixed_model(fixed_keras_model) -> Path:
    return fixed_keras_model


@pytest.fixture(scope="module")
def masked_model(masked_keras_model) -> Path:
    return masked_keras_model


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _validate(manifest: dict) -> None:
    import jsonschema

    jsonschema.validate(manifest, SCHEMA)


def test_fixed_length_export_passes_both_gates(fixed_export, gate_reviews):
    result, out = fixed_export, fixed_export.out_dir
    manifest = Manifest.load(out)
    assert manifest == result.manifest == verify(out)
    assert manifest.dynamic_length is False
    assert manifest.structure == {"recurrent_op": "LSTM", "direction": "bidirectional", "sequence_lens": False,
                                  "output_shape": ["batch", 1]}
    assert result.parity.max_abs_diff <= 1e-5 and result.parity.label_agreement == 1.0
    assert result.parity.reviews == len(gate_reviews.texts) and len(result.parity.edge_cases) == 7
    assert result.int8.refused is None, result.int8.refused
    assert result.int8.accuracy_drop <= result.int8.max_accuracy_drop
    assert result.int8.label_agreement >= result.int8.min_agreement
    assert {key: entry.path for key, entry in manifest.files.items()} == {
        key: versioned_name(key, entry.sha256) for key, entry in manifest.files.items()}
    assert set(manifest.files) == {FP32, INT8, VOCAB}
    assert {p.name for p in out.iterdir()} == {entry.path for entry in manifest.files.values()} | {
        "manifest.json", "parity_report.md", "parity_diff_hist.png"}  # no temp files left behind


def test_masked_export_is_length_aware_and_passes_both_gates(masked_export):
    manifest = masked_export.manifest
    assert manifest.dynamic_length is True
    assert manifest.structure["sequence_lens"] is True
    assert masked_export.parity.max_abs_diff <= 1e-5 and masked_export.parity.label_agreement == 1.0
    assert {(r.path, r.threads) for r in masked_export.parity.runs} == {
        ("single", 1), ("single", 2), ("batched", 1), ("batched", 2)}
    assert masked_export.int8.refused is None, masked_export.int8.refused

    graph = onnx.load(str(manifest.path_of(FP32))).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count("LSTM") == 1 and not {"Loop", "Scan"} & set(ops)
    (lstm,) = [n for n in graph.node if n.op_type == "LSTM"]
    assert list(lstm.input)[4:] == ["sequence_lengths"]  # no initial states: ONNX's default zeros
    assert lstm.output[0] == "" and lstm.output[1]  # only Y_h is computed, not every step's Y
    # tf2onnx's per-call extras are gone: zero states rebuilt from the batch size, negative-index handling.
    assert sorted(ops) == sorted(["Transpose", "Gather", "Sign", "ReduceSum", "LSTM", "Transpose", "Reshape",
                                  "MatMul", "Add", "Sigmoid"])
    assert [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim][1] != 64  # dynamic axis
    int8_ops = [n.op_type for n in onnx.load(str(manifest.path_of(INT8))).graph.node]
    assert int8_ops.count("DynamicQuantizeLSTM") == 1 and "LSTM" not in int8_ops


def test_masked_onnx_score_does_not_depend_on_trailing_padding(masked_export):
    sess = new_session(masked_export.manifest.path_of(FP32), 1)
    ids = np.arange(2, 22, dtype=np.int32)[None, :]
    bare = sess.run(None, {"token_ids": ids})[0]
    for extra in (1, 28, 200):
        padded = np.pad(ids, ((0, 0), (0, extra)))
        np.testing.assert_allclose(sess.run(None, {"token_ids": padded})[0], bare, rtol=0, atol=1e-6)


def test_manifest_matches_schema_and_files(masked_export):
    manifest = json.loads((masked_export.out_dir / "manifest.json").read_text())
    assert manifest == masked_export.manifest.to_dict()
    _validate(manifest)
    out = masked_export.out_dir
    import hashlib

    for entry in manifest["files"].values():
        data = (out / entry["path"]).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (entry["size"], entry["sha256"])
    for key in (FP32, INT8):
        props = {p.key: p.value for p in onnx.load(str(out / manifest["files"][key]["path"])).metadata_props}
        assert props["vocab_sha256"] == manifest["files"]["vocab"]["sha256"]
    assert manifest["parity"]["int8"]["max_accuracy_drop"] == masked_export.int8.max_accuracy_drop
    broken = {**manifest, "files": {**manifest["files"], "fp32": {"path": "model.onnx", "sha256": "x", "size": 1}}}
    import jsonschema

    with pytest.raises(jsonschema.ValidationError):
        _validate(broken)


def test_structure_gate_refuses_a_loop(masked_model):
    import keras

    model = keras.models.load_model(masked_model, safe_mode=True)
    import tensorflow as tf
    import tf2onnx

    # Converting the masked model directly, without the unmasked twin, is what gives the slow Loop.
    function = tf.function(lambda ids: model(ids, training=False))
    proto, _ = tf2onnx.convert.from_function(
        function, input_signature=(tf.TensorSpec((None, None), tf.int32, name="token_ids"),), opset=17)
    assert "Loop" in {n.op_type for n in proto.graph.node}
    with pytest.raises(StructureError, match="Loop"):
        check_structure(proto, masked=True)
    fused = to_onnx(model, max_len=64, pad_id=0)
    assert check_structure(fused, masked=True).sequence_lens


def _scale_recurrent_weights(proto: onnx.ModelProto) -> None:
    from onnx import numpy_helper

    (lstm,) = [n for n in proto.graph.node if n.op_type == "LSTM"]
    for init in proto.graph.initializer:
        if init.name == lstm.input[2]:  # R, the recurrent weights
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * 1.02, init.name))


def test_broken_graph_is_refused_with_a_failed_report_and_previous_artifacts_stay(masked_model, masked_export,
                                                                                  reviews, tmp_path):
    out = tmp_path / "model"
    shutil.copytree(masked_export.out_dir, out)
    before = _snapshot(out)
    stale = temp_path_beside(out / "model.onnx")  # a killed export's temp file
    with pytest.raises(ParityError, match="worst: ") as caught:
        export_model(masked_model, Reviews(reviews.texts[:100], reviews.labels[:100]), out, name="tiny-masked",
                     graph_hook=_scale_recurrent_weights, threads=(1,))
    assert caught.value.result.max_abs_diff > 1e-5
    failed = (out / "parity_report.failed.md").read_text()
    assert "**Verdict: FAIL.**" in failed and caught.value.result.worst_case in failed
    assert (out / "parity_diff_hist.failed.png").read_bytes().startswith(b"\x89PNG")
    assert not stale.exists()
    after = _snapshot(out)
    assert after.pop("parity_report.failed.md") and after.pop("parity_diff_hist.failed.png")
    assert after == before  # the manifest and every file it lists (and the last report) unchanged
    verify(out)


def test_swapped_vocabulary_is_refused_by_the_cli(masked_model, masked_export, tmp_path):
    folder = tmp_path / "swapped"
    shutil.copytree(masked_model.parent, folder)
    shutil.copyfile(ROOT / "models" / "seed" / "vocab.txt", folder / "vocab.txt")  # another run's vocabulary
    out = masked_export.out_dir
    before = _snapshot(out)
    with pytest.raises(VocabularyMismatchError):
        export_model(folder / "model.keras", Reviews([], np.array([])), out)
    done = subprocess.run([sys.executable, "-m", "export", "--keras", str(folder / "model.keras"), "--out", str(out),
                           "--data", str(DATA), "--reviews", "50"], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=300)
    assert done.returncode == 3, done.stderr
    assert "vocab.txt" in done.stderr and "Traceback" not in done.stderr
    assert _snapshot(out) == before


def test_cli_missing_model_is_a_one_line_usage_error(tmp_path):
    done = subprocess.run([sys.executable, "-m", "export", "--keras", str(tmp_path / "nope.keras")],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "nope.keras" in done.stderr


@pytest.mark.parametrize("name", ["seed", "default"])
def test_committed_onnx_reproduces_committed_keras(name, reviews):
    from train.model import load_classifier

    folder = ROOT / "models" / name
    manifest = json.loads((folder / "manifest.json").read_text())
    _validate(manifest)
    settings = manifest["tokenizer"]
    tokenizer = Tokenizer(Vocabulary.load(folder / "vocab.txt"), settings["max_len"], settings["padding"],
                          settings["truncating"])
    model = load_classifier(folder / "model.keras")
    scoring = Scoring(tokenizer, manifest["input"]["dynamic_length"], manifest["threshold"])
    result = check_parity(model, folder / manifest["files"]["fp32"]["path"], scoring, reviews.texts,
                          paths=("batched",), threads=(2,))
    assert result.max_abs_diff <= 1e-5 and result.label_agreement == 1.0


def test_int8_that_fails_its_gate_is_not_written(fixed_model, fixed_export, reviews, tmp_path):
    out = tmp_path / "model"
    shutil.copytree(fixed_export.out_dir, out)
    earlier_int8 = fixed_export.manifest.path_of(INT8).name
    result = export_model(fixed_model, Reviews(reviews.texts[:100], reviews.labels[:100]), out, name="tiny-fixed",
                          threads=(1,), max_accuracy_drop=-1.0)  # no int8 model can pass this
    assert result.int8.refused and "accuracy drops" in result.int8.refused
    assert not (out / earlier_int8).exists()  # the earlier export's int8 file went with its manifest
    manifest = json.loads((out / "manifest.json").read_text())
    _validate(manifest)
    assert "int8" not in manifest["files"] and manifest["parity"]["int8"]["refused"] == result.int8.refused
    assert "int8 refused" in (out / "parity_report.md").read_text()
    assert not verify(out).has_int8
