"""The embeddable classifier (edge_infer.SentimentClassifier) on the committed seed model, and model verification.

No TensorFlow: these run on a runtime-only install."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, TINY_SENTENCES, requires_default_model

from edge_infer import IntegrityError, ManifestError, ModelError, Prediction, SentimentClassifier
from edge_infer.classifier import verify
from edge_infer.inference import OnnxScorer
from edge_infer.tokenizer import Tokenizer, Vocabulary, build_vocabulary

REVIEWS = [*TINY_SENTENCES, "great", "awful", "boring waste", "superb music", "bad bad bad", "loved it",
           "the plot was thin but the cast was great! " * 10, "a b c d e f g h i j k l m n o p q r s t u v"]


@pytest.fixture(scope="module")
def clf(seed_model_dir: Path) -> SentimentClassifier:
    return SentimentClassifier.load(seed_model_dir)


def copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def rewrite_manifest(folder: Path, **changes: object) -> None:
    path = folder / "manifest.json"
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


# --------------------------------------------------------------------------- predictions


def test_predict_one_and_many(clf: SentimentClassifier):
    one = clf.predict(REVIEWS[0])
    assert isinstance(one, Prediction) and one.label in ("negative", "positive") and 0.0 <= one.score <= 1.0
    many = clf.predict(REVIEWS)
    assert isinstance(many, list) and len(many) == len(REVIEWS)
    assert many[0] == one
    assert {p.label for p in many} == {"negative", "positive"}  # the model's scores spread
    for p in many:
        assert p.label == ("positive" if p.score >= clf.threshold else "negative")


def test_batch_keeps_input_order(clf: SentimentClassifier):
    singles = [clf.predict(t).score for t in REVIEWS]
    assert np.allclose([p.score for p in clf.predict(REVIEWS)], singles, atol=1e-6)
    rev = clf.predict(REVIEWS[::-1])
    assert np.allclose([p.score for p in rev], singles[::-1], atol=1e-6)
    assert clf.predict([]) == []


def test_threshold_override(clf: SentimentClassifier):
    assert all(p.label == "positive" for p in clf.predict(REVIEWS, threshold=0.0))
    assert all(p.label == "negative" for p in clf.predict(REVIEWS, threshold=1.0) if p.score < 1.0)
    with pytest.raises(ValueError):
        clf.predict("good", threshold=1.5)


def test_nfc_and_nfd_give_the_same_prediction(clf: SentimentClassifier):
    text = "Un film émouvant, café crème et naïveté: superb music!"
    nfc, nfd = unicodedata.normalize("NFC", text), unicodedata.normalize("NFD", text)
    assert nfc != nfd
    assert clf.predict(nfc) == clf.predict(nfd)


def test_empty_text_is_a_value_error(clf: SentimentClassifier):
    for bad in ("", "   \n\t "):
        with pytest.raises(ValueError, match="empty"):
            clf.predict(bad)
    with pytest.raises(ValueError):
        clf.predict(["good", ""])
    with pytest.raises(TypeError):
        clf.predict([b"bytes"])  # type: ignore[list-item]
    assert 0.0 <= clf.predict("?!").score <= 1.0  # text without vocabulary words is still classified


def test_long_text_is_truncated_like_the_tokenizer(clf: SentimentClassifier):
    words = ("great " * 30 + "awful boring waste " * 10).split()
    text = " ".join(words)
    # truncating "pre": only the last max_len tokens count
    assert clf.predict(text).score == pytest.approx(clf.predict(" ".join(words[-clf.max_len:])).score, abs=1e-6)


def test_int8_model(seed_model_dir: Path, clf: SentimentClassifier):
    q = SentimentClassifier.load(seed_model_dir, quantized=True, threads=1)
    assert q.quantized and "int8" in repr(q)
    fp = np.array([p.score for p in clf.predict(REVIEWS)])
    i8 = np.array([p.score for p in q.predict(REVIEWS)])
    assert np.abs(fp - i8).max() < 0.2


def test_int8_absent_is_a_clear_error(seed_model_dir: Path, tmp_path: Path):
    folder = copy_model(seed_model_dir, tmp_path / "m")
    data = json.loads((folder / "manifest.json").read_text())
    del data["files"]["int8"]
    data["parity"]["int8"] = {"refused": "accuracy dropped 2.1 points"}
    (folder / "manifest.json").write_text(json.dumps(data))
    (folder / "model.int8.onnx").unlink()
    assert SentimentClassifier.load(folder).predict("good").label in ("negative", "positive")
    with pytest.raises(ModelError, match="no int8 variant.*accuracy dropped"):
        SentimentClassifier.load(folder, quantized=True)


def test_bad_threads(seed_model_dir: Path):
    with pytest.raises(ValueError):
        SentimentClassifier.load(seed_model_dir, threads=0)


def test_concurrent_use_equals_sequential(clf: SentimentClassifier):
    expected = [clf.predict(t) for t in REVIEWS]
    results: dict[int, list[Prediction]] = {}
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            out = []
            for i in range(100):
                j = (i + k) % len(REVIEWS)
                out.append(clf.predict(REVIEWS[j]) if i % 2 else clf.predict([REVIEWS[j]])[0])
            results[k] = out
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for k in range(8):
        assert results[k] == [expected[(i + k) % len(REVIEWS)] for i in range(100)]


class _RecordingSession:
    """Stands in for an ONNX Runtime session: records the batch shapes, scores = first id / 100."""

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def run(self, names, feeds):
        (ids,) = feeds.values()
        assert ids.dtype == np.int32
        self.shapes.append(ids.shape)
        return [ids[:, :1].astype(np.float32) / 100.0]


def test_batches_are_grouped_by_length_and_padded_to_the_longest(monkeypatch):
    monkeypatch.setattr("edge_infer.inference.BATCH_TOKENS", 2000)  # 200 texts of 1..300 tokens: many batches
    words = [f"w{i}" for i in range(300)]
    tokenizer = Tokenizer(Vocabulary(("[PAD]", "[UNK]", *words)), 400, "post", "pre")
    session = _RecordingSession()
    scorer = OnnxScorer(session, 400, "post", True, "token_ids", "score")
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 300, size=200)
    texts = [" ".join(words[int(n) - 1 :: -1][:n]) for n in lengths]  # first token id = n + 1
    scores = scorer.scores([tokenizer.ids(t) for t in texts])
    assert np.allclose(scores, (lengths + 1) / 100.0, atol=1e-6)  # original order restored
    from edge_infer.inference import MAX_BATCH_ROWS

    assert len(session.shapes) > 10
    assert sum(rows for rows, _ in session.shapes) == len(texts)
    assert all(rows * width <= 2000 and rows <= MAX_BATCH_ROWS for rows, width in session.shapes)
    widths = [s[1] for s in session.shapes]
    assert widths == sorted(widths) and max(widths) == lengths.max()
    padded = sum(rows * width for rows, width in session.shapes)
    assert padded < 1.25 * lengths.sum()  # sorted by length: little padding (unsorted: about 2x)
    assert session.shapes[0][0] > session.shapes[-1][0]  # short reviews share bigger batches

    fixed_session = _RecordingSession()
    fixed = OnnxScorer(fixed_session, 64, "pre", False, "token_ids", "score")
    fixed.scores([tokenizer.ids(t)[:64] for t in texts[:10]])
    assert all(width == 64 for _, width in fixed_session.shapes)
    assert sum(rows for rows, _ in fixed_session.shapes) == 10


# --------------------------------------------------------------------------- verification


@pytest.fixture
def no_session(monkeypatch: pytest.MonkeyPatch):
    """Fails the test if an ONNX Runtime session is created (verification must come first)."""
    import onnxruntime

    def refuse(*args, **kwargs):
        raise AssertionError("an InferenceSession was created before verification failed")

    monkeypatch.setattr(onnxruntime, "InferenceSession", refuse)


def test_flipped_byte_is_caught(seed_model_dir: Path, tmp_path: Path, no_session):
    for name, quantized in (("model.onnx", False), ("vocab.txt", False), ("model.int8.onnx", True)):
        folder = copy_model(seed_model_dir, tmp_path / name)
        data = bytearray((folder / name).read_bytes())
        data[len(data) // 2] ^= 0x01
        (folder / name).write_bytes(bytes(data))
        with pytest.raises(IntegrityError, match="sha256") as info:
            SentimentClassifier.load(folder, quantized=quantized)
        assert info.value.path.name == name and name in str(info.value)


def test_fp32_load_does_not_read_the_int8_file(seed_model_dir: Path, tmp_path: Path):
    folder = copy_model(seed_model_dir, tmp_path / "m")
    (folder / "model.int8.onnx").write_bytes(b"broken")
    assert SentimentClassifier.load(folder).predict("a great film").label in ("negative", "positive")
    with pytest.raises(IntegrityError, match="size"):
        verify(folder)  # `edge-infer info` still checks every file


def test_truncated_model_is_caught(seed_model_dir: Path, tmp_path: Path, no_session):
    folder = copy_model(seed_model_dir, tmp_path / "m")
    data = (folder / "model.onnx").read_bytes()
    (folder / "model.onnx").write_bytes(data[: len(data) // 3])
    with pytest.raises(IntegrityError, match="size") as info:
        SentimentClassifier.load(folder)
    assert info.value.path.name == "model.onnx"
    (folder / "model.onnx").unlink()
    with pytest.raises(IntegrityError, match="missing"):
        SentimentClassifier.load(folder)


def test_vocabulary_from_another_run_is_caught(seed_model_dir: Path, tmp_path: Path):
    folder = copy_model(seed_model_dir, tmp_path / "m")
    other = build_vocabulary(["another run, another corpus, other words entirely"], 50)
    sha = other.save(folder / "vocab.txt")
    data = json.loads((folder / "manifest.json").read_text())
    data["files"]["vocab"].update(sha256=sha, size=(folder / "vocab.txt").stat().st_size)
    (folder / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(IntegrityError, match="another vocabulary") as info:
        SentimentClassifier.load(folder)
    assert info.value.path.name == "model.onnx"


def test_manifest_errors(seed_model_dir: Path, tmp_path: Path, no_session):
    with pytest.raises(ManifestError, match="no manifest.json"):
        SentimentClassifier.load(tmp_path)
    folder = copy_model(seed_model_dir, tmp_path / "m")
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        SentimentClassifier.load(folder / "manifest.json")
    good = json.loads((seed_model_dir / "manifest.json").read_text())
    cases = {
        "normalization": dict(tokenizer=dict(good["tokenizer"], normalization="edge-infer-v0")),
        "format_version": dict(format_version=2),
        "inside the model folder": dict(files=dict(good["files"], vocab=dict(good["files"]["vocab"],
                                                                               path="../vocab.txt"))),
        "labels": dict(labels=["positive"]),
        "threshold": dict(threshold=2),
        "files lists no ONNX model": dict(files={"vocab": good["files"]["vocab"]}),
    }
    for match, change in cases.items():
        (folder / "manifest.json").write_text(json.dumps(dict(good, **change)))
        with pytest.raises(ManifestError, match=match) as info:
            SentimentClassifier.load(folder)
        assert info.value.path.name == "manifest.json"


# --------------------------------------------------------------------------- no TensorFlow, default model


def test_import_and_predict_do_not_import_tensorflow(seed_model_dir: Path):
    code = (
        "import sys, edge_infer\n"
        f"clf = edge_infer.SentimentClassifier.load({str(seed_model_dir)!r})\n"
        "clf.predict('a great film'); clf.predict(['bad', 'good'])\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf2onnx', 'onnx'))\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


@pytest.mark.parametrize("name", ["seed", "default"])
def test_committed_models_load_and_predict(name: str):
    folder = REPO / "models" / name
    if not (folder / "manifest.json").is_file():
        pytest.skip(f"models/{name}/manifest.json is not there yet (written by `python -m export`)")
    good = "A wonderful, moving film: brilliant acting and a beautiful story. I loved it."
    bad = "A boring, stupid waste of time. Awful acting and a terrible script. The worst."
    has_int8 = "int8" in json.loads((folder / "manifest.json").read_text())["files"]
    for quantized in (False, True) if has_int8 else (False,):
        clf = SentimentClassifier.load(folder, quantized=quantized)
        assert [p.label for p in clf.predict([good, bad])] == ["positive", "negative"]


@requires_default_model
def test_default_model_is_the_packaged_or_checkout_default():
    from edge_infer import packaged

    clf = SentimentClassifier.load()
    assert clf.manifest.directory == packaged.installed()[packaged.DEFAULT]
    assert clf.predict("A wonderful, moving film. I loved it.").label == "positive"

def test_masked_dynamic_model_padding_does_not_change_scores(default_model_dir: Path):
    """Like the shipped default: batches padded ("post") to their longest row give each text's own score."""
    clf = SentimentClassifier.load(default_model_dir)
    assert clf.manifest.dynamic_length and clf.tokenizer.padding == "post"
    texts = [*REVIEWS, "?!", "..."]  # the last has no tokens at all: one padding id is fed
    batch = clf.predict(texts)
    singles = [clf.predict(t) for t in texts]
    assert np.allclose([p.score for p in batch], [p.score for p in singles], atol=1e-5)
    assert len({round(p.score, 4) for p in batch}) > 3


