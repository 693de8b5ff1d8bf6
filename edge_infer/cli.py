"""Command line interface (placeholder until the runtime lands)."""

import typer

app = typer.Typer(help="Movie-review sentiment on small CPUs.", no_args_is_help=True)


@app.command()
def version() -> None:
    """Print the version."""
    from edge_infer import __version__

    typer.echo(__version__)
