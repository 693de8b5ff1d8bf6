"""Records in, records out (issue 13): `edge-infer predict --lines/--jsonl/--csv` and the streaming API."""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import select
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli import CLI, errors, run, run_on_a_terminal

from edge_infer import SentimentClassifier, exit_codes

REVIEWS = ["A wonderful, moving film: brilliant acting and a beautiful story.",
           "Terrible plot, awful acting, a boring and stupid waste of time.",
           "It was fine. Some good scenes, some dull ones.",
           "I loved every minute of it! The cast was superb and the music beautiful."]


@pytest.fixture(scope="module")
def clf(seed_model_dir: Path) -> SentimentClassifier:
    return SentimentClassifier.load(seed_model_dir)


# --------------------------------------------------------------------------- the API


def test_predict_iter_equals_predict_in_order(clf: SentimentClassifier):
    texts = REVIEWS * 3
    expected = clf.predict(texts)
    assert list(clf.predict_iter(texts, batch_size=5)) == expected
    assert list(clf.predict_iter(iter(texts), threshold=0.0)) == clf.predict(texts, threshold=0.0)
    pairs = list(clf.predict_records(((f"k{i}", t) for i, t in enumerate(texts)), batch_size=4))
    assert [k for k, _ in pairs] == [f"k{i}" for i in range(len(texts))]
    assert [p for _, p in pairs] == expected
    with pytest.raises(ValueError, match="batch_size"):
        clf.predict_iter(texts, batch_size=0)
    with pytest.raises(ValueError, match="threshold"):
        clf.predict_iter(texts, threshold=2.0)


def test_predict_iter_is_lazy_on_an_endless_generator(clf: SentimentClassifier):
    pulled = 0

    def endless():
        nonlocal pulled
        for text in itertools.cycle(REVIEWS):
            pulled += 1
            yield text

    results = clf.predict_iter(endless(), batch_size=8)
    assert pulled == 0  # nothing read before the first result is asked for
    first = list(itertools.islice(results, 10))
    assert first == clf.predict((REVIEWS * 3)[:10]) and pulled == 16  # two batches of 8, no more


# --------------------------------------------------------------------------- the command


def test_csv_in_csv_out_with_ids_all_scores_and_bad_rows(model: str, tmp_path: Path, clf: SentimentClassifier):
    path = tmp_path / "reviews.csv"
    rows = [("r1", REVIEWS[0]), ("r2", 'Two\nlines, "quoted", ' + REVIEWS[1]), ("r3", REVIEWS[3])]
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)  # RFC 4180: CRLF line ends, quoted fields
    writer.writerow(["review_id", "body"])
    writer.writerow(rows[0])
    writer.writerow(["bad", "x", "extra field"])
    writer.writerow(rows[1])
    writer.writerow(["empty", ""])
    writer.writerow(rows[2])
    path.write_bytes(b"\xef\xbb\xbf" + buf.getvalue().encode())
    proc = run("predict", "--model", model, "--csv", "--text-column", "body", "--id-column", "review_id",
               "--format", "csv", "--all-scores", os.fspath(path))
    assert proc.returncode == exit_codes.INPUT_FAILED
    assert errors(proc) == [f"edge-infer: error: {path}:3: 3 fields; the header has 2",
                            f"edge-infer: error: {path}:6: empty text"]
    out = list(csv.reader(io.StringIO(proc.out, newline="")))
    assert out[0] == ["id", "label", "score", "score_negative", "score_positive"]
    expected = clf.predict([text for _, text in rows])
    assert [r[0] for r in out[1:]] == ["r1", "r2", "r3"]
    for row, p in zip(out[1:], expected):
        assert row[1] == p.label and float(row[2]) == pytest.approx(p.score, abs=1e-6)
        assert float(row[3]) == pytest.approx(p.scores["negative"], abs=1e-6)
        assert float(row[4]) == pytest.approx(1 - float(row[3]), abs=1e-5) == pytest.approx(p.score, abs=1e-5)
    assert proc.out.endswith("\r\n")


