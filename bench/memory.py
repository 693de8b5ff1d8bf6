"""Memory of the runtime (RSS) for every model folder in models/, fp32 and int8: at rest and at peak.

    python bench/memory.py                      # all of models/*/manifest.json; writes bench/results/memory.md/.json
    python bench/memory.py --models models/default --repeats 3

Every figure comes from a FRESH Python process (``--child``, one per model, precision, thread setting and
workload), so one measurement never inherits another's pages or arenas. The child reads its own
``/proc/self/status`` (VmRSS, VmHWM): before any import of edge_infer, after ``import edge_infer``, after
``from edge_infer import SentimentClassifier`` (numpy and the runtime's modules), after ``import onnxruntime``
and after ``SentimentClassifier.load(...)`` (at rest; VmHWM then is the load's peak). It then builds
synthetic IMDB-length texts (``--words`` words drawn from the model's own vocabulary, so no data is
needed), resets VmHWM (``/proc/self/clear_refs`` 5) and runs one workload: ``one`` short text, ``batch``:
``predict`` on ``--batch`` texts in one call, ``stream``: ``predict_iter`` over ``--texts`` texts in
chunks of 256, as ``edge-infer predict`` batches records, or ``stream-small``: the same in chunks of
``--small-chunk``. Its peak is VmHWM after the workload.

The ``edge-infer predict`` process itself is measured through ``bench/launch.py`` (ru_maxrss of the child
from ``wait4``): one text file, and ``--lines`` over the same ``--texts`` texts. ``--variants`` adds rows
(threads 1) for what-ifs that are not runtime options: ``no-arena``, ONNX Runtime's CPU arena off (what
the arena holds), and ``drop-bytes``, the model bytes that onnxruntime's Python ``InferenceSession`` keeps
(``_model_bytes``, when loaded from bytes as the runtime does) released after load. Linux only (``/proc``).
Not a unit test.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = ("one", "batch", "stream", "stream-small")
VARIANTS = ("no-arena", "drop-bytes")
SHORT_TEXT = "A wonderful, moving film."
STREAM_CHUNK = 256  # edge_infer.cli.predict.CHUNK, not imported: the parent stays free of the runtime's imports


# --------------------------------------------------------------------------- the child (one measurement)


def _status() -> dict[str, int]:
    """VmRSS and VmHWM of this process, in KiB."""
    out: dict[str, int] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def rss_mib() -> float:
    return _status()["VmRSS"] / 1024


def hwm_mib() -> float:
    return _status()["VmHWM"] / 1024


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where the kernel refuses."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def synthetic_texts(tokens: tuple[str, ...], count: int, words: int, seed: int = 24) -> list[str]:
    """``count`` texts of ``words`` words drawn uniformly from the vocabulary (less [PAD], [UNK]), with
    a full stop every 12 words: IMDB-length reviews without test data."""
    import random

    rng = random.Random(seed)
    pool = tokens[2:]
    texts = []
    for _ in range(count):
        chosen = rng.choices(pool, k=words)
        texts.append(" ".join(w + ("." if i % 12 == 11 else "") for i, w in enumerate(chosen)))
    return texts


def bench_session(model: Any, threads: int | None = None, *, arena: bool = True,
                  config: dict[str, str] | None = None) -> Any:
    """The runtime's session options (edge_infer.inference.new_session), with what-ifs the runtime does not offer:
    the CPU memory arena off, extra session config entries."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or 0
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    options.enable_cpu_mem_arena = arena
    for key, value in (config or {}).items():
        options.add_session_config_entry(key, value)
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


def child(args: argparse.Namespace) -> None:
    """One measurement; prints one JSON object."""
    steps = {"start": rss_mib()}
    import edge_infer  # noqa: F401  (lazy: names resolve on first use)

    steps["import edge_infer"] = rss_mib()
    from edge_infer import SentimentClassifier

    steps["import SentimentClassifier"] = rss_mib()
    import onnxruntime  # noqa: F401

    steps["import onnxruntime"] = rss_mib()
    if args.variant == "no-arena":
        import edge_infer.classifier

        edge_infer.classifier.new_session = functools.partial(bench_session, arena=False)  # type: ignore[assignment]
    threads = args.threads[0] or None  # 0: ONNX Runtime's default
    clf = SentimentClassifier.load(args.child, quantized=args.precision == "int8", threads=threads)
    if args.variant == "drop-bytes":  # onnxruntime keeps them only to re-create the session (provider fallback)
        clf._scorer.session._model_bytes = None
    steps["loaded (at rest)"] = rss_mib()
    load_peak = hwm_mib()
    count = {"one": 1, "batch": args.batch, "stream": args.texts, "stream-small": args.texts}[args.workload]
    texts = [SHORT_TEXT] if args.workload == "one" else synthetic_texts(clf.tokenizer.vocabulary.tokens, count,
                                                                        args.words)
    tokens = sum(len(clf.tokenizer.ids(t)) for t in texts) / len(texts)
    before = rss_mib()
    reset = _reset_peak()
    started = time.perf_counter()
    if args.workload.startswith("stream"):
        chunk = STREAM_CHUNK if args.workload == "stream" else args.small_chunk
        done = sum(1 for _ in clf.predict_iter(texts, batch_size=chunk))
    else:
        done = len(clf.predict(texts))
    seconds = time.perf_counter() - started
    json.dump({"steps": steps, "load_peak": load_peak, "before_workload": before, "peak": hwm_mib(),
               "after_workload": rss_mib(), "peak_reset": reset, "texts": done, "mean_tokens": tokens,
               "seconds": seconds}, sys.stdout)


