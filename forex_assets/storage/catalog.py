"""The DuckDB catalog: one SQL view per asset over that asset's Parquet partitions.

DuckDB lets one process at a time open a database file for writing, and a process that
asks while another holds it fails at once ("Could not set lock on file"). Concurrent
Dagster steps would hit that on every materialization, so every connection here is
short-lived and taken under an inter-process file lock (``<database>.lock``, portable
across Linux, macOS and Windows): steps queue for a few milliseconds instead of failing.
Data never lives in the catalog file itself; it only holds views, so it can be deleted
and rebuilt from the Parquet tree at any time (`rebuild`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl
from filelock import FileLock, Timeout

from forex_assets.storage.parquet_store import DATA_FILE, PARTITION_COLUMN, asset_glob

DEFAULT_LOCK_TIMEOUT_S = 120.0


class CatalogBusyError(TimeoutError):
    """The catalog lock could not be taken in time."""


def view_name(key_path: Sequence[str]) -> str:
    """SQL view name of an asset key: `["bars", "m5"]` -> `bars_m5`."""
    return re.sub(r"\W", "_", "_".join(key_path))


class DuckDBCatalog:
    """Views over the Parquet store, safe to use from many processes at once."""

    def __init__(self, database: Path, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S):
        self.database = Path(database)
        self.lock_timeout_s = lock_timeout_s
        self._lock = FileLock(f"{self.database}.lock", timeout=lock_timeout_s)

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection held under the catalog lock; keep the block short."""
        self.database.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._lock:
                if read_only and not self.database.exists():
                    duckdb.connect(str(self.database)).close()
                connection = duckdb.connect(str(self.database), read_only=read_only)
                try:
                    yield connection
                finally:
                    connection.close()
        except Timeout:
            raise CatalogBusyError(
                f"catalog {self.database} stayed locked for {self.lock_timeout_s:.0f} s "
                f"(lock file {self._lock.lock_file}); a long query elsewhere holds it. "
                "Close that session or raise lock_timeout_s."
            ) from None

    def register_asset(self, root: Path, key_path: Sequence[str], partitioned: bool) -> str:
        """(Re)define the view of one asset over all of its partitions; returns its name."""
        name = view_name(key_path)
        glob = asset_glob(root, key_path, partitioned).replace("'", "''")
        hive = "true" if partitioned else "false"
        sql = (
            f'CREATE OR REPLACE VIEW "{name}" AS SELECT * FROM read_parquet('
            f"'{glob}', hive_partitioning = {hive}, union_by_name = true)"
        )
        with self.connect() as connection:
            connection.execute(sql)
        return name

    def rebuild(self, root: Path) -> list[str]:
        """Recreate views for every asset folder under `root` (e.g. after moving the store)."""
        names = []
        for data_file in sorted(Path(root).rglob(DATA_FILE)):
            relative = data_file.parent.relative_to(root).parts
            partitioned = bool(relative) and relative[-1].startswith(f"{PARTITION_COLUMN}=")
            key_path = relative[:-1] if partitioned else relative
            name = view_name(key_path)
            if name not in names:
                names.append(self.register_asset(root, key_path, partitioned))
        return names

    def replace_run_rows(
        self, table: str, schema: str, rows: Sequence[tuple], runs: Sequence[tuple[str, str]]
    ) -> None:
        """Create `table` from `schema` if needed, then, in one transaction, delete the rows
        of every (symbol, run_id) in `runs` and insert `rows`: a re-executed run replaces
        its own rows instead of duplicating them, and readers never see half a run."""
        with self.connect() as connection:
            connection.execute(schema)
            connection.execute("BEGIN TRANSACTION")
            for symbol, run_id in runs:
                connection.execute(
                    f"DELETE FROM {table} WHERE symbol = ? AND run_id = ?", [symbol, run_id]
                )
            if rows:
                marks = ", ".join("?" * len(rows[0]))
                connection.executemany(f"INSERT INTO {table} VALUES ({marks})", list(rows))
            connection.execute("COMMIT")

    def views(self) -> list[str]:
        with self.connect(read_only=True) as connection:
            rows = connection.execute(
                "SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1"
            ).fetchall()
        return [r[0] for r in rows]

    def query(self, sql: str, parameters: Sequence[object] | None = None) -> pl.DataFrame:
        with self.connect(read_only=True) as connection:
            table = connection.sql(sql, params=parameters).to_arrow_table()
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        return frame