def test_jsonl_in_jsonl_out_keys_and_bad_records(model: str, tmp_path: Path, clf: SentimentClassifier):
    a = tmp_path / "a.jsonl"
    a.write_text("\n".join([json.dumps({"text": REVIEWS[0], "n": 1}), "{not json", json.dumps({"text": 5}),
                            json.dumps({"txt": "x"}), json.dumps({"text": REVIEWS[1]})]) + "\n")
    b = tmp_path / "b.csv"
    b.write_text("stars,review\n5,good\n")
    proc = run("predict", "--model", model, "--jsonl", "--format", "jsonl", "--all-scores", os.fspath(a))
    assert proc.returncode == exit_codes.INPUT_FAILED
    assert [e.split(": ", 2)[2] for e in errors(proc)] == [
        f"{a}:2: invalid JSON: Expecting property name enclosed in double quotes (column 2)",
        f"{a}:3: field 'text' is a number, not a string", f"{a}:4: no field 'text'"]
    out = [json.loads(line) for line in proc.out.splitlines()]
    expected = clf.predict([REVIEWS[0], REVIEWS[1]])
    assert [(r["file"], r["line"], r["label"]) for r in out] == [(os.fspath(a), 1, expected[0].label),
                                                                 (os.fspath(a), 5, expected[1].label)]
    assert all(set(r) == {"file", "line", "label", "score", "scores"} for r in out)
    assert set(out[0]["scores"]) == {"negative", "positive"}

    with_ids = run("predict", "--model", model, "--jsonl", "--id-field", "n", "--format", "json", os.fspath(a))
    assert [r["id"] for r in json.loads(with_ids.out)] == ["1"] and len(errors(with_ids)) == 4  # line 5: no 'n'

    unknown = run("predict", "--model", model, "--csv", "--id-column", "id", os.fspath(b), os.fspath(b))
    assert unknown.returncode == exit_codes.INPUT_FAILED and unknown.out == ""
    assert errors(unknown) == [f"edge-infer: error: {b}:1: no column 'text', 'id' in the header (columns: "
                               "stars, review)"] * 2


def test_lines_text_format_long_line_and_bad_lines(model: str, tmp_path: Path, clf: SentimentClassifier):
    path = tmp_path / "r.txt"
    tail = " the plot was thin but the cast was great, truly superb music!" * 200
    with open(path, "wb") as f:
        f.write(REVIEWS[1].encode() + b"\r\n\r\n")
        f.write(b"awful " * 1_000_000 + tail.encode() + b"\n")  # 6 MB: only its end is read into memory
        f.write(b"caf\xe9\n" + REVIEWS[0].encode())
    proc = run("predict", "--model", model, "--lines", os.fspath(path), "-", stdin=REVIEWS[3].encode())
    assert proc.returncode == exit_codes.INPUT_FAILED
    at = path.read_bytes().index(b"\xe9")
    assert errors(proc) == [f"edge-infer: error: {path}:2: empty line",
                            f"edge-infer: error: {path}:4: not valid UTF-8 (byte 0xe9 at offset {at})"]
    expected = clf.predict([REVIEWS[1], tail, REVIEWS[0], REVIEWS[3]])
    got = [line.split(maxsplit=2) for line in proc.out.splitlines()]
    assert [key for _, _, key in got] == [f"{path}:1", f"{path}:3", f"{path}:5", "-:1"]
    for (label, score, _), p in zip(got, expected):
        assert label == p.label and float(score) == pytest.approx(p.score, abs=1e-4)


def test_csv_huge_record_and_unclosed_quote(model: str, tmp_path: Path):
    """Issue 25: a 17 MiB quoted field of many lines made thousands of phantom rows; an unclosed quote
    swallowed the rest of the file with exit 0."""
    big = tmp_path / "big.csv"
    record = b'2,"' + b"word " * (4 << 20) + b"\n" + b"a line inside the field\n" * 1000 + b'end"'
    big.write_bytes(b'id,text\n1,"' + REVIEWS[0].encode() + b'"\n' + record + b'\n3,"' + REVIEWS[1].encode() + b'"\n')
    proc = run("predict", "--model", model, "--csv", "--id-column", "id", "--format", "jsonl", os.fspath(big))
    assert proc.returncode == exit_codes.INPUT_FAILED
    assert errors(proc) == [f"edge-infer: error: {big}:3: record longer than 16 MiB ({len(record)} bytes), skipped"]
    assert [json.loads(line)["id"] for line in proc.out.splitlines()] == ["1", "3"]

    open_quote = tmp_path / "open.csv"
    open_quote.write_text('id,text\n0,"' + REVIEWS[0] + '"\n1,"Great film\n' +
                          "".join(f"{i},review number {i}\n" for i in range(2, 2000)))
    proc = run("predict", "--model", model, "--csv", "--id-column", "id", os.fspath(open_quote))
    assert proc.returncode == exit_codes.INPUT_FAILED
    assert errors(proc) == [f"edge-infer: error: {open_quote}:3: unclosed quote: the record that starts on this "
                            "line runs to the end of the file"]
    assert [line.split()[-1] for line in proc.out.splitlines()] == ["0"]


def test_csv_folder_reads_tsv_files_with_tabs(model: str, tmp_path: Path):
    """Issue 25: `--csv DIR` parsed *.tsv files with commas."""
    (tmp_path / "a.csv").write_text(f'id,text\n1,"{REVIEWS[0]}"\n')
    (tmp_path / "b.tsv").write_text(f"id\ttext\n2\t{REVIEWS[1]}\n")
    for args in ([os.fspath(tmp_path)], [os.fspath(tmp_path / "a.csv"), os.fspath(tmp_path / "b.tsv")]):
        proc = run("predict", "--model", model, "--csv", "--id-column", "id", "--format", "jsonl", *args)
        assert proc.returncode == exit_codes.OK, proc.err
        assert [json.loads(line)["id"] for line in proc.out.splitlines()] == ["1", "2"]


