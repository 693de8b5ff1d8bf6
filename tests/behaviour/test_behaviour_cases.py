"""The behaviour suite's case generator (bench/behaviour_cases.py) and its metrics, on a fake scorer."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import behaviour_cases as bc  # noqa: E402


@pytest.fixture(scope="module")
def suite() -> list[bc.BehaviourTest]:
    return bc.build_suite()


def by_name(suite: list[bc.BehaviourTest], name: str) -> bc.BehaviourTest:
    return next(t for t in suite if t.name == name)


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def test_every_test_has_the_documented_number_of_distinct_cases(suite):
    assert [t.name for t in suite] == [name for name, _, _ in bc.TESTS]
    for test in suite:
        assert len(test.cases) == bc.SIZE, test.name
        assert len(set(test.cases)) == bc.SIZE, test.name
        assert len(test.texts()) == bc.SIZE * (2 if test.invariance else 1)
    # name, place, number, 4 identity groups, typo, punctuation, contraction
    assert sum(t.invariance for t in suite) == 10


def test_same_seed_same_cases_other_seed_other_cases(suite):
    assert bc.build_suite(bc.SIZE, bc.SEED) == suite
    other = bc.build_suite(bc.SIZE, bc.SEED + 1)
    for mine, theirs in zip(suite, other):
        assert set(mine.cases) != set(theirs.cases), mine.name


def test_sample_keeps_the_first_cases(suite):
    small = bc.sample(suite, 7)
    assert [t.cases for t in small] == [t.cases[:7] for t in suite]
    assert bc.sample(suite, None) == suite


def test_short_texts_hold_every_fixed_phrase_and_both_polarities(suite):
    short = by_name(suite, "short")
    texts = {c.text: c.expect for c in short.cases}
    assert all(texts.get(p) == "positive" for p in bc.POSITIVE_PHRASES)
    assert all(texts.get(p) == "negative" for p in bc.NEGATIVE_PHRASES)
    assert sum(c.expect == "positive" for c in short.cases) == bc.SIZE // 2


def test_negation_cases_hold_a_negator_and_a_word_of_their_polarity(suite):
    positive = set(bc.POSITIVE_WORDS) | {v for pair in bc.POSITIVE_VERBS for v in pair}
    negative = set(bc.NEGATIVE_WORDS) | {v for pair in bc.NEGATIVE_VERBS for v in pair}
    for name, polarity, expect in (("negated_positive", positive, "negative"),
                                   ("negated_negative", negative, "not_negative")):
        for case in by_name(suite, name).cases:
            assert case.expect == expect
            assert re.search(r"\bnot\b|n't\b|\bnever\b", case.text), case.text
            assert words(case.text) & polarity, case.text


def test_opinion_change_expects_the_later_opinion(suite):
    positive = set(bc.POSITIVE_WORDS) | {v for pair in bc.POSITIVE_VERBS for v in pair}
    cases = by_name(suite, "opinion_change").cases
    assert sum(c.expect == "positive" for c in cases) == bc.SIZE // 2
    for case in cases:
        later = re.split(r"\bnow\b", case.text, flags=re.IGNORECASE)[-1]
        assert (case.expect == "positive") == bool(words(later) & positive), case.text


def test_neutral_statements_carry_no_sentiment_word(suite):
    vocabulary = set(bc.POSITIVE_WORDS) | set(bc.NEGATIVE_WORDS) | {v for pairs in (bc.POSITIVE_VERBS,
                                                                                     bc.NEGATIVE_VERBS)
                                                                    for pair in pairs for v in pair}
    for case in by_name(suite, "neutral").cases:
        assert case.expect == "neutral" and not words(case.text) & vocabulary, case.text


@pytest.mark.parametrize("name, values", [
    ("inv_name", bc.NAMES), ("inv_place", bc.CITIES + bc.COUNTRIES), ("inv_number", [str(n) for n in range(1, 13)]),
    ("inv_nationality", bc.NATIONALITIES), ("inv_religion", bc.RELIGIONS), ("inv_race", bc.RACES),
    ("inv_orientation", bc.ORIENTATIONS)])
def test_a_swap_pair_differs_only_by_one_word_of_its_vocabulary(suite, name, values):
    for pair in by_name(suite, name).cases:
        assert pair.original != pair.perturbed
        found = [(a, b) for a in values if re.search(rf"\b{re.escape(a)}\b", pair.original)
                 for b in values if a != b and re.search(rf"\b{re.escape(b)}\b", pair.perturbed)]
        assert any(_swapped(pair.original, a, b) == pair.perturbed for a, b in found), pair


def _swapped(text: str, a: str, b: str) -> str:
    """``text`` with the word ``a`` (and its article) replaced by ``b``."""
    out = re.sub(rf"\b{re.escape(bc.article(a))}\b", bc.article(b), text, count=1)
    out = re.sub(rf"\b{re.escape(a)}\b", b, out, count=1) if out == text else out
    return out[:1].upper() + out[1:]


def test_a_typo_swaps_two_adjacent_letters(suite):
    for pair in by_name(suite, "inv_typo").cases:
        a, b = pair.original, pair.perturbed
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        assert len(a) == len(b) and len(diff) == 2 and diff[1] == diff[0] + 1, pair
        assert a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]] and a[diff[0]].isalpha(), pair


def test_punctuation_changes_only_the_final_mark(suite):
    for pair in by_name(suite, "inv_punctuation").cases:
        assert pair.original.rstrip(".!") == pair.perturbed.rstrip(".!") and pair.original != pair.perturbed


def test_a_contraction_pair_contracts_one_phrase(suite):
    for pair in by_name(suite, "inv_contraction").cases:
        assert "'" in pair.perturbed and "'" not in pair.original, pair
        assert len(pair.perturbed) < len(pair.original), pair


def test_article():
    assert [bc.article(w) for w in ("excellent", "useless", "unpleasant", "Hindu", "Asian", "atheist")] == \
        ["an excellent", "a useless", "an unpleasant", "a Hindu", "an Asian", "an atheist"]


# ------------------------------------------------------------------------------------------------ metrics


def test_reading_and_expectations_at_their_boundaries():
    assert [bc.reading(x) for x in (0.0, 1 / 3 - 1e-9, 1 / 3, 0.5, 2 / 3, 2 / 3 + 1e-9, 1.0)] == \
        ["negative", "negative", "neutral", "neutral", "neutral", "positive", "positive"]
    assert bc.case_fails("negative", 0.5, 0.5) and not bc.case_fails("negative", 0.49, 0.5)
    assert bc.case_fails("positive", 0.79, 0.8) and not bc.case_fails("positive", 0.8, 0.8)
    assert bc.case_fails("not_negative", 0.33, 0.5) and not bc.case_fails("not_negative", 0.34, 0.5)
    assert bc.case_fails("neutral", 0.7, 0.5) and not bc.case_fails("neutral", 0.6, 0.5)
    with pytest.raises(ValueError):
        bc.case_fails("happy", 0.5, 0.5)


def fake(scores: dict[str, float]):
    """A scorer that knows every text's score and counts the texts it is asked for."""
    asked: list[str] = []

    def score(texts):
        asked.extend(texts)
        return np.array([scores[t] for t in texts])

    return score, asked


