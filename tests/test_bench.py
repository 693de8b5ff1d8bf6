"""The benchmark's own text handling (bench/compare.py): what it times must be what it claims to time."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
compare = pytest.importorskip("compare")

from edge_infer.tokenizer import tokenize  # noqa: E402


def test_text_of_tokens_has_exactly_that_many_tokens_when_classified():
    # Normalization decodes one level of HTML entities per pass: normalized twice, this review has other
    # tokens ("b") than the runtime sees ("lt", "b", "gt").
    double_escaped = "&amp;lt;b&amp;gt; great &amp;lt;b&amp;gt; film " * 20
    for count in (3, 17, 60):
        text = compare.text_of_tokens([double_escaped], count)
        assert len(tokenize(text)) == count
        assert tokenize(text) == tokenize(double_escaped)[:count]


class _Tokenizer:
    max_len, padding = 8, "post"

    def ids(self, text: str) -> list[int]:
        self.calls = getattr(self, "calls", 0) + 1
        return [len(word) for word in text.split()][: self.max_len]


def test_keras_side_tokenizes_once_and_sorts_by_tokens():
    side = compare.KerasSide.__new__(compare.KerasSide)  # no TensorFlow: only the batching is under test
    side.tokenizer, side.dynamic = _Tokenizer(), True
    seen: list[tuple[int, int]] = []

    class _Result:
        def __init__(self, x):
            self.x = x

        def numpy(self):
            return self.x[:, :1].astype(float)

    def function(x):
        seen.append(x.shape)
        return _Result(x)

    side.function = function
    # by characters, "aaaaaaaaaaaaaaaaaaaa" (1 token) would sort after "a b c d e" (5 tokens)
    texts = ["a b c d e", "aaaaaaaaaaaaaaaaaaaa", "bb cc", "dddd e f g h i j"]
    out = side.function_all(texts, batch_size=2)
    assert side.tokenizer.calls == len(texts)
    assert [width for _, width in seen] == [2, 7]  # 1 and 2 tokens, then 5 and 7
    assert list(out) == [1.0, 20.0, 2.0, 4.0]  # first id of each text, in input order
