"""Per-word explanations: tokens with their source spans (tokenizer.py) and occlusion (explain.py)."""

from __future__ import annotations

import gzip
import importlib.util
import itertools
import json
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
from conftest import DEFAULT_MODEL, REPO, SEED_MODEL, requires_default_model

from edge_infer import SentimentClassifier
from edge_infer.tokenizer import _mapped_normalize, normalize, tokenize, tokenize_with_offsets

DATA = Path(os.environ.get("EDGE_INFER_DATA", REPO.parent / "shared" / "data" / "aclImdb_labeled.tar.gz"))
MULTI = DATA.parent / "multi"
ATOL = 1e-5


def _make_vectors():
    """web/make_vectors.py: the tokenizer's hard cases and its fuzz generator (imports edge_infer only)."""
    spec = importlib.util.spec_from_file_location("make_vectors", REPO / "web" / "make_vectors.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _imdb(count: int) -> list[str]:
    if not DATA.exists():
        pytest.skip(f"{DATA} is not there")
    with tarfile.open(DATA, "r:gz") as tar:
        members = (m for m in tar if m.isfile() and m.name.endswith(".txt") and "/unsup/" not in m.name)
        return [tar.extractfile(m).read().decode("utf-8") for m in itertools.islice(members, count)]  # type: ignore[union-attr]


def _multi(per_file: int) -> list[str]:
    files = sorted(MULTI.glob("*.jsonl.gz"))
    if not files:
        pytest.skip(f"{MULTI} has no *.jsonl.gz")
    texts = []
    for path in files:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            texts += [json.loads(line)["text"] for line in itertools.islice(handle, per_file)]
    return texts


# --------------------------------------------------------------------------- tokens with offsets


def _check_same_tokens(texts: list[str]) -> None:
    for text in texts:
        mapped = _mapped_normalize(text)
        assert mapped.s == normalize(text), text[:80]
        assert not mapped.coarse, f"a step could not be split: {text[:80]!r}"
        tokens, spans = tokenize_with_offsets(text)
        assert tokens == tokenize(text), text[:80]
        assert all(0 <= a < b <= len(text) for a, b in spans)
        starts, ends = [a for a, _ in spans], [b for _, b in spans]
        assert starts == sorted(starts) and ends == sorted(ends)


def test_offsets_same_tokens_on_reviews():
    _check_same_tokens(_imdb(4000))


def test_offsets_same_tokens_on_short_texts_of_five_sources():
    _check_same_tokens(_multi(800))


def test_offsets_same_tokens_on_hard_cases_and_fuzz():
    vectors = _make_vectors()
    _check_same_tokens([text for _, text in vectors.CASES] + vectors.fuzz_texts(5000, 22))


def test_offsets_point_at_the_source_words():
    text = "I didn't like it; they WON'T return.<br /><br />Tom&#39;s &quot;best&quot; ﬁne straße Ｗｏｗ！ 10/10"
    tokens, spans = tokenize_with_offsets(text)
    assert [(t, text[a:b]) for t, (a, b) in zip(tokens, spans)] == [
        ("i", "I"), ("did", "did"), ("not", "n't"), ("like", "like"), ("it", "it"), ("they", "they"),
        ("will", "WON"), ("not", "'T"), ("return", "return"), ("tom", "Tom"), ("best", "best"),
        ("fine", "ﬁne"), ("strasse", "straße"), ("wow", "Ｗｏｗ"), ("!", "！"), ("10", "10"), ("10", "10")]
    assert spans[-2] != spans[-1]


def test_offsets_in_non_latin_scripts_and_emoji():
    # Hindi splits at its vowel signs (not str.isalnum), as tokenize does; NFD "cafe" + accent is one token.
    text = "\U0001F600 很好看的电影! هذا فيلم رائع cafe\u0301 \u092c\u0939\u0941\u0924"
    tokens, spans = tokenize_with_offsets(text)
    assert tokens == tokenize(text)
    assert [text[a:b] for a, b in spans] == ["很好看的电影", "!", "هذا", "فيلم", "رائع", "cafe\u0301", "\u092c\u0939",
                                             "\u0924"]
    assert spans[0] == (2, 8)


def test_ascii_words_map_to_themselves():
    text = "The plot, the cast and 2 hours: wasted?! Really."
    tokens, spans = tokenize_with_offsets(text)
    assert [text[a:b].casefold() for a, b in spans] == tokens


def test_empty_texts_have_no_tokens():
    for text in ("", "   ", "...", "<br />", "&nbsp;"):
        assert tokenize_with_offsets(text) == ([], [])


# --------------------------------------------------------------------------- occlusion


@pytest.fixture(scope="module")
def seed() -> SentimentClassifier:
    return SentimentClassifier.load(SEED_MODEL, threads=1)


@pytest.fixture(scope="module")
def default() -> SentimentClassifier:
    if not (DEFAULT_MODEL / "manifest.json").is_file():
        pytest.skip("models/default is not there")
    return SentimentClassifier.load(DEFAULT_MODEL, threads=1)


def _without(text: str, spans: list[tuple[int, int]], i: int) -> str:
    a, b = spans[i]
    return text[:a] + " " + text[b:]


@requires_default_model
def test_contribution_is_the_drop_when_the_word_is_deleted_from_the_text(default: SentimentClassifier):
    # The mixed BiLSTM + n-gram bag graph: deleting the word from the raw text (new bigram of its
    # neighbours, both branches) gives the variant's probability.
    text = "The acting was wooden, but the story is not bad and the ending is really moving."
    e = default.explain(text)
    spans = [(w.start, w.end) for w in e.words]
    assert abs(e.prediction.score - default.predict(text).score) <= ATOL
    for i, word in enumerate(e.words):
        p = default.predict(_without(text, spans, i)).scores[e.label]
        assert abs((e.probability - p) - word.contribution) <= ATOL, word


def test_one_session_call_and_window_means(seed: SentimentClassifier):
    calls = []

    def run(rows):
        calls.append(len(rows))
        return seed._scorer.run_batch(rows)

    from edge_infer.explain import occlusion

    text = "Terrible plot, awful acting, a boring and stupid waste of time."
    n = len(tokenize(text))
    e1 = occlusion(seed, run, text)
    e3 = occlusion(seed, run, text, window=3)
    assert calls == [n + 1, n - 1]
    ids = seed.tokenizer.ids(text)
    column = seed.labels.index(e3.label)
    full = seed.probabilities_for_ids([ids])[0, column]
    drops = [full - seed.probabilities_for_ids([ids[:j] + ids[j + 3:]])[0, column] for j in range(n - 2)]
    for k, word in enumerate(e3.words):
        held = [drops[j] for j in range(max(0, k - 2), min(k, n - 3) + 1)]
        assert abs(word.contribution - float(np.mean(held))) <= ATOL
    assert e1.method == e3.method == "occlusion" and (e1.window, e3.window) == (1, 3)
    assert e1.to_dict()["window"] == 1 and len(e1.words) == n


def test_label_choice_flips_signs_for_two_labels(seed: SentimentClassifier):
    text = "A wonderful, moving film with great acting and a brilliant story."
    pos, neg = seed.explain(text, label="positive"), seed.explain(text, label="negative")
    assert pos.label == "positive" and neg.label == "negative"
    assert abs(pos.probability + neg.probability - 1) <= ATOL
    for a, b in zip(pos.words, neg.words):
        assert abs(a.contribution + b.contribution) <= ATOL
    assert max(pos.words, key=lambda w: w.contribution).token in {"wonderful", "great", "brilliant", "moving"}


def test_text_longer_than_max_len_marks_the_cut_words(seed: SentimentClassifier):
    assert seed.max_len == 200 and seed.manifest.tokenizer.truncating == "pre"
    words = [f"filler{i}" for i in range(60)] + "a truly wonderful film".split() * 50
    text = " ".join(words)
    e = seed.explain(text)
    assert len(e.words) == 260 and [w.seen for w in e.words] == [False] * 60 + [True] * 200
    assert all(w.contribution == 0.0 for w in e.words[:60])
    assert abs(e.prediction.score - seed.predict(text).score) <= ATOL
    assert e.words[60].text == "a" and e.words[60].start == text.index(" a truly") + 1
    with pytest.raises(ValueError, match="capped at 100"):
        seed.explain(text, max_tokens=100)


def test_one_word_and_wordless_texts(seed: SentimentClassifier):
    one = seed.explain("Awful!!")
    assert [(w.token, w.text) for w in one.words] == [("awful", "Awful"), ("!", "!"), ("!", "!")]
    word = seed.explain("Awful")
    assert len(word.words) == 1
    empty_row = seed.probabilities_for_ids([[]])[0, seed.labels.index(word.label)]
    assert abs(word.words[0].contribution - (word.probability - empty_row)) <= ATOL
    none = seed.explain("...")
    assert none.words == () and abs(none.prediction.score - seed.predict("...").score) <= ATOL


def test_non_latin_text(seed: SentimentClassifier):
    text = "很好看的电影 \u2014 هذا فيلم رائع \U0001F44D"
    e = seed.explain(text)
    assert [w.text for w in e.words] == ["很好看的电影", "هذا", "فيلم", "رائع"]
    assert all(text[w.start:w.end] == w.text for w in e.words)
    assert json.loads(json.dumps(e.to_dict(), ensure_ascii=False))["words"][1]["text"] == "هذا"


def test_bad_arguments(seed: SentimentClassifier):
    for text in ("", "  \n\t"):
        with pytest.raises(ValueError, match="empty or whitespace-only"):
            seed.explain(text)
    with pytest.raises(TypeError, match="not a str"):
        seed.explain(["a list"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="label must be one of 'negative', 'positive'"):
        seed.explain("fine", label="neutral")
    for window in (0, 4, True, 1.5):
        with pytest.raises(ValueError, match="window"):
            seed.explain("fine", window=window)  # type: ignore[arg-type]
    for cap in (0, -1, True, 2.0):
        with pytest.raises(ValueError, match="max_tokens"):
            seed.explain("fine", max_tokens=cap)  # type: ignore[arg-type]


def test_json_form(seed: SentimentClassifier):
    e = seed.explain("Dull and far too long.")
    d = e.to_dict()
    assert list(d) == ["label", "score", "scores", "explained_label", "probability", "method", "window", "offsets",
                       "words"]
    assert d["label"] == e.prediction.label and d["explained_label"] == e.label
    assert [w["token"] for w in d["words"]] == ["dull", "and", "far", "too", "long"]
    assert set(d["words"][0]) == {"start", "end", "text", "token", "contribution", "seen"}
    ranked = sorted(d["words"], key=lambda w: -abs(w["contribution"]))
    assert [w.token for w in e.top(2)] == [w["token"] for w in ranked[:2]]


def test_more_than_two_labels():
    stars = SentimentClassifier.load(REPO / "models" / "stars", threads=1)
    text = "An utter waste of time, the worst film I have seen."
    e = stars.explain(text)
    p = stars.predict(text)
    assert e.label == p.label and abs(e.probability - p.score) <= ATOL
    other = next(label for label in stars.labels if label != p.label)
    assert stars.explain(text, label=other).label == other


def test_int8_explains_within_one_batch(seed_model_dir: Path):
    q = SentimentClassifier.load(seed_model_dir, quantized=True, threads=1)
    e = q.explain("I loved every minute of it! The cast was superb and the music beautiful.")
    assert len(e.words) == 15 and all(w.seen for w in e.words)
    assert abs(e.prediction.score - q.predict("I loved every minute of it! The cast was superb and the music "
                                              "beautiful.").score) < 0.05


# --------------------------------------------------------------------------- "not" in "The X was not good."

FILLERS = """
accent actor actress advice airport album alien angel animal ankle answer apartment apple army arrow artist
audience author baby bakery ballet band bank barn battle beach bear bedroom bicycle bird birthday blanket boat
book bottle boxer bracelet brain bread bridge brother budget building bus butcher cabin cafe cake camera camp
canal candle captain car carpet cartoon castle cat cellar chair champion chapter character cheese chef child
choir church cinema circus city climax clock clown coach coffee comedy composer concert cook costume cottage
country cousin cowboy crew crowd cup curtain dancer daughter debut desert dessert detective diary dinner
director doctor dog doll dragon drama dream dress drummer editor election elevator engine episode essay event
factory family farm father festival film finale fire fish flight flower forest fountain friend garden ghost
gift girl guitar hall hamburger harbor hero highway horse hospital hotel house hunter island jacket journey
judge jungle king kitchen knight ladder lake lamp lawyer lecture letter library lion lunch magazine manager
market meal melody menu message monster moon mother motel movie museum music musical narrator neighbor novel
nurse ocean office opera orchestra painter palace parade party pianist picnic pilot pizza plane play plot
poem poet police prince princess prison puppet queen radio remake restaurant river robot sailor salad
sandwich scene school scientist score script sequel sheriff ship show singer sister soldier song soup
speech stadium story student studio submarine subway summer sunset surgeon taxi teacher temple theater
thriller ticket tomato tour tower town toy trailer train trip uncle village villain violin waiter war
wedding western whale widow window winter wizard writer zoo
""".split()


def test_fillers_are_many_and_distinct():
    assert len(FILLERS) >= 200 and len(set(FILLERS)) == len(FILLERS)


NOT_RATE = 0.80


@requires_default_model
def test_not_carries_the_largest_negative_contribution(default: SentimentClassifier):
    # The contribution to P(positive): leaving "not" out ("The X was good.") must raise it the most.
    hits = 0
    for filler in FILLERS:
        e = default.explain(f"The {filler} was not good.", label="positive")
        hits += min(e.words, key=lambda w: w.contribution).token == "not"
    rate = hits / len(FILLERS)
    assert rate >= NOT_RATE, f"'not' is the most negative word in {rate:.1%} of {len(FILLERS)} sentences"
