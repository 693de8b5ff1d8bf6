"""Faithfulness and cost of ``SentimentClassifier.explain`` (occlusion), after DeYoung et al. 2020 (ERASER).

    python bench/explain.py [--model models/default] [--int8] [--reviews 1000] [--short 1000]

On ``--reviews`` stratified aclImdb test reviews and ``--short`` short held-out texts from
``../shared/data/multi`` (half SST-2 dev sentences, half Sentiment140 test tweets, positive and negative):
for k = 1, 3 and 10 % of the words the model reads, with the explanation of the predicted label,

* comprehensiveness: P(label | text) - P(label | text without its top-k words), against the same with k
  random words deleted (mean of 3 draws); higher is more faithful;
* sufficiency: P(label | text) - P(label | only the top-k words, in order), against k random words; lower is
  more faithful.

Deleting means removing the token ids (the same perturbation occlusion uses). Then the p50 time of one
explanation (the whole call: tokens with offsets, one session run, the words) of a 20-word and a 200-word
review, beside ``predict`` of the same text, with ONNX Runtime's default threads and with one; and the share
of "The X was not good." sentences (the fillers of tests/test_explain.py) where "not" has the most
negative contribution to P(positive). Writes ``bench/results/explain.md`` and ``.json``. Not a unit test.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from compare import cpu_name, save_results, text_of_tokens  # noqa: E402

from edge_infer import SentimentClassifier  # noqa: E402
from edge_infer.explain import Explanation  # noqa: E402
from train.data import default_data_path, load_imdb, stratified_indices, subset  # noqa: E402

KS: tuple[int | str, ...] = (1, 3, "10%")
RANDOM_DRAWS = 3


def short_texts(multi: Path, count: int, seed: int) -> list[str]:
    """``count`` short held-out texts: half SST-2 dev sentences, half Sentiment140 test tweets (pos/neg)."""
    rng = np.random.default_rng(seed)
    out: list[str] = []
    for name, split in (("sst2", "dev"), ("tweets", "test")):
        with gzip.open(multi / f"{name}.jsonl.gz", "rt", encoding="utf-8") as handle:
            rows = [r for r in map(json.loads, handle)
                    if r["split"] == split and r["label"] in ("negative", "positive")]
        share = count // 2 if name == "sst2" else count - len(out)
        for label in ("negative", "positive"):
            pool = [r["text"] for r in rows if r["label"] == label]
            n = share // 2 if label == "negative" else share - share // 2
            out += [pool[i] for i in sorted(rng.choice(len(pool), size=min(n, len(pool)), replace=False))]
    return out


def k_of(k: int | str, m: int) -> int:
    return min(m, max(1, round(0.1 * m)) if k == "10%" else int(k))


def faithfulness(clf: SentimentClassifier, texts: Sequence[str], seed: int) -> dict:
    """ERASER comprehensiveness and sufficiency of the explanations of ``texts`` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    rows: list[list[int]] = []
    records: list[dict] = []  # per explained text: its label's column, the full row, the perturbed rows

    def add(sequence: list[int]) -> int:
        rows.append(sequence)
        return len(rows) - 1

    started = time.perf_counter()
    for text in texts:
        e: Explanation = clf.explain(text)
        contributions = [w.contribution for w in e.words if w.seen]
        ids = clf.tokenizer.ids(text)  # the ids the model reads: one per seen word
        m = len(ids)
        if m == 0:
            continue
        order = sorted(range(m), key=lambda i: (-contributions[i], i))
        record: dict = {"column": clf.labels.index(e.label), "full": add(ids), "runs": {}}
        for k in KS:
            n = k_of(k, m)
            draws = [("top", set(order[:n]))] + [("random", set(rng.choice(m, size=n, replace=False).tolist()))
                                                 for _ in range(RANDOM_DRAWS)]
            for what, chosen in draws:
                record["runs"].setdefault(("del_" + what, k), []).append(
                    add([x for i, x in enumerate(ids) if i not in chosen]))
                record["runs"].setdefault(("keep_" + what, k), []).append(
                    add([x for i, x in enumerate(ids) if i in chosen]))
        records.append(record)
    explain_s = time.perf_counter() - started
    probabilities = clf.probabilities_for_ids(rows)
    table = {}
    for k in KS:
        drops: dict[str, list[float]] = {"del_top": [], "del_random": [], "keep_top": [], "keep_random": []}
        for r in records:
            full = probabilities[r["full"], r["column"]]
            for what, values in drops.items():
                values.append(full - float(np.mean(probabilities[r["runs"][(what, k)], r["column"]])))
        comp_top, comp_random = np.mean(drops["del_top"]), np.mean(drops["del_random"])
        wins = np.mean(np.array(drops["del_top"]) > np.array(drops["del_random"]))
        table[str(k)] = {"comprehensiveness_top": float(comp_top), "comprehensiveness_random": float(comp_random),
                         "ratio": float(comp_top / comp_random) if comp_random > 0 else None,
                         "top_beats_random": float(wins),
                         "sufficiency_top": float(np.mean(drops["keep_top"])),
                         "sufficiency_random": float(np.mean(drops["keep_random"]))}
    lengths = [len(clf.tokenizer.ids(t)) for t in texts]
    return {"texts": len(texts), "explained": len(records), "mean_tokens": float(np.mean(lengths)),
            "explain_seconds": explain_s, "k": table}


