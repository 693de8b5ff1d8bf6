"""Export faults (issues 11 and 12): kills at every step, stale temp files, exit codes, gates on the runtime's code."""

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
from conftest import DELETE, with_field  # noqa: E402

from edge_infer import exit_codes  # noqa: E402
from edge_infer.classifier import SentimentClassifier, verify  # noqa: E402
from edge_infer.model_folder import FP32, INT8, MANIFEST_NAME, Manifest  # noqa: E402
from edge_infer.storage import temp_path_beside  # noqa: E402
from edge_infer.tokenizer import Tokenizer, Vocabulary  # noqa: E402
from export.__main__ import main  # noqa: E402
from export.convert import Structure  # noqa: E402
from export.folder import export_folder  # noqa: E402
from export.parity import BATCHED, ParityResult, RunResult, Scoring, check_parity  # noqa: E402
from export.pipeline import ExportInputError, Reviews, export_model, int8_variant, read_training  # noqa: E402
from export.quantize import MAX_ACCURACY_DROP, MIN_AGREEMENT, int8_gate  # noqa: E402
from export.report import markdown  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
KILLED = 77
TEXTS = ["A wonderful film, great acting.", "Awful, boring, a waste of time.", "ok"]
ANY_INT8 = {"max_accuracy_drop": 1.0, "min_agreement": 0.0}
"""Limits no int8 model fails: for tests about the pipeline, not about the gate's verdict."""

pytestmark = pytest.mark.needs_tf


def _few(reviews: Reviews, n: int = 60) -> Reviews:
    return Reviews(reviews.texts[:n], reviews.labels[:n])


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


# ---------------------------------------------------------------- issue 11.1: stale temp files


def _debris(out: Path) -> list[Path]:
    """Temp files as killed exports (this version and earlier ones) leave them."""
    names = ("model.onnx", "model.int8.onnx", "vocab.txt", "parity_report.md", "parity_diff_hist.png",
             "manifest.json")
    temps = [temp_path_beside(out / name) for name in names]
    temps += [out / ".manifest.json.k2_9zq0a.tmp", out / "..model.int8.a1b2c3d4.onnx.e5f6g7h8.tmp",
              out / "model.0123456789ab.onnx", out / "vocab.0123456789ab.txt"]
    for path in temps:
        path.write_bytes(b"left by a killed export")
    return temps


def _user_files(out: Path) -> dict[str, bytes]:
    """Files that look a bit like ours but are not: they must survive every export."""
    files = {".model.onnx.bak": b"a", ".hidden": b"b", "notes.txt": b"c", "model.onnx.orig": b"d",
             ".model.ABCDEFGH.onnx": b"e", ".vocab.txt.k2_9zq0a.tmp": b"f", "model.012345.onnx": b"g"}
    for name, data in files.items():
        (out / name).write_bytes(data)
    return files


