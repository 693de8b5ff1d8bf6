"""The examples of README.md (and the same ones in docs/runtime.md) run and print what they show (issue 25):
`edge-infer predict examples/review.txt` and the Python API block, on the packaged default model.

Numbers are compared at the precision the docs print them (``0.9417``: rounded; ``0.99999...``: the digits
shown are a prefix), with 1e-6 of slack for another CPU's floating point.
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, requires_default_model

DOCS = [REPO / "README.md", REPO / "docs" / "runtime.md"]
EXAMPLE = "edge-infer predict examples/review.txt"
SLACK = 1e-6
_SHOWN = re.compile(r"(\d+\.\d+)(\.\.\.)?|\{\.\.\.\}")
_REPR = re.compile(r"[A-Za-z_]\w*\(.*\)")


def same_output(shown: str, actual: str) -> bool:
    """Whether ``actual`` is what ``shown`` shows: the text equal, each number equal at its shown precision
    (``0.87...`` a prefix of the digits), ``{...}`` anything in braces."""
    pattern, numbers, pos = "", [], 0
    for m in _SHOWN.finditer(shown):
        pattern += re.escape(shown[pos:m.start()])
        if m.group(0) == "{...}":
            pattern += r"\{[^{}]*\}"
        else:
            pattern += r"(\d+\.\d+(?:e-?\d+)?)"
            numbers.append((m.group(1), m.group(2) is not None))
        pos = m.end()
    found = re.fullmatch(pattern + re.escape(shown[pos:]), actual)
    if found is None:
        return False
    for (digits, prefix), value in zip(numbers, map(float, found.groups())):
        unit = 10.0 ** -len(digits.split(".")[1])
        low, high = (float(digits), float(digits) + unit) if prefix else (float(digits) - unit / 2,
                                                                           float(digits) + unit / 2)
        if not low - SLACK <= value <= high + SLACK:
            return False
    return True


def test_same_output_compares_at_the_shown_precision():
    assert same_output("positive 0.9417  a.txt", "positive 0.9417  a.txt")
    assert not same_output("positive 0.9417  a.txt", "positive 0.9418  a.txt")
    assert not same_output("positive 0.9417  a.txt", "negative 0.9417  a.txt")
    assert same_output("P(score=0.87..., scores={...})", "P(score=0.8712345, scores={'a': 0.1})")
    assert not same_output("P(score=0.87..., scores={...})", "P(score=0.8612345, scores={'a': 0.1})")
    assert same_output("P(score=0.99999...)", "P(score=0.9999989867)")


def code_blocks(path: Path, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", path.read_text(encoding="utf-8"), flags=re.M | re.S)


def shown_cli_outputs(path: Path) -> list[str]:
    """What ``path`` shows :data:`EXAMPLE` printing: ``$ EXAMPLE`` then its output line, or ``EXAMPLE  # output``."""
    text = path.read_text(encoding="utf-8")
    shown = re.findall(rf"^\$ {re.escape(EXAMPLE)}\n(.+)$", text, flags=re.M)
    return shown + re.findall(rf"^{re.escape(EXAMPLE)} +# (.+)$", text, flags=re.M)


@requires_default_model
def test_the_cli_example_prints_what_the_docs_show():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.fspath(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "edge_infer", *EXAMPLE.split()[1:]], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=120)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    shown = {path.name: shown_cli_outputs(path) for path in DOCS}
    assert len(shown["README.md"]) == 1 and shown["runtime.md"], shown
    for name, outputs in shown.items():
        for line in outputs:
            assert same_output(line, proc.stdout.rstrip("\n")), f"{name} shows {line!r}; it prints {proc.stdout!r}"


def run_block(code: str) -> list[tuple[str, object]]:
    """Run a Python block statement by statement; ``(comment, value)`` of each expression statement whose
    comment shows a result (a repr such as ``Prediction(...)``)."""
    lines = code.splitlines()
    namespace: dict = {}
    checked = []
    for node in ast.parse(code).body:
        if isinstance(node, ast.Expr):
            value = eval(compile(ast.Expression(node.value), "<docs>", "eval"), namespace)
            comment = lines[node.lineno - 1].partition("  # ")[2].strip()
            if _REPR.fullmatch(comment):
                checked.append((comment, value))
        else:
            exec(compile(ast.Module([node], []), "<docs>", "exec"), namespace)
    return checked


