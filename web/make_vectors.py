"""Write the shared test vectors of the JavaScript port (web/): Python's tokens, ids and scores.

    PYTHONPATH=. python web/make_vectors.py --model models/default --out web/test/vectors.json

Imports edge_infer only (no TensorFlow). ``--model`` is the main model; ``--extra`` models (default:
models/seed and models/stars beside it) get ids and scores too. Every model is scored fp32 and, when it
has one, int8, with ``SentimentClassifier.probabilities`` (the same length-sorted batching the JS port uses).

What it writes:
* ``cases``: the tokenizer's hard cases (text, tokens, ids per model, whether predict refuses it);
* ``fuzz``: random strings of tricky pieces with Python's ``normalize()`` and tokens;
* ``reviews``: a stratified sample of labelled test reviews (text, label, ids for the main model);
* ``scores[model][fp32|int8]``: class probabilities for every case predict accepts, then every review;
* ``predictions``: predict() of the first texts as one batch; ``singles``: predict() of single texts;
* ``corpus``: sha256 digests of the tokens, ids and token spans of every review in the archive, 100 reviews
  a chunk, in archive order (the Node test reads the same archive and recomputes them);
* ``spans`` (in ``cases``, ``fuzz`` and ``reviews``): ``tokenize_with_offsets``'s spans, in code points;
* ``explanations``: ``SentimentClassifier.explain`` of cases, reviews and short texts, unrounded, for every
  model and variant, with other windows and labels on some.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import sys
import tarfile
import unicodedata
from pathlib import Path

from edge_infer.classifier import SentimentClassifier
from edge_infer.explain import Explanation
from edge_infer.tokenizer import NORMALIZATION, normalize, tokenize, tokenize_with_offsets

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "aclImdb_labeled.tar.gz"
MEMBER = re.compile(r"aclImdb/(train|test)/(pos|neg)/\d+_\d+\.txt")
CHUNK = 100

CASES: list[tuple[str, str]] = [
    # markup
    ("br tags", "The plot was thin." + "<br />" * 2 + "The cast was great."),
    ("tags glue", "end<br />start<BR>again<br/>x"),
    ("not tags", "a < b and <3 and 3>2 and <<x>>"),
    ("tag too long", "keep <a " + "x" * 120 + "> this"),
    ("tag 100", "drop <a " + "y" * 98 + "> that"),
    ("tag non-ascii", "<b>bold</b> <ñ>enye</ñ> <b title='ü'>ok</b>"),
    ("escaped tag", "&lt;br /&gt; stays &lt;3"),
    # entities
    ("entities", "Tom &amp; Jerry &quot;Brilliant&quot; &apos;s &lt;3 &gt;"),
    ("entities no semicolon", "&ampfoo &copy2024 &notit; &notin; &not &AMP &lt3 &eacutex &Eacute"),
    ("entities unknown", "&foo; &; & && &# &#; &#x; &#xg; &zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz;"),
    ("numeric", "&#65313;&#x41;&#X42; &#39;s &#x27;t &#8217;m &#65; &#0065;"),
    ("numeric invalid", "a&#0;b&#128;c&#x80;d&#x9F;e&#xD800;f&#x110000;g&#1;h&#11;i&#xFFFE;j&#13;k"),
    ("numeric huge", "x&#99999999999999999999999;y&#x7FFFFFFFFFFFFFFFFF;z"),
    ("nbsp", "good&nbsp;movie&#160;really\u00a0good"),
    ("entity full-width", "&#xFF37;&#xFF4F;&#xFF4E;&#x2019;t stop"),
    ("entity astral", "&#128512;&#x1F600; &fopf; &Afr;"),
    # Unicode normalization
    ("nfd vs nfc", "cafe\u0301 caf\u00e9 Cafe\u0301 CAF\u00c9 \u1100\u1161\u11a8 \uac01"),
    ("full-width", "\uff27\uff32\uff25\uff21\uff34\uff01 \uff11\uff10\uff0f\uff11\uff10 \uff57\uff4f\uff57\uff1f"),
    ("compatibility", "\ufb01ne \ufb00 x\u00b2 \u216b \u2460\u2461 \u00bd \uff8a\uff9f \u2122 \u3396 \u33a1"),
    ("half-width katakana", "\uff8a\uff9f\uff9d\uff80\uff9e \u30d1\u30f3\u30c0"),
    ("combining marks", "n\u0303o \u0061\u0308\u0304 \u1e9b\u0323 q\u0307\u0323"),
    # casefold
    ("casefold", "STRASSE stra\u00dfe \u1e9e \u038c\u03a3\u039f\u03a3 \u03c2 \u0130stanbul \u0131 \u01c5 \ufb00"),
    ("cherokee", "\u13a0\u13a1 \uab70\uab71 \u13f8"),
    ("casefold misc", "\u0149 \u01f0 \u0390 \u1e96 \u1f80 \u1fb3 \u212a \u2126 \u00b5 \u0345"),
    # scripts
    ("arabic", "\u0647\u0630\u0627 \u0641\u064a\u0644\u0645 \u0631\u0627\u0626\u0639! "
               "\u0645\u064f\u0645\u0652\u062a\u0650\u0639"),
    ("hebrew", "\u05e1\u05e8\u05d8 \u05e0\u05d4\u05d3\u05e8? \u05e9\u05b8\u05c1\u05dc\u05d5\u05b9\u05dd"),
    ("rtl marks", "\u200fgood\u200e \u202ebad\u202c \u2067x\u2069"),
    ("hindi", "\u092c\u0939\u0941\u0924 \u0905\u091a\u094d\u091b\u0940 \u092b\u093f\u0932\u094d\u092e"),
    ("thai cjk", "\u0e2b\u0e19\u0e31\u0e07\u0e14\u0e35 \u5f88\u597d\u770b\u7684\u7535\u5f71 "
                 "\u3068\u3066\u3082\u826f\u3044 \ud55c\uad6d"),
    ("digits", "10/10 \u0663\u0664 \u096b \u2155 \u00b3 \u2070 \u3007 \u4e00\u4e8c\u4e09 \u216b"),
    # emoji and invisible characters
    ("emoji", "\U0001F600\U0001F600 great \U0001F44D\U0001F3FD \u2764\ufe0f "
              "\U0001F468\u200d\U0001F469\u200d\U0001F467 \U0001F1EB\U0001F1F7"),
    ("emoji glued", "good\U0001F600movie n\U0001F600't \U0001F600won't"),
    ("zero width", "good\u200bmovie soft\u00adhyphen \ufeffhello \u034fcgj wj\u2060x"),
    ("underscore", "snake_case_word __init__ it's_x can't_ _s"),
    # contractions
    ("contractions", "I didn't like it; they won't return; I'm bored; you can't win; it ain't over"),
    ("contractions 2", "We're here, they've left, she'll say he'd go, the film's ending"),
    ("contraction apostrophes", "didn\u2019t didn\u2018t didn`t didn\u02bct didn\u00b4t I\u2019m"),
    ("contractions whole words", "Swon't and xcan't won'tx can'ts it'sy 's 't n't WON'T CAN'T Ain't"),
    ("contraction boundaries", "can't\u306f won't\u00e9 it's\u0301 don't! o'clock rock'n'roll 'tis wouldn't've"),
    ("contraction full-width", "\uff37\uff4f\uff4e\u2019t stop \uff43\uff41\uff4e\uff07\uff54"),
    ("contraction unicode word", "\u00e9won't \u0628won't 1won't _won't \u00e9n't"),
    # ! and ?
    ("marks", "Wow, what a film... Really?! (Yes); great: 10/10 - \"fine\" #1. wow!!!???"),
    ("marks unicode", "\u00a1hola! \u00bfqu\u00e9? \uff01\uff1f \u203c \u2049 \u0021\u0301"),
    # empty after normalization, whitespace
    ("punctuation only", "... --- ***"),
    ("tag only", "<br />" * 2),
    ("entity space", "&nbsp;"),
    ("apostrophe s", "'s"),
    ("emoji only", "\U0001F600\U0001F44D"),
    ("spaces", "   "),
    ("empty", ""),
    ("unicode spaces", "\u3000\u2003\u00a0 \t\n"),
    ("python-only spaces", "\x1c\x1d\x1e\x1f\x85"),
    ("bom", "\ufeff"),
    ("line separators", "good\u2028movie\u2029bad\r\nend\x0bx\x0cy"),
    # Unicode versions: code points that Python's Unicode does not assign but a newer one may (with NFKC
    # decompositions and case foldings there): U+1E030 (15.0), U+1CCD6 (16.0), U+A7CB (16.0), U+1DF25 (15.0)
    ("newer unicode", "x\U0001E030y \U0001CCD6 \ua7cb\ua7dc \U0001DF25 \u0cf3 \U00011F00"),
    ("newer unicode marks", "e\U0001E030\u0301 a\u0308\U0001CCD6\u0323"),
    # length
    ("over-long", "good " * 700 + "bad " * 10),
    ("over-long distinct", " ".join(f"w{i}" for i in range(1500)) + " awful terrible"),
    ("over-long non-ascii", "tr\u00e8s bien " * 400 + "horrible"),
]


FUZZ_PIECES = [
    "&", "&#", "&#x", "#", ";", "x", "X", "0", "1", "9", "65", "128", "x41", "amp", "AMP", "lt", "not", "notin",
    "eacute", "Eacute", "copy", "nbsp", "fopf", "zz", "<", ">", "<br />", "</b>", "<a href='x'>", "'", "\u2019",
    "`", "\u00b4", "n't", "won", "can", "ain", "'s", "'re", "'ll", "'d", "'m", "'ve", "'t", " ", "\t", "\n",
    "!", "?", "\uff01", "_", "a", "B", "\u00df", "\u0130", "\u03a3", "\u13a0", "\uab70", "\ufb00", "\u0301",
    "\u0308", "\u0323", "e", "\u00e9", "\u1100", "\u1161", "\u11a8", "\uff21", "\u2460", "\u00bd",
    "\u0663", "\u0915", "\u093f", "\u05d0", "\u05b8", "\u0627", "\u064e", "\U0001F600", "\u200d",
    "\u200b", "\ufeff", "\u3000", "\x1c", "\U0001E030", "\U0001CCD6", "\ua7cb", "\U00010400", "\U0001D400",
]


def fuzz_texts(count: int, seed: int) -> list[str]:
    """Random strings of the pieces the normalization rules care about (entities, tags, apostrophes, ...)."""
    rng = random.Random(seed)
    return ["".join(rng.choice(FUZZ_PIECES) for _ in range(rng.randint(1, 24))) for _ in range(count)]


def member_texts(path: Path):
    """(name, text) of every labelled review, in archive order."""
    with tarfile.open(path, "r:gz") as tar:
        for info in tar:
            if info.isfile() and MEMBER.fullmatch(info.name):
                handle = tar.extractfile(info)
                assert handle is not None
                yield info.name, handle.read().decode("utf-8")


def corpus_digests(path: Path, clf: SentimentClassifier) -> list[dict]:
    chunks: list[dict] = []
    tok, ids, spans, names = hashlib.sha256(), hashlib.sha256(), hashlib.sha256(), []

    def flush() -> None:
        nonlocal tok, ids, spans, names
        chunks.append({"first": names[0], "last": names[-1], "count": len(names),
                       "tokens": tok.hexdigest(), "ids": ids.hexdigest(), "spans": spans.hexdigest()})
        tok, ids, spans, names = hashlib.sha256(), hashlib.sha256(), hashlib.sha256(), []

    for name, text in member_texts(path):
        tokens, offsets = tokenize_with_offsets(text)
        tok.update((" ".join(tokens) + "\n").encode("utf-8"))
        ids.update((",".join(map(str, clf.tokenizer.ids(text))) + "\n").encode("ascii"))
        spans.update((",".join(f"{a}:{b}" for a, b in offsets) + "\n").encode("ascii"))
        names.append(name)
        if len(names) == CHUNK:
            flush()
    if names:
        flush()
    return chunks


def sample_reviews(path: Path, count: int, seed: int) -> list[dict]:
    """``count`` test reviews, half positive and half negative, drawn with ``seed``."""
    test = [(name, text) for name, text in member_texts(path) if name.startswith("aclImdb/test/")]
    rng = random.Random(seed)
    out = []
    for polarity in ("neg", "pos"):
        pool = sorted(item for item in test if f"/{polarity}/" in item[0])
        out += [{"name": n, "label": polarity, "text": t} for n, t in rng.sample(pool, count // 2)]
    return out


def refused(text: str) -> bool:
    return not text or text.isspace()


def spans_of(text: str) -> list[list[int]]:
    return [[a, b] for a, b in tokenize_with_offsets(text)[1]]


def unrounded(e: Explanation) -> dict:
    """``Explanation.to_dict()`` at full precision."""
    p = e.prediction
    return {"label": p.label, "score": p.score, "scores": p.scores, "explained_label": e.label,
            "probability": e.probability, "method": e.method, "window": e.window,
            "words": [{"start": w.start, "end": w.end, "text": w.text, "token": w.token,
                       "contribution": w.contribution, "seen": w.seen} for w in e.words]}


SHORT_TEXTS = [
    "I wanted to love it: the music is lovely, the plot is a mess.",
    "Dull and far too long, but the music is lovely.", "Not bad at all.", "The plot was not good.",
    "I didn't like it; they won't return.", "A wonderful, moving film.", "Brilliant", "...",
    "\u5f88\u597d\u770b\u7684\u7535\u5f71 \U0001F44D", "Tom &amp; Jerry<br /><br />&quot;great&quot;!",
]


def explanations(classifiers: dict, main_name: str, cases: list[dict], reviews: list[dict]) -> list[dict]:
    """Python's explanations of texts the JS port must match: every accepted case, 12 reviews and short texts
    for the main model (fp32 and int8); windows 2 and 3 and both labels on short texts; short texts on the
    other models."""
    rng = random.Random(5)
    main_texts = ([c["text"] for c in cases if not c["refused"]] + SHORT_TEXTS
                  + [r["text"] for r in rng.sample(reviews, 12)])
    jobs = [(main_name, kind, text, {}) for kind in classifiers[main_name] for text in main_texts]
    labels = classifiers[main_name]["fp32"].labels
    for text in SHORT_TEXTS[:5]:
        jobs += [(main_name, "fp32", text, {"window": 2}), (main_name, "int8", text, {"window": 3}),
                 (main_name, "fp32", text, {"label": labels[0]}),
                 (main_name, "int8", text, {"label": labels[-1]})]  # the demo page's: int8, P(labels[1])
    for name in classifiers:
        if name != main_name:
            jobs += [(name, kind, text, {}) for kind in classifiers[name] for text in SHORT_TEXTS]
    return [{"model": name, "kind": kind, "text": text, "options": options,
             "result": unrounded(classifiers[name][kind].explain(text, **options))}
            for name, kind, text, options in jobs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=Path("models/default"))
    parser.add_argument("--extra", type=Path, nargs="*", default=None,
                        help="more model folders (default: seed and stars beside --model)")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("EDGE_INFER_DATA", DEFAULT_DATA)))
    parser.add_argument("--reviews", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    extra = args.extra if args.extra is not None else [args.model.parent / n for n in ("seed", "stars")]
    folders = [args.model, *extra]
    names = [f.name for f in folders]

    classifiers = {}
    for folder in folders:
        classifiers[folder.name] = {"fp32": SentimentClassifier.load(folder, threads=1)}
        if classifiers[folder.name]["fp32"].manifest.has_int8:
            classifiers[folder.name]["int8"] = SentimentClassifier.load(folder, quantized=True, threads=1)
    main_clf = classifiers[args.model.name]["fp32"]

    cases = [{"name": name, "text": text, "tokens": tokenize(text), "spans": spans_of(text), "refused": refused(text),
              "ids": {n: classifiers[n]["fp32"].tokenizer.ids(text) for n in names}} for name, text in CASES]
    fuzz = [{"text": t, "normalized": normalize(t), "tokens": tokenize(t), "spans": spans_of(t)}
            for t in fuzz_texts(3000, args.seed)]
    reviews = sample_reviews(args.data, args.reviews, args.seed)
    for review in reviews:
        review["ids"] = main_clf.tokenizer.ids(review["text"])
        review["spans"] = spans_of(review["text"])
    scored = [c["text"] for c in cases if not c["refused"]] + [r["text"] for r in reviews]
    scores = {n: {kind: clf.probabilities(scored).tolist() for kind, clf in variants.items()}
              for n, variants in classifiers.items()}
    predictions = {n: {kind: [{"label": p.label, "score": p.score} for p in clf.predict(scored[:len(cases) + 20])]
                       for kind, clf in variants.items()} for n, variants in classifiers.items()}
    # One text alone: no batching, and for int8 the dynamic quantization scale comes from that text only.
    single_at = sorted({*range(0, len(scored), max(1, len(scored) // 12)), len(scored) - 1})
    singles = {n: {kind: [{"index": i, "label": (p := clf.predict(scored[i])).label, "score": p.score,
                           "scores": p.scores} for i in single_at]
                   for kind, clf in variants.items()} for n, variants in classifiers.items()}
    vectors = {
        "generator": "web/make_vectors.py",
        "python": sys.version.split()[0],
        "unidata_version": unicodedata.unidata_version,
        "normalization": NORMALIZATION,
        "main_model": args.model.name,
        "models": {n: {"labels": list(classifiers[n]["fp32"].labels), "threshold": classifiers[n]["fp32"].threshold}
                   for n in names},
        "cases": cases,
        "fuzz": fuzz,
        "reviews": reviews,
        "scored": "texts of cases that predict accepts, in case order, then every review",
        "scores": scores,
        "predictions": predictions,
        "singles": singles,
        "explanations": explanations(classifiers, args.model.name, cases, reviews),
        "corpus": {"archive": args.data.name, "chunk": CHUNK, "model": args.model.name,
                   "chunks": corpus_digests(args.data, main_clf)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(vectors, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"{args.out}: {len(cases)} cases, {len(reviews)} reviews, {len(vectors['corpus']['chunks'])} corpus chunks")


if __name__ == "__main__":
    main()
