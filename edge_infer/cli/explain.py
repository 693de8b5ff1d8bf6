"""``edge-infer explain``: which words drove a prediction, as coloured text, JSON or one HTML file."""

from __future__ import annotations

import html
import json
import os
import re
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from edge_infer import exit_codes
from edge_infer.cli.common import EXIT_CODES_HELP, OutputClosed, app, err
from edge_infer.cli.options import Int8Option, ModelOption, ThreadsOption, display_name, load_classifier, output_path

if TYPE_CHECKING:
    from edge_infer.classifier import SentimentClassifier
    from edge_infer.explain import Explanation, Word

FAINT = 0.1
"""Words whose |contribution| is below this share of the text's largest are left uncoloured."""
STRONG = 0.5
"""... and those at or above it are bold (text) or deeply shaded (html)."""


class ExplainFormat(str, Enum):
    text = "text"
    json = "json"
    html = "html"


_FORMAT_HELP = ("text: the prediction, then the words with the largest contributions (in a terminal, the text "
                "first, each word green when it speaks for the label and red against; no colours with NO_COLOR "
                "or when not a terminal); json: the prediction and every word's span, token and contribution; "
                "html: one self-contained page with the words shaded.")


@app.command(epilog=EXIT_CODES_HELP)
def explain(
    source: Annotated[str, typer.Argument(
        metavar="TEXT|FILE", show_default=False,
        help="The text to explain, or the path of a file holding it ('-': standard input). An argument that "
             "is not an existing path is the text itself.")],
    fmt: Annotated[ExplainFormat, typer.Option("--format", help=_FORMAT_HELP)] = ExplainFormat.text,
    label: Annotated[str | None, typer.Option("--label", metavar="LABEL", help="Explain this label's probability "
                                              "(default: the predicted label).")] = None,
    window: Annotated[int, typer.Option("--window", metavar="N", min=1, max=3, help="Leave out N consecutive "
                                        "words at a time, 1 to 3; a word gets the mean of its windows.")] = 1,
    top: Annotated[int, typer.Option("--top", metavar="N", min=0, help="text: list the N words with the largest "
                                     "contributions (0: all).")] = 10,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", metavar="N", min=1, help="Refuse a text of "
                                                   "which the model reads more tokens (the cost grows with the "
                                                   "square of that count).")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", metavar="FILE", help="Write to FILE (a new "
                                                "name or a regular file, replaced whole) instead of standard "
                                                "output.")] = None,
    model: ModelOption = None,
    int8: Int8Option = False,
    threads: ThreadsOption = None,
) -> None:
    """Explain the prediction for one text: how much each word moves the label's probability.

    Each word the model reads is left out in turn (all variants in one batch through the model's own
    session) and its contribution is the drop in the label's probability: positive speaks for the label,
    negative against it. Words past the model's max_len are listed as not seen. Offsets in the JSON are
    character (code point) offsets into the text as read. A file is read as `edge-infer predict` reads it
    (a very long one: the end the model keeps). A text that cannot be read or explained (empty, not UTF-8,
    over --max-tokens) gets one line on standard error and exit code 1.
    """
    target = output_path(output, "'--output'") if output is not None else None
    clf = load_classifier(model, int8, threads)
    if label is not None and label not in clf.labels:
        raise typer.BadParameter(f"{label!r} is not a label of this model ({', '.join(clf.labels)})",
                                 param_hint="'--label'")
    name, text = _read(source, clf)
    try:
        explanation = clf.explain(text, label=label, max_tokens=max_tokens, window=window)
    except ValueError as exc:
        err(f"{name}: {exc}")
        raise typer.Exit(exit_codes.INPUT_FAILED) from None
    model_name = f"{clf.manifest.name} ({'int8' if clf.quantized else 'fp32'})"
    if fmt is ExplainFormat.json:
        rendered = json.dumps(explanation.to_dict(), ensure_ascii=False, indent=2) + "\n"
    elif fmt is ExplainFormat.html:
        rendered = render_html(explanation, text, model_name)
    else:
        colour = target is None and sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        rendered = render_text(explanation, text, top=top, colour=colour, max_len=clf.max_len)
    if target is not None:
        from edge_infer.storage import atomic_write_text

        atomic_write_text(target, rendered)
        return
    try:
        sys.stdout.write(rendered)
        sys.stdout.flush()
    except BrokenPipeError:
        raise OutputClosed from None


def _read(source: str, clf: SentimentClassifier) -> tuple[str, str]:
    """``(name, text)``: standard input, a file (read as ``predict`` reads it) or the argument itself."""
    from edge_infer.inputs.reading import InputError, read_stdin, read_text_file

    budget, keep = clf.byte_budget, clf.keep
    try:
        if source == "-":
            return "-", read_stdin(budget, keep)
        if _is_path(source):
            return display_name(source), read_text_file(source, budget, keep)
    except InputError as exc:
        err(f"{display_name(exc.name or source)}: {exc.reason}")
        raise typer.Exit(exit_codes.INPUT_FAILED) from None
    if any("\udc80" <= c <= "\udcff" for c in source):
        err("TEXT: not valid UTF-8")
        raise typer.Exit(exit_codes.INPUT_FAILED)
    return "TEXT", source


def _is_path(source: str) -> bool:
    if not source.strip():  # Path("") is the current folder
        return False
    try:
        path = Path(source)
        return path.exists() or path.is_symlink()
    except (OSError, ValueError):  # a long text is "File name too long"; a NUL byte is no path either
        return False


