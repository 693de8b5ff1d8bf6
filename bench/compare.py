"""Side-by-side benchmark: edge_infer (ONNX Runtime, fp32 and int8) vs Keras, raw text in, label out.

    python bench/compare.py [--model models/default] [--repeats 5]

Every figure is a median over ``--repeats`` repeats; the spread ((max - min) / median of the repeats)
is printed beside it and flagged when over 20 %. Writes ``bench/results/<model>.md`` and ``.json``.
Needs the ``train`` extra (TensorFlow) for the Keras side. Not a unit test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from edge_infer import SentimentClassifier  # noqa: E402
from edge_infer.inference import BATCH_TOKENS  # noqa: E402
from edge_infer.tokenizer import pad_batch, tokenize  # noqa: E402

SPREAD_FLAG = 0.20
SEED = 1337
THROUGHPUT_REVIEWS = 5000
KERAS_BATCHES = (32, 128, 512)


@dataclass
class Figure:
    """A median over repeats, with the repeats kept for the spread."""

    repeats: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.repeats)

    @property
    def spread(self) -> float:
        return (max(self.repeats) - min(self.repeats)) / self.median if self.median else 0.0

    def cell(self, unit: str, scale: float = 1.0, digits: int = 2) -> str:
        flag = " (!)" if self.spread > SPREAD_FLAG else ""
        return f"{self.median * scale:.{digits}f} {unit} ±{100 * self.spread:.0f}%{flag}"

    def to_dict(self) -> dict:
        return {"median": self.median, "repeats": self.repeats, "spread": self.spread}


def _latencies(call: Callable[[str], object], texts: Sequence[str]) -> np.ndarray:
    out = np.empty(len(texts))
    for i, text in enumerate(texts):
        start = time.perf_counter()
        call(text)
        out[i] = time.perf_counter() - start
    return out


def latency(call: Callable[[str], object], texts: Sequence[str], repeats: int) -> tuple[Figure, Figure]:
    """p50 and p95 of single-text calls, each a median over repeats (after one warm-up pass)."""
    _latencies(call, texts[: max(3, len(texts) // 10)])
    p50, p95 = [], []
    for _ in range(repeats):
        lat = _latencies(call, texts)
        p50.append(float(np.percentile(lat, 50)))
        p95.append(float(np.percentile(lat, 95)))
    return Figure(p50), Figure(p95)


def throughput(run: Callable[[Sequence[str]], object], texts: Sequence[str], repeats: int) -> Figure:
    """Reviews per second for the whole list."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(texts)
        rates.append(len(texts) / (time.perf_counter() - start))
    return Figure(rates)


def text_of_tokens(texts: Sequence[str], count: int) -> str:
    """A real review cut to exactly ``count`` tokens, as the runtime counts them (``tokenize`` normalizes once:
    normalizing twice is not the same, ``&amp;lt;b&amp;gt;`` decodes one level per pass)."""
    for text in texts:
        tokens = tokenize(text)
        if len(tokens) >= count:
            cut = " ".join(tokens[:count])
            if len(tokenize(cut)) == count:
                return cut
    raise ValueError(f"no review has {count} tokens")