class _ThreeClassSession:
    """Stands in for a 3-class graph: the probabilities depend on the first token id."""

    def run(self, names, feeds):
        (ids,) = feeds.values()
        first = ids[:, :1].astype(np.float32)
        logits = np.concatenate([-first, np.zeros_like(first), first], axis=1) / 10.0
        return [np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)]


def test_three_labels_take_the_most_probable_one(seed_model_dir: Path):
    from dataclasses import replace

    from edge_infer.model_folder import Manifest

    manifest = replace(Manifest.load(seed_model_dir), labels=("bad", "meh", "good"))
    tokenizer = Tokenizer(Vocabulary(("[PAD]", "[UNK]", "w0", "w1", "w2")), 8, "post", "pre")
    scorer = OnnxScorer(_ThreeClassSession(), 8, "post", True, "token_ids", "score")
    clf = SentimentClassifier(manifest, tokenizer, scorer, quantized=False)
    preds = clf.predict(["w0 w1", "w2", "zzz"])  # first ids 2, 4 and 1 (out of vocabulary): all lean to "good"
    assert [p.label for p in preds] == ["good", "good", "good"]
    for p in preds:
        assert list(p.scores) == ["bad", "meh", "good"] and abs(sum(p.scores.values()) - 1) < 1e-6
        assert p.score == max(p.scores.values()) == p.scores[p.label]
    assert preds[1].score > preds[0].score > preds[2].score
    with pytest.raises(ValueError, match="two-label"):
        clf.predict("w0", threshold=0.5)
    with pytest.raises(ValueError, match="two-label"):
        clf.scores(["w0"])


def test_two_labels_keep_score_as_p_positive_with_both_scores(seed_model_dir: Path):
    clf = SentimentClassifier.load(seed_model_dir)
    for p in clf.predict(REVIEWS):
        assert set(p.scores) == {"negative", "positive"} and p.score == p.scores["positive"]
        assert abs(p.scores["negative"] + p.scores["positive"] - 1) < 1e-9
