"""Bulk scoring on Ray Data (``pip install "edge-infer[ray]"``): a ``map_batches`` callable and :func:`score_dataset`.

Batches are ``pyarrow`` tables (``batch_format="pyarrow"``): no pandas conversion, strings stay Arrow strings,
nulls stay nulls. Each actor unpickles the driver's classifier once, which loads and re-verifies the model
(:mod:`edge_infer.classifier`); a worker whose copy differs refuses with ``IntegrityError`` and the job fails.
Only Ray's public API is used here.
"""

from __future__ import annotations

import os
import pickle
import socket
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from edge_infer.classifier import SentimentClassifier
from edge_infer.integrations.bulk_inputs import TEXT_ERROR, InputPlan, read_file
from edge_infer.model_folder import ModelError
from edge_infer.task import blank_error

if TYPE_CHECKING:
    from ray.data import Dataset

BATCH_FORMAT = "pyarrow"
BATCH_SIZE = 512
"""Rows per batch: large enough that Ray's per-batch overhead is small against tokenizing and the model."""
RESULT_COLUMNS = ("label", "score", "error")
READERS = 2
"""Files read at the same time by :func:`read_inputs` (each a Ray task that reserves no CPU)."""
READ_BLOCK_BYTES = 1 << 20
"""Block size of :func:`read_inputs`'s datasets: about 800 reviews; the actors bundle blocks into batches."""


def score_columns(labels: tuple[str, ...], prefix: str = "") -> list[str]:
    """The ``score_<label>`` columns added for a model with more than two labels (none for two)."""
    return [f"{prefix}score_{label}" for label in labels] if len(labels) > 2 else []


def result_columns(labels: tuple[str, ...], prefix: str = "") -> list[str]:
    """Every column :class:`BatchScorer` adds, in order: label, score, the ``score_<label>`` ones, error."""
    return [f"{prefix}label", f"{prefix}score", *score_columns(labels, prefix), f"{prefix}error"]


def collisions(columns: list[str], labels: tuple[str, ...], prefix: str = "") -> list[str]:
    """The input ``columns`` that the results would overwrite (they must be refused, or renamed by ``prefix``)."""
    return [name for name in result_columns(labels, prefix) if name in columns]


def output_schema(schema: pa.Schema, labels: tuple[str, ...], keep_columns: list[str] | None = None,
                  prefix: str = "") -> pa.Schema:
    """The schema of the scored rows for input rows with ``schema``: the kept input columns, then the results."""
    kept = [schema.field(n) for n in (schema.names if keep_columns is None else keep_columns) if n != TEXT_ERROR]
    results = [pa.field(name, pa.string() if name in (f"{prefix}label", f"{prefix}error") else pa.float64())
               for name in result_columns(labels, prefix)]
    return pa.schema(kept + results)


def row_error(text: Any) -> str | None:
    """Why a value cannot be scored (null, not a string, empty or whitespace-only), or ``None``."""
    if text is None:
        return "null text"
    if not isinstance(text, str):
        return f"not a string ({type(text).__name__})"
    return blank_error(text)


