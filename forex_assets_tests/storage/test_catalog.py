"""The DuckDB catalog under concurrent writers from several processes."""

import multiprocessing
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest

from forex_assets.storage.catalog import CatalogBusyError, CatalogError, DuckDBCatalog
from forex_assets.storage.damage import StoredDataError
from forex_assets.storage.parquet_store import partition_file, write_frame

WORKERS = 6
ROUNDS = 12


def _worker(root: str, database: str, symbol: str, rounds: int, errors) -> None:
    try:
        catalog = DuckDBCatalog(Path(database), lock_timeout_s=60)
        for i in range(rounds):
            frame = pl.DataFrame({"i": list(range(i + 1)), "value": [float(i)] * (i + 1)})
            write_frame(frame, partition_file(Path(root), ["metrics"], symbol))
            catalog.register_asset(Path(root), ["metrics"], partitioned=True)
            count = catalog.query(
                "SELECT count(*) AS n FROM metrics WHERE symbol = ?", [symbol]
            ).item()
            assert count == i + 1, (symbol, i, count)
    except BaseException as exc:  # report to the parent instead of dying silently
        errors.put(f"{symbol}: {type(exc).__name__}: {exc}")


def test_concurrent_steps_never_fail_on_the_writer_lock(tmp_path):
    context = multiprocessing.get_context("spawn")
    errors = context.Queue()
    root, database = tmp_path / "store", tmp_path / "catalog.duckdb"
    symbols = [f"SYM{i}" for i in range(WORKERS)]
    processes = [
        context.Process(target=_worker, args=(str(root), str(database), s, ROUNDS, errors))
        for s in symbols
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=180)
    reported = [errors.get() for _ in range(errors.qsize())] if not errors.empty() else []
    assert reported == []
    assert all(p.exitcode == 0 for p in processes)
    totals = DuckDBCatalog(database).query(
        "SELECT symbol, count(*) AS n FROM metrics GROUP BY 1 ORDER BY 1"
    )
    assert totals.get_column("symbol").to_list() == symbols
    assert totals.get_column("n").to_list() == [ROUNDS] * WORKERS


def _hold_connection(database: str, seconds: float, ready) -> None:
    connection = duckdb.connect(database)
    ready.set()
    time.sleep(seconds)
    connection.close()


def test_raw_duckdb_writers_do_conflict(tmp_path):
    """The failure the catalog lock exists to prevent: a second process cannot open the file."""
    database = tmp_path / "raw.duckdb"
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    holder = context.Process(target=_hold_connection, args=(str(database), 5.0, ready))
    holder.start()
    try:
        assert ready.wait(60)
        with pytest.raises(duckdb.IOException, match="lock"):
            duckdb.connect(str(database))
    finally:
        holder.join()


def test_busy_catalog_reports_lock_file_and_remedy(tmp_path):
    database = tmp_path / "catalog.duckdb"
    holder = DuckDBCatalog(database)
    waiting = DuckDBCatalog(database, lock_timeout_s=0.2)
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    process = context.Process(target=_hold_catalog, args=(str(database), 3.0, ready))
    process.start()
    try:
        assert ready.wait(60)
        with pytest.raises(CatalogBusyError, match=r"catalog\.duckdb\.lock.*lock_timeout_s"):
            waiting.views()
    finally:
        process.join()
    assert holder.views() == []


def _hold_catalog(database: str, seconds: float, ready) -> None:
    with DuckDBCatalog(Path(database)).connect():
        ready.set()
        time.sleep(seconds)


def test_rebuild_recreates_views_for_every_asset(tmp_path):
    root = tmp_path / "store"
    write_frame(pl.DataFrame({"x": [1]}), partition_file(root, ["bars", "m5"], "EURUSD"))
    write_frame(pl.DataFrame({"x": [2]}), partition_file(root, ["bars", "m5"], "USDJPY"))
    write_frame(pl.DataFrame({"y": [3]}), partition_file(root, ["summary"], None))
    catalog = DuckDBCatalog(tmp_path / "catalog.duckdb")
    rebuilt = catalog.rebuild(root)
    assert sorted(rebuilt.views) == ["bars_m5", "summary"] and rebuilt.failures == []
    assert catalog.query("SELECT sum(x) AS s FROM bars_m5").item() == 3
    assert catalog.query("SELECT symbol FROM bars_m5 ORDER BY 1").get_column(
        "symbol"
    ).to_list() == ["EURUSD", "USDJPY"]
    assert catalog.query("SELECT y FROM summary").item() == 3


def _store_with_bars(root: Path) -> None:
    write_frame(pl.DataFrame({"x": [1]}), partition_file(root, ["bars", "m5"], "EURUSD"))
    write_frame(pl.DataFrame({"y": [3]}), partition_file(root, ["summary"], None))


def test_damaged_catalog_is_set_aside_and_its_views_rebuilt(tmp_path):
    root, database = tmp_path / "store", tmp_path / "catalog.duckdb"
    _store_with_bars(root)
    DuckDBCatalog(database).rebuild(root)
    database.write_bytes(b"garbage" * 1000)
    warnings = []
    catalog = DuckDBCatalog(database, warn=warnings.append)
    assert catalog.register_asset(root, ["bars", "m5"], partitioned=True) == "bars_m5"
    assert catalog.views() == ["bars_m5", "summary"]  # every view, not just the one written
    (aside,) = tmp_path.glob("catalog.duckdb.damaged-*")
    assert aside.read_bytes() == b"garbage" * 1000
    assert len(warnings) == 1 and str(aside) in warnings[0]
    assert "python -m forex_assets catalog rebuild" in warnings[0]


