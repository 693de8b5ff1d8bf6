"""The typer app every command registers on, and what the commands share: the exit-code epilog, the
error line, and the exceptions :func:`edge_infer.cli.main` maps to exit codes.

A module of its own so that the commands import it, and ``edge_infer.cli`` imports the commands, without
a circle.
"""

from __future__ import annotations

import typer

from edge_infer import __version__, exit_codes

EXIT_CODES_HELP = "\b\n" + exit_codes.describe()  # \b: click keeps the table's lines as they are

app = typer.Typer(
    help="Movie-review sentiment on small CPUs (ONNX Runtime, no TensorFlow).",
    epilog=EXIT_CODES_HELP,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class Interrupted(Exception):
    """Ctrl-C inside a command; ``str()`` is what to tell the user."""


class OutputClosed(Exception):
    """Standard output was closed by the reader (``| head``)."""


def err(message: str) -> None:
    """One error line on stderr, with the program's prefix."""
    typer.echo(f"edge-infer: error: {message}", err=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"edge-infer {__version__}")
        raise typer.Exit(exit_codes.OK)


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Movie-review sentiment on small CPUs (ONNX Runtime, no TensorFlow)."""
    if ctx.invoked_subcommand is None:  # bare `edge-infer`: the help on stderr, as a usage error
        typer.echo(ctx.get_help(), err=True)
        raise typer.Exit(exit_codes.USAGE)