class BatchScorer:
    """Callable class for ``Dataset.map_batches(..., batch_format="pyarrow", concurrency=N)``.

    Adds ``label`` (string), ``score`` (float64; as :class:`~edge_infer.classifier.Prediction`), one
    ``score_<label>`` per label for models with more than two labels, and ``error`` (null unless the row's
    text was null, empty or not a string: then ``label`` and the scores are null), each name led by
    ``prefix``. An input column with one of those names is refused (``ValueError``), never overwritten.

    ``classifier``: the classifier, pickled to each actor, which reloads and re-verifies it once; or
    ``pickle.dumps(classifier)``, unpickled here: then a model this worker refuses fails its first batch (a
    ``RayTaskError`` whose ``cause`` is the :class:`~edge_infer.model_folder.ModelError`) rather than the
    actor's creation (whose error reaches the driver only as text).
    """

    def __init__(self, classifier: SentimentClassifier | bytes, text_column: str = "text",
                 keep_columns: list[str] | None = None, threshold: float | None = None, prefix: str = "") -> None:
        self.refusal: ModelError | None = None
        self.clf: SentimentClassifier | None = None
        if isinstance(classifier, bytes):
            try:
                self.clf = pickle.loads(classifier)
            except ModelError as exc:
                self.refusal = exc
        else:
            self.clf = classifier
        self.text_column = text_column
        self.keep_columns = keep_columns
        self.threshold = threshold
        self.prefix = prefix

    def __call__(self, batch: pa.Table) -> pa.Table:
        if self.refusal is not None:
            raise self.refusal
        assert self.clf is not None
        if self.text_column not in batch.column_names:
            raise KeyError(f"no column {self.text_column!r} (columns: {', '.join(batch.column_names)})")
        texts = batch.column(self.text_column).to_pylist()
        errors = [row_error(t) for t in texts]
        if TEXT_ERROR in batch.column_names:  # the reader's verdict on values it had to turn into strings
            errors = [flag or e for flag, e in zip(batch.column(TEXT_ERROR).to_pylist(), errors)]
            batch = batch.drop_columns([TEXT_ERROR])
        out = batch if self.keep_columns is None else batch.select(self.keep_columns)
        clash = collisions(out.column_names, self.clf.labels, self.prefix)
        if clash:
            raise ValueError(f"the input has column(s) {', '.join(map(repr, clash))}, which the results would "
                             "overwrite: keep other columns, or give a prefix for the results")
        good = [i for i, e in enumerate(errors) if e is None]
        preds = self.clf.predict([texts[i] for i in good], threshold=self.threshold) if good else []
        n = len(texts)
        labels: list[str | None] = [None] * n
        score = np.full(n, np.nan)
        probs = np.full((n, len(self.clf.labels)), np.nan)
        for i, p in zip(good, preds):
            labels[i] = p.label
            score[i] = p.score
            probs[i] = list(p.scores.values())
        mask = np.array([e is not None for e in errors], dtype=bool)
        names = result_columns(self.clf.labels, self.prefix)
        values = [pa.array(labels, type=pa.string()), pa.array(score, mask=mask),
                  *(pa.array(probs[:, j], mask=mask) for j in range(len(names) - 3)),
                  pa.array(errors, type=pa.string())]
        for name, column in zip(names, values):
            out = out.append_column(name, column)
        return out


def score_dataset(ds: Dataset, text_column: str = "text", model: str | os.PathLike[str] | None = None,
                  quantized: bool = False, threads: int | None = 1, concurrency: int = 2,
                  batch_size: int = BATCH_SIZE, keep_columns: list[str] | None = None,
                  threshold: float | None = None, num_cpus: float = 1,
                  rows_per_block: int | None = 4 * BATCH_SIZE, prefix: str = "") -> Dataset:
    """``ds`` with the :class:`BatchScorer` columns added, scored by ``concurrency`` actors (lazy, like Ray Data).

    The model is loaded and verified here first (a bad model fails at once, on the driver), then each
    actor reloads and re-verifies the same bytes. ``threads``: ONNX Runtime threads per actor.
    ``keep_columns``: the input columns to keep (default: all). ``num_cpus``: Ray CPUs each actor
    reserves. ``rows_per_block``: the input is re-cut (streaming, no shuffle) into blocks of at most this many
    rows first, so that every actor gets work even from one big file (``None``: as read). Row order is kept
    when the context's ``execution_options.preserve_order`` is set. ``prefix`` leads the result columns' names.
    """
    from ray.data import ActorPoolStrategy

    clf = SentimentClassifier.load(model, quantized=quantized, threads=threads)
    if rows_per_block:
        ds = ds.repartition(target_num_rows_per_block=rows_per_block)
    kwargs = {"classifier": pickle.dumps(clf), "text_column": text_column, "keep_columns": keep_columns,
              "threshold": threshold, "prefix": prefix}
    return ds.map_batches(BatchScorer, fn_constructor_kwargs=kwargs, batch_format=BATCH_FORMAT,
                          batch_size=batch_size, compute=ActorPoolStrategy(size=concurrency), num_cpus=num_cpus)