def test_registries_survive_a_lost_or_damaged_catalog(tmp_path):
    root, database = tmp_path / "store", tmp_path / "catalog.duckdb"
    _store_with_bars(root)
    catalog = DuckDBCatalog(database)
    catalog.replace_run_rows(
        "runs_seen", "CREATE TABLE IF NOT EXISTS runs_seen (symbol VARCHAR, run_id VARCHAR)",
        [("EURUSD", "r1")], [("EURUSD", "r1")],
    )  # fmt: skip
    database.unlink()
    assert catalog.query("SELECT run_id FROM runs_seen").item() == "r1"
    database.write_bytes(b"garbage")
    assert catalog.query("SELECT run_id FROM runs_seen").item() == "r1"
    assert (tmp_path / "registry.duckdb").exists()


def test_registries_of_an_old_catalog_file_move_to_the_registry(tmp_path):
    database = tmp_path / "catalog.duckdb"
    old = duckdb.connect(str(database))
    old.execute("CREATE TABLE model_registry AS SELECT 'EURUSD' AS symbol, 'r1' AS run_id")
    old.execute("CREATE VIEW bars_m5 AS SELECT 1 AS x")
    old.close()
    warnings = []
    catalog = DuckDBCatalog(database, warn=warnings.append)
    assert catalog.registries() == ["model_registry"]
    assert catalog.query("SELECT run_id FROM model_registry").item() == "r1"
    assert warnings == [f"copied table model_registry from {database} into {catalog.registry}"]
    database.unlink()
    assert catalog.query("SELECT symbol FROM model_registry").item() == "EURUSD"


def test_a_missing_view_is_registered_when_a_query_names_it(tmp_path):
    root, database = tmp_path / "store", tmp_path / "catalog.duckdb"
    _store_with_bars(root)
    catalog = DuckDBCatalog(database)
    assert catalog.query("SELECT x FROM bars_m5", store=root).item() == 1
    assert catalog.views() == ["bars_m5"]


def test_query_errors_are_one_line_and_name_what_exists(tmp_path):
    root, database = tmp_path / "store", tmp_path / "catalog.duckdb"
    _store_with_bars(root)
    catalog = DuckDBCatalog(database)
    catalog.rebuild(root)
    with pytest.raises(CatalogError) as raised:
        catalog.query("SELECT * FROM bars_h4", store=root)
    message = str(raised.value)
    assert "\n" not in message and str(database) in message
    assert "bars_h4 does not exist" in message and "views bars_m5, summary" in message
    with pytest.raises(CatalogError, match=r"catalog rebuild"):
        catalog.query("SELECT * FROM bars_h4")  # without the store: say which command
    with pytest.raises(CatalogError, match=r"^query failed on catalog .*Parser Error"):
        catalog.query("SELEC 1")


def test_damaged_registry_is_named_not_replaced(tmp_path):
    catalog = DuckDBCatalog(tmp_path / "catalog.duckdb")
    catalog.views()
    catalog.registry.write_bytes(b"garbage" * 1000)
    with pytest.raises(CatalogError, match=r"registry .*registry\.duckdb cannot be read.*mv "):
        catalog.query("SELECT 1")
    assert catalog.registry.read_bytes() == b"garbage" * 1000


def test_views_lost_while_writing_a_registry_are_rebuilt_by_the_next_registration(tmp_path):
    root, database = tmp_path / "store", tmp_path / "catalog.duckdb"
    _store_with_bars(root)
    DuckDBCatalog(database).rebuild(root)
    database.write_bytes(b"garbage")
    # A ledger write finds the damage; it does not know the store, so cannot rebuild.
    DuckDBCatalog(database).replace_run_rows(
        "runs_seen", "CREATE TABLE IF NOT EXISTS runs_seen (symbol VARCHAR, run_id VARCHAR)",
        [], [],
    )  # fmt: skip
    assert DuckDBCatalog(database).views() == []
    DuckDBCatalog(database).register_asset(root, ["summary"], partitioned=False)
    assert DuckDBCatalog(database).views() == ["bars_m5", "summary"]
    assert not DuckDBCatalog(database).rebuild_marker.exists()


def test_a_damaged_partition_costs_its_asset_the_view_and_is_named(tmp_path):
    root, database = tmp_path / "store", tmp_path / "catalog.duckdb"
    _store_with_bars(root)
    damaged = partition_file(root, ["bars", "m5"], "USDJPY")
    write_frame(pl.DataFrame({"x": [2]}), damaged)
    damaged.write_bytes(b"garbage" * 100)
    catalog = DuckDBCatalog(database)
    rebuilt = catalog.rebuild(root)
    assert rebuilt.views == ["summary"]  # the other assets still get their views
    (failure,) = rebuilt.failures
    assert isinstance(failure, StoredDataError)
    assert str(failure).startswith(f"asset bars/m5 partition USDJPY: {damaged} cannot be read")
    assert "--select bars/m5 --partition USDJPY`" in str(failure)
    with pytest.raises(StoredDataError, match=r"asset bars/m5 partition USDJPY"):
        catalog.query("SELECT * FROM bars_m5", store=root)  # on demand: named the same way
