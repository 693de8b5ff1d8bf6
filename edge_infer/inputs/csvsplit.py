"""Where a CSV record ends: at the first newline outside a quoted field, found without holding the record.

The rules are the csv module's (default dialect): a field is quoted when its first character is ``"``;
inside it ``""`` is a quote and a lone ``"`` closes it; a ``"`` anywhere else is an ordinary character.
Scanning the bytes is exact for UTF-8 text, whatever the delimiter, because no byte of a multi-byte
character is ``"``, ``\\n`` or an ASCII delimiter.
"""

from __future__ import annotations

_PLAIN, _QUOTED, _QUOTE_SEEN = range(3)  # outside quotes; inside a quoted field; just after a quote inside one
_QUOTE = ord('"')


class RecordEnds:
    """A ``find_end`` for :func:`~edge_infer.inputs.lines.physical_lines` that ends lines at CSV record ends.

    It is fed every byte once, in order, so it stays in step through a record too long to be held, and
    reading resumes after that record's real end. ``lines`` counts the newlines seen so far (a record
    found starts on line ``lines + 1``); ``open_quote`` is true while a quoted field is open, which at the
    end of the input means its last record has no closing quote.
    """

    def __init__(self, delimiter: str) -> None:
        self.delimiter = delimiter.encode("utf-8")
        self.lines = 0
        self._state = _PLAIN
        self._before = self.delimiter  # the bytes just before the scan point; a delimiter: a field starts there

    @property
    def open_quote(self) -> bool:
        return self._state == _QUOTED

    def __call__(self, buf: bytearray, start: int) -> int:
        """The index of the newline that ends the record, searching ``buf`` from ``start``, or -1."""
        i, end = start, len(buf)
        if self._state == _QUOTE_SEEN:
            if i >= end:
                return -1
            if buf[i] == _QUOTE:  # "" inside a quoted field
                self._state, i = _QUOTED, i + 1
            else:
                self._state, self._before = _PLAIN, b'"'
        while True:
            if self._state == _QUOTED:
                q = buf.find(b'"', i)
                self.lines += buf.count(b"\n", i, end if q < 0 else q)
                if q < 0:
                    return -1
                if q + 1 == end:
                    self._state = _QUOTE_SEEN
                    return -1
                if buf[q + 1] == _QUOTE:
                    i = q + 2
                    continue
                self._state, self._before, i = _PLAIN, b'"', q + 1
            nl = buf.find(b"\n", i)
            q = buf.find(b'"', i, end if nl < 0 else nl)
            if q < 0:
                if nl >= 0:
                    self.lines += 1
                    self._before = self.delimiter
                    return nl
                self._before = (self._before + bytes(buf[max(i, end - len(self.delimiter)):end]))[-len(self.delimiter):]
                return -1
            if self._field_starts_at(buf, i, q):
                self._state = _QUOTED
            else:
                self._before = b'"'
            i = q + 1

    def _field_starts_at(self, buf: bytearray, i: int, q: int) -> bool:
        """Whether the quote at ``q`` opens a field: the delimiter (or the record's start) comes just before it."""
        k = len(self.delimiter)
        window = bytes(buf[q - k:q]) if q - i >= k else (self._before + bytes(buf[i:q]))[-k:]
        return window == self.delimiter
