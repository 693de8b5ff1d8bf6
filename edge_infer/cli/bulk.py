"""``edge-infer bulk``: score Parquet, CSV or JSON Lines files on Ray Data, write Parquet (the ``[ray]`` extra)."""

from __future__ import annotations

import glob
import logging
import os
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from edge_infer import exit_codes
from edge_infer.cli.common import EXIT_CODES_HELP, Interrupted, app, err
from edge_infer.cli.options import ModelOption, display_name, model_path, output_path

if TYPE_CHECKING:
    from ray.data import Dataset

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl",
           ".json": "jsonl"}
INSTALL_HINT = 'the bulk command needs Ray: pip install "edge-infer[ray]"'


@app.command(epilog=EXIT_CODES_HELP)
def bulk(
    paths: Annotated[list[str], typer.Argument(
        metavar="INPUT... OUTPUT", show_default=False,
        help="Parquet, CSV or JSON Lines files (by extension), folders of them or glob patterns; then the "
             "output folder (new or empty) that receives Parquet files.")],
    text_column: Annotated[str, typer.Option("--text-column", metavar="NAME",
                                             help="The column holding the text.")] = "text",
    id_column: Annotated[str | None, typer.Option("--id-column", metavar="NAME",
                                                  help="Keep only this input column beside the results "
                                                       "(default: keep every input column).")] = None,
    model: ModelOption = None,
    int8: Annotated[bool, typer.Option("--int8", help="Use the int8 (quantized) model.")] = False,
    actors: Annotated[int | None, typer.Option("--actors", metavar="N", min=1, max=1024,
                                        help="Ray actors scoring in parallel, one model and one ONNX Runtime "
                                             "thread each (default: one per CPU).")] = None,
    address: Annotated[str | None, typer.Option("--address", metavar="ADDR",
                                                help="An existing Ray cluster ('auto', 'ray://host:10001' "
                                                     "or host:port); default: start a local Ray.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", metavar="N", min=1, max=1 << 20,
                                            help="Rows per batch.")] = 512,
    prefix: Annotated[str, typer.Option("--prefix", metavar="TEXT",
                                        help="Put TEXT before the result columns' names (e.g. 'pred_': "
                                             "pred_label, pred_score, pred_error), for inputs that already "
                                             "have such columns.")] = "",
) -> None:
    """Add label, score (score_LABEL for more than two labels) and error columns to every row; rows keep their
    input order. Rows whose text is null, empty or not a string get a null label and an error, and are
    counted (exit 1); the job goes on. Input columns named like a result column are refused (see --prefix).
    OUTPUT appears only when the job succeeded; until then the parts are written to OUTPUT.partial. Ray
    shows its progress on standard error; a summary line ends on standard output.
    """
    if len(paths) < 2:
        raise typer.BadParameter("give at least one INPUT and the OUTPUT folder", param_hint="'INPUT... OUTPUT'")
    if id_column == text_column:
        raise typer.BadParameter("must differ from --text-column", param_hint="'--id-column'")
    files, fmt = input_files(paths[:-1])
    output = output_path(Path(paths[-1]), "'OUTPUT'", folder=True)
    _check_output(output)
    try:
        import ray

        from edge_infer.integrations import bulk_inputs
        from edge_infer.integrations import ray as integration
    except ImportError:
        err(INSTALL_HINT)
        raise typer.Exit(exit_codes.USAGE) from None
    from edge_infer.classifier import SentimentClassifier
    from edge_infer.model_folder import ModelError

    try:  # fail before starting Ray when the model is unusable here
        labels = SentimentClassifier.load(model_path(model), quantized=int8, threads=1).labels
    except ModelError as exc:
        err(str(exc))
        raise typer.Exit(exit_codes.MODEL) from None
    keep = [id_column] if id_column else None
    try:
        plan = bulk_inputs.plan_inputs(files, fmt, text_column, keep)
    except bulk_inputs.InputFileError as exc:
        err(f"{display_name(exc.name)}: {exc.reason}")
        raise typer.Exit(exit_codes.USAGE) from None
    schema = integration.output_schema(plan.schema, labels, keep, prefix)
    clash = integration.collisions(keep or plan.schema.names, labels, prefix)
    if clash:
        err(f"the input has column(s) {', '.join(map(repr, clash))}, which the results would overwrite: "
            "give --prefix (e.g. --prefix pred_), or keep only --id-column")
        raise typer.Exit(exit_codes.USAGE)
    start = time.perf_counter()
    size = _start_ray(ray, integration, address, actors)
    try:
        _configure_ray_data(ray)
        ds = integration.read_inputs(files, plan, rows_per_read=4 * batch_size)
        scored = integration.score_dataset(ds, text_column, model_path(model), quantized=int8, threads=1,
                                           concurrency=size, batch_size=batch_size, keep_columns=keep,
                                           rows_per_block=None, prefix=prefix)
        rows, bad = _run(scored, output, schema, f"{prefix}error")
    finally:
        ray.shutdown()
    seconds = time.perf_counter() - start
    typer.echo(f"{rows} rows, {bad} bad rows, {seconds:.1f} s, {rows / max(seconds, 1e-9):.0f} rows/s "
               f"-> {display_name(str(output))}")
    raise typer.Exit(exit_codes.INPUT_FAILED if bad else exit_codes.OK)