def test_export_removes_stale_temp_files_and_keeps_user_files(fixed_keras_model, gate_reviews, tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    debris, user = _debris(out), _user_files(out)
    result = export_model(fixed_keras_model, _few(gate_reviews), out, int8=False, threads=(1,))
    assert not [p.name for p in debris if p.exists()]
    assert {name: (out / name).read_bytes() for name in user} == user
    listed = {entry.path for entry in verify(out).files.values()}
    assert set(os.listdir(out)) == listed | set(user) | {MANIFEST_NAME, "parity_report.md", "parity_diff_hist.png"}
    assert result.manifest == Manifest.load(out)


def test_a_second_export_into_a_busy_folder_is_refused(tmp_path):
    pytest.importorskip("fcntl")
    with export_folder(tmp_path), pytest.raises(ExportInputError, match="another export"):
        with export_folder(tmp_path):
            pass
    with export_folder(tmp_path):  # released
        pass


# ---------------------------------------------------------------- issue 11.2: the switch is atomic

PUBLISH = r"""
import shutil
from dataclasses import replace

from edge_infer.model_folder import Manifest
from export.folder import PARITY_PLOT_FILE, PARITY_REPORT_FILE, export_folder, publish, stage, stage_key

new = Manifest.load(new_dir)
with export_folder(out):  # what export_model does once both gates passed
    staged = {key: stage_key(out, key) for key in new.files}
    for key, tmp in staged.items():
        shutil.copyfile(new.path_of(key), tmp)
    reports = {name: stage(out, name) for name in (PARITY_REPORT_FILE, PARITY_PLOT_FILE)}
    for name, tmp in reports.items():
        shutil.copyfile(new_dir / name, tmp)
    publish(out, replace(new, files={}, source=None), staged, reports)
"""
KILLED_AT = r"""
import os, sys
from pathlib import Path

out, new_dir, kill_at = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
steps = 0


def counted(real):
    def step(*args, **kwargs):
        global steps
        if steps == kill_at:
            os._exit(KILLED)
        steps += 1
        return real(*args, **kwargs)
    return step


os.replace, os.unlink = counted(os.replace), counted(os.unlink)  # every rename and removal is a step
""".replace("KILLED", str(KILLED)) + PUBLISH + "sys.stdout.write(str(steps))\n"


def _publish_killed_at(out: Path, new_dir: Path, kill_at: int) -> subprocess.CompletedProcess:
    """Publish ``new_dir``'s model into ``out`` in a process that dies (``os._exit``) at rename/removal ``kill_at``."""
    return subprocess.run([sys.executable, "-c", KILLED_AT, str(out), str(new_dir), str(kill_at)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def _publish_next(out: Path, new_dir: Path) -> None:
    """The next export after a kill, in this process."""
    exec(PUBLISH, {"out": out, "new_dir": new_dir})


def _fingerprint(folder: Path) -> tuple:
    """What a loader sees: every listed file verified, the fp32 (and int8) scores of a few texts."""
    manifest = verify(folder)
    shas = tuple(sorted((key, entry.sha256) for key, entry in manifest.files.items()))
    fp32 = SentimentClassifier.load(folder, threads=1).scores(TEXTS)
    int8 = SentimentClassifier.load(folder, quantized=True, threads=1).scores(TEXTS) if manifest.has_int8 else ()
    return shas, tuple(np.round(fp32, 6)), tuple(np.round(int8, 6))


def _reset(out: Path, old_dir: Path) -> set[str]:
    """``out`` = the old model folder plus a killed export's debris and user files; returns the names to keep."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    old = Manifest.load(old_dir)
    keep = set(_user_files(out))
    names = [MANIFEST_NAME, "parity_report.md", *(entry.path for entry in old.files.values())]
    if (old_dir / "training_report.json").exists():  # a training folder: its vocab.txt is training's
        names.append("training_report.json")
        keep |= {"training_report.json", "vocab.txt"}
    for name in names:
        shutil.copyfile(old_dir / name, out / name)
    _debris(out)
    (out / "parity_report.failed.md").write_text("an earlier refusal")
    return keep


@pytest.mark.parametrize("old", ["fixed names (committed seed)", "versioned names (earlier export)"])
def test_a_kill_at_any_step_leaves_the_old_model_or_the_new_one(old, fixed_export, masked_export, tmp_path):
    old_dir = ROOT / "models" / "seed" if old.startswith("fixed") else masked_export.out_dir
    new_dir = fixed_export.out_dir
    out = tmp_path / "model"
    _reset(out, old_dir)
    expected = {"old": _fingerprint(out), "new": _fingerprint(new_dir)}
    assert expected["old"] != expected["new"]
    for kill_at in range(50):
        keep = _reset(out, old_dir)
        done = _publish_killed_at(out, new_dir, kill_at)
        if done.returncode == 0:
            break
        assert done.returncode == KILLED, done.stderr
        assert _fingerprint(out) in expected.values(), f"killed at step {kill_at}: a mix"
        _publish_next(out, new_dir)  # the next export recovers and cleans up
        _assert_clean(out, new_dir, keep)
    else:
        pytest.fail("publishing never completed")
    assert kill_at == int(done.stdout) > len(Manifest.load(new_dir).files) + 1  # every step was a kill point
    _assert_clean(out, new_dir, keep)
    assert _fingerprint(out) == expected["new"]


def _assert_clean(out: Path, new_dir: Path, keep: set[str]) -> None:
    """``out`` holds the new model's manifest, exactly its files, the reports, and the files that are not ours."""
    assert Manifest.load(out).files == Manifest.load(new_dir).files
    listed = {entry.path for entry in Manifest.load(out).files.values()}
    assert set(os.listdir(out)) == listed | keep | {MANIFEST_NAME, "parity_report.md", "parity_diff_hist.png"}


# ---------------------------------------------------------------- issue 11.3: exit codes


def test_help_prints_the_shared_exit_code_table(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
    assert exit_codes.describe() in capsys.readouterr().out


@pytest.mark.parametrize(("raised", "code"), [(RuntimeError("boom\nsecond line"), exit_codes.INTERNAL),
                                              (KeyboardInterrupt(), exit_codes.INTERRUPTED)])
def test_unexpected_error_and_ctrl_c_are_one_line_exits(raised, code, monkeypatch, capsys, tmp_path):
    def fail(_path):
        raise raised

    monkeypatch.setattr("export.pipeline.load_source", fail)
    assert main(["--keras", str(tmp_path / "model.keras")]) == code
    _one_line_error(capsys)


# ---------------------------------------------------------------- issue 12.4: gates run the runtime's code


def _tokenizer(folder: Path) -> Tokenizer:
    manifest = Manifest.load(folder)
    spec = manifest.tokenizer
    return Tokenizer(Vocabulary.load(manifest.path_of("vocab")), spec.max_len, spec.padding, spec.truncating)


def test_parity_scores_through_the_runtime_session_and_batching(fixed_keras_model, fixed_export, gate_reviews,
                                                                monkeypatch):
    import keras

    from edge_infer.inference import OnnxScorer

    calls: list[tuple[int, int]] = []
    real_run = OnnxScorer._run

    def spy(self, batch):
        calls.append((self.session.get_session_options().intra_op_num_threads, len(batch)))
        return real_run(self, batch)

    monkeypatch.setattr(OnnxScorer, "_run", spy)
    folder = fixed_export.out_dir
    model = keras.models.load_model(fixed_keras_model, safe_mode=True)
    scoring = Scoring(_tokenizer(folder), False, 0.5)
    result = check_parity(model, Manifest.load(folder).path_of(FP32), scoring, gate_reviews.texts[:40])
    cases = result.reviews + len(result.edge_cases)
    for threads in (1, 2):
        assert sum(rows == 1 for t, rows in calls if t == threads) == cases  # the batch-1 path, case by case
        assert sum(rows for t, rows in calls if t == threads and rows > 1) == cases  # the runtime's batches
    assert {(r.path, r.threads) for r in result.runs} == {("single", 1), ("single", 2), ("batched", 1),
                                                          ("batched", 2)}


def test_int8_gate_reuses_the_parity_fp32_scores(fixed_export, gate_reviews, tmp_path):
    parity, folder = fixed_export.parity, fixed_export.out_dir
    fp32 = Manifest.load(folder).path_of(FP32)
    # Claim fp32 said "positive" for every case: an int8 gate that re-scored fp32 would not see this.
    runs = [RunResult(r.path, r.threads, np.ones_like(r.scores)) for r in parity.runs]
    claimed = ParityResult(**{**parity.__dict__, "runs": runs})
    result, path = int8_variant(fp32, tmp_path, onnx.load(str(fp32)).metadata_props, claimed, gate_reviews.labels,
                                Scoring(_tokenizer(folder), False, 0.5), **ANY_INT8)
    truth = gate_reviews.labels[claimed.review_positions]
    assert result.fp32_accuracy == pytest.approx(float(np.mean(truth == 1)))
    assert path is not None and path.parent == tmp_path


# ---------------------------------------------------------------- issue 12.5/12.6: the report


def _synthetic_parity() -> ParityResult:
    scores = np.array([0.1, 0.9, 0.2])
    return ParityResult(reviews=2, edge_cases=["one token"], atol=1e-5, max_abs_diff=0.0, mean_abs_diff=0.0,
                        label_agreement=1.0, worst_case="review #0", worst_run="batched path, 1 thread(s)",
                        runs=[RunResult(BATCHED, 1, scores)], keras_scores=scores, diffs=np.zeros((1, 3)))


@pytest.mark.parametrize(("limits", "drop", "agreement"), [({}, MAX_ACCURACY_DROP, MIN_AGREEMENT),
                                                           ({"max_accuracy_drop": 0.02, "min_agreement": 0.95},
                                                            0.02, 0.95)])
def test_report_states_the_limits_the_int8_gate_applied(limits, drop, agreement):
    labels = np.array([0, 1] * 50)
    kept = int8_gate(labels * 1.0, labels * 1.0, labels, threshold=0.5, quantized_ops=[], embedding_quantized=True,
                     **limits)
    refused = int8_gate(labels * 1.0, 1.0 - labels, labels, threshold=0.5, quantized_ops=[],
                        embedding_quantized=True, **limits)
    structure = Structure("LSTM", "bidirectional", False, {})
    stated = f"drop <= {100 * drop:g} pt, agreement >= {100 * agreement:g} %"
    assert f"**int8 kept** ({stated})" in markdown(_synthetic_parity(), kept, structure, "m")
    assert f"**int8 refused** ({stated})" in markdown(_synthetic_parity(), refused, structure, "m")


# ---------------------------------------------------------------- issue 12.7: a quantizer surprise


@pytest.mark.parametrize("surprise", ["with the int8 embedding", "always"])
def test_quantizer_structure_surprise_refuses_int8_or_retries(surprise, fixed_keras_model, gate_reviews, tmp_path,
                                                              monkeypatch):
    import onnxruntime.quantization

    real = onnxruntime.quantization.quantize_dynamic

    def surprising(model_input, model_output, **kwargs):
        real(model_input, model_output, **kwargs)
        if surprise == "always" or "Gather" in kwargs["op_types_to_quantize"]:
            model = onnx.load(str(model_output))
            model.graph.node.append(onnx.helper.make_node("Loop", [], [], name="surprise"))
            onnx.save(model, str(model_output))

    monkeypatch.setattr(onnxruntime.quantization, "quantize_dynamic", surprising)
    result = export_model(fixed_keras_model, _few(gate_reviews, 100), tmp_path, threads=(1,), **ANY_INT8)
    manifest = verify(tmp_path)
    if surprise == "always":
        assert not manifest.has_int8 and "control flow" in manifest.int8_refused
        assert manifest.int8_refused.count("control flow") == 2  # both attempts, each with its reason
    else:
        assert manifest.has_int8 and result.int8.refused is None and not result.int8.embedding_quantized
        assert "Loop" not in {n.op_type for n in onnx.load(str(manifest.path_of(INT8))).graph.node}


# ---------------------------------------------------------------- issue 12.8: the int8 gate's limits


def _flipped(n_wrong_fp32: int, fixed: int, broken: int, n: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, fp32 scores wrong on the first ``n_wrong_fp32`` reviews, int8 fixing ``fixed`` of those and
    breaking ``broken`` of the right ones."""
    labels = np.array([0, 1] * (n // 2))
    fp32 = labels.astype(float)
    fp32[:n_wrong_fp32] = 1.0 - fp32[:n_wrong_fp32]
    int8 = fp32.copy()
    int8[:fixed] = 1.0 - int8[:fixed]
    int8[n - broken:] = 1.0 - int8[n - broken:]
    return labels, fp32, int8


@pytest.mark.parametrize(("fp32_wrong", "fixed", "broken", "limits", "refused_by"), [
    (0, 0, 0, {}, None),
    (0, 0, 1, {}, None),  # drop 0.5 pt and agreement 99.5 %: at the drop limit passes
    (0, 0, 2, {}, "accuracy drops"),  # 1 pt
    (10, 5, 5, {}, "label agreement"),  # same accuracy, 95 % agreement
    (10, 1, 1, {}, None),  # agreement 99 %: at the limit passes
    (10, 2, 1, {}, "label agreement"),  # 98.5 %, and int8 is more accurate
    (0, 0, 4, {"max_accuracy_drop": 0.02, "min_agreement": 0.95}, None),  # at both explicit limits
    (0, 0, 5, {"max_accuracy_drop": 0.02, "min_agreement": 0.95}, "accuracy drops"),
    (10, 6, 5, {"max_accuracy_drop": 0.02, "min_agreement": 0.95}, "label agreement"),
])
def test_int8_gate_limits_on_synthetic_scores(fp32_wrong, fixed, broken, limits, refused_by):
    labels, fp32, int8 = _flipped(fp32_wrong, fixed, broken)
    result = int8_gate(fp32, int8, labels, threshold=0.5, quantized_ops=["MatMulInteger"], embedding_quantized=False,
                       **limits)
    assert (result.max_accuracy_drop, result.min_agreement) == (limits.get("max_accuracy_drop", MAX_ACCURACY_DROP),
                                                                limits.get("min_agreement", MIN_AGREEMENT))
    assert result.accuracy_drop == pytest.approx((broken - fixed) / 200)
    if refused_by is None:
        assert result.refused is None
    else:
        assert result.refused and refused_by in result.refused
        other = {"accuracy drops", "label agreement"} - {refused_by}
        assert not any(reason in result.refused for reason in other)


# ---------------------------------------------------------------- issue 12.9: only a bidirectional LSTM or GRU


def _training_folder(source: Path, folder: Path) -> Path:
    folder.mkdir()
    for name in ("training_report.json", "vocab.txt"):
        shutil.copyfile(source.parent / name, folder / name)
    return folder / "model.keras"


def _tiny_recurrent_model(cell):
    import keras

    token_ids = keras.Input(shape=(64,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(2000, 4, name="embedding")(token_ids)
    x = keras.layers.Bidirectional(cell, name="bidirectional")(x)
    return keras.Model(token_ids, keras.layers.Dense(1, activation="sigmoid", name="score")(x))


@pytest.mark.parametrize(("cell", "message"), [
    ("SimpleRNN", "only a bidirectional LSTM or GRU exports"),  # no native ONNX node for it here
    ("GRU", "reset_after"),  # Keras' other GRU variant: ONNX's linear_before_reset=0 is not what it computes
])
def test_a_recurrent_layer_without_a_native_export_is_refused_up_front_with_exit_3(fixed_keras_model, tmp_path,
                                                                                     capsys, cell, message):
    import keras

    layer = keras.layers.SimpleRNN(2) if cell == "SimpleRNN" else keras.layers.GRU(2, reset_after=False)
    keras_path = _training_folder(fixed_keras_model, tmp_path / cell)
    _tiny_recurrent_model(layer).save(keras_path)
    assert main(["--keras", str(keras_path), "--data", str(tmp_path / "no-reviews-needed")]) == exit_codes.MODEL
    err = _one_line_error(capsys)
    assert message in err and cell in err
    assert sorted(os.listdir(keras_path.parent)) == ["model.keras", "training_report.json", "vocab.txt"]


# ---------------------------------------------------------------- issue 12.10: the training report




@pytest.mark.parametrize(("field", "value"), [
    ("labels", DELETE), ("labels", ["negative"]), ("threshold", DELETE), ("threshold", "0.5"), ("threshold", 1.0),
    ("preset", DELETE), ("settings", DELETE), ("settings", []), ("test_accuracy", DELETE), ("test_accuracy", None),
    ("tokenizer", DELETE), ("tokenizer", []), ("tokenizer.max_len", DELETE), ("tokenizer.max_len", "64"),
    ("tokenizer.max_len", True), ("tokenizer.padding", DELETE), ("tokenizer.padding", "middle"),
    ("tokenizer.truncating", DELETE), ("tokenizer.normalization", DELETE), ("vocabulary", DELETE),
    ("vocabulary.sha256", DELETE), ("vocabulary.sha256", 7), ("validation_accuracy", "high"), ("format", DELETE),
])
def test_every_missing_or_mistyped_training_report_field_is_a_usage_error(field, value, fixed_keras_model, tmp_path):
    keras_path = _training_folder(fixed_keras_model, tmp_path / "m")
    keras_path.write_bytes(b"not read before the report is")
    report = json.loads((keras_path.parent / "training_report.json").read_text())
    report = with_field(report, field, value)
    (keras_path.parent / "training_report.json").write_text(json.dumps(report))
    with pytest.raises(ExportInputError) as caught:
        read_training(keras_path)
    message = str(caught.value)
    assert "\n" not in message and field.split(".")[-1] in message and "training_report.json" in message


def test_an_unusable_training_report_exits_2_in_one_line(fixed_keras_model, tmp_path, capsys):
    keras_path = _training_folder(fixed_keras_model, tmp_path / "m")
    keras_path.write_bytes(b"")
    (keras_path.parent / "training_report.json").write_text("[1, 2]")
    assert main(["--keras", str(keras_path)]) == exit_codes.USAGE
    assert "training_report.json" in _one_line_error(capsys)
