"""Shared fixtures: a tiny exported model for the runtime tests, and a marker for the shipped default model.

Tests that need the ``train`` extra (TensorFlow, tf2onnx, onnx, matplotlib: training or export) carry the
``needs_tf`` marker and are skipped, with the reason, where it is not installed; a test that uses one of
the fixtures below that train or export (``TF_FIXTURES``) gets the marker by itself. ``pytest -m "not
needs_tf"`` runs everything else (the runtime-only CI job).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = REPO / "models" / "default"
SEED_MODEL = REPO / "models" / "seed"


TRAIN_EXTRA = ("tensorflow", "tf2onnx", "onnx", "matplotlib")
"""The modules of the ``train`` extra that ``needs_tf`` tests use."""

TF_FIXTURES = frozenset({"gate_reviews", "fixed_keras_model", "masked_keras_model", "fixed_export", "masked_export",
                         "tiny_model_dir", "tiny_masked_model_dir"})
"""The fixtures below that train a model or import the exporter: a test using one of them is ``needs_tf``."""


def missing_train_extra() -> str | None:
    """Why ``needs_tf`` tests cannot run here (the missing modules of the ``train`` extra), or None."""
    missing = [name for name in TRAIN_EXTRA if importlib.util.find_spec(name) is None]
    return f"needs the train extra; not installed: {', '.join(missing)}" if missing else None


def skip_module_without_train_extra() -> None:
    """At the top of a ``needs_tf`` test module that imports onnx or export/ at module level: skip it whole."""
    reason = missing_train_extra()
    if reason:
        pytest.skip(reason, allow_module_level=True)


@pytest.hookimpl(tryfirst=True)  # before `-m` selects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = missing_train_extra()
    for item in items:
        if TF_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.needs_tf)
        if reason and item.get_closest_marker("needs_tf"):
            item.add_marker(pytest.mark.skip(reason=reason))


DELETE = object()
"""For :func:`with_field`: remove the field instead of setting it."""


def with_field(doc: dict, dotted: str, value: object) -> dict:
    """A deep copy of the JSON object ``doc`` with the field at ``dotted`` (``"a.b.c"``) set or removed."""
    import copy

    out = copy.deepcopy(doc)
    *parents, last = dotted.split(".")
    node = out
    for key in parents:
        node = node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return out


def copy_exported(source: Path, folder: Path) -> Path:
    """Copy a model folder's ``manifest.json`` and the files it lists (not model.keras, reports, plots)."""
    import json
    import shutil

    folder.mkdir(parents=True)
    doc = json.loads((source / "manifest.json").read_text())
    for name in ["manifest.json", *(entry["path"] for entry in doc["files"].values())]:
        shutil.copy2(source / name, folder / name)
    return folder


@pytest.fixture(scope="session")
def seed_model_dir() -> Path:
    """The committed seed model: fixed length (max_len 200, padding "pre"), fp32 + int8; no TensorFlow needed."""
    return SEED_MODEL


@pytest.fixture(scope="session")
def model(seed_model_dir: Path) -> str:
    """``--model`` for the CLI tests: the committed seed model's folder."""
    return os.fspath(seed_model_dir)


@pytest.fixture(scope="session")
def default_model_dir() -> Path:
    """The committed default model: masked, any length (padding "post"), fp32 + int8."""
    return DEFAULT_MODEL

requires_default_model = pytest.mark.skipif(
    not (DEFAULT_MODEL / "manifest.json").is_file(),
    reason="models/default/manifest.json is not there yet (written by `python -m export`)",
)

TINY_SENTENCES = [
    "A wonderful, moving film with great acting and a brilliant story.",
    "I loved every minute of it! The cast was superb and the music beautiful.",
    "Terrible plot, awful acting, a boring and stupid waste of time.",
    "The worst movie I have ever seen; bad script, bad direction, bad everything.",
    "It was fine. Some good scenes, some dull ones, an ok ending?",
]


