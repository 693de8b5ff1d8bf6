"""Pretraining (``python -m train pretrain``): no test text reaches it, it resumes after SIGKILL, and a
classifier fine-tunes from its artifact. Also the movie-grouped validation split."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_faults_train import KILL_SCRIPT  # runs main(argv[2:]), SIGKILLed after epoch argv[1]

from train.data import Split, default_data_path
from train.movies import movie_hold_out
from train.unlabeled import default_unlabeled_path, drop_test_copies

REPO = Path(__file__).resolve().parent.parent
DATA, UNLABELED = default_data_path(), default_unlabeled_path()
ENV = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
TIMEOUT = 600
needs_data = pytest.mark.skipif(not (DATA.exists() and UNLABELED.exists()), reason="../shared/data is not there")

# A few hundred reviews from both archives, short pieces and a small vocabulary: seconds per epoch.
SMOKE = ["--max-reviews", "300", "--vocab-size", "2000", "--chunk-len", "60", "--batch-size", "32",
         "--negatives", "64", "--epochs", "3", "--patience", "3"]



def run(*args: str, script: str | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", script, *args] if script else [sys.executable, "-m", "train", *args]
    return subprocess.run(command, capture_output=True, text=True, env=ENV, cwd=REPO, timeout=TIMEOUT,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def encoder_arrays(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / "encoder.npz") as arrays:
        return {name: arrays[name] for name in arrays.files}


# --------------------------------------------------------------------------------------------- no test text

def test_drop_test_copies_compares_stripped_texts():
    keep, dropped = drop_test_copies(["a film", "  the test review\n", "another", "the test review"],
                                     ["the test review  ", "unrelated"])
    assert keep == [0, 2] and dropped == 2


def _write(folder: Path, name: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")


def _folder_with_test_copies(tmp_path: Path, train_copy: bool) -> Path:
    """An aclImdb folder whose 5 extra test reviews hold words found nowhere else ("testonlyN"), copied into
    train/unsup with other whitespace (and, if ``train_copy``, one into train/pos); 55 other unlabelled
    reviews each hold a word of their own ("unsuponlyN")."""
    root = tmp_path / "aclImdb"
    words = "good bad film plot acting great awful story scene fun dull".split()
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for polarity in ("pos", "neg"):
            for i in range(30):
                _write(root / split / polarity, f"{i}_{7 if polarity == 'pos' else 2}.txt",
                       " ".join(rng.choice(words, 40)))
    secret = [f"testonly{i} " + " ".join(rng.choice(words, 20)) for i in range(5)]
    for i, text in enumerate(secret):
        _write(root / "test" / "pos", f"{100 + i}_9.txt", text)
        _write(root / "train" / "unsup", f"{i}_0.txt", f"\n  {text}\n")  # a copy, other whitespace
    if train_copy:
        _write(root / "train" / "pos", "200_8.txt", secret[0])  # a labelled training copy of a test review
    for i in range(5, 60):
        _write(root / "train" / "unsup", f"{i}_0.txt", " ".join(rng.choice(words, 50)) + f" unsuponly{i}")
    return tmp_path


@pytest.mark.needs_tf
def test_no_test_text_reaches_pretraining(tmp_path):
    """Pretrain on that folder: the vocabulary, built from every pretraining text, has none of the test-only
    words, and every unlabelled review's own word."""
    data = _folder_with_test_copies(tmp_path, train_copy=True)
    out = tmp_path / "pretrained"
    done = run("pretrain", "--data", str(data), "--unlabeled", str(data), "--out", str(out),
               "--vocab-size", "500", "--chunk-len", "30", "--negatives", "8", "--epochs", "1", "--batch-size", "16")
    assert done.returncode == 0, done.stderr[-2000:]
    vocabulary = (out / "vocab.txt").read_text().split("\n")
    assert not [token for token in vocabulary if token.startswith("testonly")]
    # unsup text did get in (2 % of the reviews are held out, and the vocabulary comes from the rest)
    assert len([token for token in vocabulary if token.startswith("unsuponly")]) >= 53
    data_info = json.loads((out / "pretrain_report.json").read_text())["data"]
    assert data_info["unlabeled"]["dropped_test_copies"] == 5 and data_info["labeled"]["dropped_test_copies"] == 1
    assert data_info["unlabeled"]["reviews"] == 55 and data_info["labeled"]["train_reviews"] == 60


