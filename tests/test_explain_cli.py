"""`edge-infer explain`, run in a subprocess as a user would (the seed model; the README example on the default)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, requires_default_model
from test_cli import CLI, errors, run

from edge_infer import SentimentClassifier, exit_codes

ATOL = 1e-5
NUMBER = re.compile(r"[+-]?\d+\.\d+(?:e[+-]\d+)?")


@pytest.fixture(scope="module")
def seed(seed_model_dir: Path) -> SentimentClassifier:
    return SentimentClassifier.load(seed_model_dir, threads=1)


def explain(model: str, *args: str, **kw) -> subprocess.CompletedProcess:
    return run("explain", "--model", model, "--threads", "1", *args, **kw)


def test_help_lists_the_command_and_its_options():
    top = run("--help")
    assert top.returncode == 0 and "explain" in top.out
    helptext = run("explain", "--help")
    flat = " ".join(helptext.out.split())
    for option in ("--format", "--label", "--window", "--top", "--max-tokens", "--output", "--model", "--int8",
                   "--threads", "NO_COLOR", "exit codes"):
        assert option in flat, option


def test_json_gives_every_word_with_its_span(model: str, seed: SentimentClassifier):
    text = "Terrible plot, awful acting, a boring and stupid waste of time."
    proc = explain(model, text, "--format", "json")
    assert proc.returncode == 0, proc.err
    doc = json.loads(proc.out)
    want = seed.explain(text).to_dict()
    assert doc["label"] == want["label"] and doc["explained_label"] == want["explained_label"]
    assert [(w["start"], w["end"], w["text"], w["token"], w["seen"]) for w in doc["words"]] == [
        (w["start"], w["end"], w["text"], w["token"], w["seen"]) for w in want["words"]]
    assert all(text[w["start"]:w["end"]] == w["text"] for w in doc["words"])
    for got, exp in zip(doc["words"], want["words"]):
        assert abs(got["contribution"] - exp["contribution"]) <= ATOL


def test_text_is_plain_when_not_a_terminal(model: str, seed: SentimentClassifier):
    text = "I loved every minute of it! The cast was superb."
    proc = explain(model, text, "--top", "3")
    assert proc.returncode == 0 and "\x1b" not in proc.out
    lines = proc.out.splitlines()
    e = seed.explain(text)
    assert lines[0].startswith(f"{e.prediction.label} ") and len(lines) == 4
    assert [line.split()[1] for line in lines[1:]] == [w.text for w in e.top(3)]
    assert len(explain(model, text, "--top", "0").out.splitlines()) == 1 + len(e.words)


def _in_a_terminal(args: list[str], env: dict[str, str]) -> str:
    import pty  # noqa: F401  (POSIX only: skips below on other systems)

    main, child = os.openpty()
    try:
        proc = subprocess.run([*CLI, *args], stdin=subprocess.DEVNULL, stdout=child, stderr=subprocess.PIPE,
                              env=env, cwd=REPO, timeout=300)
        os.close(child)
        child = -1
        chunks = []
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the terminal's other side is closed and everything was read
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        if child >= 0:
            os.close(child)
        os.close(main)
    assert proc.returncode == 0, proc.stderr
    return b"".join(chunks).decode()


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_colours_in_a_terminal_unless_no_color(model: str):
    args = ["explain", "--model", model, "Terrible plot, awful acting, a boring waste of time."]
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    coloured = _in_a_terminal(args, env)
    assert "\x1b[1;32mTerrible\x1b[0m" in coloured or "\x1b[1;32mawful\x1b[0m" in coloured  # for "negative"
    flipped = _in_a_terminal([*args, "--label", "positive"], env)  # the same words, now against the label
    assert "\x1b[1;31mTerrible\x1b[0m" in flipped or "\x1b[1;31mawful\x1b[0m" in flipped
    assert re.sub("\x1b\\[[0-9;]*m", "", coloured.splitlines()[1]) == args[-1]
    plain = _in_a_terminal(args, {**env, "NO_COLOR": "1"})
    assert "\x1b" not in plain and plain.replace("\r\n", "\n").splitlines()[1].startswith("  ")


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_escape_sequences_in_the_text_do_not_reach_the_terminal(model: str):
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    shown = _in_a_terminal(["explain", "--model", model, "good \x1b]0;pwned\x07 film \x1b[2J"], env)
    assert "\x1b]" not in shown and "\x1b[2J" not in shown and "\\x1b" in shown


def test_html_is_one_self_contained_file(model: str, tmp_path: Path):
    out = tmp_path / "why.html"
    out.write_text("old")
    text = 'Awful <b>acting</b> & a "dull" plot.'
    proc = explain(model, text, "--format", "html", "-o", os.fspath(out))
    assert proc.returncode == 0 and proc.out == "", proc.err
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert "<script" not in page and "src=" not in page and "href=" not in page and "url(" not in page
    assert "&lt;b&gt;" in page and "<b>" not in page and "&quot;<span" in page and 'title="awful: ' in page
    assert sorted(p.name for p in tmp_path.iterdir()) == ["why.html"]
    assert explain(model, text, "--format", "html").out == page  # the same page on standard output


def test_output_path_rule(model: str, tmp_path: Path):
    folder = tmp_path / "folder"
    folder.mkdir()
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    refused = [(folder, "a directory"), (tmp_path / "missing" / "x.json", "no such folder"), (link, "link")]
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "fifo")  # refused at once, never opened (opening would block)
        refused.append((tmp_path / "fifo", "FIFO"))
    for target, why in refused:
        proc = explain(model, "fine", "--format", "json", "-o", os.fspath(target))
        assert proc.returncode == exit_codes.USAGE and why in proc.err and len(errors(proc)) == 1, proc.err
    assert real.read_text() == "old"
    assert explain(model, "A fine film.", "--format", "json", "-o", os.fspath(real)).returncode == 0
    assert json.loads(real.read_text())["words"][1]["token"] == "fine"
    names = {"folder", "link.json", "real.json"} | ({"fifo"} if hasattr(os, "mkfifo") else set())
    assert {p.name for p in tmp_path.iterdir()} == names


def test_empty_and_unreadable_input_is_one_line_and_exit_1(model: str, tmp_path: Path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"abc\x00def")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("tr\xe8s bien".encode("latin-1"))
    cases = [("", "TEXT: the text is empty or whitespace-only"), (" \n\t ", "empty or whitespace-only"),
             (os.fspath(empty), "empty file"), (os.fspath(binary), "binary file"),
             (os.fspath(latin1), "not valid UTF-8"), (os.fspath(tmp_path), "is a directory"),
             ("...", None)]
    for arg, why in cases:
        proc = explain(model, arg)
        if why is None:  # no word at all, yet a text: the prediction, no words
            assert proc.returncode == 0 and len(proc.out.splitlines()) == 1, proc.err
            continue
        assert proc.returncode == exit_codes.INPUT_FAILED, (arg, proc.err)
        assert len(errors(proc)) == 1 and why in proc.err and proc.out == "", (arg, proc.err)
    stdin = explain(model, "-", "--format", "json", stdin=b"Loved it.")
    assert stdin.returncode == 0 and [w["token"] for w in json.loads(stdin.out)["words"]] == ["loved", "it"]
    assert explain(model, "-", stdin=b"  \n").returncode == exit_codes.INPUT_FAILED


def test_bad_options_exit_2_and_a_refused_model_exit_3(model: str, tmp_path: Path):
    for args, why in ((["--label", "neutral"], "not a label"), (["--window", "4"], "--window"),
                      (["--max-tokens", "0"], "--max-tokens"), (["--format", "xml"], "--format")):
        proc = explain(model, "fine", *args)
        assert proc.returncode == exit_codes.USAGE and why in proc.err and len(errors(proc)) == 1, proc.err
    broken = tmp_path / "model"
    broken.mkdir()
    (broken / "manifest.json").write_text("{}")
    proc = run("explain", "--model", os.fspath(broken), "fine")
    assert proc.returncode == exit_codes.MODEL and len(errors(proc)) == 1


def test_over_max_tokens_is_exit_1(model: str):
    proc = explain(model, "one two three four five", "--max-tokens", "3")
    assert proc.returncode == exit_codes.INPUT_FAILED and "capped at 3" in proc.err and len(errors(proc)) == 1


def test_text_longer_than_max_len(model: str, seed: SentimentClassifier, tmp_path: Path):
    review = tmp_path / "long.txt"
    review.write_text(" ".join(["boring"] * 30 + ["a", "wonderful", "film"] * 70))  # 240 words, max_len 200
    proc = explain(model, os.fspath(review), "--format", "json")
    words = json.loads(proc.out)["words"]
    assert proc.returncode == 0 and len(words) == 240
    assert [w["seen"] for w in words] == [False] * 40 + [True] * 200
    assert {w["contribution"] for w in words[:40]} == {0.0}
    text = explain(model, os.fspath(review))
    assert "40 words past the model's max_len of 200 tokens were not seen" in text.out


def test_one_word_and_non_latin_scripts(model: str):
    one = json.loads(explain(model, "Brilliant", "--format", "json").out)
    assert [(w["start"], w["end"], w["token"]) for w in one["words"]] == [(0, 9, "brilliant")]
    for text, shown in (("很好看的电影，演员也很棒", ["很好看的电影", "演员也很棒"]),
                        ("هذا فيلم رائع", ["هذا", "فيلم", "رائع"]),
                        ("Очень хороший фильм", ["Очень", "хороший", "фильм"]),
                        ("\U0001F44D great \U0001F600", ["great"])):
        proc = explain(model, text, "--format", "json")
        assert proc.returncode == 0, proc.err
        words = json.loads(proc.out)["words"]
        assert [w["text"] for w in words] == shown and all(text[w["start"]:w["end"]] == w["text"] for w in words)
        assert explain(model, text).returncode == 0


def test_int8_window_and_label(model: str, seed: SentimentClassifier):
    text = "Dull and far too long, but the music is lovely."
    doc = json.loads(explain(model, text, "--int8", "--window", "2", "--label", "positive", "--format", "json").out)
    assert doc["explained_label"] == "positive" and doc["window"] == 2
    q = SentimentClassifier.load(Path(model), quantized=True, threads=1).explain(text, label="positive", window=2)
    assert [w["token"] for w in doc["words"]] == [w.token for w in q.words]


# --------------------------------------------------------------------------- the README's example


def _readme_example() -> tuple[list[str], list[str]]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```\n\$ (edge-infer explain [^\n]+)\n(.*?)```", readme, re.S)
    assert block, "README.md has no '$ edge-infer explain' example"
    return shlex.split(block.group(1))[1:], block.group(2).rstrip("\n").splitlines()


@requires_default_model
def test_readme_example_output():
    args, shown = _readme_example()
    proc = run(*args)
    assert proc.returncode == 0, proc.err
    got = proc.out.rstrip("\n").splitlines()
    assert len(got) == len(shown)
    for a, b in zip(got, shown):
        assert NUMBER.sub("#", a) == NUMBER.sub("#", b), (a, b)  # words, offsets, labels: exactly
        for x, y in zip(NUMBER.findall(a), NUMBER.findall(b)):
            assert abs(float(x) - float(y)) <= 2e-4, (a, b)  # numbers: as printed, to the last digit or so
