"""Tests of the project's one tokenizer (edge_infer/tokenizer.py), on sentences written for these tests."""

from __future__ import annotations

import hashlib
import random
import unicodedata

import numpy as np
import pytest

from edge_infer.tokenizer import (
    OOV_ID,
    OOV_TOKEN,
    PAD_ID,
    PAD_TOKEN,
    Tokenizer,
    Vocabulary,
    build_vocabulary,
    normalize,
    pad_batch,
    tokenize,
    truncate,
)

# --------------------------------------------------------------------------- normalize / tokenize


def test_br_tags_removed():
    assert tokenize("The plot was thin." + "<br />" * 2 + "The cast was great.") == [
        "the", "plot", "was", "thin", "the", "cast", "was", "great",
    ]
    assert "<" not in normalize("one<br />two") and "br" not in tokenize("one<br/>two<BR>three")


def test_tags_do_not_glue_words_together():
    assert tokenize("end<br />start") == ["end", "start"]


def test_html_entities_decoded():
    assert normalize("Tom &amp; Jerry") == "tom & jerry"
    assert normalize("&quot;Brilliant&quot; he said") == '"brilliant" he said'
    assert tokenize("&quot;Brilliant&quot; &amp; bold") == ["brilliant", "bold"]


def test_case_folded():
    assert tokenize("LOUD Quiet MiXeD") == ["loud", "quiet", "mixed"]
    # casefold, not just lower: German sharp s folds to "ss"
    assert tokenize("STRASSE straße") == ["strasse", "strasse"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("I didn't like it", ["i", "did", "not", "like", "it"]),
        ("I didn\u2019t like it", ["i", "did", "not", "like", "it"]),  # right single quote
        ("I didn\u2018t like it", ["i", "did", "not", "like", "it"]),  # left single quote
        ("I didn`t like it", ["i", "did", "not", "like", "it"]),  # backtick
        ("They won't return", ["they", "will", "not", "return"]),
        ("They WON'T return", ["they", "will", "not", "return"]),
        ("I'm bored", ["i", "am", "bored"]),
        ("I\u2019m bored", ["i", "am", "bored"]),
        ("You can't win", ["you", "can", "not", "win"]),
        ("We're here and they've left", ["we", "are", "here", "and", "they", "have", "left"]),
        ("She'll say he'd go", ["she", "will", "say", "he", "would", "go"]),
        ("The film's ending", ["the", "film", "ending"]),
        ("It ain't over", ["it", "is", "not", "over"]),
        ("Swon't and xcan't", ["swo", "not", "and", "xca", "not"]),  # whole words only, else plain n't
        ("won'tx can'ts it'sy", ["won", "tx", "can", "ts", "it", "sy"]),  # a suffix must end the word
        ("'s 't n't", ["t", "not"]),  # a lone 's is dropped like any other
        ("Ｗｏｎ’t stop", ["will", "not", "stop"]),  # full-width letters and a curly apostrophe
    ],
)
def test_contractions_expanded(text, expected):
    assert tokenize(text) == expected


def test_punctuation_dropped_except_exclamation_and_question():
    text = "Wow, what a film... Really?! (Yes); great: 10/10 - \"fine\" #1."
    assert tokenize(text) == [
        "wow", "what", "a", "film", "really", "?", "!", "yes", "great", "10", "10", "fine", "1",
    ]


def test_underscore_is_not_part_of_a_word():
    assert tokenize("snake_case") == ["snake", "case"]


def test_full_width_characters_via_nfkc():
    # Full-width letters, digits and punctuation become their ASCII forms.
    assert tokenize("\uff27\uff52\uff45\uff41\uff54 \uff11\uff10\uff01") == ["great", "10", "!"]
    assert tokenize("\uff27\uff52\uff45\uff41\uff54\uff1f") == tokenize("Great?")


def test_empty_and_whitespace_text():
    assert tokenize("") == []
    assert tokenize("   \n\t ") == []
    assert tokenize("<br />" * 2 + "...") == []


