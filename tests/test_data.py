"""Tests of train/data.py on a tiny aclImdb layout written by the tests (plus one check of the real archive)."""

from __future__ import annotations

import os
import tarfile
from collections import Counter

import numpy as np
import pytest

from train import data
from train.data import (
    DataError,
    Split,
    load_imdb,
    stratified_indices,
    train_validation_split,
)

# Sentences written for these tests; file name -> text.
FAKE = {
    ("train", "pos"): {
        "0_9.txt": "A warm and funny film." + "<br />" * 2 + "I loved every minute.",
        "1_8.txt": "The cast shines and the story flies by.",
        "2_10.txt": "Best thing I watched this year!",
    },
    ("train", "neg"): {
        "0_2.txt": "Dull, slow and far too long.",
        "1_1.txt": "I wanted my two hours back.",
        "2_3.txt": "The script falls apart halfway through.",
    },
    ("test", "pos"): {
        "0_7.txt": "Charming characters and a clever ending.",
        "1_10.txt": "A joy from start to finish, caf\u00e9 scene included.",
    },
    ("test", "neg"): {
        "0_4.txt": "Noisy, empty and forgettable.",
        "1_2.txt": "Even the music could not save it.",
    },
    ("train", "unsup"): {
        "0_0.txt": "UNSUPERVISED review that must never be loaded.",
        "1_0.txt": "Another unlabeled UNSUPERVISED text.",
    },
}


def _expected(split):
    """Texts and labels in the loader's order: sorted by (polarity, file name), so neg before pos."""
    items = []
    for polarity in ("neg", "pos"):
        for name in sorted(FAKE[(split, polarity)]):
            items.append((FAKE[(split, polarity)][name], 1 if polarity == "pos" else 0))
    return [t for t, _ in items], [label for _, label in items]


@pytest.fixture
def fake_root(tmp_path):
    """tmp_path/fake/aclImdb/... ; returns tmp_path/fake (the folder holding aclImdb)."""
    root = tmp_path / "fake"
    for (split, polarity), files in FAKE.items():
        folder = root / "aclImdb" / split / polarity
        folder.mkdir(parents=True)
        for name, text in files.items():
            (folder / name).write_text(text, encoding="utf-8")
    # noise the loader must skip
    (root / "aclImdb" / "README").write_text("not a review\n", encoding="utf-8")
    (root / "aclImdb" / "train" / "pos" / "notes.md").write_text("not a review either\n", encoding="utf-8")
    return root


@pytest.fixture
def fake_tar(fake_root, tmp_path):
    path = tmp_path / "aclImdb_fake.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        archive.add(fake_root / "aclImdb", arcname="aclImdb")
    return path


def _assert_matches_fake(imdb):
    for split_name in ("train", "test"):
        split = getattr(imdb, split_name)
        texts, labels = _expected(split_name)
        assert split.texts == texts
        assert split.labels.dtype == np.int32
        assert split.labels.tolist() == labels
        assert len(split) == len(texts)
    assert len(imdb.train) == 6 and len(imdb.test) == 4
    for split in (imdb.train, imdb.test):
        assert not any("UNSUPERVISED" in t for t in split.texts)
        assert not any("not a review" in t for t in split.texts)


def test_load_from_directory(fake_root):
    imdb = load_imdb(fake_root)
    _assert_matches_fake(imdb)
    assert imdb.path == str(fake_root)
    assert len(imdb.sha256) == 64


def test_load_from_the_aclimdb_folder_itself(fake_root):
    inner = load_imdb(fake_root / "aclImdb")
    outer = load_imdb(fake_root)
    _assert_matches_fake(inner)
    assert inner.train.texts == outer.train.texts and inner.sha256 == outer.sha256


def test_load_from_tar_gz(fake_tar):
    imdb = load_imdb(fake_tar)
    _assert_matches_fake(imdb)
    import hashlib

    assert imdb.sha256 == hashlib.sha256(fake_tar.read_bytes()).hexdigest()


def test_directory_and_archive_agree(fake_root, fake_tar):
    from_dir = load_imdb(fake_root)
    from_tar = load_imdb(fake_tar)
    for name in ("train", "test"):
        assert getattr(from_dir, name).texts == getattr(from_tar, name).texts
        np.testing.assert_array_equal(getattr(from_dir, name).labels, getattr(from_tar, name).labels)


def test_positive_reviews_labelled_one(fake_root):
    imdb = load_imdb(fake_root)
    pos_texts = set(FAKE[("train", "pos")].values())
    for text, label in zip(imdb.train.texts, imdb.train.labels):
        assert label == (1 if text in pos_texts else 0)
    assert data.LABELS[1] == "positive"


def test_directory_sha_changes_with_content(fake_root):
    before = load_imdb(fake_root).sha256
    (fake_root / "aclImdb" / "test" / "neg" / "1_2.txt").write_text("Changed text.", encoding="utf-8")
    assert load_imdb(fake_root).sha256 != before


def test_default_path_follows_env(monkeypatch, fake_tar):
    monkeypatch.setenv("EDGE_INFER_DATA", str(fake_tar))
    assert data.default_data_path() == fake_tar
    _assert_matches_fake(load_imdb())


# --------------------------------------------------------------------------- errors


