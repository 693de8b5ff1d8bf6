"""The output folder of ``edge-infer bulk``: Parquet part files with one schema, complete or clearly partial.

The parts are written into ``OUTPUT.partial`` beside OUTPUT, which is renamed to OUTPUT only when the job
succeeded. A failed or interrupted job never creates OUTPUT: the rows received so far stay in
``OUTPUT.partial`` (closed, readable files), or that folder is removed when it holds no row.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_infer.storage import fsync_dir

if TYPE_CHECKING:
    import pyarrow as pa

PARTIAL_SUFFIX = ".partial"


def output_folder(output: Path) -> Path:
    """The folder the parts end in: ``output`` (absolute), or the folder it links to."""
    path = Path(os.path.abspath(output))
    return path.resolve() if path.is_dir() else path


def partial_path(output: Path) -> Path:
    """Where the parts of ``output`` are written until the job succeeds: beside :func:`output_folder`."""
    folder = output_folder(output)
    return folder.with_name(folder.name + PARTIAL_SUFFIX)


class PartsWriter:
    """``part-00000.parquet``, ``part-00001.parquet``... (a new file every ``FILE_ROWS`` rows), every batch cast
    to ``schema``, in :func:`partial_path` until :meth:`commit`. Batches are gathered into row groups of
    ``GROUP_ROWS`` rows or ``GROUP_BYTES`` bytes, whichever comes first."""

    FILE_ROWS = 1_000_000
    GROUP_ROWS = 65_536
    GROUP_BYTES = 64 << 20

    def __init__(self, output: Path, schema: pa.Schema) -> None:
        self.output = output_folder(output)
        self.partial = partial_path(output)
        self.schema = schema
        self.rows = 0
        """Rows on disk."""
        self.files: list[Path] = []
        self._writer: Any = None
        self._file_rows = 0
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._pending_bytes = 0
        self.partial.mkdir()  # refuses a folder left by another run

    def write(self, batch: pa.Table) -> None:
        """Append ``batch`` (its columns in any order; types castable to the schema)."""
        if self._writer is None:
            self._open()  # at once: the partial folder shows a part as soon as rows arrive
        if batch.num_rows == 0:
            return
        table = batch.select(self.schema.names).cast(self.schema)
        self._pending.append(table)
        self._pending_rows += table.num_rows
        self._pending_bytes += table.nbytes
        if self._pending_rows >= self.GROUP_ROWS or self._pending_bytes >= self.GROUP_BYTES:
            self._flush()

    def commit(self) -> None:
        """Write what is pending, close the last part (an empty one when there was no row) and rename the
        folder to OUTPUT."""
        self._flush()
        if self._writer is None and not self.files:
            self._open()
        self._close()
        try:
            os.rename(self.partial, self.output)  # also replaces an empty folder, at once
        except OSError:  # e.g. OUTPUT is a mount point: move the parts into it
            self._move_parts()
        fsync_dir(self.output.parent)

    def _move_parts(self) -> None:
        import shutil

        if any(self.output.iterdir()):
            raise FileExistsError(f"{self.output}: no longer empty; the parts stay in {self.partial}")
        for path in self.files:
            shutil.move(path, self.output / path.name)
        self.partial.rmdir()

    def abandon(self) -> bool:
        """After a failure: write what is pending, close; remove the folder when it holds no row. Returns
        whether :attr:`partial` is left (with :attr:`rows` rows)."""
        import pyarrow as pa

        try:
            self._flush()
        except (OSError, pa.ArrowException):  # e.g. a full disk: those rows were never on disk
            pass
        finally:
            self._close()
        if self.rows:
            return True
        for path in self.files:
            path.unlink(missing_ok=True)
        try:
            self.partial.rmdir()
        except OSError:  # something else was put there: not ours to remove
            return True
        return False

    def _flush(self) -> None:
        import pyarrow as pa

        if not self._pending:
            return
        if self._writer is not None and self._file_rows >= self.FILE_ROWS:
            self._close()
        if self._writer is None:
            self._open()
        self._writer.write_table(pa.concat_tables(self._pending))
        self._file_rows += self._pending_rows
        self.rows += self._pending_rows
        self._pending, self._pending_rows, self._pending_bytes = [], 0, 0

    def _open(self) -> None:
        import pyarrow.parquet as pq

        path = self.partial / f"part-{len(self.files):05d}.parquet"
        self._writer = pq.ParquetWriter(path, self.schema)
        self.files.append(path)
        self._file_rows = 0

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            fd = os.open(self.files[-1], os.O_RDONLY)
            try:
                os.fsync(fd)  # on disk before the folder is renamed
            finally:
                os.close(fd)