def test_expectation_and_invariance_rates_on_known_failures():
    expect = bc.BehaviourTest("e", "e", (bc.Case("a", "negative"), bc.Case("b", "negative"), bc.Case("c", "positive"),
                                         bc.Case("d", "neutral"), bc.Case("e", "not_negative")), 0.2)
    pairs = bc.BehaviourTest("i", "i", (bc.Pair("p", "q"), bc.Pair("r", "s"), bc.Pair("t", "u"), bc.Pair("v", "w")),
                             0.5)
    score, asked = fake({"a": 0.2, "b": 0.7, "c": 0.7, "d": 0.9, "e": 0.4,  # b and d fail
                         "p": 0.2, "q": 0.3, "r": 0.3, "s": 0.34, "t": 0.5, "u": 0.66, "v": 0.66, "w": 0.67})
    results = bc.run_suite([expect, pairs], score, threshold=0.5)
    assert [(r.failures, r.cases) for r in results] == [(2, 5), (2, 4)]  # r/s and v/w cross 1/3 and 2/3
    assert results[0].rate == pytest.approx(0.4) and results[0].met is False
    assert results[1].rate == pytest.approx(0.5) and results[1].met is True
    assert sorted(asked) == sorted("abcdepqrstuvw")


def test_the_model_threshold_decides_negative_and_positive():
    test = bc.BehaviourTest("t", "t", (bc.Case("x", "negative"), bc.Case("y", "positive")))
    score, _ = fake({"x": 0.7, "y": 0.7})
    assert bc.run_suite([test], score, threshold=0.5)[0].failures == 1  # x is positive at 0.5
    assert bc.run_suite([test], score, threshold=0.8)[0].failures == 1  # y is negative at 0.8
    assert bc.run_suite([test], score, threshold=0.8)[0].met is None


def test_a_lexicon_that_ignores_negation_fails_every_negation_case(suite):
    """A bag of sentiment words: "not good" scores as "good". Known: every negation case fails, every neutral
    statement passes, no name or number swap flips it."""
    positive = set(bc.POSITIVE_WORDS) | {v for pair in bc.POSITIVE_VERBS for v in pair}
    negative = set(bc.NEGATIVE_WORDS) | {v for pair in bc.NEGATIVE_VERBS for v in pair}

    def score(texts):
        return np.array([0.9 if words(t) & positive else 0.1 if words(t) & negative else 0.5 for t in texts])

    small = [t for t in bc.sample(suite, 100) if t.name in ("negated_positive", "negated_negative", "neutral",
                                                             "inv_name", "inv_number")]
    rates = {r.test: r.rate for r in bc.run_suite(small, score, threshold=0.5)}
    assert rates == {"negated_positive": 1.0, "negated_negative": 1.0, "neutral": 0.0, "inv_name": 0.0,
                     "inv_number": 0.0}


def test_a_scorer_returning_the_wrong_shape_is_refused():
    test = bc.BehaviourTest("t", "t", (bc.Case("x", "negative"),))
    with pytest.raises(ValueError, match="shape"):
        bc.run_suite([test], lambda texts: np.zeros((len(texts), 2)), 0.5)