def test_nfc_and_nfd_give_identical_ids():
    composed = unicodedata.normalize("NFC", "Un café très agréable")
    decomposed = unicodedata.normalize("NFD", "Un café très agréable")
    assert composed != decomposed  # the inputs really differ
    assert tokenize(composed) == tokenize(decomposed) == ["un", "café", "très", "agréable"]
    vocab = build_vocabulary([composed], size=10)
    tok = Tokenizer(vocab, max_len=8)
    assert tok.ids(composed) == tok.ids(decomposed)
    assert OOV_ID not in tok.ids(decomposed)
    np.testing.assert_array_equal(tok.encode([composed]), tok.encode([decomposed]))


# --------------------------------------------------------------------------- build_vocabulary

CORPUS = [
    "the movie was good good good",
    "the acting was bad",
    "the ending was good",
    "zebra apple",
]
# counts: the 3, was 3, good 4, movie 1, acting 1, bad 1, ending 1, zebra 1, apple 1


def test_reserved_ids():
    vocab = build_vocabulary(CORPUS, size=5)
    assert vocab.tokens[PAD_ID] == PAD_TOKEN == "[PAD]"
    assert vocab.tokens[OOV_ID] == OOV_TOKEN == "[UNK]"
    assert (PAD_ID, OOV_ID) == (0, 1)


def test_most_frequent_first_ties_by_token():
    vocab = build_vocabulary(CORPUS, size=100)
    assert vocab.tokens == (
        "[PAD]", "[UNK]",
        "good",  # 4
        "the", "was",  # 3 each, in code-point order
        "acting", "apple", "bad", "ending", "movie", "zebra",  # 1 each, in code-point order
    )


def test_size_respected():
    for size in (3, 4, 5, 7):
        vocab = build_vocabulary(CORPUS, size=size)
        assert len(vocab) == size
    assert build_vocabulary(CORPUS, size=5).tokens == ("[PAD]", "[UNK]", "good", "the", "was")
    # a size larger than the number of distinct tokens keeps them all, no more
    assert len(build_vocabulary(CORPUS, size=1000)) == 2 + 9


def test_size_below_three_rejected():
    with pytest.raises(ValueError):
        build_vocabulary(CORPUS, size=2)


def test_build_is_order_independent():
    texts = [f"word{i % 7} common {'rare' if i == 3 else ''} tie{i % 3}" for i in range(40)]
    reference = build_vocabulary(texts, size=12)
    rng = random.Random(1234)
    for _ in range(5):
        shuffled = texts[:]
        rng.shuffle(shuffled)
        again = build_vocabulary(shuffled, size=12)
        assert again.tokens == reference.tokens
        assert again.sha256 == reference.sha256


def test_vocabulary_rejects_missing_reserved_tokens():
    with pytest.raises(ValueError):
        Vocabulary(("[UNK]", "[PAD]", "x"))
    with pytest.raises(ValueError):
        Vocabulary(("[PAD]",))


# --------------------------------------------------------------------------- save / load


def test_save_load_round_trip(tmp_path):
    vocab = build_vocabulary(CORPUS + ["café naïve \u00fcber"], size=50)
    path = tmp_path / "vocab.txt"
    sha = vocab.save(path)
    assert sha == vocab.sha256
    assert sha == hashlib.sha256(path.read_bytes()).hexdigest()
    assert path.read_text(encoding="utf-8").splitlines() == list(vocab.tokens)
    loaded = Vocabulary.load(path)
    assert loaded == vocab
    assert loaded.tokens == vocab.tokens
    assert loaded.sha256 == sha
    assert loaded.ids(["good", "café", "unseen"]) == vocab.ids(["good", "café", "unseen"])


# --------------------------------------------------------------------------- ids / OOV / empty


def test_out_of_vocabulary_words_map_to_one():
    vocab = build_vocabulary(CORPUS, size=5)  # good, the, was
    tok = Tokenizer(vocab, max_len=10)
    good, the, was = vocab.ids(["good", "the", "was"])
    assert (good, the, was) == (2, 3, 4)
    assert tok.ids("The popcorn was good") == [the, OOV_ID, was, good]
    assert tok.ids("completely unknown words") == [OOV_ID, OOV_ID, OOV_ID]


def test_empty_text_gives_no_ids_and_zero_row():
    tok = Tokenizer(build_vocabulary(CORPUS, size=10), max_len=6)
    assert tok.ids("") == []
    out = tok.encode(["", "good movie"])
    assert out.shape == (2, 6)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out[0], np.zeros(6, dtype=np.int32))
    assert out[1].any()