# --------------------------------------------------------------------------- the parent


def model_folders(models: list[str] | None) -> list[Path]:
    """The model folders to measure: ``--models`` as given, else every folder of models/ with a manifest."""
    if models:
        return [Path(m) for m in models]
    return sorted(p.parent for p in (ROOT / "models").glob("*/manifest.json"))


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env


def run_child(folder: Path, precision: str, threads: int, workload: str, args: argparse.Namespace,
              variant: str | None) -> dict[str, Any]:
    import subprocess

    command = [sys.executable, __file__, "--child", str(folder), "--precision", precision, "--threads",
               str(threads), "--workload", workload, "--batch", str(args.batch), "--texts", str(args.texts),
               "--words", str(args.words), "--small-chunk", str(args.small_chunk)]
    command += ["--variant", variant] if variant else []
    done = subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"child failed ({' '.join(command)}):\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def run_cli(folder: Path, precision: str, threads: int, extra: list[str]) -> dict[str, Any]:
    """``python -m edge_infer predict`` (= ``edge-infer predict``) through bench/launch.py: its peak RSS."""
    import subprocess

    cli = [sys.executable, "-m", "edge_infer", "predict", "--model", str(folder)]
    cli += (["--int8"] if precision == "int8" else []) + (["--threads", str(threads)] if threads else []) + extra
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "launch.py"), *cli], capture_output=True, text=True,
                          env=_env(), timeout=600)
    result: dict[str, Any] = json.loads(done.stdout)
    if result["exit_code"] != 0:
        raise SystemExit(f"CLI failed: {' '.join(cli)} (exit {result['exit_code']})")
    return result


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def measure(folder: Path, precision: str, threads: int, args: argparse.Namespace,
            variant: str | None = None) -> dict[str, Any]:
    """Every workload in fresh processes (``--repeats`` each; medians)."""
    runs = {w: [run_child(folder, precision, threads, w, args, variant) for _ in range(args.repeats)]
            for w in WORKLOADS}
    every = [r for rs in runs.values() for r in rs]
    row: dict[str, Any] = {"model": folder.name, "precision": precision, "threads": threads or "default",
                           "variant": variant}
    for step in every[0]["steps"]:
        row[step] = _median([r["steps"][step] for r in every])
    row["load peak"] = _median([r["load_peak"] for r in every])
    for w in WORKLOADS:
        row[f"before {w}"] = _median([r["before_workload"] for r in runs[w]])  # its texts built, peak reset
        row[f"peak {w}"] = _median([r["peak"] for r in runs[w]])
        row[f"seconds {w}"] = _median([r["seconds"] for r in runs[w]])
        row[f"tokens {w}"] = runs[w][0]["mean_tokens"]
    row["peak_reset"] = all(r["peak_reset"] for r in every)
    return row


def file_sizes(folder: Path) -> dict[str, int]:
    files = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["files"]
    return {key: int(entry["size"]) for key, entry in files.items() if key in ("fp32", "int8", "vocab")}