@pytest.mark.needs_tf
def test_no_test_text_reaches_distillation(tmp_path):
    """`python -m train --unlabeled` on the same folder: the copies of test reviews are dropped before the
    teacher labels the unlabelled reviews and before the vocabulary is built from them."""
    data = _folder_with_test_copies(tmp_path, train_copy=False)
    out = tmp_path / "distilled"
    done = run("--data", str(data), "--unlabeled", str(data), "--out", str(out), "--vocab-size", "500",
               "--max-len", "60", "--embedding-dim", "8", "--units", "4", "--epochs", "1", "--validation", "random")
    assert done.returncode == 0, done.stderr[-2000:]
    vocabulary = (out / "vocab.txt").read_text().split("\n")
    assert not [token for token in vocabulary if token.startswith("testonly")]
    assert len([token for token in vocabulary if token.startswith("unsuponly")]) == 55
    report = json.loads((out / "training_report.json").read_text())
    assert report["distillation"]["unlabeled"] == {**report["distillation"]["unlabeled"], "reviews": 55,
                                                   "dropped_test_copies": 5}
    assert 0.0 < report["distillation"]["teacher_validation_accuracy"] <= 1.0


@needs_data
def test_the_real_corpus_holds_no_test_review():
    from train.data import load_imdb
    from train.pretrain import read_corpus
    from train.pretrain_settings import PRETRAIN_PRESET

    corpus = read_corpus(DATA, UNLABELED, PRETRAIN_PRESET)
    test = {text.strip() for text in load_imdb(DATA).test.texts}
    assert not [text for text in corpus.texts if text.strip() in test]
    info = corpus.info
    assert info["unlabeled"]["dropped_test_copies"] == 270 and info["labeled"]["dropped_test_copies"] == 123
    assert info["reviews"] == 25_000 - 123 + 50_000 - 270 == len(corpus.texts)


# --------------------------------------------------------------------------------------------- smoke, resume

@pytest.fixture(scope="module")
def pretrained_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A smoke pretraining, and the same run SIGKILLed after epoch 2's checkpoint and run again."""
    if not (DATA.exists() and UNLABELED.exists()):
        pytest.skip("../shared/data is not there")
    root = tmp_path_factory.mktemp("pretrain")
    whole, killed = root / "whole", root / "killed"
    done = run("pretrain", "--out", str(whole), *SMOKE)
    assert done.returncode == 0, done.stderr[-2000:]
    first = run("2", "pretrain", "--out", str(killed), *SMOKE, script=KILL_SCRIPT)
    assert first.returncode == -signal.SIGKILL, first.stderr[-2000:]
    assert not (killed / "pretrain_report.json").exists()
    again = run("pretrain", "--out", str(killed), *SMOKE)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resuming the interrupted pretraining" in again.stderr
    return {"whole": whole, "killed": killed}


@pytest.mark.needs_tf
def test_smoke_pretraining_writes_a_checked_artifact(pretrained_runs):
    from edge_infer.storage import file_sha256

    folder = pretrained_runs["whole"]
    report = json.loads((folder / "pretrain_report.json").read_text())
    assert sorted(p.name for p in folder.iterdir()) == ["encoder.npz", "pretrain_curves.png", "pretrain_report.json",
                                                        "vocab.txt"]
    for entry in report["files"].values():
        assert file_sha256(folder / entry["path"]) == entry["sha256"]
    data = report["data"]
    assert data["reviews"] == 300 and 0 < data["reviews_unlabeled"] < 300  # both archives contribute
    assert len(report["history"]) == 3 and report["history"][-1]["loss"] < report["history"][0]["loss"]
    arrays = encoder_arrays(folder)
    assert arrays["embedding/0"].shape == (2000, 64) and len(arrays) == 7  # embedding + 2 x 3 LSTM weights


