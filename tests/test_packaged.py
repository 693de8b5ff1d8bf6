"""Packaged models by name (edge_infer/packaged.py): the path-or-name rule, load(name), the wheel's contents
(filtered manifests for int8-only models), `--model NAME` and `info --list`.

The multi-model cases run on a registry pointed at copies of models/seed, so they hold whether or not
models/general has been exported yet.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, SEED_MODEL, TINY_SENTENCES, copy_exported, requires_default_model

from edge_infer import packaged
from edge_infer.classifier import SentimentClassifier, verify
from edge_infer.model_folder import ManifestError, ModelError, UnknownModelError
from edge_infer.packaged import PackagedModel


@pytest.fixture()
def two_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A registry of two packaged models in a fake checkout: "first" (fp32 + int8, the default) and
    "second" (int8 only in the wheel), copies of models/seed; plus "later", not exported."""
    root = tmp_path / "checkout"
    folders = {"first": copy_exported(SEED_MODEL, root / "models" / "a"),
               "second": copy_exported(SEED_MODEL, root / "models" / "b")}
    monkeypatch.setattr(packaged, "MODELS", (
        PackagedModel("first", os.fspath(folders["first"]), ("fp32", "int8")),
        PackagedModel("second", os.fspath(folders["second"]), ("int8",)),
        PackagedModel("later", os.fspath(root / "models" / "c"), ("int8",)),
    ))
    monkeypatch.setattr(packaged, "DEFAULT", "first")
    return folders


# --------------------------------------------------------------------------- the rule: a path or a name


def test_a_path_is_what_exists_or_holds_a_separator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    assert not packaged.looks_like_path("imdb") and not packaged.looks_like_path(Path("general"))
    assert packaged.looks_like_path("runs/mine") and packaged.looks_like_path("./imdb")
    assert packaged.looks_like_path("runs/")
    (tmp_path / "imdb").mkdir()
    assert packaged.looks_like_path("imdb")  # an existing folder wins over the name


def test_the_registry_names_its_default_and_known_precisions():
    assert packaged.DEFAULT in packaged.names() and len(set(packaged.names())) == len(packaged.MODELS)
    for model in packaged.MODELS:
        assert model.precisions and set(model.precisions) <= {"fp32", "int8"}
        assert not model.folder.startswith("/") and (REPO / model.folder).parent == REPO / "models"
    assert {"imdb", "general"} <= set(packaged.names())


# --------------------------------------------------------------------------- load by name, by path


@requires_default_model
def test_load_imdb_by_name_is_the_checkout_folder_and_matches_the_path():
    by_name = SentimentClassifier.load("imdb", threads=1)
    by_path = SentimentClassifier.load(REPO / "models" / "default", threads=1)
    assert by_name.manifest.directory == REPO / "models" / "default"
    assert by_name.predict(TINY_SENTENCES) == by_path.predict(TINY_SENTENCES)
    assert SentimentClassifier.load(threads=1).manifest.directory == packaged.installed()[packaged.DEFAULT]


def test_load_by_name_from_a_registry_of_two(two_models: dict[str, Path]):
    first = SentimentClassifier.load("first", threads=1)
    assert first.manifest.directory == two_models["first"] and not first.quantized
    assert SentimentClassifier.load(threads=1).manifest.directory == two_models["first"]  # the default
    second = SentimentClassifier.load("second", quantized=True, threads=1)
    assert second.manifest.directory == two_models["second"]
    by_path = SentimentClassifier.load(os.fspath(two_models["second"]), quantized=True, threads=1)
    assert second.predict(TINY_SENTENCES) == by_path.predict(TINY_SENTENCES)
    assert verify("second").name == "seed"


def test_an_unknown_name_lists_the_installed_ones(two_models: dict[str, Path]):
    with pytest.raises(UnknownModelError, match=r"nosuch: not a model folder nor a packaged model name "
                                                r"\(installed: first, second;") as info:
        SentimentClassifier.load("nosuch")
    assert isinstance(info.value, ManifestError) and isinstance(info.value, ModelError)
    with pytest.raises(UnknownModelError, match="'later' is not installed with this edge-infer"):
        SentimentClassifier.load("later")
    with pytest.raises(UnknownModelError):
        verify("nosuch")