def test_missing_path_raises(tmp_path):
    with pytest.raises(DataError):
        load_imdb(tmp_path / "does_not_exist.tar.gz")


def test_directory_without_layout_raises(tmp_path):
    (tmp_path / "something").mkdir()
    (tmp_path / "something" / "review.txt").write_text("Loose file, no layout.", encoding="utf-8")
    with pytest.raises(DataError):
        load_imdb(tmp_path)


def test_directory_missing_one_class_raises(fake_root):
    for file in (fake_root / "aclImdb" / "test" / "neg").glob("*.txt"):
        file.unlink()
    with pytest.raises(DataError):
        load_imdb(fake_root)


def test_corrupt_archive_raises(tmp_path):
    path = tmp_path / "corrupt.tar.gz"
    path.write_bytes(np.random.default_rng(7).integers(0, 256, size=4096, dtype=np.uint8).tobytes())
    with pytest.raises(DataError):
        load_imdb(path)


def test_truncated_archive_raises(fake_tar, tmp_path):
    blob = fake_tar.read_bytes()
    path = tmp_path / "truncated.tar.gz"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError):
        load_imdb(path)


def test_archive_without_layout_raises(tmp_path):
    loose = tmp_path / "loose.txt"
    loose.write_text("Just one file.", encoding="utf-8")
    path = tmp_path / "other.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        archive.add(loose, arcname="stuff/loose.txt")
    with pytest.raises(DataError):
        load_imdb(path)


# --------------------------------------------------------------------------- sampling


def _labels(n_neg, n_pos, seed=0):
    labels = np.array([0] * n_neg + [1] * n_pos, dtype=np.int32)
    np.random.default_rng(seed).shuffle(labels)
    return labels


def test_stratified_indices_balanced():
    labels = _labels(60, 40)
    idx = stratified_indices(labels, 20, seed=3)
    assert len(idx) == 20
    assert len(set(idx.tolist())) == 20
    assert np.all(np.diff(idx) > 0)  # ascending, unique
    assert Counter(labels[idx].tolist()) == {0: 10, 1: 10}
    odd = stratified_indices(labels, 21, seed=3)
    assert Counter(labels[odd].tolist()) == {0: 10, 1: 11}


def test_stratified_indices_deterministic():
    labels = _labels(50, 50)
    a = stratified_indices(labels, 30, seed=11)
    b = stratified_indices(labels, 30, seed=11)
    np.testing.assert_array_equal(a, b)
    others = [stratified_indices(labels, 30, seed=s) for s in range(12, 17)]
    assert any(not np.array_equal(a, o) for o in others)


def test_stratified_indices_capped_by_class_size():
    labels = _labels(3, 50)
    idx = stratified_indices(labels, 20, seed=0)
    assert Counter(labels[idx].tolist()) == {0: 3, 1: 10}


def _split(n_neg, n_pos):
    labels = _labels(n_neg, n_pos, seed=5)
    texts = [f"review number {i} label {label}" for i, label in enumerate(labels)]
    return Split(texts=texts, labels=labels)


def test_train_validation_split_disjoint_stratified_covering():
    split = _split(40, 40)
    train, val = train_validation_split(split, 0.25, seed=9)
    assert len(val) == 20 and len(train) == 60
    assert set(train.texts).isdisjoint(val.texts)
    assert sorted(train.texts + val.texts) == sorted(split.texts)
    assert Counter(val.labels.tolist()) == {0: 10, 1: 10}
    assert Counter(train.labels.tolist()) == {0: 30, 1: 30}
    # labels still belong to their texts
    for part in (train, val):
        for text, label in zip(part.texts, part.labels):
            assert text.endswith(f"label {label}")


def test_train_validation_split_deterministic():
    split = _split(30, 30)
    a = train_validation_split(split, 0.2, seed=4)
    b = train_validation_split(split, 0.2, seed=4)
    assert a[0].texts == b[0].texts and a[1].texts == b[1].texts
    c = train_validation_split(split, 0.2, seed=5)
    assert c[1].texts != a[1].texts


def test_train_validation_split_at_least_two():
    split = _split(10, 10)
    train, val = train_validation_split(split, 0.001, seed=0)
    assert len(val) == 2 and sorted(val.labels.tolist()) == [0, 1]
    assert len(train) == 18


# --------------------------------------------------------------------------- the real archive

REAL = data.default_data_path()


@pytest.mark.skipif(not os.path.isfile(REAL), reason=f"{REAL} is not present")
def test_real_archive_counts():
    imdb = load_imdb(REAL)
    assert len(imdb.train) == 25_000
    assert len(imdb.test) == 25_000
    for split in (imdb.train, imdb.test):
        assert Counter(split.labels.tolist()) == {0: 12_500, 1: 12_500}
        assert all(isinstance(t, str) and t for t in split.texts)
    assert len(imdb.sha256) == 64


def test_imdb_root_is_the_aclimdb_subfolder_when_there_is_one(tmp_path):
    assert data.imdb_root(tmp_path) == tmp_path
    (tmp_path / "aclImdb").write_text("a file, not the folder")
    assert data.imdb_root(tmp_path) == tmp_path
    (tmp_path / "aclImdb").unlink()
    (tmp_path / "aclImdb").mkdir()
    assert data.imdb_root(tmp_path) == tmp_path / "aclImdb"