@pytest.mark.needs_tf
def test_resumed_pretraining_ends_like_the_uninterrupted_one(pretrained_runs):
    whole, killed = (json.loads((pretrained_runs[k] / "pretrain_report.json").read_text()) for k in ("whole", "killed"))
    assert killed["resumed"] and not whole["resumed"]
    assert [h["val_loss"] for h in killed["history"]] == [h["val_loss"] for h in whole["history"]]
    a, b = encoder_arrays(pretrained_runs["whole"]), encoder_arrays(pretrained_runs["killed"])
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.needs_tf
def test_fine_tuning_starts_from_the_pretrained_encoder(pretrained_runs, tmp_path):
    folder = pretrained_runs["whole"]
    out = tmp_path / "classifier"
    done = run("--pretrained", str(folder), "--vocab-size", "2000", "--max-samples", "200", "--epochs", "1",
               "--validation", "movie", "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((out / "training_report.json").read_text())
    from edge_infer.storage import file_sha256

    assert report["pretrained"]["encoder_sha256"] == file_sha256(folder / "encoder.npz")
    assert (out / "vocab.txt").read_text() == (folder / "vocab.txt").read_text()
    assert report["settings"]["validation"] == "movie"


@pytest.mark.needs_tf
@pytest.mark.parametrize("args, needle", [
    (["--units", "16"], "--units 16 (the encoder's is 32)"),
    (["--vocab-size", "3000"], "--vocab-size 3000 (the encoder's is 2000)"),
])
def test_fine_tuning_with_other_shapes_is_refused(pretrained_runs, tmp_path, args, needle):
    done = run("--pretrained", str(pretrained_runs["whole"]), "--vocab-size", "2000", *args, "--out",
               str(tmp_path / "c"))
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and needle in lines[0], done.stderr[-2000:]


@pytest.mark.needs_tf
def test_a_tampered_encoder_is_refused(pretrained_runs, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(pretrained_runs["whole"], copy)
    with (copy / "encoder.npz").open("ab") as handle:
        handle.write(b"x")
    done = run("--pretrained", str(copy), "--vocab-size", "2000", "--out", str(tmp_path / "c"))
    assert done.returncode == 2 and "does not match the sha256" in done.stderr, done.stderr[-2000:]


def test_pretrain_bad_option_is_a_one_line_usage_error(tmp_path):
    done = run("pretrain", "--out", str(tmp_path / "p"), "--chunk-len", "1")
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and lines == ["error: --chunk-len must be an integer of at least 2, not 1"]


# --------------------------------------------------------------------------------------------- movie split

def test_movie_hold_out_keeps_movies_whole_and_classes_balanced():
    rng = np.random.default_rng(1)
    movies = [f"tt{m}" for m in rng.integers(0, 300, 3000)]
    labels = rng.integers(0, 2, 3000).astype(np.int32)
    split = Split(texts=[""] * 3000, labels=labels)
    fit, held = movie_hold_out(split, movies, 0.1, seed=5)
    assert not {movies[i] for i in fit} & {movies[i] for i in held}
    assert sorted([*fit, *held]) == list(range(3000))
    for cls in (0, 1):
        target = round((labels == cls).sum() * 0.1)
        assert target - 15 <= (labels[held] == cls).sum() <= target
    again = movie_hold_out(split, movies, 0.1, seed=5)
    assert np.array_equal(again[1], held) and not np.array_equal(movie_hold_out(split, movies, 0.1, seed=6)[1], held)


@needs_data
def test_movie_validation_on_aclimdb_shares_no_movie_with_fit():
    from train.movies import review_movies
    from train.presets import PRESETS
    from train.run import _splits
    from train.sources import SourceSpec, load_dataset

    settings = PRESETS["default"].with_overrides(validation="movie")
    data = load_dataset(SourceSpec(DATA), settings.seed)
    movies = review_movies(DATA, "train", list(data.train_members or ()))
    fit_rows, held_rows = movie_hold_out(data.train, movies, settings.validation_fraction, settings.seed)
    assert not {movies[i] for i in fit_rows} & {movies[i] for i in held_rows}
    held = data.train.labels[held_rows]
    assert 2_400 <= len(held) <= 2_500 and abs(int(held.sum()) * 2 - len(held)) <= 25
    fit, validation, _ = _splits(data, settings)  # what training uses
    assert validation.texts == [data.train.texts[i] for i in held_rows] and len(fit) == len(fit_rows)


# --------------------------------------------------------------------------------------------- distillation

DISTILL = ["--max-samples", "300", "--vocab-size", "2000", "--max-len", "80", "--embedding-dim", "16", "--units",
           "8", "--epochs", "3", "--patience", "3", "--validation", "random", "--unlabeled", str(UNLABELED)]


@pytest.mark.needs_tf
@needs_data
def test_killed_distillation_resumes_to_the_same_model(tmp_path):
    """SIGKILL after the classifier's epoch 2 (the teacher's own fit is left alone), run again: the same history
    and weights as the uninterrupted run (the teacher is fitted again, from the same seed, to the same targets)."""
    import keras

    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert run("--out", str(whole), *DISTILL).returncode == 0
    script = KILL_SCRIPT.replace("if epoch + 1 == KILL_AFTER:",
                                 "if epoch + 1 == KILL_AFTER and self.model.name.startswith('sentiment'):")
    assert run("2", "--out", str(killed), *DISTILL, script=script).returncode == -signal.SIGKILL
    again = run("--out", str(killed), *DISTILL)
    assert again.returncode == 0 and "resuming the interrupted run" in again.stderr, again.stderr[-2000:]
    reports = [json.loads((f / "training_report.json").read_text()) for f in (whole, killed)]
    assert [h["val_loss"] for h in reports[0]["history"]] == [h["val_loss"] for h in reports[1]["history"]]
    assert reports[1]["resumed"] and reports[0]["distillation"] == reports[1]["distillation"]
    weights = [keras.models.load_model(f / "model.keras").get_weights() for f in (whole, killed)]
    assert all(np.array_equal(a, b) for a, b in zip(*weights))