class KerasSide:
    """Keras the way a user would call it: ``model.predict`` and a compiled ``tf.function``."""

    def __init__(self, folder: Path, clf: SentimentClassifier) -> None:
        import tensorflow as tf

        from train.model import load_classifier

        self.model = load_classifier(folder / "model.keras")
        self.tokenizer = clf.tokenizer
        self.dynamic = clf.manifest.dynamic_length
        length = None if self.dynamic else self.tokenizer.max_len
        spec = tf.TensorSpec((None, length), tf.int32)
        self.function = tf.function(lambda x: self.model(x, training=False), input_signature=(spec,))

    def _ids(self, texts: Sequence[str]) -> np.ndarray:
        return self._pad([self.tokenizer.ids(t) for t in texts])

    def _pad(self, seqs: Sequence[Sequence[int]]) -> np.ndarray:
        """Tokenized once; padded to max_len (fixed-length model) or to the longest row (dynamic)."""
        length = max(1, max(len(s) for s in seqs)) if self.dynamic else self.tokenizer.max_len
        return pad_batch(seqs, length, self.tokenizer.padding)

    def predict_one(self, text: str) -> float:
        return float(self.model.predict(self._ids([text]), verbose=0)[0, 0])

    def function_one(self, text: str) -> float:
        return float(self.function(self._ids([text])).numpy()[0, 0])

    def predict_all(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        return self.model.predict(self._ids(texts), batch_size=batch_size, verbose=0)[:, 0]

    def function_all(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        """Batches sorted by token count and padded to their longest: the same help the runtime gets."""
        seqs = [self.tokenizer.ids(t) for t in texts]
        order = sorted(range(len(texts)), key=lambda i: len(seqs[i]))
        out = np.empty(len(texts))
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            out[rows] = self.function(self._pad([seqs[i] for i in rows])).numpy()[:, 0]
        return out


def cold_start(command: list[str], repeats: int) -> tuple[Figure, Figure, str]:
    """Seconds from launch to the first line on stdout, and the process's peak RSS in MB (bench/launch.py)."""
    seconds, rss, line = [], [], ""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for _ in range(repeats):
        done = subprocess.run([sys.executable, str(ROOT / "bench" / "launch.py"), *command], env=env,
                              capture_output=True, text=True, check=True)
        result = json.loads(done.stdout)
        if result["exit_code"] != 0 or not result["first_line"]:
            raise RuntimeError(f"{command} failed (exit {result['exit_code']})")
        seconds.append(result["seconds"])
        rss.append(result["peak_rss_mb"])
        line = result["first_line"]
    return Figure(seconds), Figure(rss), line


def installed_mb(root: str, extras: Sequence[str] = ()) -> tuple[float, list[str]]:
    """On-disk size of a distribution and everything it requires (recursively), in MB."""
    seen: dict[str, metadata.Distribution] = {}
    stack = [(root, tuple(extras))]
    while stack:
        name, wanted = stack.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen[key] = dist
        for req in dist.requires or []:
            spec, _, marker = req.partition(";")
            if "extra" in marker and not any(f'"{e}"' in marker for e in wanted):
                continue
            if marker.strip() and "extra" not in marker:
                from packaging.markers import Marker  # present wherever pip is

                if not Marker(marker.strip()).evaluate():
                    continue
            dep = spec.strip().split("[")[0]
            for sep in "<>=!~ (":
                dep = dep.split(sep)[0]
            stack.append((dep, ()))
    total = 0
    for dist in seen.values():
        for file in dist.files or []:
            path = Path(dist.locate_file(file))
            if path.is_file():
                total += path.stat().st_size
    return total / 1e6, sorted(seen)


def cpu_name() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``), else what :mod:`platform` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def save_results(md: Path, text: str, doc: dict) -> None:
    """A bench's results: ``text`` (Markdown) at ``md`` and ``doc`` beside it as ``.json``, each written atomically;
    then ``text`` printed."""
    from edge_infer.storage import atomic_write_text

    atomic_write_text(md, text)
    atomic_write_text(md.with_suffix(".json"), json.dumps(doc, indent=2) + "\n")
    print(text)


def machine() -> dict:
    cpu = cpu_name()
    import onnxruntime
    import tensorflow as tf

    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "onnxruntime": onnxruntime.__version__, "tensorflow": tf.__version__, "numpy": np.__version__,
            "edge_infer": metadata.version("edge-infer")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "default")
    parser.add_argument("--data", type=Path, default=None, help="aclImdb folder or .tar.gz (default: ../shared)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--name", help="results file name (default: the model folder's name)")
    parser.add_argument("--threads", type=int, default=None, help="edge_infer intra-op threads (default: its own)")
    args = parser.parse_args()

    from train.data import default_data_path, load_imdb, stratified_indices, subset

    started = time.time()
    test = load_imdb(args.data or default_data_path()).test
    sample = subset(test, stratified_indices(test.labels, THROUGHPUT_REVIEWS, SEED))
    texts = list(sample.texts)
    rng = np.random.default_rng(SEED)
    fast_set = [texts[i] for i in rng.choice(len(texts), 300, replace=False)]
    slow_set = fast_set[:60]  # Keras predict costs ~0.1 s a call

    fp32 = SentimentClassifier.load(args.model, threads=args.threads)
    int8 = SentimentClassifier.load(args.model, quantized=True, threads=args.threads) if fp32.manifest.has_int8 \
        else None
    keras_side = KerasSide(args.model, fp32)
    r = args.repeats
    results: dict = {"model": str(args.model.relative_to(ROOT) if args.model.is_relative_to(ROOT) else args.model),
                     "machine": machine(), "repeats": r, "reviews": len(texts),
                     "edge_infer_threads": args.threads or "onnxruntime default (one per core)"}
    log = lambda message: print(f"[{time.time() - started:6.1f}s] {message}", file=sys.stderr, flush=True)  # noqa: E731

    sides: dict[str, Callable[[str], object]] = {
        "keras_predict": keras_side.predict_one,
        "keras_tf_function": keras_side.function_one,
        "edge_infer_fp32": fp32.predict,
    }
    if int8:
        sides["edge_infer_int8"] = int8.predict
    results["latency_ms"] = {}
    for name, call in sides.items():
        log(f"batch-1 latency: {name}")
        p50, p95 = latency(call, slow_set if name == "keras_predict" else fast_set, r)
        results["latency_ms"][name] = {"p50": p50, "p95": p95}

    log("length cost: 20 vs 200 tokens")
    short, long = text_of_tokens(texts, 20), text_of_tokens(texts, 200)
    results["length_cost_ms"] = {}
    for name, call in sides.items():
        n = 20 if name == "keras_predict" else 200
        results["length_cost_ms"][name] = {
            "20": latency(call, [short] * n, r)[0], "200": latency(call, [long] * n, r)[0]}

    log("length cost in batches: 1,024 reviews of 20 vs 200 tokens")
    batched = {"edge_infer_fp32": fp32.predict, "keras_predict": lambda t: keras_side.predict_all(t, 128),
               "keras_tf_function": lambda t: keras_side.function_all(t, 128)}
    if int8:
        batched["edge_infer_int8"] = int8.predict
    results["length_cost_batched_ms"] = {
        name: {n: Figure([1e3 / x for x in throughput(run, [text] * 1024, r).repeats]) for n, text in
               (("20", short), ("200", long))}
        for name, run in batched.items()}

    log("throughput")
    results["throughput"] = {"edge_infer_fp32": throughput(fp32.predict, texts, max(3, r // 2))}
    if int8:
        results["throughput"]["edge_infer_int8"] = throughput(int8.predict, texts, max(3, r // 2))
    for name, run in (("keras_predict", keras_side.predict_all), ("keras_tf_function", keras_side.function_all)):
        trial = {b: throughput(lambda t, b=b, run=run: run(t, b), texts[:1000], 1).median for b in KERAS_BATCHES}
        best = max(trial, key=trial.get)
        log(f"{name}: best batch {best} of {trial}")
        results["throughput"][name] = throughput(lambda t, b=best, run=run: run(t, b), texts, max(3, r // 2))
        results["throughput"][f"{name}_batch"] = best

    log("cold start")
    with tempfile.TemporaryDirectory() as tmp:
        review = Path(tmp) / "review.txt"
        review.write_text(texts[0], encoding="utf-8")
        cli = [str(Path(sys.executable).parent / "edge-infer"), "predict", "--model", str(args.model), str(review)]
        tf_script = [sys.executable, str(ROOT / "bench" / "tf_predict.py"), str(args.model), str(review)]
        results["cold_start"] = {}
        for name, command in (("edge_infer", cli), ("tensorflow", tf_script)):
            seconds, rss, line = cold_start(command, max(3, r // 2))
            results["cold_start"][name] = {"seconds": seconds, "peak_rss_mb": rss, "first_line": line}

    runtime_mb, runtime_dists = installed_mb("edge-infer")
    tf_mb, tf_dists = max(installed_mb("tensorflow-cpu"), installed_mb("tensorflow"))
    results["installed_mb"] = {"edge_infer_runtime": runtime_mb, "tensorflow": tf_mb,
                               "runtime_distributions": runtime_dists, "tensorflow_distributions": tf_dists}
    results["wall_time_s"] = round(time.time() - started, 1)
    results["name"] = args.name or args.model.name
    write(results, args.out)


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def targets(res: dict) -> list[tuple[str, float, float, bool]]:
    """(target, measured ratio, required ratio, met) for every target of the issue."""
    lat, thr, cold = res["latency_ms"], res["throughput"], res["cold_start"]
    ours = lat["edge_infer_fp32"]["p50"].median
    rows = [
        ("batch-1 p50: Keras predict / edge_infer fp32", _ratio(lat["keras_predict"]["p50"].median, ours), 100),
        ("batch-1 p50: Keras tf.function / edge_infer fp32", _ratio(lat["keras_tf_function"]["p50"].median, ours), 10),
        ("throughput: edge_infer fp32 / Keras tf.function (best batch)",
         _ratio(thr["edge_infer_fp32"].median, thr["keras_tf_function"].median), 2),
        ("edge_infer fp32, batch 1: 200-token / 20-token review",
         _ratio(res["length_cost_ms"]["edge_infer_fp32"]["200"].median,
                res["length_cost_ms"]["edge_infer_fp32"]["20"].median), 5),
        ("edge_infer fp32, batched: 200-token / 20-token review",
         _ratio(res["length_cost_batched_ms"]["edge_infer_fp32"]["200"].median,
                res["length_cost_batched_ms"]["edge_infer_fp32"]["20"].median), 5),
        ("cold start: TensorFlow / edge-infer", _ratio(cold["tensorflow"]["seconds"].median,
                                                       cold["edge_infer"]["seconds"].median), 12),
        ("peak RSS: TensorFlow / edge-infer", _ratio(cold["tensorflow"]["peak_rss_mb"].median,
                                                     cold["edge_infer"]["peak_rss_mb"].median), 6),
        ("installed size: tensorflow-cpu / edge-infer runtime",
         _ratio(res["installed_mb"]["tensorflow"], res["installed_mb"]["edge_infer_runtime"]), 8),
    ]
    return [(name, got, need, got >= need) for name, got, need in rows]


def markdown(res: dict) -> str:
    m = res["machine"]
    lat, thr, cost, cold = res["latency_ms"], res["throughput"], res["length_cost_ms"], res["cold_start"]
    sides = [s for s in ("keras_predict", "keras_tf_function", "edge_infer_fp32", "edge_infer_int8") if s in lat]
    lines = [
        f"# Benchmark: `{res['model']}`",
        "",
        f"{m['cpu']}, {m['cores']} cores; Python {m['python']}, onnxruntime {m['onnxruntime']}, "
        f"TensorFlow {m['tensorflow']}, numpy {m['numpy']}, edge-infer {m['edge_infer']}. "
        f"Raw text in, label out, tokenization included on every side. Medians of {res['repeats']} repeats "
        f"(throughput and cold start: {len(thr['edge_infer_fp32'].repeats)}); ±spread = (max - min) / median, "
        f"(!) when over {100 * SPREAD_FLAG:.0f} %. Whole run: {res['wall_time_s']} s.",
        "",
        "## Targets",
        "",
        "| target | measured | required | met |",
        "| --- | --- | --- | --- |",
        *(f"| {n} | {g:.1f}x | >= {need}x | {'yes' if ok else '**no**'} |" for n, g, need, ok in targets(res)),
        "",
        "## Batch-1 latency (one review per call)",
        "",
        "| side | p50 | p95 | 20-token review | 200-token review | 200 / 20 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for s in sides:
        c20, c200 = cost[s]["20"], cost[s]["200"]
        lines.append(f"| {s} | {lat[s]['p50'].cell('ms', 1e3, 3)} | {lat[s]['p95'].cell('ms', 1e3, 3)} | "
                     f"{c20.cell('ms', 1e3, 3)} | {c200.cell('ms', 1e3, 3)} | {_ratio(c200.median, c20.median):.1f}x |")
    batched = res["length_cost_batched_ms"]
    lines += [
        "",
        "Cost per review when classifying 1,024 reviews of the same length at once (Keras: batches of 128):",
        "",
        "| side | 20-token review | 200-token review | 200 / 20 |",
        "| --- | --- | --- | --- |",
    ]
    for s in sides:
        c20, c200 = batched[s]["20"], batched[s]["200"]
        ratio = _ratio(c200.median, c20.median)
        lines.append(f"| {s} | {c20.cell('ms', 1, 4)} | {c200.cell('ms', 1, 4)} | {ratio:.1f}x |")
    lines += [
        "",
        f"## Throughput ({res['reviews']:,} test reviews)",
        "",
        "| side | reviews/s | batching |",
        "| --- | --- | --- |",
    ]
    batching = {"edge_infer_fp32": f"runtime default (length-sorted, <= {BATCH_TOKENS} padded tokens per call)",
                "edge_infer_int8": f"runtime default (length-sorted, <= {BATCH_TOKENS} padded tokens per call)",
                "keras_predict": f"best of {KERAS_BATCHES}: {thr.get('keras_predict_batch')}, padded to max_len",
                "keras_tf_function": f"best of {KERAS_BATCHES}: {thr.get('keras_tf_function_batch')}, length-sorted"}
    for s in ("keras_predict", "keras_tf_function", "edge_infer_fp32", "edge_infer_int8"):
        if s in thr:
            lines.append(f"| {s} | {thr[s].cell('/s', 1, 0)} | {batching[s]} |")
    lines += [
        "",
        "## Cold start (new process: launch to first printed label) and peak RSS",
        "",
        "| process | time to first label | peak RSS |",
        "| --- | --- | --- |",
        f"| `edge-infer predict review.txt` | {cold['edge_infer']['seconds'].cell('s', 1, 2)} | "
        f"{cold['edge_infer']['peak_rss_mb'].cell('MB', 1, 0)} |",
        f"| `python bench/tf_predict.py` (Keras) | {cold['tensorflow']['seconds'].cell('s', 1, 2)} | "
        f"{cold['tensorflow']['peak_rss_mb'].cell('MB', 1, 0)} |",
        "",
        "## Installed size (the distribution and everything it requires)",
        "",
        f"- edge-infer runtime: {res['installed_mb']['edge_infer_runtime']:.0f} MB "
        f"({', '.join(res['installed_mb']['runtime_distributions'])})",
        f"- tensorflow: {res['installed_mb']['tensorflow']:.0f} MB "
        f"({len(res['installed_mb']['tensorflow_distributions'])} distributions)",
        "",
    ]
    return "\n".join(lines)


def _plain(value):
    if isinstance(value, Figure):
        return value.to_dict()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def write(res: dict, out: Path) -> None:
    plain = _plain(res)
    plain["targets"] = [{"target": n, "measured": g, "required": need, "met": ok} for n, g, need, ok in targets(res)]
    save_results(out / f"{res['name']}.md", markdown(res), plain)


if __name__ == "__main__":
    main()
