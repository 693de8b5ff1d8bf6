"""ORT format (``.ort``, for minimal ONNX Runtime builds): convert every model of models/, load it, compare scores.

    python bench/ort_format.py          # every models/*/manifest.json; writes bench/results/ort_format.md/.json
    python bench/ort_format.py --models models/default --texts 500

For each model folder and precision (fp32, int8) the ONNX file is converted in a temp folder with the
onnxruntime wheel's own tool, offline::

    python -m onnxruntime.tools.convert_onnx_models_to_ort FILE.onnx --output_dir OUT \\
        --optimization_style Fixed --enable_type_reduction [--target_platform arm]

The ``.ort`` file is loaded with ``onnxruntime.InferenceSession`` (the runtime's session options, via
``edge_infer.inference.new_session``), its signature and ``vocab_sha256`` metadata are checked as the runtime
checks an ``.onnx`` file, and ``--texts`` synthetic texts of 1 to 400 words (from the model's vocabulary)
plus a handful of fixed ones are scored through the same tokenizer and batching, batched and one at a time,
against the verified ``.onnx`` model: max |diff| of the probabilities and whether every label is equal.
One more conversion of all the files together writes the operator config a minimal build of every model
needs (``--include_ops_by_config``). Each file's session is also created in fresh processes, to compare the
RSS it adds (after ``import onnxruntime``, session made, one short text scored): ``.onnx`` from its path, from
bytes (as the runtime loads the verified bytes; onnxruntime's Python session keeps them), ``.ort`` from its
path and from bytes. One more process tries ``.ort`` bytes used in place (``session.use_ort_model_bytes_directly``
with ``session.use_ort_model_bytes_for_initializers``) from Python and records how it ended. The installed
onnxruntime's size on disk is recorded too (what a minimal build would shrink). Prints the tables and writes them
to OUT.md and OUT.json. Linux only (``/proc``). Not a unit test.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
from memory import bench_session, machine, model_folders, rss_mib, synthetic_texts, write_results  # noqa: E402

from edge_infer import SentimentClassifier  # noqa: E402
from edge_infer.inference import OnnxScorer, check_signature, new_session, session_metadata  # noqa: E402
from edge_infer.model_folder import check_onnx_metadata  # noqa: E402

CONVERT = [sys.executable, "-m", "onnxruntime.tools.convert_onnx_models_to_ort"]
FIXED_TEXTS = (
    "A wonderful, moving film.",
    "Dull and far too long, but the music is lovely.",
    "not bad at all",
    "...",
    "Terrible.",
    "Très bon film, je le recommande 😀",
    " ".join(["The plot wanders but the acting holds it together."] * 200),  # longer than max_len: truncated
)


def convert(source: Path, out: Path, target: str | None) -> tuple[float, str]:
    """Run the converter (Fixed style, type reduction) on ``source`` (a file or a folder); seconds and its log."""
    command = [*CONVERT, str(source), "--output_dir", str(out), "--optimization_style", "Fixed",
               "--enable_type_reduction"] + (["--target_platform", target] if target else [])
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"conversion failed: {' '.join(command)}\n{done.stdout}\n{done.stderr}")
    return seconds, done.stdout + done.stderr


def read_config(text: str) -> list[dict[str, Any]]:
    """An operator config's rows: domain, opset, op, and the types kept by type reduction (or None)."""
    rows: list[dict[str, Any]] = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        domain, opset, ops = line.split(";", 2)
        for op, types in _split_ops(ops):
            rows.append({"domain": domain, "opset": int(opset), "op": op, "types": types})
    return rows


def _split_ops(text: str) -> list[tuple[str, Any]]:
    """``Op1{json},Op2,Op3{json}`` -> [(name, parsed json or None)]: commas inside the braces are not separators."""
    out: list[tuple[str, Any]] = []
    depth, start = 0, 0
    for i, ch in enumerate(text + ","):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            item = text[start:i]
            brace = item.find("{")
            out.append((item, None) if brace < 0 else (item[:brace], json.loads(item[brace:])))
            start = i + 1
    return out


