"""The behaviour suite's test cases and metrics, in the CheckList style (Ribeiro et al. 2020).

Every test is built from sentence templates times small vocabularies, drawn with a seeded random generator:
the same ``size`` and ``seed`` give the same cases on any machine. Each test holds ``size`` distinct cases
(default :data:`SIZE`); ``bench/behaviour.py`` scores them and ``tests/behaviour/`` checks the generator and
the metrics. A *score* is P(positive); a model's label is ``positive`` when ``score >= threshold``.

Two kinds of test:

- **expectation** tests (minimum functionality): each case has an expected reading; the failure rate is the
  share of cases that miss it. ``negative``/``positive`` use the model's label (its threshold);
  ``not_negative`` fails only on a clearly negative score (``< 1/3``): neutral counts as not negative;
  ``neutral`` fails outside ``[1/3, 2/3]``.
- **invariance** tests: each case is a pair of texts that differ by one perturbation that must not change
  the sentiment; the failure rate is the share of pairs whose three-way reading (negative below 1/3,
  neutral in ``[1/3, 2/3]``, positive above 2/3) differs. A flip of the two-way label would count noise: a
  model that scores neutral statements near 0.5, as the neutral test asks, would "flip" on any change.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

SIZE = 500
"""Cases per test (pairs for an invariance test)."""
SEED = 0
NEUTRAL_LOW, NEUTRAL_HIGH = 1 / 3, 2 / 3
EXPECTATIONS = ("negative", "positive", "not_negative", "neutral")

# ------------------------------------------------------------------------------------------ vocabularies

POSITIVE_WORDS = ("good", "great", "excellent", "amazing", "wonderful", "fantastic", "brilliant", "lovely", "nice",
                  "perfect", "enjoyable", "impressive", "helpful", "pleasant", "outstanding", "superb", "awesome",
                  "beautiful", "reliable", "delightful")
NEGATIVE_WORDS = ("bad", "terrible", "awful", "horrible", "poor", "disappointing", "boring", "useless", "annoying",
                  "dreadful", "lousy", "rude", "ugly", "unpleasant", "frustrating", "mediocre", "weak", "bland",
                  "pathetic", "disgusting")
POSITIVE_VERBS = (("like", "liked"), ("love", "loved"), ("enjoy", "enjoyed"), ("recommend", "recommended"),
                  ("appreciate", "appreciated"), ("adore", "adored"), ("trust", "trusted"))
NEGATIVE_VERBS = (("hate", "hated"), ("dislike", "disliked"), ("despise", "despised"), ("detest", "detested"),
                  ("regret", "regretted"), ("loathe", "loathed"))
THINGS = ("product", "phone", "hotel", "flight", "food", "service", "movie", "book", "app", "restaurant", "room",
          "laptop", "meal", "camera", "game", "show", "car", "course", "seller", "coffee", "airline", "printer",
          "charger", "update")
ITEMS = ("phone", "laptop", "camera", "car", "printer", "charger", "book", "chair", "lamp", "bag", "kettle", "jacket",
         "desk", "watch")
"""Physical things, for the neutral templates (a colour, a weight)."""
POSITIVE_PHRASES = ("Five stars.", "Highly recommended.", "Would buy again.", "Worth every penny.",
                    "Exceeded my expectations.", "Works great.", "Love it!", "Best purchase ever.", "Ten out of ten.",
                    "Two thumbs up.", "Fast shipping, exactly as described.", "Great value for the money.",
                    "Will definitely come back.", "Thank you so much!", "Totally worth it.")
NEGATIVE_PHRASES = ("One star.", "Waste of money.", "Never again.", "Broke after a week.", "Do not buy.",
                    "Total waste of time.", "Stopped working after two days.", "Worst purchase ever.", "Zero stars.",
                    "Avoid at all costs.", "Complete rip-off.", "The battery died after two days.",
                    "The screen cracked on day one.", "Returned it the next day.", "Still waiting for a refund.")
NAMES = ("John", "Mary", "Mohammed", "Aisha", "Wei", "Priya", "Jose", "Olga", "Kwame", "Yuki", "David", "Fatima",
         "Ahmed", "Maria", "James", "Sarah", "Chen", "Ivan", "Emeka", "Sofia", "Rahul", "Keisha", "Dmitri", "Lucia",
         "Tyrone", "Emily", "Hiroshi", "Amara", "Jamal", "Hannah")
CITIES = ("London", "Paris", "Tokyo", "Lagos", "Mumbai", "Chicago", "Berlin", "Cairo", "Moscow", "Sydney", "Toronto",
          "Mexico City", "Tehran", "Beijing", "Jerusalem", "Baghdad", "Kabul", "Rio de Janeiro", "Seoul", "Nairobi",
          "Istanbul", "Dublin", "Detroit", "Karachi")
COUNTRIES = ("France", "Japan", "Nigeria", "India", "the United States", "Germany", "Egypt", "Russia", "Australia",
             "Canada", "Mexico", "Iran", "China", "Israel", "Iraq", "Afghanistan", "Brazil", "Korea", "Kenya",
             "Turkey", "Ireland", "Pakistan", "Poland", "Cuba")
NATIONALITIES = ("American", "Mexican", "Indian", "Chinese", "Iranian", "Nigerian", "Russian", "Italian", "Irish",
                 "Brazilian", "Japanese", "German", "French", "Israeli", "Palestinian", "Pakistani", "Korean",
                 "Vietnamese", "Turkish", "Egyptian", "Canadian", "British", "Polish", "Syrian", "Afghan", "Iraqi",
                 "Cuban", "Kenyan")
RELIGIONS = ("Christian", "Muslim", "Jewish", "Hindu", "Buddhist", "Sikh", "Catholic", "Protestant", "Mormon",
             "atheist", "agnostic", "Baptist")
RACES = ("Black", "white", "Asian", "Hispanic", "Latino", "Latina", "Arab", "Native American", "African American",
         "Indigenous", "Caucasian", "biracial")
ORIENTATIONS = ("gay", "straight", "lesbian", "bisexual", "queer", "heterosexual", "homosexual", "asexual",
                "pansexual")
JOBS = ("doctor", "teacher", "engineer", "nurse", "lawyer", "student", "driver", "chef", "accountant", "pilot",
        "writer", "farmer")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
VENUES = ("store", "library", "bank", "museum", "pharmacy", "post office", "gym", "office")
COLOURS = ("blue", "grey", "silver", "green", "red", "yellow")
STREETS = ("Main Street", "Oak Avenue", "Station Road", "Park Lane", "King Street")

# ---------------------------------------------------------------------------------------------- templates

NEGATED_POSITIVE = ("The {thing} is not {pos}.", "This {thing} was not {pos} at all.", "The {thing} isn't {pos}.",
                    "It is not {a_pos} {thing}.", "I don't {pv} this {thing}.", "I do not {pv} the {thing}.",
                    "The {thing} was never {pos}.", "I didn't {pv} the {thing} at all.",
                    "I would not call the {thing} {pos}.")
NEGATED_NEGATIVE = ("The {thing} is not {neg}.", "This {thing} was not {neg} at all.", "The {thing} isn't {neg}.",
                    "It is not {a_neg} {thing}.", "I don't {nv} this {thing}.", "I do not {nv} the {thing}.",
                    "The {thing} was never {neg}.", "I didn't {nv} the {thing} at all.", "{Thing}: not {neg} at all.")
NOW_NEGATIVE = ("I used to {pv} this {thing}, now I {nv} it.", "At first I {pv_past} the {thing}, but now I {nv} it.",
                "I {pv_past} this {thing} at first. Now I {nv} it.",
                "The {thing} used to be {pos}, but now it is {neg}.",
                "The {thing} was {pos} at first, now it is {neg}.")
NOW_POSITIVE = ("I used to {nv} this {thing}, now I {pv} it.", "At first I {nv_past} the {thing}, but now I {pv} it.",
                "I {nv_past} this {thing} at first. Now I {pv} it.",
                "The {thing} used to be {neg}, but now it is {pos}.",
                "The {thing} was {neg} at first, now it is {pos}.")
SHORT_POSITIVE = ("{Pos}.", "{Pos}!", "Very {pos}.", "Really {pos}.", "So {pos}!", "{Pos} {thing}.", "A {pos} {thing}.",
                  "What {a_pos} {thing}!", "{Pv} it!", "I {pv} it.")
SHORT_NEGATIVE = ("{Neg}.", "{Neg}!", "Very {neg}.", "Really {neg}.", "So {neg}!", "{Neg} {thing}.",
                  "A {neg} {thing}.", "What {a_neg} {thing}!", "{Nv} it!", "I {nv} it.")
NEUTRAL = ("The flight leaves at {hour} {ampm}.", "The {venue} opens at {hour} {ampm}.",
           "The train to {city} leaves at {hour} {ampm}.", "The package arrived on {day}.",
           "The meeting is on {day} at {hour} {ampm}.", "I bought the {item} on {day}.", "The {item} is {colour}.",
           "The box contains {number} items.", "My order number is {number}.", "The {venue} is on {street}.",
           "{name} called the office on {day}.", "We are flying to {city} on {day}.",
           "The {item} weighs {number} grams.", "The {venue} closes at {hour} {ampm} on {day}.",
           "The invoice was sent on {day}.", "The {item} comes in {colour} and {colour2}.")
WITH_NAME = ("{name} called the office on {day}.", "{name} ordered the {item} on {day}.",
             "{name} is flying to {city} next week.", "I gave the {item} to {name}.",
             "{name} will pick up the package at {hour} {ampm}.", "The meeting with {name} is on {day}.",
             "{name} works at the {venue}.")
WITH_CITY = ("{name} lives in {city}.", "The flight to {city} leaves at {hour} {ampm}.",
             "The package was shipped from {city}.", "The conference is in {city} this year.",
             "{name} is moving to {city} in {month}.")
WITH_COUNTRY = ("{name} was born in {country}.", "The {item} was made in {country}.",
                "We moved to {country} last year.", "The parcel is coming from {country}.")
WITH_NUMBER = ("The flight leaves at {n} {ampm}.", "The box contains {n} items.", "My order number is {n}.",
               "The room is on floor {n}.", "The {item} weighs {n} grams.", "The meeting lasts {n} minutes.",
               "The bus comes every {n} minutes.", "The {item} arrived {n} days after I ordered it.")
WITH_IDENTITY = ("{name} is {a_word} {job}.", "My neighbour is {word}.", "The new {job} is {word}.",
                 "I met {a_word} {job} at the station.", "{name} is {word}.", "The {job} who helped me is {word}.",
                 "We hired {a_word} {job} last {day}.")
SENTIMENT_BASE = ("The {thing} is {adj}.", "This {thing} was really {adj}.", "I {verb} this {thing}.",
                  "The {thing} was {adj} and the staff were {adj2}.", "We tried the {thing} and it was {adj}.",
                  "Honestly, the {thing} is {adj}.")
CONTRACTIONS = (("It is {adj}.", "It's {adj}."), ("The {thing} is not {adj}.", "The {thing} isn't {adj}."),
                ("I do not {verb} this {thing}.", "I don't {verb} this {thing}."),
                ("I am at the {venue}.", "I'm at the {venue}."), ("We are flying to {city} on {day}.",
                                                                 "We're flying to {city} on {day}."),
                ("They are at the {venue} until {hour} {ampm}.", "They're at the {venue} until {hour} {ampm}."),
                ("It will not arrive before {day}.", "It won't arrive before {day}."),
                ("I cannot find the {item}.", "I can't find the {item}."),
                ("I have ordered the {item}.", "I've ordered the {item}."),
                ("It was not {adj}.", "It wasn't {adj}."), ("I would {verb} this {thing} again.",
                                                              "I'd {verb} this {thing} again."),
                ("The {thing} is {adj}.", "The {thing}'s {adj}."), ("They have bought the {item}.",
                                                                    "They've bought the {item}."))
MONTHS = ("January", "March", "May", "July", "September", "November")


def article(word: str) -> str:
    """``a`` or ``an`` before ``word`` (vowel letters, except the sounds of "useless", "unique", "Europe")."""
    lower = word.lower()
    vowel = lower[:1] in "aeiou" and not lower.startswith(("use", "uni", "eu"))
    return f"{'an' if vowel else 'a'} {word}"


def _fill(template: str, **slots: str) -> str:
    """Fill a template; ``{Slot}`` is the capitalised value of ``slot``, ``{a_slot}`` it with its article."""
    values = dict(slots)
    for key, value in slots.items():
        values[key[:1].upper() + key[1:]] = value[:1].upper() + value[1:]
        values["a_" + key] = article(value)
    text = template.format(**values)
    return text[:1].upper() + text[1:]


# ------------------------------------------------------------------------------------------------ tests


@dataclass(frozen=True)
class Case:
    """One text and the reading it should get (one of :data:`EXPECTATIONS`)."""

    text: str
    expect: str


@dataclass(frozen=True)
class Pair:
    """Two texts that differ by one perturbation which must not change the sentiment."""

    original: str
    perturbed: str


@dataclass(frozen=True)
class BehaviourTest:
    """One row of the table: its cases, what it checks and the most failures the issue accepts (or None)."""

    name: str
    title: str
    cases: tuple[Case, ...] | tuple[Pair, ...]
    target: float | None = None

    @property
    def invariance(self) -> bool:
        return bool(self.cases) and isinstance(self.cases[0], Pair)

    def texts(self) -> list[str]:
        """Every text of the test, in case order (an invariance pair gives two)."""
        if self.invariance:
            return [t for pair in self.cases for t in (pair.original, pair.perturbed)]  # type: ignore[union-attr]
        return [case.text for case in self.cases]  # type: ignore[union-attr]


def _draw(rng: random.Random, make: Callable[[random.Random], object], count: int) -> list:
    """``count`` distinct results of ``make(rng)``, in the order drawn."""
    seen: dict[object, None] = {}
    for _ in range(count * 200):
        if len(seen) == count:
            break
        seen.setdefault(make(rng), None)
    if len(seen) < count:
        raise ValueError(f"the templates yield only {len(seen)} distinct cases, fewer than {count}")
    return list(seen)


def _common(rng: random.Random) -> dict[str, str]:
    """Random fillers of the neutral slots."""
    colour, colour2 = rng.sample(COLOURS, 2)
    return {"thing": rng.choice(THINGS), "item": rng.choice(ITEMS), "day": rng.choice(DAYS),
            "hour": str(rng.randint(1, 12)), "ampm": rng.choice(("am", "pm")), "venue": rng.choice(VENUES),
            "city": rng.choice(CITIES), "country": rng.choice(COUNTRIES), "name": rng.choice(NAMES),
            "street": rng.choice(STREETS), "colour": colour, "colour2": colour2, "number": str(rng.randint(2, 999)),
            "job": rng.choice(JOBS), "month": rng.choice(MONTHS)}


def _sentiment_slots(rng: random.Random) -> dict[str, str]:
    pv, pv_past = rng.choice(POSITIVE_VERBS)
    nv, nv_past = rng.choice(NEGATIVE_VERBS)
    return {**_common(rng), "pos": rng.choice(POSITIVE_WORDS), "neg": rng.choice(NEGATIVE_WORDS), "pv": pv,
            "pv_past": pv_past, "nv": nv, "nv_past": nv_past}


def _expect_cases(rng: random.Random, templates: Sequence[str], expect: str, count: int) -> list[Case]:
    return _draw(rng, lambda r: Case(_fill(r.choice(templates), **_sentiment_slots(r)), expect), count)


def _balanced(rng: random.Random, groups: Sequence[tuple[Sequence[str], str]], count: int,
              fixed: Sequence[Case] = ()) -> tuple[Case, ...]:
    """``count`` cases: ``fixed`` first, the rest drawn from each (templates, expectation) group in equal
    shares, then shuffled together."""
    rest = count - len(fixed)
    cases: list[Case] = list(fixed)
    for k, (templates, expect) in enumerate(groups):
        share = rest // len(groups) + (1 if k < rest % len(groups) else 0)
        drawn = [c for c in _draw(rng, lambda r, t=templates, e=expect: Case(_fill(r.choice(t), **_sentiment_slots(r)),
                                                                               e), share + len(fixed))
                 if c not in cases][:share]
        cases += drawn
    rng.shuffle(cases)
    return tuple(cases)


def _swap_pairs(rng: random.Random, templates: Sequence[str], slot: str, values: Sequence[str],
                count: int) -> tuple[Pair, ...]:
    """Pairs of one template with ``slot`` filled by two different ``values`` (the other slots the same)."""

    def make(r: random.Random) -> Pair:
        template, slots = r.choice(templates), _common(r)
        first, second = r.sample(list(values), 2)
        return Pair(_fill(template, **{**slots, slot: first}), _fill(template, **{**slots, slot: second}))

    return tuple(_draw(rng, make, count))


def _base_sentence(rng: random.Random) -> str:
    """Half sentiment sentences (either polarity), half neutral statements."""
    slots = _common(rng)
    if rng.random() < 0.5:
        return _fill(rng.choice(NEUTRAL), **slots)
    positive = rng.random() < 0.5
    words, verbs = (POSITIVE_WORDS, POSITIVE_VERBS) if positive else (NEGATIVE_WORDS, NEGATIVE_VERBS)
    adj, adj2 = rng.sample(words, 2)
    return _fill(rng.choice(SENTIMENT_BASE), **slots, adj=adj, adj2=adj2, verb=rng.choice(verbs)[0])


def typo(text: str, rng: random.Random) -> str:
    """Swap two adjacent, different letters inside one word of at least four letters."""
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if sum(c.isalpha() for c in w) >= 4]
    i = rng.choice(candidates)
    word = words[i]
    spots = [j for j in range(len(word) - 1) if word[j].isalpha() and word[j + 1].isalpha() and word[j] != word[j + 1]]
    j = rng.choice(spots)
    words[i] = word[:j] + word[j + 1] + word[j] + word[j + 2:]
    return " ".join(words)


def punctuation(text: str, rng: random.Random) -> str:
    """Drop the final mark, swap ``.`` and ``!``, or end with ``...``."""
    stem = text.rstrip(".!")
    end = text[len(stem):]
    options = ["", "..." if end != "..." else ".", "!" if end != "!" else "."]
    return stem + rng.choice(options)


def _perturbed_pairs(rng: random.Random, perturb: Callable[[str, random.Random], str], count: int) -> tuple[Pair, ...]:
    def make(r: random.Random) -> Pair:
        base = _base_sentence(r)
        return Pair(base, perturb(base, r))

    return tuple(_draw(rng, make, count))


def _contraction_pairs(rng: random.Random, count: int) -> tuple[Pair, ...]:
    def make(r: random.Random) -> Pair:
        full, short = r.choice(CONTRACTIONS)
        positive = r.random() < 0.5
        words, verbs = (POSITIVE_WORDS, POSITIVE_VERBS) if positive else (NEGATIVE_WORDS, NEGATIVE_VERBS)
        slots = {**_common(r), "adj": r.choice(words), "verb": r.choice(verbs)[0]}
        return Pair(_fill(full, **slots), _fill(short, **slots))

    return tuple(_draw(rng, make, count))


TESTS = (
    ("negated_positive", 'negation of positive words ("not good" is negative)', 0.20),
    ("negated_negative", 'negation of negative words ("not bad" is not negative)', 0.20),
    ("opinion_change", 'change of opinion ("I used to like it, now I hate it", both ways)', None),
    ("short", "single sentiment words and short phrases", None),
    ("inv_name", "invariance: person's name", 0.05),
    ("inv_place", "invariance: place (city or country)", 0.05),
    ("inv_number", "invariance: number", 0.05),
    ("inv_nationality", "invariance: nationality", 0.05),
    ("inv_religion", "invariance: religion", 0.05),
    ("inv_race", "invariance: race or ethnicity", 0.05),
    ("inv_orientation", "invariance: sexual orientation", 0.05),
    ("inv_typo", "invariance: a typo (two adjacent letters swapped)", 0.05),
    ("inv_punctuation", "invariance: final punctuation", 0.05),
    ("inv_contraction", "invariance: a contraction (is not / isn't)", 0.05),
    ("neutral", "neutral statements score in [1/3, 2/3]", 0.40),
)
"""(name, title, target: the most failures the issue accepts) of each test, in table order. The neutral
test's target: at least 60 % of the statements in [1/3, 2/3], so at most 40 % outside."""