def largest_weights(folder: Path, precision: str, top: int = 3) -> list[dict[str, Any]]:
    """The ``top`` largest initializers of the ONNX file (needs the ``onnx`` package; [] without it)."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        return []
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    graph = onnx.load(str(folder / manifest["files"][precision]["path"])).graph
    weights = [(init.name, numpy_helper.to_array(init)) for init in graph.initializer]
    weights.sort(key=lambda w: -w[1].nbytes)
    total = sum(a.nbytes for _, a in weights)
    return [{"name": n, "shape": list(a.shape), "dtype": str(a.dtype), "bytes": int(a.nbytes),
             "share": a.nbytes / total} for n, a in weights[:top]]


def wheel_models() -> dict[str, Any]:
    """What ``pip install .`` puts under edge_infer/_models (edge_infer.packaged.wheel_contents), in bytes."""
    import tempfile

    sys.path.insert(0, str(ROOT))
    from edge_infer import packaged

    with tempfile.TemporaryDirectory() as staging:
        include, _ = packaged.wheel_contents(ROOT, Path(staging))
        per_model: dict[str, int] = {}
        for source, target in include.items():
            name = target.split("/")[2]
            per_model[name] = per_model.get(name, 0) + os.path.getsize(source)
    return {"per_model": per_model, "total": sum(per_model.values()),
            "precisions": {m.name: list(m.precisions) for m in packaged.MODELS}}


def machine() -> dict[str, Any]:
    import platform
    from importlib import metadata

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "onnxruntime": metadata.version("onnxruntime"), "numpy": metadata.version("numpy"),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


# --------------------------------------------------------------------------- report


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def markdown(res: dict[str, Any]) -> str:
    m, a = res["machine"], res["settings"]
    lines = [
        "# Memory (RSS) of the runtime", "",
        f"`{res['command']}`", "",
        f"{m['cpu']}, {m['cores']} cores, {m['platform']}; Python {m['python']}, onnxruntime {m['onnxruntime']}, "
        f"numpy {m['numpy']}; {m['date']}; whole run {res['seconds']:.0f} s.", "",
        f"MiB (2^20 bytes), medians of {a['repeats']} fresh process(es) per workload. Synthetic texts: {a['words']} "
        f"words from each model's vocabulary. *at rest*: VmRSS after `SentimentClassifier.load`; *load peak*: VmHWM "
        f"then; *peak*: VmHWM during the workload alone (reset after load): *one* short text, a *batch* of "
        f"{a['batch']} texts in one `predict`, *stream*: `predict_iter` over {a['texts']:,} texts in chunks of "
        f"{STREAM_CHUNK} (as `edge-infer predict` batches them), *stream {a['small_chunk']}*: the same in chunks of "
        f"{a['small_chunk']}. threads: ONNX Runtime intra-op threads (`default`: one per core). *s*: seconds of "
        "the stream workloads.", "",
        "## In a Python process", "",
        "| model | precision | threads | start | `import edge_infer` | + numpy, runtime modules | + onnxruntime "
        f"| at rest | load peak | peak: one | peak: batch | peak: stream | peak: stream {a['small_chunk']} "
        f"| s: stream / stream {a['small_chunk']} |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in res["rows"]:
        if r["variant"]:
            continue
        lines.append(f"| {r['model']} | {r['precision']} | {r['threads']} | {r['start']:.1f} | "
                     f"{r['import edge_infer']:.1f} | {r['import SentimentClassifier']:.1f} | "
                     f"{r['import onnxruntime']:.1f} | {r['loaded (at rest)']:.1f} | {r['load peak']:.1f} | "
                     f"{r['peak one']:.1f} | {r['peak batch']:.1f} | {r['peak stream']:.1f} | "
                     f"{r['peak stream-small']:.1f} | {r['seconds stream']:.2f} / {r['seconds stream-small']:.2f} |")
    variants = [r for r in res["rows"] if r["variant"]]
    if variants:
        lines += ["", "### What-ifs (bench-only sessions, threads 1; the runtime does neither)", "",
                  "*no-arena*: ONNX Runtime's CPU memory arena off. *drop-bytes*: after load, the copy of the model "
                  "file that onnxruntime's Python `InferenceSession` keeps (`_model_bytes`; the runtime loads the "
                  "verified bytes) released. Each cell: the what-if / the runtime as it is.", "",
                  "| model | precision | what-if | at rest | peak: one | peak: batch | peak: stream | s: stream |",
                  "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
        base = {(r["model"], r["precision"], r["threads"]): r for r in res["rows"] if not r["variant"]}
        for r in variants:
            o = base[(r["model"], r["precision"], r["threads"])]
            cells = " | ".join(f"{r[k]:.1f} / {o[k]:.1f}" for k in ("loaded (at rest)", "peak one", "peak batch",
                                                                     "peak stream"))
            lines.append(f"| {r['model']} | {r['precision']} | {r['variant']} | {cells} | "
                         f"{r['seconds stream']:.2f} / {o['seconds stream']:.2f} |")
    lines += ["", "## The `edge-infer predict` process (peak RSS, ru_maxrss via bench/launch.py)", "",
              f"`python -m edge_infer predict --model FOLDER [--int8] [--threads 1]` on one file holding "
              f"\"{SHORT_TEXT}\", and with `--lines` on a file of the {a['texts']:,} synthetic texts.", "",
              "| model | precision | threads | peak: one text | first line after | peak: --lines, "
              f"{a['texts']:,} texts | wall |", "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
    for c in res["cli"]:
        lines.append(f"| {c['model']} | {c['precision']} | {c['threads']} | {c['one']['peak_rss_mb']:.1f} | "
                     f"{c['one']['seconds']:.2f} s | {c['lines']['peak_rss_mb']:.1f} | {c['lines']['seconds']:.2f} s |")
    lines += ["", "## Files", "", "| model | fp32 | int8 | vocab | largest weights (fp32) | largest weights (int8) |",
              "| --- | ---: | ---: | ---: | --- | --- |"]
    for name, f in res["files"].items():
        big = {p: ", ".join(f"{w['name']} {'x'.join(map(str, w['shape']))} {w['dtype']} {_mb(w['bytes'])} "
                            f"({100 * w['share']:.0f} %)" for w in res["weights"].get(name, {}).get(p, [])[:2]) or "-"
               for p in ("fp32", "int8")}
        lines.append(f"| {name} | {_mb(f['fp32']) if 'fp32' in f else '-'} | {_mb(f['int8']) if 'int8' in f else '-'} "
                     f"| {_mb(f['vocab'])} | {big['fp32']} | {big['int8']} |")
    w = res["wheel"]
    per = ", ".join(f"`{n}` ({'+'.join(w['precisions'][n])}, vocab) {_mb(b)}" for n, b in w["per_model"].items())
    lines += ["", f"Models inside the wheel (`edge_infer/_models`, from `edge_infer.packaged.wheel_contents`): "
              f"{per}; {_mb(w['total'])} in all.", ""]
    return "\n".join(lines)


def write_results(out: Path, text: str, res: dict[str, Any]) -> None:
    """``OUT.md`` (the tables) and ``OUT.json`` (every figure), each through a temp file and a rename."""
    out.parent.mkdir(exist_ok=True)
    for suffix, body in ((".md", text), (".json", json.dumps(res, indent=2) + "\n")):
        target = out.with_suffix(suffix)
        tmp_path = target.with_name(target.name + ".tmp")
        tmp_path.write_text(body, encoding="utf-8")
        tmp_path.replace(target)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="*", help="model folders (default: every models/*/manifest.json)")
    p.add_argument("--threads", type=int, nargs="*", default=[1, 0], help="intra-op threads; 0: default")
    p.add_argument("--texts", type=int, default=2000)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--words", type=int, default=230)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--small-chunk", type=int, default=32, help="predict_iter batch_size of the stream-small workload")
    p.add_argument("--variants", nargs="*", default=[], choices=VARIANTS, help="what-if rows (threads 1)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "memory", help="writes OUT.md, OUT.json")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    p.add_argument("--workload", default="one", choices=WORKLOADS, help=argparse.SUPPRESS)
    p.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    if not Path("/proc/self/status").is_file():
        raise SystemExit("bench/memory.py needs Linux (/proc/self/status)")
    started = time.time()
    folders = model_folders(args.models)
    rows, cli, files, weights = [], [], {}, {}
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        one = Path(tmp) / "one.txt"
        one.write_text(SHORT_TEXT + "\n", encoding="utf-8")
        for folder in folders:
            files[folder.name] = file_sizes(folder)
            precisions = [k for k in ("fp32", "int8") if k in files[folder.name]]
            weights[folder.name] = {prec: largest_weights(folder, prec) for prec in precisions}
            vocab = (folder / json.loads((folder / "manifest.json").read_text())["files"]["vocab"]["path"])
            tokens = tuple(vocab.read_text(encoding="utf-8").split("\n")[:-1])
            many = Path(tmp) / f"{folder.name}.txt"
            many.write_text("\n".join(synthetic_texts(tokens, args.texts, args.words)) + "\n", encoding="utf-8")
            for precision in precisions:
                for threads in args.threads:
                    row = measure(folder, precision, threads, args)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                    cli.append({"model": folder.name, "precision": precision, "threads": threads or "default",
                                "one": run_cli(folder, precision, threads, [str(one)]),
                                "lines": run_cli(folder, precision, threads, ["--lines", str(many)])})
                for variant in args.variants:
                    rows.append(measure(folder, precision, 1, args, variant))
                    print(json.dumps(rows[-1]), flush=True)
    res = {"command": " ".join(["python bench/memory.py", *sys.argv[1:]]), "machine": machine(),
           "settings": {k: getattr(args, k) for k in ("texts", "batch", "small_chunk", "words", "repeats",
                                                          "threads", "variants")},
           "rows": rows, "cli": cli, "files": files, "weights": weights, "wheel": wheel_models(),
           "seconds": time.time() - started}
    text = markdown(res)
    print(text)
    write_results(args.out, text, res)


if __name__ == "__main__":
    main()
