"""bench/behaviour.py end to end on a sample: every test and every model in the table, errors as one line."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
import behaviour  # noqa: E402
import behaviour_cases as bc  # noqa: E402
import general_data  # noqa: E402

from edge_infer import exit_codes  # noqa: E402


def table_rows(markdown: str) -> tuple[list[str], dict[str, list[str]]]:
    """(header cells, {test title: cells}) of the report's table."""
    lines = [line for line in markdown.splitlines() if line.startswith("| ") and not line.startswith("| ---")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[1:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = cells
    return header, rows


def test_cell_marks_met_and_missed():
    assert behaviour.cell(bc.Outcome("t", 1, 8, 0.2)) == "12.5 % met"
    assert behaviour.cell(bc.Outcome("t", 3, 8, 0.2)) == "37.5 % **missed**"
    assert behaviour.cell(bc.Outcome("t", 3, 8, None)) == "37.5 %"


def test_the_table_has_every_test_and_every_model(tmp_path, seed_model_dir, default_model_available):
    pytest.importorskip("vaderSentiment")
    out = tmp_path / "behaviour.md"
    code = behaviour.main(["--model", os.fspath(seed_model_dir), "--model", os.fspath(default_model_available),
                           "--vader", "--sample", "20", "--out", os.fspath(out)])
    assert code == exit_codes.OK
    header, rows = table_rows(out.read_text(encoding="utf-8"))
    assert header[3:] == ["seed", "default", "VADER"]
    assert list(rows) == [title for _, title, _ in bc.TESTS]
    for title, cells in rows.items():
        assert cells[1] == "20"
        for cell in cells[3:]:
            rate = float(re.match(r"(\d+\.\d) %", cell).group(1))
            assert 0.0 <= rate <= 100.0 and rate * 20 / 100 == pytest.approx(round(rate * 20 / 100), abs=0.01)
            target = cells[2]
            assert (target == "–") == (not cell.endswith(("met", "missed**"))), (title, cell)
    # VADER reads "not" before a sentiment word: none of the 20 "not bad" cases is clearly negative for it
    assert rows[bc.TESTS[1][1]][5].startswith("0.0 %")


def test_fasttext_column_when_the_data_is_there(tmp_path, seed_model_dir):
    pytest.importorskip("fasttext")
    if not general_data.available():
        pytest.skip(f"{general_data.data_dir()}: the shared data is not there")
    out = tmp_path / "b.md"
    code = behaviour.main(["--model", os.fspath(seed_model_dir), "--fasttext", "--train-sample", "2000",
                           "--sample", "10", "--out", os.fspath(out)])
    assert code == exit_codes.OK
    text = out.read_text(encoding="utf-8")
    assert table_rows(text)[0][3:] == ["seed", "fastText"]
    assert "fastText: trained on 2,000 rows" in text


def test_a_refused_model_is_one_line_and_exit_code_3(tmp_path, capsys):
    out = tmp_path / "b.md"
    code = behaviour.main(["--model", os.fspath(tmp_path / "missing"), "--sample", "5", "--out", os.fspath(out)])
    assert code == exit_codes.MODEL
    err = capsys.readouterr().err
    assert err.startswith("behaviour: ") and err.count("\n") == 1 and "missing" in err
    assert not out.exists()


def test_fasttext_without_the_data_is_a_usage_error(tmp_path, capsys, seed_model_dir):
    pytest.importorskip("fasttext")
    code = behaviour.main(["--model", os.fspath(seed_model_dir), "--fasttext", "--data", os.fspath(tmp_path),
                           "--out", os.fspath(tmp_path / "b.md")])
    assert code == exit_codes.USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--data" in err


def test_an_unwritable_out_is_one_line_and_a_usage_error(tmp_path, capsys, seed_model_dir):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code = behaviour.main(["--model", os.fspath(seed_model_dir), "--sample", "2", "--out", os.fspath(blocker / "b.md")])
    assert code == exit_codes.USAGE
    captured = capsys.readouterr()
    assert captured.err.startswith("behaviour: ") and captured.err.count("\n") == 1 and "cannot write" in captured.err
    assert captured.out == ""
