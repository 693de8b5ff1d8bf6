"""``edge-infer bulk``: score Parquet, CSV or JSON Lines files on Ray Data, write Parquet (the ``[ray]`` extra)."""

from __future__ import annotations

import glob
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from edge_infer import exit_codes
from edge_infer.cli import EXIT_CODES_HELP, Interrupted, app, err
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
) -> None:
    """Add label, score (score_LABEL for more than two labels) and error columns to every row; rows keep their
    input order. Rows whose text is null, empty or not a string get a null label and an error, and are
    counted (exit 1); the job goes on. Ray shows its progress on standard error; a summary line ends on
    standard output.
    """
    if len(paths) < 2:
        raise typer.BadParameter("give at least one INPUT and the OUTPUT folder", param_hint="'INPUT... OUTPUT'")
    if id_column == text_column:
        raise typer.BadParameter("must differ from --text-column", param_hint="'--id-column'")
    files, fmt = input_files(paths[:-1])
    output = output_path(Path(paths[-1]), "'OUTPUT'", folder=True)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise typer.BadParameter(f"{display_name(str(output))}: exists and is not an empty folder",
                                 param_hint="'OUTPUT'")
    try:
        import ray

        from edge_infer.integrations.ray import score_dataset
    except ImportError:
        err(INSTALL_HINT)
        raise typer.Exit(exit_codes.USAGE) from None
    from edge_infer.classifier import SentimentClassifier
    from edge_infer.model_folder import ModelError

    try:  # fail before starting Ray when the model is unusable here
        SentimentClassifier.load(model_path(model), quantized=int8, threads=1)
    except ModelError as exc:
        err(str(exc))
        raise typer.Exit(exit_codes.MODEL) from None
    start = time.perf_counter()
    _init_ray(ray, address, actors)
    try:
        size = actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
        ray.data.DataContext.get_current().execution_options.preserve_order = True
        ds = _read(ray, files, fmt, text_column, id_column)
        keep = [id_column] if id_column else None
        scored = score_dataset(ds, text_column, model_path(model), quantized=int8, threads=1, concurrency=size,
                               batch_size=batch_size, keep_columns=keep)
        rows, bad = _run(scored, output)
    except KeyboardInterrupt:
        raise Interrupted("interrupted; the output folder is incomplete") from None
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


def _init_ray(ray: Any, address: str | None, actors: int | None) -> None:
    """Join the cluster at ``address``, or start a local Ray on 127.0.0.1 (one CPU more than the actors,
    for reading and writing)."""
    env = {"env_vars": {"PYTHONPATH": os.environ["PYTHONPATH"]}} if os.environ.get("PYTHONPATH") else None
    if address is not None:
        ray.init(address=address, runtime_env=env, log_to_driver=False)
        return
    cpus = (actors or os.cpu_count() or 1) + 1
    ray.init(address="local", num_cpus=cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
             object_store_memory=int(os.environ.get("EDGE_INFER_RAY_STORE", 256 << 20)), log_to_driver=False)


def _read(ray: Any, files: list[str], fmt: str, text_column: str, id_column: str | None) -> Dataset:
    if fmt == "parquet":
        return ray.data.read_parquet(files)
    if fmt == "csv":
        import pyarrow as pa
        from pyarrow import csv

        types = {name: pa.string() for name in (text_column, id_column) if name}
        return ray.data.read_csv(files, convert_options=csv.ConvertOptions(column_types=types),
                                 file_extensions=None)
    return ray.data.read_json(files, lines=True, file_extensions=None)


def _run(scored: Dataset, output: Path) -> tuple[int, int]:
    """Execute, writing the batches in the dataset's order from this process; returns (rows, bad rows).

    A model refused by a worker is exit 3; a missing column or unreadable input exit 2.
    """
    import pyarrow.compute as pc

    rows = bad = 0
    writer = _Parts(output)
    try:
        for arrow in scored.iter_batches(batch_format="pyarrow", batch_size=None, prefetch_batches=2):
            batch: Any = arrow
            writer.write(batch)
            rows += batch.num_rows
            bad += int(pc.sum(pc.is_valid(batch.column("error"))).as_py() or 0)
    except Exception as exc:  # noqa: BLE001 - Ray wraps the worker's exception; classify it by its text
        _worker_failure(exc)
        raise
    finally:
        writer.close()
    return rows, bad


def _worker_failure(exc: Exception) -> None:
    """Exit with the documented code when ``exc`` is a known failure inside a Ray worker."""
    text = str(exc)
    for marker, code in (("IntegrityError", exit_codes.MODEL), ("ManifestError", exit_codes.MODEL),
                         ("ModelError", exit_codes.MODEL), ("KeyError: \"no column", exit_codes.USAGE),
                         ("ArrowInvalid", exit_codes.USAGE), ("FileNotFoundError", exit_codes.USAGE)):
        line = next((ln.strip() for ln in text.splitlines() if marker in ln), None)
        if line is not None:
            err(f"a Ray worker failed: {line}")
            raise typer.Exit(code) from None


class _Parts:
    """``part-00000.parquet``, ``part-00001.parquet``... in ``folder``: a new file every ``FILE_ROWS`` rows or
    when a batch's schema cannot be cast to the open file's."""

    FILE_ROWS = 1_000_000

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.count = 0
        self.rows = 0
        self.writer: Any = None

    def write(self, batch: Any) -> None:
        import pyarrow.parquet as pq

        if batch.num_rows == 0:
            return
        if self.writer is not None and batch.schema != self.writer.schema:
            try:
                batch = batch.cast(self.writer.schema)
            except (ValueError, TypeError, NotImplementedError, KeyError):  # another schema: another file
                self.close()
        if self.writer is not None and self.rows >= self.FILE_ROWS:
            self.close()
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.folder / f"part-{self.count:05d}.parquet", batch.schema)
            self.count += 1
            self.rows = 0
        self.writer.write_table(batch)
        self.rows += batch.num_rows

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
