"""Exit codes shared by ``edge-infer``, ``python -m train`` and ``python -m export`` (the README's table).

No imports: train/ and export/ read these before TensorFlow is loaded.
"""

OK = 0
"""Done: every input got a result, the model was trained or exported."""
INPUT_FAILED = 1
"""Some inputs failed (one line each on stderr); the others were still processed and printed."""
USAGE = 2
"""Bad option or argument value, or a path, dataset, training report or output folder that cannot be used."""
MODEL = 3
"""The model was refused: it cannot be loaded or fails verification, or an export gate refused it."""
INTERNAL = 4
"""An unexpected internal error (a bug): one line on stderr, never a traceback."""
INTERRUPTED = 130
"""Interrupted (Ctrl-C, SIGINT); output written so far may be incomplete."""
BROKEN_PIPE = 141
"""Standard output was closed early (e.g. ``| head``); nothing else is reported."""

TABLE = (
    (OK, "success"),
    (INPUT_FAILED, "some inputs failed (one line each on stderr); the others were processed"),
    (USAGE, "usage error: bad option value, unusable path, dataset, training report or output folder"),
    (MODEL, "model refused: cannot be loaded or fails verification, or an export gate refused it"),
    (INTERNAL, "unexpected internal error (one line on stderr)"),
    (INTERRUPTED, "interrupted (Ctrl-C); output may be incomplete"),
    (BROKEN_PIPE, "standard output closed early (e.g. piped into head)"),
)


def describe() -> str:
    """The table as lines of text, for ``--help`` epilogs."""
    return "exit codes:\n" + "\n".join(f"  {code:>3}  {meaning}" for code, meaning in TABLE)