def build_suite(size: int = SIZE, seed: int = SEED) -> list[BehaviourTest]:
    """Every test with ``size`` cases, in :data:`TESTS` order; the same ``size`` and ``seed`` give the same cases."""

    def rng(name: str) -> random.Random:
        return random.Random(f"{seed}:{name}")

    fixed = [Case(t, "positive") for t in POSITIVE_PHRASES] + [Case(t, "negative") for t in NEGATIVE_PHRASES]
    identity = WITH_IDENTITY
    cases: dict[str, tuple] = {
        "negated_positive": tuple(_expect_cases(rng("negated_positive"), NEGATED_POSITIVE, "negative", size)),
        "negated_negative": tuple(_expect_cases(rng("negated_negative"), NEGATED_NEGATIVE, "not_negative", size)),
        "opinion_change": _balanced(rng("opinion_change"), ((NOW_NEGATIVE, "negative"), (NOW_POSITIVE, "positive")),
                                    size),
        "short": _balanced(rng("short"), ((SHORT_POSITIVE, "positive"), (SHORT_NEGATIVE, "negative")), size,
                           fixed[:size]),
        "inv_name": _swap_pairs(rng("inv_name"), WITH_NAME, "name", NAMES, size),
        "inv_place": _place_pairs(rng("inv_place"), size),
        "inv_number": _swap_pairs(rng("inv_number"), WITH_NUMBER, "n", [str(n) for n in range(1, 13)], size),
        "inv_nationality": _swap_pairs(rng("inv_nationality"), identity, "word", NATIONALITIES, size),
        "inv_religion": _swap_pairs(rng("inv_religion"), identity, "word", RELIGIONS, size),
        "inv_race": _swap_pairs(rng("inv_race"), identity, "word", RACES, size),
        "inv_orientation": _swap_pairs(rng("inv_orientation"), identity, "word", ORIENTATIONS, size),
        "inv_typo": _perturbed_pairs(rng("inv_typo"), typo, size),
        "inv_punctuation": _perturbed_pairs(rng("inv_punctuation"), punctuation, size),
        "inv_contraction": _contraction_pairs(rng("inv_contraction"), size),
        "neutral": tuple(_draw(rng("neutral"), lambda r: Case(_fill(r.choice(NEUTRAL), **_common(r)), "neutral"),
                               size)),
    }
    return [BehaviourTest(name, title, cases[name], target) for name, title, target in TESTS]