def ort_classifier(clf: SentimentClassifier, ort_path: Path, threads: int | None) -> SentimentClassifier:
    """A classifier like ``clf`` (same manifest and tokenizer) whose session is the ``.ort`` file, checked as the
    runtime checks an ``.onnx`` file: signature and ``vocab_sha256`` metadata."""
    manifest = clf.manifest
    session = new_session(ort_path, threads)
    check_signature(session, input_name=manifest.input_name, output_name=manifest.output_name,
                    max_len=manifest.tokenizer.max_len, dynamic_length=manifest.dynamic_length,
                    classes=manifest.task.width)
    check_onnx_metadata(manifest, "int8" if clf.quantized else "fp32", session_metadata(session))
    spec = manifest.tokenizer
    scorer = OnnxScorer(session, spec.max_len, spec.padding, manifest.dynamic_length, manifest.input_name,
                        manifest.output_name, spec.pad_id)
    return SentimentClassifier(manifest, clf.tokenizer, scorer, quantized=clf.quantized)


def compare(onnx_clf: SentimentClassifier, ort_clf: SentimentClassifier, texts: list[str]) -> dict[str, Any]:
    """Max |diff| of the probabilities and equal labels, batched and one text at a time."""
    batched = [c.probabilities(texts) for c in (onnx_clf, ort_clf)]
    single = [np.vstack([c.probabilities([t]) for t in texts]) for c in (onnx_clf, ort_clf)]
    labels = [[p.label for p in c.predictions(b)] for c, b in zip((onnx_clf, ort_clf), batched)]
    single_labels = [[p.label for p in c.predictions(s)] for c, s in zip((onnx_clf, ort_clf), single)]
    return {"texts": len(texts), "max_abs_diff_batched": float(np.abs(batched[0] - batched[1]).max()),
            "max_abs_diff_single": float(np.abs(single[0] - single[1]).max()),
            "labels_equal": labels[0] == labels[1] and single_labels[0] == single_labels[1],
            "label_differences": sum(a != b for a, b in zip(labels[0], labels[1]))}


LOADS = ("onnx path", "onnx bytes", "ort path", "ort bytes")
IN_PLACE = "ort bytes in place"
IN_PLACE_CONFIG = {"session.load_model_format": "ORT", "session.use_ort_model_bytes_directly": "1",
                   "session.use_ort_model_bytes_for_initializers": "1"}


def rss_child(load: str, path: Path, input_name: str) -> None:
    """One session made as ``load`` says; prints the RSS it added (MiB), at rest and after one short input."""
    import onnxruntime  # noqa: F401  (its own RSS is not the session's)

    base = rss_mib()
    if load == IN_PLACE:
        data = path.read_bytes()  # kept alive here, beside the session
        session = bench_session(data, 1, config=IN_PLACE_CONFIG)
    elif load == "ort bytes":
        session = bench_session(path.read_bytes(), 1, config={"session.load_model_format": "ORT"})
    elif load == "onnx bytes":
        session = bench_session(path.read_bytes(), 1)
    else:
        session = bench_session(str(path), 1)
    rest = rss_mib()
    session.run(None, {input_name: np.array([[5, 6, 7, 8] + [0] * (200 - 4)], dtype=np.int32)})
    json.dump({"at_rest": rest - base, "after_one": rss_mib() - base}, sys.stdout)


def in_place_check(ort_path: Path, input_name: str) -> dict[str, Any]:
    """Load ``.ort`` bytes in place from Python in a fresh process: its exit code (negative: killed by that signal)."""
    done = subprocess.run([sys.executable, __file__, "--rss-child", IN_PLACE, str(ort_path), input_name],
                          capture_output=True, text=True, check=False, timeout=600)
    return {"file": ort_path.name, "returncode": done.returncode, "stderr": done.stderr.strip()[-300:]}


def onnxruntime_on_disk() -> dict[str, Any]:
    """Bytes of the installed onnxruntime package, and of its largest file (the native library)."""
    import onnxruntime

    package = Path(onnxruntime.__file__).parent
    files = [p for p in package.rglob("*") if p.is_file()]
    largest = max(files, key=lambda p: p.stat().st_size)
    return {"package_bytes": sum(p.stat().st_size for p in files), "largest": largest.name,
            "largest_bytes": largest.stat().st_size}


