"""The ``edge-infer`` command: a shell over the library. Owns the terminal: one line per error, never a traceback.

Exit codes are :mod:`edge_infer.exit_codes` (the README's table), the same for every command. The app and
what the commands share are in :mod:`edge_infer.cli.common`; each command is a module here that registers
itself on that app when imported.
"""

from __future__ import annotations

import os
import signal
import sys


def _interrupted_early(signum: int, frame: object) -> None:
    # Ctrl-C while the command is still importing: no traceback, the documented code.
    os.write(2, b"edge-infer: interrupted\n")
    os._exit(130)


# Only when this process is the command (not an app or a test importing the module).
_OWN_SIGINT = (os.path.basename(sys.argv[0]) in ("edge-infer", "__main__.py")
               and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
if _OWN_SIGINT:
    signal.signal(signal.SIGINT, _interrupted_early)

import typer  # noqa: E402

from edge_infer import exit_codes  # noqa: E402
from edge_infer.cli import bulk, evaluate, explain, info, predict, serve  # noqa: E402,F401  (registers the commands)
from edge_infer.cli.common import Interrupted, OutputClosed, app, err  # noqa: E402

__all__ = ["app", "main"]

_sigint_seen = False


def _interrupt(signum: int, frame: object) -> None:
    # Remembered: a KeyboardInterrupt raised inside a C extension's import surfaces as ImportError.
    global _sigint_seen
    _sigint_seen = True
    raise KeyboardInterrupt


def _quiet_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so the interpreter's final flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> None:
    """Console entry point: runs the app; maps Ctrl-C, a closed stdout and any bug to the documented codes."""
    if _OWN_SIGINT:
        signal.signal(signal.SIGINT, _interrupt)
    for stream in (sys.stdout, sys.stderr):
        if stream is not None and hasattr(stream, "reconfigure"):
            stream.reconfigure(encoding="utf-8", errors="backslashreplace")
    try:
        code = app(args=argv, prog_name="edge-infer", standalone_mode=False)
    except Interrupted as exc:
        typer.echo(f"edge-infer: {exc}", err=True)
        sys.exit(exit_codes.INTERRUPTED)
    except (KeyboardInterrupt, typer.Abort):
        code = exit_codes.INTERRUPTED
    except typer.TyperException as exc:  # bad option or argument (typer >= 0.28): one line, like every other error
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        err(f"{exc.format_message()}{hint}")
        code = exit_codes.USAGE
    except OutputClosed:
        _quiet_stdout()
        code = exit_codes.BROKEN_PIPE
    except Exception as exc:  # noqa: BLE001 - the CLI boundary: never a traceback
        if _sigint_seen:  # e.g. Ctrl-C while numpy was being imported: "ImportError: initialization failed"
            typer.echo("edge-infer: interrupted", err=True)
            sys.exit(exit_codes.INTERRUPTED)
        message = str(exc).splitlines()[0] if str(exc) else ""
        err(f"internal error: {type(exc).__name__}: {message}")
        code = exit_codes.INTERNAL
    if not isinstance(code, int) or isinstance(code, bool):
        code = exit_codes.OK
    if code == exit_codes.INTERRUPTED:  # typer turned a KeyboardInterrupt into a silent Exit(130)
        typer.echo("edge-infer: interrupted", err=True)
    sys.exit(code)