# ------------------------------------------------------------------------------------------- rendering


def _strength(word: Word, largest: float) -> float:
    return abs(word.contribution) / largest if largest > 0 else 0.0


def _largest(explanation: Explanation) -> float:
    return max((abs(w.contribution) for w in explanation.words if w.seen), default=0.0)


def _pieces(explanation: Explanation, text: str) -> list[tuple[str, Word | None]]:
    """The text cut at the words' spans: ``(piece, word or None)``; a span that overlaps the one before
    (e.g. "½": two tokens) is shown once, with its first word."""
    out: list[tuple[str, Word | None]] = []
    at = 0
    for word in explanation.words:
        if word.start < at:
            continue
        out += [(text[at:word.start], None), (text[word.start:word.end], word)]
        at = word.end
    out.append((text[at:], None))
    return [(piece, word) for piece, word in out if piece]


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def _terminal_safe(text: str) -> str:
    """No escape sequences from the input reach the terminal: control characters (not newline or tab) escaped."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def signed(value: float) -> str:
    """A contribution for people: 4 decimals, or 2 significant digits when it is that small (saturated texts)."""
    return f"{value:+.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:+.1e}"


def _header(explanation: Explanation) -> str:
    p = explanation.prediction
    return (f"{p.label} {p.score:.4f}  (per word: the drop in P({explanation.label}) = "
            f"{explanation.probability:.4f} when it is left out)")


def render_text(explanation: Explanation, text: str, *, top: int, colour: bool, max_len: int) -> str:
    """The text format: a header, the coloured text (``colour`` only), the largest contributions."""
    lines = [_header(explanation)]
    largest = _largest(explanation)
    if colour:
        shown = []
        for piece, word in _pieces(explanation, text):
            piece = _terminal_safe(piece)
            strength = _strength(word, largest) if word is not None else 0.0
            if word is None or (word.seen and strength < FAINT):
                shown.append(piece)
            elif not word.seen:
                shown.append(f"\x1b[2m{piece}\x1b[0m")
            else:
                bold = "1;" if strength >= STRONG else ""
                shown.append(f"\x1b[{bold}{32 if word.contribution > 0 else 31}m{piece}\x1b[0m")
        lines.append("".join(shown).rstrip("\n"))
    ranked = explanation.top(top or None)
    width = max((len(_terminal_safe(w.text)) for w in ranked), default=0)
    lines += [f"  {signed(w.contribution)}  {_terminal_safe(w.text):<{width}}  {w.start}-{w.end}" for w in ranked]
    unseen = sum(not w.seen for w in explanation.words)
    if unseen:
        lines.append(f"  ({unseen} words past the model's max_len of {max_len} tokens were not seen)")
    return "\n".join(lines) + "\n"


_STYLE = """
body { font: 16px/1.6 system-ui, sans-serif; max-width: 820px; margin: 2rem auto; padding: 0 1rem; color: #1d2330; }
h1 { font-size: 1.4rem; margin-bottom: .2rem; } .note { color: #5b6475; margin-top: 0; }
.text { white-space: pre-wrap; background: #f7f8fa; padding: 1rem; border-radius: 8px; }
.w { border-radius: 3px; padding: 0 1px; } .unseen { color: #9aa1ad; text-decoration: line-through; }
table { border-collapse: collapse; margin-top: 1rem; } td { padding: .15rem .8rem .15rem 0; }
td.n { font-variant-numeric: tabular-nums; text-align: right; }
"""


def render_html(explanation: Explanation, text: str, model_name: str) -> str:
    """One self-contained page (no script, no external file): the text with each word shaded."""
    largest = _largest(explanation)
    body = []
    for piece, word in _pieces(explanation, text):
        safe = html.escape(piece)
        if word is None:
            body.append(safe)
        elif not word.seen:
            body.append(f'<span class="w unseen" title="not seen (past max_len)">{safe}</span>')
        else:
            strength = _strength(word, largest)
            rgb = "24,121,78" if word.contribution > 0 else "192,57,43"
            shade = f' style="background: rgba({rgb},{0.15 + 0.65 * strength:.2f})"' if strength >= FAINT else ""
            body.append(f'<span class="w"{shade} title="{html.escape(word.token)}: {word.contribution:+.6f}">'
                        f"{safe}</span>")
    rows = "".join(f'<tr><td class="n">{signed(w.contribution)}</td><td>{html.escape(w.text)}</td>'
                   f'<td class="n">{w.start}-{w.end}</td></tr>' for w in explanation.top(20))
    p = explanation.prediction
    return (f'<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>edge-infer explain: {html.escape(p.label)} {p.score:.4f}</title>\n<style>{_STYLE}</style>\n"
            f"</head>\n<body>\n<h1>{html.escape(p.label)} {p.score:.4f}</h1>\n"
            f'<p class="note">Model {html.escape(model_name)}. Each word is shaded by how much '
            f"P({html.escape(explanation.label)}) = {explanation.probability:.4f} drops when it is left out "
            f"({explanation.method}, window {explanation.window}): green speaks for "
            f"{html.escape(explanation.label)}, red against; the deeper, the larger.</p>\n"
            f'<div class="text">{"".join(body)}</div>\n<table>{rows}</table>\n</body>\n</html>\n')