def input_files(inputs: list[str]) -> tuple[list[str], str]:
    """The input files (folders expanded to the known files directly inside, patterns globbed) and their
    one format; a missing path, an unknown extension or mixed formats is a usage error."""
    files: list[str] = []
    for item in inputs:
        if os.path.isdir(item):
            found = sorted(str(p) for p in Path(item).iterdir()
                           if p.is_file() and p.suffix.lower() in FORMATS and not p.name.startswith((".", "_")))
        elif os.path.exists(item):
            found = [item]
        else:
            found = sorted(glob.glob(item))
        if not found:
            raise typer.BadParameter(f"{display_name(item)}: no such file, or no Parquet, CSV or JSONL file "
                                     "in it", param_hint="'INPUT'")
        files.extend(found)
    kinds = {FORMATS.get(Path(f).suffix.lower()) for f in files}
    if None in kinds:
        bad = next(f for f in files if Path(f).suffix.lower() not in FORMATS)
        raise typer.BadParameter(f"{display_name(bad)}: not .parquet, .csv or .jsonl", param_hint="'INPUT'")
    if len(kinds) > 1:
        raise typer.BadParameter("the inputs mix formats; give one of Parquet, CSV or JSONL", param_hint="'INPUT'")
    return [os.path.abspath(f) for f in files], str(kinds.pop())


def _check_output(output: Path) -> None:
    """OUTPUT must be new or an empty folder, and no ``OUTPUT.partial`` may be in the way."""
    from edge_infer.integrations.bulk_output import partial_path

    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise typer.BadParameter(f"{display_name(str(output))}: exists and is not an empty folder",
                                 param_hint="'OUTPUT'")
    partial = partial_path(output)
    if os.path.lexists(partial):
        raise typer.BadParameter(f"{display_name(str(partial))} exists (left by an interrupted or failed run?): "
                                 "remove it, or choose another OUTPUT", param_hint="'OUTPUT'")


