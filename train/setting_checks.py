"""Value checks shared by the training and pretraining settings: each returns None or the one-line problem."""

from __future__ import annotations

import math
from typing import Any


def option(name: str) -> str:
    """The command-line option of a settings field (``max_len`` -> ``--max-len``)."""
    return "--" + name.replace("_", "-")


def at_least(settings: Any, name: str, low: int, why: str = "") -> str | None:
    """None if the field ``name`` of ``settings`` is an integer (not a bool) of at least ``low``, else the problem."""
    value = getattr(settings, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        return f"{option(name)} must be an integer of at least {low}{why}, not {value!r}"
    return None


def number(settings: Any, name: str, low: float, high: float = math.inf, *, low_open: bool = False,
           high_open: bool = True) -> str | None:
    """None if ``low <= value < high`` (bounds open or closed as given) and finite, else the problem."""
    value = getattr(settings, name)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if ok:
        return None
    if math.isinf(high):
        interval = f"{'greater than' if low_open else 'at least'} {low:g}"
    else:
        interval = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    return f"{option(name)} must be a finite number {interval}, not {value!r}"