def read_inputs(files: list[str], plan: InputPlan, rows_per_read: int = 4 * BATCH_SIZE) -> Dataset:
    """The rows of ``files`` (:func:`~edge_infer.integrations.bulk_inputs.plan_inputs` gave ``plan``) in order,
    with ``plan``'s schema; a file that cannot be read fails the job with
    :class:`~edge_infer.integrations.bulk_inputs.InputFileError` as the ``RayTaskError``'s cause.

    One Ray task per file, :data:`READERS` at a time, each reserving **no CPU**: reading waits on the actors
    anyway, and a reader that needs a CPU can starve behind an actor pool holding every CPU. A reader builds
    tables of ``rows_per_read`` rows; this dataset (and those made from it) cut blocks of about
    :data:`READ_BLOCK_BYTES`, so that rows stream to the actors and on, instead of Ray's default of 128 MiB
    per block (a whole file of reviews, held until read to its end).
    """
    import ray
    from ray.data import TaskPoolStrategy

    def read(batch: pa.Table) -> Iterator[pa.Table]:
        for path in batch.column("path").to_pylist():
            yield from read_file(path, plan, rows_per_read)

    context = ray.data.DataContext.get_current()  # a new dataset keeps a copy of it (Ray's documented rule)
    saved = context.target_max_block_size
    context.target_max_block_size = READ_BLOCK_BYTES
    try:
        paths = ray.data.from_items([{"path": f} for f in files], override_num_blocks=len(files))
        return paths.map_batches(read, batch_size=1, batch_format="pyarrow", num_cpus=0,
                                 compute=TaskPoolStrategy(size=max(1, min(READERS, len(files)))))
    finally:
        context.target_max_block_size = saved


def task_cause(exc: BaseException) -> BaseException:
    """The exception raised inside a Ray task or actor method: ``RayTaskError.cause`` (Ray's documented field),
    else ``exc`` itself (a failure of Ray, such as an actor that died). Ray Data wraps an exception raised in
    a ``map_batches`` function in its ``UserCodeException`` unless the dataset's context has
    ``raise_original_map_exception`` set (``edge-infer bulk`` sets it)."""
    from ray.exceptions import RayTaskError

    return exc.cause if isinstance(exc, RayTaskError) and exc.cause is not None else exc


def start_local_ray(num_cpus: int, object_store_bytes: int, runtime_env: dict[str, Any] | None = None) -> str:
    """Start a Ray instance on this machine only (no dashboard, workers' logs not forwarded); returns its GCS
    address. Ray picks the node's address itself, as ``ray start --head`` does."""
    import ray

    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, object_store_memory=object_store_bytes,
             log_to_driver=False, runtime_env=runtime_env)
    return str(ray.get_runtime_context().gcs_address)


class ConnectTimeout(ConnectionError):
    """Ray did not finish connecting in time; its connecting thread is still running (and may still log)."""


def join_cluster(address: str, runtime_env: dict[str, Any] | None = None, timeout_s: float = 60) -> None:
    """Connect to the Ray cluster at ``address`` (``auto``, ``host:port`` or ``ray://host:port``).

    Raises ``ConnectionError`` with a one-line message when nothing listens at that port (checked first, in
    at most 5 s) or Ray refuses, and :class:`ConnectTimeout` when Ray does not finish connecting within
    ``timeout_s`` (Ray itself keeps retrying for minutes). The connection runs in a daemon thread, left
    behind on a timeout.
    """
    import ray

    _probe(address)
    outcome: dict[str, BaseException] = {}

    def connect() -> None:
        try:
            ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=connect, name="edge-infer-ray-connect", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise ConnectTimeout(f"{address}: Ray did not answer within {timeout_s:g} s")
    if "error" in outcome:
        error = outcome["error"]
        lines = str(error).strip().splitlines()
        raise ConnectionError(f"{address}: {lines[0] if lines else type(error).__name__}") from error


def _probe(address: str, timeout_s: float = 5) -> None:
    """``ConnectionError`` when ``address`` names a port where nothing accepts a TCP connection."""
    rest = address.split("://", 1)[-1]
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto", or a form Ray itself will judge
    try:
        socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout_s).close()
    except OSError:
        raise ConnectionError(f"{address}: nothing is listening there (is a Ray cluster running? 'ray status' "
                              "prints its address)") from None