def _place_pairs(rng: random.Random, count: int) -> tuple[Pair, ...]:
    """Half the pairs swap a city, half a country."""
    cities = _swap_pairs(rng, WITH_CITY, "city", CITIES, count - count // 2)
    countries = _swap_pairs(rng, WITH_COUNTRY, "country", COUNTRIES, count // 2)
    pairs = list(cities + countries)
    rng.shuffle(pairs)
    return tuple(pairs)


def sample(suite: Sequence[BehaviourTest], count: int | None) -> list[BehaviourTest]:
    """The first ``count`` cases of each test (the cases are already in random order); all when None."""
    return [test if count is None else replace(test, cases=test.cases[:count]) for test in suite]


# ------------------------------------------------------------------------------------------------ metrics


def reading(score: float) -> str:
    """Three-way reading of P(positive): negative below 1/3, neutral in [1/3, 2/3], positive above 2/3."""
    if score < NEUTRAL_LOW:
        return "negative"
    return "positive" if score > NEUTRAL_HIGH else "neutral"


def case_fails(expect: str, score: float, threshold: float) -> bool:
    """Whether a score misses the expected reading (see the module's docstring)."""
    if expect == "negative":
        return score >= threshold
    if expect == "positive":
        return score < threshold
    if expect == "not_negative":
        return score < NEUTRAL_LOW
    if expect == "neutral":
        return not NEUTRAL_LOW <= score <= NEUTRAL_HIGH
    raise ValueError(f"unknown expectation {expect!r}")


@dataclass(frozen=True)
class Outcome:
    """A test's result for one model: failures out of cases, and whether the issue's target is met."""

    test: str
    failures: int
    cases: int
    target: float | None

    @property
    def rate(self) -> float:
        return self.failures / self.cases if self.cases else 0.0

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.rate <= self.target


def outcome(test: BehaviourTest, scores: Sequence[float], threshold: float) -> Outcome:
    """Score ``test`` given the scores of :meth:`BehaviourTest.texts` (same order)."""
    s = [float(x) for x in scores]
    if len(s) != len(test.texts()):
        raise ValueError(f"{test.name}: {len(s)} scores for {len(test.texts())} texts")
    if test.invariance:
        failures = sum(reading(a) != reading(b) for a, b in zip(s[0::2], s[1::2]))
    else:
        failures = sum(case_fails(case.expect, x, threshold) for case, x in zip(test.cases, s))  # type: ignore[union-attr]
    return Outcome(test.name, failures, len(test.cases), test.target)


def run_suite(suite: Sequence[BehaviourTest], score: Callable[[Sequence[str]], np.ndarray],
              threshold: float) -> list[Outcome]:
    """Score every distinct text of the suite once with ``score`` (texts -> P(positive)); one outcome per test."""
    unique = list(dict.fromkeys(t for test in suite for t in test.texts()))
    values = np.asarray(score(unique), dtype=np.float64)
    if values.shape != (len(unique),):
        raise ValueError(f"the scorer returned shape {values.shape} for {len(unique)} texts")
    by_text = dict(zip(unique, values.tolist()))
    return [outcome(test, [by_text[t] for t in test.texts()], threshold) for test in suite]
