"""The DuckDB catalog: one SQL view per asset over that asset's Parquet partitions, and
the model and strategy registries beside it.

DuckDB lets one process at a time open a database file for writing, and a process that
asks while another holds it fails at once ("Could not set lock on file"). Concurrent
Dagster steps would hit that on every materialization, so every connection here is
short-lived and taken under an inter-process file lock (``<database>.lock``, portable
across Linux, macOS and Windows): steps queue for a few milliseconds instead of failing.

Two files, because they differ in what losing them costs:

- the catalog file holds only views, never data, so it can be rebuilt from the Parquet
  tree at any time (`rebuild`, `python -m forex_assets catalog rebuild`). A damaged one
  is set aside as ``<database>.damaged-<UTC time>`` with a warning and started afresh;
  the next registration or query that knows the store rebuilds every view (a
  ``<database>.rebuild-views`` marker says one is due, to any process), and a view that
  a query names but the catalog lacks is registered from the store.
- ``registry.duckdb`` beside it holds the registries (`model_ledger`, `strategy_ledger`),
  which nothing else can rebuild; losing or rebuilding the views never touches it.
  Registries that an older version kept in the catalog file are copied into it when it
  is created. Every connection attaches both, so SQL names either without a prefix; a
  registry table wins over a leftover table of the same name in the catalog file.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl
from filelock import FileLock, Timeout

from forex_assets.storage.damage import StoredDataError, first_line
from forex_assets.storage.parquet_store import asset_glob, stored_assets, unreadable_partition

DEFAULT_LOCK_TIMEOUT_S = 120.0
REGISTRY_FILE = "registry.duckdb"
REBUILD_COMMAND = "python -m forex_assets catalog rebuild"
_VIEWS = "views"
_REGISTRY = "registry"
# DuckDB's words for another process holding the file (one outside our lock): not damage.
_LOCK_CONFLICT = "Could not set lock on file"
_MISSING_TABLE = re.compile(r"Table with name (\S+) does not exist")

_log = logging.getLogger(__name__)


class CatalogBusyError(TimeoutError):
    """The catalog lock could not be taken in time."""


class CatalogError(RuntimeError):
    """The catalog cannot answer; the message is one line (what, why, what to run)."""

    def __init__(self, message: str):
        super().__init__(" ".join(message.split()))


@dataclass(frozen=True)
class Rebuild:
    """What `DuckDBCatalog.rebuild` defined, and why each other stored asset has no view."""

    views: list[str]
    failures: list[StoredDataError | CatalogError]


def view_name(key_path: Sequence[str]) -> str:
    """SQL view name of an asset key: `["bars", "m5"]` -> `bars_m5`."""
    return re.sub(r"\W", "_", "_".join(key_path))


def _quoted(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


class DuckDBCatalog:
    """Views over the Parquet store and the registries, safe to use from many processes."""

    def __init__(
        self,
        database: Path,
        lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
        warn: Callable[[str], None] | None = None,
    ):
        """`warn` receives what the catalog repaired by itself (default: this module's log)."""
        self.database = Path(database)
        self.registry = self.database.with_name(REGISTRY_FILE)
        self.lock_timeout_s = lock_timeout_s
        self.warn = warn or _log.warning
        self._lock = FileLock(f"{self.database}.lock", timeout=lock_timeout_s)
        # Left by a set-aside catalog until a caller that knows the store rebuilds the
        # views: any process, not only the one that found the damage.
        self.rebuild_marker = self.database.with_name(f"{self.database.name}.rebuild-views")

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection to the views and the registries, held under the catalog lock; keep
        the block short."""
        self.database.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._lock:
                if not self.registry.exists():
                    self._create_registry()
                connection = duckdb.connect()
                try:
                    self._attach_views(connection, read_only)
                    self._attach(connection, self.registry, _REGISTRY, read_only)
                    # The first entry also receives unqualified CREATEs (the ledgers').
                    connection.execute(f"SET search_path = '{_REGISTRY}.main,{_VIEWS}.main'")
                    yield connection
                finally:
                    connection.close()
        except Timeout:
            raise CatalogBusyError(
                f"catalog {self.database} stayed locked for {self.lock_timeout_s:.0f} s "
                f"(lock file {self._lock.lock_file}); a long query elsewhere holds it. "
                "Close that session or raise lock_timeout_s."
            ) from None

    def _attach(
        self, connection: duckdb.DuckDBPyConnection, path: Path, alias: str, read_only: bool
    ) -> None:
        if read_only and not path.exists():
            duckdb.connect(str(path)).close()
        mode = " (READ_ONLY)" if read_only else ""
        try:
            connection.execute(f"ATTACH {_quoted(path)} AS {alias}{mode}")
        except duckdb.Error as error:
            if alias == _VIEWS or _LOCK_CONFLICT in str(error):
                raise
            raise CatalogError(
                f"registry {path} cannot be read ({first_line(error)}); it holds the model "
                "and strategy registries, which nothing rebuilds. Restore it from a backup, "
                f"or move it aside (mv {path} {path}.damaged) to start empty registries."
            ) from None  # the reason is in the message, which a step failure then shows

    def _attach_views(self, connection: duckdb.DuckDBPyConnection, read_only: bool) -> None:
        """Attach the catalog file; a damaged one is set aside and started afresh."""
        try:
            self._attach(connection, self.database, _VIEWS, read_only)
        except duckdb.Error as error:
            if _LOCK_CONFLICT in str(error) or not self.database.exists():
                raise
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            aside = self.database.with_name(f"{self.database.name}.damaged-{stamp}")
            self.database.rename(aside)
            wal = self.database.with_name(f"{self.database.name}.wal")
            if wal.exists():
                wal.rename(aside.with_name(f"{aside.name}.wal"))
            self.warn(
                f"catalog {self.database} could not be opened ({first_line(error)}); set "
                f"aside as {aside}, views are rebuilt from the store (or run `{REBUILD_COMMAND}`)"
            )
            self.rebuild_marker.touch()
            self._attach(connection, self.database, _VIEWS, read_only)

    def _create_registry(self) -> None:
        """Create the registry file, with a copy of every table an older catalog file held
        (they were its registries); built aside and renamed, so a kill leaves no half."""
        temp = self.registry.with_name(f".{self.registry.name}.new")
        temp.unlink(missing_ok=True)
        connection = duckdb.connect(str(temp))
        try:
            if self.database.exists():
                self._attach_views(connection, read_only=True)
                for (table,) in connection.execute(
                    f"SELECT table_name FROM duckdb_tables() WHERE database_name = '{_VIEWS}'"
                ).fetchall():
                    connection.execute(
                        f'CREATE TABLE main."{table}" AS FROM {_VIEWS}.main."{table}"'
                    )
                    self.warn(f"copied table {table} from {self.database} into {self.registry}")
        finally:
            connection.close()
        temp.replace(self.registry)

    def register_asset(self, root: Path, key_path: Sequence[str], partitioned: bool) -> str:
        """(Re)define the view of one asset over all of its partitions; returns its name.
        If the catalog file had to be started afresh, every other view is rebuilt too."""
        with self.connect() as connection:
            name = self._define_view(connection, root, key_path, partitioned)
        if self.rebuild_marker.exists():
            self._rebuild_and_warn(root)
        return name

    @staticmethod
    def _define_view(
        connection: duckdb.DuckDBPyConnection,
        root: Path,
        key_path: Sequence[str],
        partitioned: bool,
    ) -> str:
        """Defining a view reads every partition's footer: a damaged file fails it with a
        `StoredDataError` naming that partition (DuckDB's error names no asset)."""
        name = view_name(key_path)
        glob = asset_glob(root, key_path, partitioned).replace("'", "''")
        hive = "true" if partitioned else "false"
        try:
            connection.execute(
                f'CREATE OR REPLACE VIEW {_VIEWS}.main."{name}" AS SELECT * FROM read_parquet('
                f"'{glob}', hive_partitioning = {hive}, union_by_name = true)"
            )
        except duckdb.Error as error:
            damaged = unreadable_partition(root, key_path, partitioned)
            if damaged is not None:
                raise damaged from None
            raise CatalogError(
                f"view {name} of asset {'/'.join(key_path)} cannot be defined over {glob}: "
                f"{first_line(error)}"
            ) from None
        return name

    def rebuild(self, root: Path) -> Rebuild:
        """Recreate the view of every asset folder under `root` (after a lost or damaged
        catalog, or moving the store); an asset whose files cannot be read gets no view and
        is reported, and does not keep the others from being defined."""
        views, failures = [], []
        with self.connect() as connection:
            for key_path, partitioned in stored_assets(root).items():
                try:
                    views.append(self._define_view(connection, root, key_path, partitioned))
                except (StoredDataError, CatalogError) as error:
                    failures.append(error)
        self.rebuild_marker.unlink(missing_ok=True)
        return Rebuild(views, failures)

    def _rebuild_and_warn(self, root: Path) -> None:
        for failure in self.rebuild(root).failures:
            self.warn(f"no view: {failure}")

    def replace_run_rows(
        self, table: str, schema: str, rows: Sequence[tuple], runs: Sequence[tuple[str, str]]
    ) -> None:
        """Create registry `table` from `schema` if needed, then, in one transaction, delete
        the rows of every (symbol, run_id) in `runs` and insert `rows`: a re-executed run
        replaces its own rows instead of duplicating them, and readers never see half a run."""
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
                f"SELECT view_name FROM duckdb_views() WHERE NOT internal "
                f"AND database_name = '{_VIEWS}' ORDER BY 1"
            ).fetchall()
        return [r[0] for r in rows]

    def registries(self) -> list[str]:
        with self.connect(read_only=True) as connection:
            rows = connection.execute(
                f"SELECT table_name FROM duckdb_tables() WHERE database_name = '{_REGISTRY}' "
                "ORDER BY 1"
            ).fetchall()
        return [r[0] for r in rows]

    def query(
        self,
        sql: str,
        parameters: Sequence[object] | None = None,
        store: Path | None = None,
    ) -> pl.DataFrame:
        """Run SQL over the views and registries. With `store`, a view that the SQL names
        but the catalog lacks while the store holds its asset is registered first; any
        other failure is a one-line `CatalogError`."""
        if store is not None and self.rebuild_marker.exists():
            self._rebuild_and_warn(store)
        try:
            return self._query(sql, parameters)
        except duckdb.CatalogException as error:
            missing = _MISSING_TABLE.search(str(error))
            stored = stored_assets(store) if store is not None else {}
            keys = {view_name(k): (k, partitioned) for k, partitioned in stored.items()}
            if store is None or missing is None or missing.group(1) not in keys:
                raise self._query_error(error, store) from error
            self.register_asset(store, *keys[missing.group(1)])
            self.warn(f"view {missing.group(1)} was missing from {self.database}; registered")
        try:
            return self._query(sql, parameters)
        except duckdb.Error as error:
            raise self._query_error(error, store) from error

    def _query(self, sql: str, parameters: Sequence[object] | None) -> pl.DataFrame:
        with self.connect(read_only=True) as connection:
            try:
                table = connection.sql(sql, params=parameters).to_arrow_table()
            except duckdb.CatalogException:
                raise
            except duckdb.Error as error:
                raise self._query_error(error, None) from error
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        return frame

    def _query_error(self, error: duckdb.Error, store: Path | None) -> CatalogError:
        hint = ""
        missing = _MISSING_TABLE.search(str(error))
        if missing is not None:
            hint = (
                f" The catalog has views {', '.join(self.views()) or '(none)'} and registries "
                f"{', '.join(self.registries()) or '(none yet)'}; materialize the asset that "
                f"{missing.group(1)} names"
                + ("" if store is not None else f", or run `{REBUILD_COMMAND}` if it is stored")
                + "."
            )
        return CatalogError(f"query failed on catalog {self.database}: {first_line(error)}.{hint}")