@pytest.fixture(scope="session")
def default_model_available() -> Path:
    """The committed default model folder; skips the test when it has not been exported yet."""
    if not (DEFAULT_MODEL / "manifest.json").is_file():
        pytest.skip("models/default/manifest.json is not there yet (written by `python -m export`)")
    return DEFAULT_MODEL


TINY_TRAINING = {"max_samples": 2000, "epochs": 3, "vocab_size": 2000, "max_len": 64, "embedding_dim": 16,
                 "units": 8, "learning_rate": 0.01}
"""Small enough to train in seconds. The learning rate (10 x the presets') makes the model confident: with
0.001 it ended near chance on some CPUs (every gate-review score within 0.05 of the threshold); with 0.01
about 5 % are (measured on AVX-512 and with ONEDNN_MAX_CPU_ISA=AVX2)."""


@pytest.fixture(scope="session")
def data_path() -> Path:
    """The labelled aclImdb archive (../shared); skips the test when it is absent."""
    from train.data import default_data_path

    path = default_data_path()
    if not path.exists():
        pytest.skip(f"{path} is not there")
    return path


@pytest.fixture(scope="session")
def gate_reviews(data_path: Path):
    """300 stratified test reviews for the export gates."""
    from export.pipeline import Reviews
    from train.data import load_imdb, stratified_indices, subset

    test = load_imdb(data_path).test
    sample = subset(test, stratified_indices(test.labels, 300, 7))
    return Reviews(list(sample.texts), sample.labels)


def _train_tiny(folder: Path, preset: str, data: Path) -> Path:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from train.presets import PRESETS
    from train.run import train

    train(data, folder, PRESETS[preset].with_overrides(**TINY_TRAINING), preset)
    return folder / "model.keras"


@pytest.fixture(scope="session")
def fixed_keras_model(tmp_path_factory: pytest.TempPathFactory, data_path: Path) -> Path:
    """A tiny seed-style model (fixed length, pre padding) trained here; its model.keras."""
    return _train_tiny(tmp_path_factory.mktemp("fixed_keras"), "seed", data_path)


@pytest.fixture(scope="session")
def masked_keras_model(tmp_path_factory: pytest.TempPathFactory, data_path: Path) -> Path:
    """A tiny default-style model (mask_zero, post padding, any length) trained here; its model.keras."""
    return _train_tiny(tmp_path_factory.mktemp("masked_keras"), "default", data_path)


@pytest.fixture(scope="session")
def fixed_export(fixed_keras_model: Path, gate_reviews, tmp_path_factory: pytest.TempPathFactory):
    """``export.export_model`` of the fixed-length tiny model (both gates run).

    The int8 gate gets generous limits (5 pt, 90 %): on 300 reviews the default 0.5 pt is 1 review, so a
    tiny model's verdict would depend on the CPU. ``test_int8_gate_limits_on_synthetic_scores`` tests the
    default limits; these fixtures only need the int8 file that a passing gate writes.
    """
    from export.pipeline import export_model

    return export_model(fixed_keras_model, gate_reviews, tmp_path_factory.mktemp("tiny_model"), name="tiny",
                        max_accuracy_drop=0.05, min_agreement=0.9)


@pytest.fixture(scope="session")
def masked_export(masked_keras_model: Path, gate_reviews, tmp_path_factory: pytest.TempPathFactory):
    """``export.export_model`` of the masked tiny model (both gates run; int8 limits as in ``fixed_export``)."""
    from export.pipeline import export_model

    return export_model(masked_keras_model, gate_reviews, tmp_path_factory.mktemp("tiny_masked_model"),
                        name="tiny-masked", max_accuracy_drop=0.05, min_agreement=0.9)


@pytest.fixture(scope="session")
def tiny_model_dir(fixed_export) -> Path:
    """A model folder written by the exporter: fixed length (max_len 64), fp32 + int8, vocabulary of 2,000."""
    return fixed_export.out_dir


@pytest.fixture(scope="session")
def tiny_masked_model_dir(masked_export) -> Path:
    """Like ``tiny_model_dir`` but masked, like the shipped default: any length, padding "post"."""
    return masked_export.out_dir