def p50_ms(fn, text: str, repeats: int) -> tuple[float, float]:
    """p50 wall time and p50 CPU time (all threads of this process) of ``fn(text)``, in ms."""
    fn(text)
    wall, cpu = [], []
    for _ in range(repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        fn(text)
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    return statistics.median(wall) * 1000, statistics.median(cpu) * 1000


def timings(model: Path, reviews: Sequence[str], quantized: bool) -> list[dict]:
    out = []
    for threads in (None, 1):
        clf = SentimentClassifier.load(model, quantized=quantized, threads=threads)
        for words, repeats in ((20, 200), (200, 30)):
            text = text_of_tokens(reviews, words)
            ids = clf.tokenizer.ids(text)
            rows = [ids] + [ids[:i] + ids[i + 1:] for i in range(len(ids))]
            session_ms, _ = p50_ms(lambda _text: clf._scorer.run_batch(rows), text, repeats)  # noqa: B023
            explain_ms, explain_cpu_ms = p50_ms(clf.explain, text, repeats)
            predict_ms, predict_cpu_ms = p50_ms(clf.predict, text, repeats)
            out.append({"threads": threads or "default", "words": words, "tokens": len(clf.tokenizer.ids(text)),
                        "repeats": repeats, "explain_ms": explain_ms, "explain_cpu_ms": explain_cpu_ms,
                        "session_ms": session_ms,
                        "predict_ms": predict_ms, "predict_cpu_ms": predict_cpu_ms})
    return out


def int8_prediction_gap(model: Path, reviews: Sequence[str], max_tokens: int = 300) -> dict:
    """int8: how far explain's prediction (the batch's full row) is from ``predict`` of the text alone."""
    q = SentimentClassifier.load(model, quantized=True, threads=1)
    texts = [t for t in reviews if len(q.tokenizer.ids(t)) <= max_tokens][:100]
    gaps = [abs(q.explain(t).prediction.score - q.predict(t).score) for t in texts]
    return {"texts": len(texts), "max_tokens": max_tokens, "max": float(np.max(gaps)),
            "median": float(np.median(gaps))}


def not_rate(clf: SentimentClassifier) -> dict:
    from test_explain import FILLERS

    hits = sum(min(clf.explain(f"The {f} was not good.", label="positive").words,
                   key=lambda w: w.contribution).token == "not" for f in FILLERS)
    return {"sentences": len(FILLERS), "not_most_negative": hits, "rate": hits / len(FILLERS)}


def _load_note(doc: dict) -> str:
    """A warning when other work shared the CPUs (load average above half the CPU count at either end)."""
    loads = [float(doc[key].split()[0]) for key in ("load_before", "load_after")]
    if max(loads) <= doc["cpus"] / 2:
        return ""
    return " (other work shared the CPUs: wall times are inflated and noisy; CPU time is what the work took)"


def render(doc: dict) -> str:
    lines = ["# Explanations: faithfulness and cost", "",
             f"`{doc['command']}` — model `{doc['model']}` ({'int8' if doc['int8'] else 'fp32'}), "
             f"{doc['cpu']}, {doc['cpus']} CPUs, load average {doc['load_before']} before and "
             f"{doc['load_after']} after{_load_note(doc)}.", "",
             "## Faithfulness (ERASER, DeYoung et al. 2020; deletion of token ids, predicted label)", "",
             "Comprehensiveness: drop in P(label) with the top-k words deleted vs k random words (mean of "
             f"{RANDOM_DRAWS} draws); higher is better. Sufficiency: drop in P(label) when only the top-k words "
             "are kept vs k random words; lower is better. k = 10 %: of the words the model reads, at least 1.", "",
             "| set | texts | mean tokens | k | compr. top-k | compr. random | ratio | top-k > random | "
             "suff. top-k | suff. random |",
             "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, result in doc["sets"].items():
        for k, row in result["k"].items():
            ratio = f"{row['ratio']:.1f}x" if row["ratio"] is not None else "∞ (random <= 0)"
            lines.append(f"| {name} | {result['explained']} | {result['mean_tokens']:.0f} | {k} | "
                         f"{row['comprehensiveness_top']:.4f} | {row['comprehensiveness_random']:.4f} | {ratio} | "
                         f"{row['top_beats_random']:.1%} | {row['sufficiency_top']:.4f} | "
                         f"{row['sufficiency_random']:.4f} |")
    lines += ["", "## Cost: p50 of one explanation (whole call) beside predict of the same text", "",
              "Wall time, and CPU time of the process (what the work itself took, whatever the load made it wait).",
              "The session run alone: the one batch of the text and its variants.",
              "", "| threads | words (tokens) | repeats | explain p50 wall | explain p50 CPU | session run p50 | "
              "predict p50 wall | explain / predict (wall) |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for t in doc["timings"]:
        lines.append(f"| {t['threads']} | {t['words']} ({t['tokens']}) | {t['repeats']} | {t['explain_ms']:.2f} ms | "
                     f"{t['explain_cpu_ms']:.2f} ms | {t['session_ms']:.2f} ms | {t['predict_ms']:.2f} ms | "
                     f"{t['explain_ms'] / t['predict_ms']:.0f}x |")
    g = doc["int8_gap"]
    lines += ["", "## int8: explain's prediction vs predict", "",
              f"|score of explain (the batch's full row) - score of predict (the text alone)| on {g['texts']} of "
              f"the reviews above with at most {g['max_tokens']} tokens: max {g['max']:.1e}, median "
              f"{g['median']:.1e} (fp32: within 1e-5, tested)."]
    nr = doc["not"]
    lines += ["", "## \"The X was not good.\"", "",
              f"\"not\" has the most negative contribution to P(positive) in {nr['not_most_negative']} of "
              f"{nr['sentences']} sentences ({nr['rate']:.1%}).", ""]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=ROOT / "models" / "default")
    p.add_argument("--int8", action="store_true")
    p.add_argument("--data", type=Path, default=default_data_path())
    p.add_argument("--reviews", type=int, default=1000)
    p.add_argument("--short", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "explain.md")
    args = p.parse_args()
    load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
    clf = SentimentClassifier.load(args.model, quantized=args.int8, threads=1)
    test = load_imdb(args.data).test
    reviews = subset(test, stratified_indices(test.labels, args.reviews, args.seed)).texts
    short = short_texts(args.data.parent / "multi", args.short, args.seed)
    sets = {}
    for name, texts in (("aclImdb test reviews", reviews), ("SST-2 dev + Sentiment140 test", short)):
        sets[name] = faithfulness(clf, texts, args.seed)
        print(name, json.dumps(sets[name]["k"]), flush=True)
    doc = {"command": "python bench/explain.py" + (" --int8" if args.int8 else ""),
           "model": os.path.relpath(args.model, ROOT), "int8": args.int8, "cpu": cpu_name(),
           "cpus": os.cpu_count(), "load_before": load_before, "sets": sets,
           "timings": timings(args.model, test.texts[:2000], args.int8), "not": not_rate(clf),
           "int8_gap": int8_prediction_gap(args.model, reviews)}
    doc["load_after"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    save_results(args.out, render(doc), doc)


if __name__ == "__main__":
    main()