@requires_default_model
@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_the_python_api_block_prints_what_it_shows(path: Path, tmp_path: Path, monkeypatch):
    block = next(b for b in code_blocks(path, "python") if "SentimentClassifier.load()" in b)
    (tmp_path / "reviews.txt").write_text("Loved it.\n\nA waste of time.\n", encoding="utf-8")
    (tmp_path / "models").symlink_to(REPO / "models")  # docs/runtime.md loads models/seed by its relative path
    monkeypatch.chdir(tmp_path)
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        checked = run_block(block)
    assert checked, f"no shown result in the block of {path.name}"
    for shown, value in checked:
        assert same_output(shown, repr(value)), f"{path.name} shows {shown!r}; the model gives {value!r}"
    if "reviews.txt" in block:
        assert len(printed.getvalue().splitlines()) == 2  # the loop printed one line per review


def test_the_everyday_text_table_is_the_domains_bench_result():
    """README's short per-domain table shows bench/results/domains.json (written by bench/domains.py), to the
    digits printed; the model card shows the same accuracies."""
    import json

    from bench.general_data import SPLIT_TITLES

    results = json.loads((REPO / "bench" / "results" / "domains.json").read_text())["results"]
    figure = {(r["model"], r["split"]): r for r in results}
    readme = (REPO / "README.md").read_text()
    section = readme.split("**Everyday text**", 1)[1].split("\n\n", 2)[1]
    columns = {"`general`": "general", "`imdb` (default)": "default", "fastText bigrams": "fastText", "VADER": "VADER"}
    header, _, *rows = section.strip().splitlines()
    names = [columns[c.strip()] for c in header.strip("|").split("|")[2:]]
    titles = {title: split for split, title in SPLIT_TITLES.items()}
    assert sorted(titles[r.split("|")[1].strip()] for r in rows) == sorted(SPLIT_TITLES)
    card = (REPO / "docs" / "models" / "general.md").read_text()
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        split = titles[cells[0]]
        assert cells[1] == f"{figure[('general', split)]['rows']:,}"
        for name, cell in zip(names, cells[2:]):
            accuracy, ece = figure[(name, split)]["accuracy"], figure[(name, split)]["ece"]
            assert cell == f"{100 * accuracy:.2f} % / {ece:.3f}", (split, name)
        assert f"| {cells[0]} | {cells[1]} | {100 * figure[('general', split)]['accuracy']:.2f} % |" in card


def test_the_behaviour_figures_are_the_behaviour_bench_result():
    """The README's behaviour sentence quotes bench/results/behaviour.md's `general` column."""
    table = (REPO / "bench" / "results" / "behaviour.md").read_text()
    header = next(line for line in table.splitlines() if line.startswith("| test |"))
    column = [c.strip() for c in header.strip("|").split("|")].index("general")

    def rate(test_prefix: str) -> float:
        row = next(line for line in table.splitlines() if line.startswith(f"| {test_prefix}"))
        return float(row.strip("|").split("|")[column].split("%")[0])

    readme = " ".join((REPO / "README.md").read_text().split())
    assert f'misses "not good" in {rate("negation of positive"):.1f} %' in readme
    assert f'reads "not bad" as negative in {rate("negation of negative"):.1f} %' in readme
    swaps = [rate(f"invariance: {kind}") for kind in ("person's name", "place", "nationality", "religion", "race",
                                                      "sexual orientation")]
    assert f"in {min(swaps):.0f}-{max(swaps):.0f} %" in readme


@requires_default_model
def test_the_model_card_shows_what_both_models_say_on_the_six_sentences():
    """docs/models/general.md's table of issue 21's six sentences is what `predict` prints, label and score
    rounded to the digits shown (with :data:`SLACK`)."""
    from edge_infer import SentimentClassifier

    card = (REPO / "docs" / "models" / "general.md").read_text()
    section = card.split("## The six sentences of issue 21", 1)[1]
    rows = [line for line in section.splitlines() if line.startswith("| ") and line[2:5] not in ("tex", "---")]
    assert len(rows) == 6
    models = {name: SentimentClassifier.load(REPO / "models" / folder)
              for name, folder in (("general", "general"), ("imdb", "default"))}
    for row in rows:
        text, *cells = [c.strip() for c in row.strip("|").split("|")]
        for (name, clf), cell in zip(models.items(), cells):
            got = clf.predict(text)
            shown = cell.removesuffix(" (wrong)")
            assert same_output(shown, f"{got.label} {got.score:.6f}"), (name, text, shown, got)