def test_encode_length_override():
    tok = Tokenizer(build_vocabulary(CORPUS, size=10), max_len=4)
    assert tok.encode(["good"], length=9).shape == (1, 9)
    assert tok.encode([]).shape == (0, 4)


# --------------------------------------------------------------------------- truncation / padding


def _numbered_tokenizer(max_len, **kwargs):
    """A vocabulary where word 'wN' has id N + 2, so ids are easy to read."""
    words = [f"w{i}" for i in range(20)]
    # make the frequencies strictly decreasing so the ids follow word order
    texts = [" ".join(words[: 20 - i]) for i in range(20)]
    vocab = build_vocabulary(texts, size=22)
    assert vocab.ids(words) == list(range(2, 22))
    return Tokenizer(vocab, max_len=max_len, **kwargs)


def test_truncating_pre_keeps_last_ids():
    tok = _numbered_tokenizer(4, truncating="pre")
    assert tok.ids("w0 w1 w2 w3 w4 w5 w6") == [5, 6, 7, 8]  # w3..w6


def test_truncating_post_keeps_first_ids():
    tok = _numbered_tokenizer(4, truncating="post")
    assert tok.ids("w0 w1 w2 w3 w4 w5 w6") == [2, 3, 4, 5]


def test_default_settings_are_post_padding_pre_truncating():
    tok = _numbered_tokenizer(3)
    assert (tok.padding, tok.truncating) == ("post", "pre")
    np.testing.assert_array_equal(tok.encode(["w0 w1 w2 w3 w4", "w0"]), [[4, 5, 6], [2, 0, 0]])


def test_short_text_is_not_truncated():
    tok = _numbered_tokenizer(5, truncating="post")
    assert tok.ids("w3 w4") == [5, 6]


def test_padding_pre_puts_zeros_at_start():
    tok = _numbered_tokenizer(5, padding="pre")
    np.testing.assert_array_equal(tok.encode(["w0 w1"]), [[0, 0, 0, 2, 3]])


def test_padding_post_puts_zeros_at_end():
    tok = _numbered_tokenizer(5, padding="post")
    np.testing.assert_array_equal(tok.encode(["w0 w1"]), [[2, 3, 0, 0, 0]])


def test_truncate_and_pad_together():
    tok = _numbered_tokenizer(3, padding="pre", truncating="post")
    np.testing.assert_array_equal(tok.encode(["w0 w1 w2 w3", "w9"]), [[2, 3, 4], [0, 0, 11]])


@pytest.mark.parametrize("kwargs", [{"padding": "left"}, {"truncating": "end"}, {"padding": ""}])
def test_invalid_side_rejected(kwargs):
    vocab = build_vocabulary(CORPUS, size=5)
    with pytest.raises(ValueError):
        Tokenizer(vocab, max_len=4, **kwargs)


def test_non_positive_max_len_rejected():
    vocab = build_vocabulary(CORPUS, size=5)
    with pytest.raises(ValueError):
        Tokenizer(vocab, max_len=0)


def test_low_level_truncate_and_pad():
    assert truncate([1, 2, 3, 4, 5], 2, "pre") == [4, 5]
    assert truncate([1, 2, 3, 4, 5], 2, "post") == [1, 2]
    assert truncate([1, 2], 5, "pre") == [1, 2]
    np.testing.assert_array_equal(pad_batch([[7, 8], []], 3, "pre"), [[0, 7, 8], [0, 0, 0]])
    with pytest.raises(ValueError):
        pad_batch([[1, 2, 3, 4]], 3, "post")


def test_escaped_and_bare_angle_brackets_are_text_not_tags():
    from edge_infer.tokenizer import tokenize

    assert tokenize("I &lt;3 this film, 5 &gt; 4 stars") == ["i", "3", "this", "film", "5", "4", "stars"]
    assert tokenize("a < b and c > d") == ["a", "b", "and", "c", "d"]
    assert tokenize("great<br /><br/>fun<i>really</i>") == ["great", "fun", "really"]


def test_numeric_entity_for_a_full_width_letter_folds_like_the_letter():
    from edge_infer.tokenizer import tokenize

    assert tokenize("&#65313;BC") == tokenize("\uff21BC") == ["abc"]