def _cores() -> int:
    """The CPUs this process may run on (its affinity, e.g. under taskset or a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _env_number(name: str, default: float) -> float:
    value = os.environ.get(name)
    try:
        return default if value is None else float(value)
    except ValueError:
        err(f"{name}={value!r}: not a number")
        raise typer.Exit(exit_codes.USAGE) from None


def _start_ray(ray: Any, integration: Any, address: str | None, actors: int | None) -> int:
    """Join the cluster at ``address``, or start a local Ray with one CPU per actor (the readers reserve no
    CPU, so the actors cannot starve them); returns the number of actors."""
    env = {"env_vars": {"PYTHONPATH": os.environ["PYTHONPATH"]}} if os.environ.get("PYTHONPATH") else None
    if address is None:
        size = actors or _cores()
        integration.start_local_ray(size, int(_env_number("EDGE_INFER_RAY_STORE", 256 << 20)), env)
        return size
    try:
        integration.join_cluster(address, env, _env_number("EDGE_INFER_RAY_CONNECT_TIMEOUT", 60))
    except ConnectionError as exc:
        err(f"--address {display_name(str(exc))}")
        if isinstance(exc, integration.ConnectTimeout):  # Ray's thread would go on logging, and block the exit
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(exit_codes.USAGE)
        raise typer.Exit(exit_codes.USAGE) from None
    return actors or max(1, int(ray.cluster_resources().get("CPU", 1)))


class _DropErrors(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.ERROR


def _configure_ray_data(ray: Any) -> None:
    """Keep the input order; let a worker's exception reach this process as itself (not wrapped in Ray's
    UserCodeException), and keep Ray Data's error records off the terminal: they are the tracebacks of a
    failure this command reports in one line (Ray Data still writes them to its log files). Only documented
    DataContext fields and the logger "ray.data"; its progress lines (INFO) still show."""
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.raise_original_map_exception = True
    for handler in logging.getLogger("ray.data").handlers:
        if getattr(handler, "stream", None) in (sys.stderr, sys.stdout):
            handler.addFilter(_DropErrors())
    warnings.filterwarnings("ignore", message="The minimum number of concurrent actors")  # readers: 1 block per file


def _run(scored: Dataset, output: Path, schema: Any, error_column: str) -> tuple[int, int]:
    """Execute, writing the batches in the dataset's order from this process; returns (rows, bad rows).

    The parts go to OUTPUT.partial, renamed to OUTPUT at the end. On Ctrl-C or a failure OUTPUT is not
    created and the message says where the rows written so far are.
    """
    import pyarrow.compute as pc

    from edge_infer.integrations.bulk_output import PartsWriter

    rows = bad = 0
    writer = PartsWriter(output, schema)
    try:
        for arrow in scored.iter_batches(batch_format="pyarrow", batch_size=None, prefetch_batches=2):
            batch: Any = arrow
            writer.write(batch)
            rows += batch.num_rows
            bad += int(pc.sum(pc.is_valid(batch.column(error_column))).as_py() or 0)
        writer.commit()
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted; {_not_written(output, writer)}") from None
    except Exception as exc:  # noqa: BLE001 - every failure leaves the output marked, then one line
        _failed(exc, _not_written(output, writer))
    return rows, bad


def _not_written(output: Path, writer: Any) -> str:
    name = display_name(str(output))
    if writer.abandon():
        return (f"{name} was not written; the {writer.rows} rows written so far are in "
                f"{display_name(str(writer.partial))} (incomplete)")
    return f"{name} was not written"


def _failed(exc: Exception, where: str) -> NoReturn:
    """One line for a failed job, with the documented exit code: chosen by the type of the exception raised in
    the Ray worker (``RayTaskError.cause``), never by the text of its traceback."""
    from edge_infer.integrations.bulk_inputs import InputFileError
    from edge_infer.integrations.ray import task_cause
    from edge_infer.model_folder import ModelError

    cause = task_cause(exc)
    lines = str(cause).strip().splitlines()
    text = f"{type(cause).__name__}: {lines[0] if lines else ''}"
    if isinstance(cause, InputFileError):
        err(f"{display_name(cause.name)}: {cause.reason}; {where}")
        raise typer.Exit(exit_codes.USAGE)
    if isinstance(cause, ModelError):
        err(f"a Ray worker refused the model: {text}; {where}")
        raise typer.Exit(exit_codes.MODEL)
    if isinstance(cause, OSError) and cause is exc:  # on this machine: writing the output
        err(f"{text}; {where}")
        raise typer.Exit(exit_codes.USAGE)
    err(f"a Ray worker failed: {text}; {where}")
    raise typer.Exit(exit_codes.INTERNAL)