def test_usage_errors(model: str, tmp_path: Path):
    for args in (("--lines", "--csv"), ("--jsonl", "--lines"), ("--text-field", "body"), ("--id-field", "id"),
                 ("--jsonl", "--delimiter", ";"), ("--csv", "--delimiter", "ab")):
        proc = run("predict", "--model", model, *args, "-")
        assert proc.returncode == exit_codes.USAGE and len(errors(proc)) == 1, (args, proc.err)
        assert proc.err.startswith("edge-infer: error: ") and proc.out == ""


@pytest.mark.skipif(os.name != "posix", reason="select() on a pipe")
def test_first_results_come_before_the_end_of_input(model: str):
    proc = subprocess.Popen([*CLI, "predict", "--model", model, "--jsonl", "--format", "jsonl", "-"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(b"".join(json.dumps({"text": t}).encode() + b"\n" for t in REVIEWS[:2]))
        proc.stdin.flush()  # and keep standard input open
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        assert ready, "no result while the input is still open"
        early = os.read(proc.stdout.fileno(), 65536)  # unbuffered: what the command has written so far
        first = json.loads(early.splitlines()[0])
        assert (first["file"], first["line"]) == ("-", 1) and proc.poll() is None
        rest, err = proc.communicate(json.dumps({"text": REVIEWS[2]}).encode() + b"\n", timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert [json.loads(line)["line"] for line in (early + rest).splitlines()] == [1, 2, 3]


def test_memory_does_not_grow_with_the_number_of_lines(default_model_dir: Path):
    # a generated stream through a pipe, under a tiny parent that reports the child's peak memory
    code = ("import resource, subprocess, sys\n"
            "n = int(sys.argv[1])\n"
            "p = subprocess.Popen(sys.argv[2:], stdin=subprocess.PIPE, stdout=subprocess.PIPE)\n"
            "import threading\n"
            "count = []\n"
            "t = threading.Thread(target=lambda: count.append(sum(1 for _ in p.stdout)))\n"
            "t.start()\n"
            "words = ['great', 'awful', 'boring', 'superb', 'music', 'plot', 'cast', 'loved']\n"
            "for i in range(0, n, 1000):\n"
            "    p.stdin.write(''.join(' '.join(words[(j + k) % 8] for k in range(j % 5 + 1)) + '\\n'\n"
            "                          for j in range(i, i + 1000)).encode())\n"
            "p.stdin.close(); t.join(); p.wait()\n"
            "print(count[0], resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, p.returncode)\n")
    peaks = {}
    for n in (50_000, 200_000):
        proc = subprocess.run([sys.executable, "-c", code, str(n), *CLI, "predict", "--model",
                               os.fspath(default_model_dir), "--lines", "--format", "jsonl", "-"],
                              capture_output=True, timeout=600, text=True)
        count, peak_kib, rc = proc.stdout.split()
        assert (int(count), int(rc)) == (n, 0), proc.stderr
        peaks[n] = int(peak_kib) // 1024
    assert peaks[200_000] < 300, peaks
    assert peaks[200_000] <= peaks[50_000] + 20, f"peak RSS (MiB) by lines: {peaks}"


def test_progress_on_a_terminal_counts_records(model: str, tmp_path: Path):
    path = tmp_path / "r.txt"
    path.write_text("a great film\n" * 40)
    proc, seen = run_on_a_terminal("predict", "--model", model, "--lines", os.fspath(path))
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 40
    assert b"classifying: 40 records" in seen and b"100%" in seen  # the last update: all of the file read
    assert b"classifying" not in proc.stdout


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "text"])
def test_all_scores_of_a_three_label_model(fmt: str):
    from edge_infer.classifier import Prediction
    from edge_infer.cli.predict import Format, _Writer
    from edge_infer.inputs import Record

    out = io.StringIO()
    writer = _Writer(out, Format(fmt), ["id", "label", "score"], ("bad", "meh", "good"))
    writer.write(Record("f.csv", 2, "x,1", "text"), Prediction("meh", 0.5, {"bad": 0.2, "meh": 0.5, "good": 0.3}))
    if fmt == "csv":
        assert list(csv.reader(io.StringIO(out.getvalue()))) == [
            ["id", "label", "score", "score_bad", "score_meh", "score_good"],
            ["x,1", "meh", "0.5", "0.2", "0.5", "0.3"]]
    elif fmt == "jsonl":
        assert json.loads(out.getvalue()) == {"id": "x,1", "label": "meh", "score": 0.5,
                                              "scores": {"bad": 0.2, "meh": 0.5, "good": 0.3}}
    else:
        assert out.getvalue() == "meh 0.5000  x,1\n"