def session_rss(paths: dict[str, Path], input_name: str, repeats: int = 3) -> dict[str, dict[str, float]]:
    """:func:`rss_child` for each way of loading, in fresh processes; medians of ``repeats``."""
    out = {}
    for load in LOADS:
        path = paths["ort" if load.startswith("ort") else "onnx"]
        runs = []
        for _ in range(repeats):
            done = subprocess.run([sys.executable, __file__, "--rss-child", load, str(path), input_name],
                                  capture_output=True, text=True, check=True, timeout=600)
            runs.append(json.loads(done.stdout))
        out[load] = {k: sorted(r[k] for r in runs)[len(runs) // 2] for k in ("at_rest", "after_one")}
    return out


def check_model(folder: Path, precision: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    clf = SentimentClassifier.load(folder, quantized=precision == "int8", threads=1)
    onnx_path = clf.manifest.path_of(precision)
    stem = f"{folder.name}.{precision}"
    source = work / "in" / f"{stem}.onnx"
    source.parent.mkdir(exist_ok=True)
    shutil.copyfile(onnx_path, source)
    out = work / stem
    seconds, _ = convert(source, out, args.target_platform)
    ort_path = out / f"{stem}.ort"
    ort_clf = ort_classifier(clf, ort_path, threads=1)
    rng = np.random.default_rng(24)
    vocab = clf.tokenizer.vocabulary.tokens
    texts = [synthetic_texts(vocab, 1, int(n), seed=i)[0] for i, n in enumerate(rng.integers(1, 401, args.texts))]
    result = {"model": folder.name, "precision": precision, "input_name": clf.manifest.input_name,
              "onnx_bytes": onnx_path.stat().st_size, "ort_bytes": ort_path.stat().st_size, "convert_seconds": seconds,
              "ops": read_config((out / f"{stem}.required_operators_and_types.config").read_text(encoding="utf-8")),
              **compare(clf, ort_clf, texts + list(FIXED_TEXTS)),
              "session_rss": session_rss({"onnx": onnx_path, "ort": ort_path}, clf.manifest.input_name)}
    result["texts_detail"] = f"{args.texts} synthetic (1-400 words) + {len(FIXED_TEXTS)} fixed"
    return result


def markdown(res: dict[str, Any]) -> str:
    m = res["machine"]
    lines = ["# ORT format (`.ort`) of the shipped models", "", f"`{res['command']}`", "",
             f"{m['cpu']}, {m['cores']} cores, {m['platform']}; Python {m['python']}, onnxruntime {m['onnxruntime']}, "
             f"numpy {m['numpy']}; {m['date']}; whole run {res['seconds']:.0f} s.", "",
             f"Converter: `{res['converter']}`. Scores: the `.ort` session against the verified `.onnx` classifier, "
             "same tokenizer and batching, threads 1; max |diff| over the probabilities, batched and one text at a "
             "time; labels equal on both paths.", "",
             "| model | precision | .onnx | .ort | .ort / .onnx | convert | texts | max abs diff (batched / single) "
             "| labels equal | ops |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    for r in res["rows"]:
        ops = ", ".join(sorted({o["op"] if o["domain"] == "ai.onnx" else f"{o['domain']}.{o['op']}" for o in r["ops"]}))
        lines.append(f"| {r['model']} | {r['precision']} | {r['onnx_bytes'] / 1e6:.2f} MB "
                     f"| {r['ort_bytes'] / 1e6:.2f} MB "
                     f"| {r['ort_bytes'] / r['onnx_bytes']:.3f} | {r['convert_seconds']:.1f} s | {r['texts']} "
                     f"| {r['max_abs_diff_batched']:.1e} / {r['max_abs_diff_single']:.1e} "
                     f"| {'yes' if r['labels_equal'] else 'NO (' + str(r['label_differences']) + ')'} | {ops} |")
    lines += ["", "## RSS a session adds, by the way it is loaded", "",
              "MiB over the RSS after `import onnxruntime`, threads 1, medians of 3 fresh processes: at rest / "
              "after one short input (padded to 200 tokens). *onnx bytes* is how the runtime loads (the verified "
              "bytes; onnxruntime's Python `InferenceSession` keeps a reference to them for its life).", "",
              "| model | precision | " + " | ".join(LOADS) + " |", "| --- | --- |" + " ---: |" * len(LOADS)]
    for r in res["rows"]:
        cells = " | ".join(f"{r['session_rss'][k]['at_rest']:.1f} / {r['session_rss'][k]['after_one']:.1f}"
                           for k in LOADS)
        lines.append(f"| {r['model']} | {r['precision']} | {cells} |")
    lines += ["", "## Operators a minimal build needs for all of these models", "",
              f"From `required_operators_and_types.config` of one conversion of all {len(res['rows'])} files "
              "(`--enable_type_reduction`: the types each kernel must keep).", "",
              "| domain | opset | operator | types kept |", "| --- | ---: | --- | --- |"]
    for o in res["all_ops"]:
        lines.append(f"| {o['domain']} | {o['opset']} | {o['op']} | {_types(o['types'])} |")
    lines += ["", "The config file itself:", "", "```", res["all_config"].rstrip(), "```", ""]
    c, d = res["in_place"], res["onnxruntime_on_disk"]
    ended = "exit 0 (it worked)" if c["returncode"] == 0 else (
        f"killed by signal {-c['returncode']}" if c["returncode"] < 0 else f"exit {c['returncode']}")
    lines += ["## Notes", "",
              f"- `.ort` bytes used in place from Python (`{c['file']}`, session config "
              f"{', '.join(f'`{k}`' for k in IN_PLACE_CONFIG)}): {ended}.",
              f"- The installed onnxruntime package: {d['package_bytes'] / 1e6:.1f} MB on disk, its largest file "
              f"`{d['largest']}` {d['largest_bytes'] / 1e6:.1f} MB.", ""]
    return "\n".join(lines)


def _types(types: Any) -> str:
    if not types:
        return "all (not reduced)"
    return "; ".join(f"{side} {k}: {', '.join(v)}" for side, d in types.items() for k, v in d.items())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="*", help="model folders (default: every models/*/manifest.json)")
    p.add_argument("--texts", type=int, default=300, help="synthetic texts per model and precision")
    p.add_argument("--target-platform", choices=("arm", "amd64"), default=None,
                   help="the converter's --target_platform (default: none given)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ort_format",
                   help="writes OUT.md, OUT.json")
    p.add_argument("--rss-child", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.rss_child:
        load, path, input_name = args.rss_child
        rss_child(load, Path(path), input_name)
        return
    started = time.time()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for folder in model_folders(args.models):
            files = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["files"]
            for precision in (k for k in ("fp32", "int8") if k in files):
                rows.append(check_model(folder, precision, work, args))
                print({k: v for k, v in rows[-1].items() if k != "ops"}, flush=True)
        convert(work / "in", work / "all", args.target_platform)
        stem = f"{rows[0]['model']}.{rows[0]['precision']}"
        in_place = in_place_check(work / stem / f"{stem}.ort", rows[0]["input_name"])
        config = (work / "all" / "required_operators_and_types.config").read_text(encoding="utf-8")
    config = "\n".join(line for line in config.splitlines() if not line.startswith("# -"))  # temp paths
    res = {"command": " ".join(["python bench/ort_format.py", *sys.argv[1:]]), "machine": machine(),
           "converter": " ".join(["python -m onnxruntime.tools.convert_onnx_models_to_ort FILE --output_dir OUT",
                                  "--optimization_style Fixed --enable_type_reduction"]
                                 + ([f"--target_platform {args.target_platform}"] if args.target_platform else [])),
           "rows": rows, "all_ops": read_config(config), "all_config": config, "in_place": in_place,
           "onnxruntime_on_disk": onnxruntime_on_disk(), "seconds": time.time() - started}
    text = markdown(res)
    print(text)
    write_results(args.out, text, res)
    failed = [r for r in rows if not r["labels_equal"] or r["max_abs_diff_batched"] > 1e-5]
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
