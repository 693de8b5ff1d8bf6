"""GRU models export: ``--cell gru`` gives one native bidirectional ONNX ``GRU`` node that passes both gates.

A tiny GRU model of each style (masked and post-padded like the default preset; fixed length and
pre-padded like the seed) is trained and exported here, then run by the runtime.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, TINY_SENTENCES, TINY_TRAINING, skip_module_without_train_extra

skip_module_without_train_extra()

import onnx  # noqa: E402
from onnx import helper  # noqa: E402

from edge_infer import SentimentClassifier  # noqa: E402
from edge_infer.classifier import verify  # noqa: E402
from edge_infer.inference import new_session  # noqa: E402
from edge_infer.model_folder import FP32, INT8, Manifest  # noqa: E402

pytestmark = pytest.mark.needs_tf


def _train_and_export(tmp_path_factory, data_path: Path, reviews, preset: str):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from export.pipeline import export_model
    from train.presets import PRESETS
    from train.run import train

    folder = tmp_path_factory.mktemp(f"gru_{preset}")
    train(data_path, folder, PRESETS[preset].with_overrides(**TINY_TRAINING, cell="gru"), preset)
    # int8 limits as in conftest's fixed_export: a tiny model on 300 reviews, not the shipped limits.
    return export_model(folder / "model.keras", reviews, tmp_path_factory.mktemp(f"gru_{preset}_out"),
                        name=f"tiny-gru-{preset}", max_accuracy_drop=0.05, min_agreement=0.9)


@pytest.fixture(scope="module")
def masked_gru(tmp_path_factory, data_path, gate_reviews):
    return _train_and_export(tmp_path_factory, data_path, gate_reviews, "default")


@pytest.fixture(scope="module")
def fixed_gru(tmp_path_factory, data_path, gate_reviews):
    return _train_and_export(tmp_path_factory, data_path, gate_reviews, "seed")


def _gru_node(path: Path) -> onnx.NodeProto:
    graph = onnx.load(str(path)).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count("GRU") == 1 and not {"LSTM", "Loop", "Scan", "If"} & set(ops), ops
    (gru,) = [n for n in graph.node if n.op_type == "GRU"]
    attributes = {a.name: helper.get_attribute_value(a) for a in gru.attribute}
    assert attributes["direction"] == b"bidirectional" and attributes["linear_before_reset"] == 1
    return gru


def _int8_ops(manifest: Manifest) -> list[str]:
    return [n.op_type for n in onnx.load(str(manifest.path_of(INT8))).graph.node]


def test_masked_gru_exports_to_a_length_aware_native_gru_and_passes_both_gates(masked_gru, gate_reviews):
    manifest = masked_gru.manifest
    assert manifest == verify(masked_gru.out_dir)
    assert manifest.dynamic_length is True
    assert manifest.structure == {"recurrent_op": "GRU", "direction": "bidirectional", "sequence_lens": True,
                                  "output_shape": ["batch", 1]}
    assert masked_gru.parity.max_abs_diff <= 1e-5 and masked_gru.parity.label_agreement == 1.0
    assert masked_gru.parity.reviews == len(gate_reviews.texts) and len(masked_gru.parity.edge_cases) == 7
    assert {(r.path, r.threads) for r in masked_gru.parity.runs} == {
        ("single", 1), ("single", 2), ("batched", 1), ("batched", 2)}
    gru = _gru_node(manifest.path_of(FP32))
    assert list(gru.input)[4:] == ["sequence_lengths"] and gru.output[0] == "" and gru.output[1]
    ops = sorted(n.op_type for n in onnx.load(str(manifest.path_of(FP32))).graph.node)
    assert ops == sorted(["Transpose", "Gather", "Sign", "ReduceSum", "GRU", "Transpose", "Reshape", "MatMul", "Add",
                          "Sigmoid"])  # the LSTM model's 10 nodes, with GRU in place of LSTM

    # ONNX Runtime's dynamic quantization has no GRU kernel: the GRU stays fp32, the head and embedding are int8.
    assert masked_gru.int8.refused is None, masked_gru.int8.refused
    int8_ops = _int8_ops(manifest)
    assert int8_ops.count("GRU") == 1 and "MatMulInteger" in int8_ops and not any("LSTM" in op for op in int8_ops)


def test_fixed_length_gru_exports_and_passes_both_gates(fixed_gru):
    manifest = fixed_gru.manifest
    assert manifest.dynamic_length is False
    assert manifest.structure["recurrent_op"] == "GRU" and manifest.structure["sequence_lens"] is False
    assert fixed_gru.parity.max_abs_diff <= 1e-5 and fixed_gru.parity.label_agreement == 1.0
    assert fixed_gru.int8.refused is None, fixed_gru.int8.refused
    assert len(_gru_node(manifest.path_of(FP32)).input) == 4  # X, W, R, B: no lengths, no initial state
    assert _int8_ops(manifest).count("GRU") == 1


def test_masked_gru_score_does_not_depend_on_trailing_padding(masked_gru):
    sess = new_session(masked_gru.manifest.path_of(FP32), 1)
    ids = np.arange(2, 22, dtype=np.int32)[None, :]
    bare = sess.run(None, {"token_ids": ids})[0]
    for extra in (1, 28, 200):
        padded = np.pad(ids, ((0, 0), (0, extra)))
        np.testing.assert_allclose(sess.run(None, {"token_ids": padded})[0], bare, rtol=0, atol=1e-6)


@pytest.mark.parametrize("quantized", [False, True])
def test_the_runtime_runs_an_exported_gru(masked_gru, quantized):
    clf = SentimentClassifier.load(masked_gru.out_dir, quantized=quantized)
    batched = clf.predict(TINY_SENTENCES)
    singles = [clf.predict(text) for text in TINY_SENTENCES]
    # int8: dynamic quantization scales activations per call, so a batch's scores move a little (about 1e-3).
    atol = 0.02 if quantized else 1e-5
    np.testing.assert_allclose([p.score for p in batched], [p.score for p in singles], rtol=0, atol=atol)
    done = subprocess.run([sys.executable, "-m", "edge_infer", "predict", "--model", str(masked_gru.out_dir),
                           *(["--int8"] if quantized else []), "-"],
                          input=TINY_SENTENCES[0], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert batched[0].label in done.stdout


WEB = REPO / "web"
NODE_SCORES = """
import * as ortWeb from 'onnxruntime-web';
import { SentimentClassifier, platform } from './src/node.js';
import { SentimentClassifier as Core } from './src/classifier.js';
const [folder, texts] = [process.argv[1], JSON.parse(process.argv[2])];
ortWeb.env.wasm.numThreads = 1;
const out = {};
for (const quantized of [false, true]) {
  const node = await SentimentClassifier.load(folder, { quantized, threads: 1 });
  const web = await Core.loadWith({ ...platform, ort: ortWeb, sessionOptions: {} }, folder, { quantized });
  out[quantized ? 'int8' : 'fp32'] = { node: await node.probabilities(texts), web: await web.probabilities(texts) };
}
console.log(JSON.stringify(out));
"""


@pytest.mark.skipif(shutil.which("node") is None or not (WEB / "node_modules" / "onnxruntime-web").is_dir(),
                    reason="needs node and web/node_modules (cd web && npm ci)")
def test_the_web_runtime_scores_an_exported_gru_like_python(masked_gru):
    """onnxruntime-node and onnxruntime-web (its wasm backend, run under Node) both load the GRU model."""
    done = subprocess.run(["node", "--input-type=module", "-e", NODE_SCORES, str(masked_gru.out_dir),
                           json.dumps(TINY_SENTENCES)], capture_output=True, text=True, cwd=WEB, timeout=120)
    assert done.returncode == 0, done.stderr
    scores = json.loads(done.stdout)
    for kind, quantized in (("fp32", False), ("int8", True)):
        python = SentimentClassifier.load(masked_gru.out_dir, quantized=quantized).predict(TINY_SENTENCES)
        want = [[1 - p.score, p.score] for p in python]
        for runtime in ("node", "web"):
            np.testing.assert_allclose(scores[kind][runtime], want, rtol=0, atol=1e-5, err_msg=f"{kind} {runtime}")