def test_no_default_installed_is_a_manifest_error(two_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(packaged, "DEFAULT", "later")
    with pytest.raises(ManifestError, match="no default model: .*pass a model folder"):
        SentimentClassifier.load()


def test_a_pickled_name_is_found_by_name_where_it_is_unpickled(two_models: dict[str, Path], tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch):
    clf = SentimentClassifier.load("second", threads=1)
    data = pickle.dumps(clf)
    assert os.fspath(two_models["second"]).encode() not in data  # the name travels, not this machine's path
    work = tmp_path / "worker"
    work.mkdir()
    (work / "second").write_text("a file that happens to have the model's name")
    monkeypatch.chdir(work)
    clone = pickle.loads(data)
    assert clone.manifest.directory == two_models["second"]
    assert clone.predict(TINY_SENTENCES) == clf.predict(TINY_SENTENCES)


# --------------------------------------------------------------------------- the wheel's contents


def _install(include: dict[str, str], site: Path) -> Path:
    """Lay the wheel's files out as pip would; returns the fake ``edge_infer`` package folder."""
    for source, target in include.items():
        (site / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, site / target)
    return site / "edge_infer"


def test_wheel_contents_filter_precisions_and_skip_models_not_exported(two_models: dict[str, Path],
                                                                       tmp_path: Path):
    include, warnings = packaged.wheel_contents(tmp_path / "checkout", tmp_path / "staging")
    seed = json.loads((SEED_MODEL / "manifest.json").read_text())["files"]
    by_model: dict[str, set[str]] = {}
    for target in include.values():
        _, _, name, file = target.split("/")
        by_model.setdefault(name, set()).add(file)
    assert by_model == {
        "first": {"manifest.json", seed["fp32"]["path"], seed["int8"]["path"], seed["vocab"]["path"]},
        "second": {"manifest.json", seed["int8"]["path"], seed["vocab"]["path"]},
    }
    assert len(warnings) == 1 and "WITHOUT the packaged model 'later'" in warnings[0]

    package = _install(include, tmp_path / "site")
    assert packaged.installed(package) == {"first": package / "_models" / "first",
                                           "second": package / "_models" / "second"}
    shipped = json.loads((package / "_models" / "second" / "manifest.json").read_text())
    assert set(shipped["files"]) == {"int8", "vocab"}
    assert shipped == {**json.loads((SEED_MODEL / "manifest.json").read_text()), "files": shipped["files"]}
    manifest = verify(package / "_models" / "second")  # the filtered manifest verifies, file by file
    assert set(manifest.files) == {"int8", "vocab"}
    only_int8 = SentimentClassifier.load(package / "_models" / "second", threads=1)  # no --int8 needed
    assert only_int8.quantized
    expected = SentimentClassifier.load(SEED_MODEL, quantized=True, threads=1).predict(TINY_SENTENCES)
    assert only_int8.predict(TINY_SENTENCES) == expected
    assert pickle.loads(pickle.dumps(only_int8)).quantized


def test_wheel_contents_refuse_a_missing_file_or_no_onnx_left(two_models: dict[str, Path], tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch):
    doc = json.loads((two_models["second"] / "manifest.json").read_text())
    with pytest.raises(ValueError, match="lists none of the precisions int8"):
        packaged.wheel_manifest({**doc, "files": {"fp32": doc["files"]["fp32"], "vocab": doc["files"]["vocab"]}},
                                ("int8",))
    with pytest.raises(ValueError, match="unknown precisions"):
        packaged.wheel_manifest(doc, ("fp16",))
    (two_models["second"] / doc["files"]["vocab"]["path"]).unlink()
    with pytest.raises(FileNotFoundError, match="listed in .* but missing"):
        packaged.wheel_contents(tmp_path / "checkout", tmp_path / "staging")


# --------------------------------------------------------------------------- the command line


def _cli(*args: str, registry: dict | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """``edge-infer ARGS`` in a subprocess; ``registry`` ({"models": [[name, folder, precisions]],
    "default": name}) replaces the packaged models first."""
    code = "import sys\n"
    if registry is not None:
        code += ("import json, edge_infer.packaged as p\n"
                 f"r = json.loads({json.dumps(registry)!r})\n"
                 "p.MODELS = tuple(p.PackagedModel(n, f, tuple(q)) for n, f, q in r['models'])\n"
                 "p.DEFAULT = r['default']\n")
    code += "from edge_infer.cli import main\nmain(sys.argv[1:])\n"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.fspath(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd, env=env)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def _registry(folders: dict[str, Path]) -> dict:
    return {"models": [[n, os.fspath(folders[n]), p] for n, p in (("first", ["fp32", "int8"]), ("second", ["int8"]))]
            + [["later", "models/not-there", ["int8"]]], "default": "first"}


def test_cli_model_by_name_and_by_path(two_models: dict[str, Path], tmp_path: Path):
    review = tmp_path / "review.txt"
    review.write_text(TINY_SENTENCES[0] + "\n")
    reg = _registry(two_models)
    by_name = _cli("predict", "--model", "second", "--format", "jsonl", os.fspath(review), registry=reg, cwd=tmp_path)
    by_path = _cli("predict", "--model", os.fspath(two_models["second"]), "--format", "jsonl", os.fspath(review),
                   registry=reg, cwd=tmp_path)
    assert by_name.returncode == 0 and by_name.stdout == by_path.stdout and '"label"' in by_name.stdout
    assert _cli("info", "--model", "first", registry=reg).returncode == 0


@pytest.mark.parametrize("name, reason", [("nosuch", "not a model folder nor a packaged model name"),
                                          ("later", "'later' is not installed with this edge-infer")])
def test_cli_unknown_name_is_one_line_and_exit_2(two_models: dict[str, Path], tmp_path: Path, name: str,
                                                 reason: str):
    review = tmp_path / "review.txt"
    review.write_text("Fine.\n")
    for args in (("predict", "--model", name, os.fspath(review)), ("info", "--model", name)):
        proc = _cli(*args, registry=_registry(two_models), cwd=tmp_path)
        lines = proc.stderr.splitlines()
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr
        assert reason in lines[0] and "(installed: first, second" in lines[0] and proc.stdout == ""


def test_info_list_text_and_json(two_models: dict[str, Path]):
    reg = _registry(two_models)
    rows = json.loads(_cli("info", "--list", "--format", "json", registry=reg).stdout)
    seed = json.loads((SEED_MODEL / "manifest.json").read_text())
    assert [r["name"] for r in rows] == ["first", "second"] and [r["default"] for r in rows] == [True, False]
    for row in rows:  # a checkout: every precision its folder holds
        assert row["labels"] == seed["labels"] and row["precisions"] == ["fp32", "int8"]
        assert row["files"] == {k: v["size"] for k, v in seed["files"].items()}
        assert row["size_bytes"] == sum(v["size"] for v in seed["files"].values())
        assert row["test_accuracy"] == seed["training"]["test_accuracy"]
        assert row["path"] == os.fspath(two_models[row["name"]] / "manifest.json")
    text = _cli("info", "--list", registry=reg)
    lines = text.stdout.splitlines()
    assert text.returncode == 0 and len(lines) == 3 and lines[0].split()[:3] == ["name", "default", "labels"]
    accuracy = f"{100 * seed['training']['test_accuracy']:.2f} %"
    assert lines[1].split()[:2] == ["first", "*"] and accuracy in lines[1] and "fp32 " in lines[1]
    assert lines[2].split()[0] == "second" and "*" not in lines[2].split()[1]
    both = _cli("info", "--list", "--model", "first", registry=reg)
    assert both.returncode == 2 and len(both.stderr.splitlines()) == 1


def test_info_list_of_the_real_registry():
    rows = json.loads(_cli("info", "--list", "--format", "json").stdout)
    assert [r["name"] for r in rows] == list(packaged.installed())
    assert [r["name"] for r in rows if r["default"]] == ([packaged.DEFAULT] if packaged.DEFAULT in packaged.installed()
                                                         else [])


def test_model_help_explains_names_and_paths():
    proc = _cli("predict", "--help")
    flat = " ".join(proc.stdout.split())
    assert "NAME|PATH" in flat and "info --list" in flat and f"default: {packaged.DEFAULT}" in flat
