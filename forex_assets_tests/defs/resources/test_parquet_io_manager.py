"""The Parquet IO manager in real Dagster runs: damaged inputs are named, and a catalog
that cannot take a view does not fail a step whose data is written."""

import dagster as dg
import polars as pl
import pytest

from forex_assets.defs.resources import DuckDBCatalogResource, ParquetIOManager
from forex_assets.storage.catalog import DuckDBCatalog

PARTITIONS = dg.StaticPartitionsDefinition(["EURUSD"])


@dg.asset(partitions_def=PARTITIONS, key_prefix="prices")
def quotes() -> pl.DataFrame:
    return pl.DataFrame({"close": [1.1, 1.2]})


@dg.asset(partitions_def=PARTITIONS, ins={"quotes": dg.AssetIn(["prices", "quotes"])})
def signal(quotes: pl.DataFrame) -> pl.DataFrame:
    return quotes.with_columns(pl.col("close") * 2)


@pytest.fixture
def setup(tmp_path):
    catalog = DuckDBCatalogResource(database=str(tmp_path / "catalog.duckdb"))
    resources = {"io_manager": ParquetIOManager(root=str(tmp_path / "store"), catalog=catalog)}
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        yield tmp_path, resources, instance


def _innermost(error) -> str:
    while error.cause is not None:
        error = error.cause
    return error.message


def test_damaged_input_partition_fails_naming_asset_partition_path_and_rebuild(setup):
    tmp_path, resources, instance = setup
    assert dg.materialize([quotes, signal], partition_key="EURUSD", resources=resources,
                          instance=instance).success  # fmt: skip
    stored = tmp_path / "store" / "prices" / "quotes" / "symbol=EURUSD" / "data.parquet"
    stored.write_bytes(b"garbage" * 100)
    result = dg.materialize(
        [quotes, signal], selection=[signal], partition_key="EURUSD", resources=resources,
        instance=instance, raise_on_error=False,
    )  # fmt: skip
    assert not result.success
    (failure,) = result.get_step_failure_events()
    message = _innermost(failure.step_failure_data.error)
    assert f"StoredDataError: asset prices/quotes partition EURUSD: {stored} cannot be" in message
    assert "File out of specification" in message
    assert "`dagster asset materialize -m forex_assets --select prices/quotes " in message


def test_view_that_cannot_be_registered_warns_and_the_step_succeeds(setup):
    tmp_path, resources, instance = setup
    (tmp_path / "registry.duckdb").write_bytes(b"garbage" * 1000)  # the catalog cannot open
    result = dg.materialize([quotes], partition_key="EURUSD", resources=resources,
                            instance=instance)  # fmt: skip
    assert result.success
    stored = tmp_path / "store" / "prices" / "quotes" / "symbol=EURUSD" / "data.parquet"
    assert pl.read_parquet(stored).height == 2
    (materialization,) = result.asset_materializations_for_node("prices__quotes")
    assert "duckdb_view" not in materialization.metadata
    warnings = [e.message for e in instance.all_logs(result.run_id) if e.level == 30 and e.message]
    assert any(
        f"written to {stored}, but its catalog view was not registered" in w
        and "python -m forex_assets catalog rebuild" in w
        for w in warnings
    )
    (tmp_path / "registry.duckdb").unlink()  # once the catalog opens, queries find the view
    catalog = DuckDBCatalog(tmp_path / "catalog.duckdb")
    assert catalog.query("SELECT count(*) FROM prices_quotes", store=tmp_path / "store").item() == 2


def test_damaged_sibling_partition_warns_by_name_and_the_step_succeeds(setup):
    tmp_path, resources, instance = setup
    sibling = tmp_path / "store" / "prices" / "quotes" / "symbol=USDJPY" / "data.parquet"
    sibling.parent.mkdir(parents=True)
    sibling.write_bytes(b"garbage" * 100)  # the view's scan reads it too
    result = dg.materialize([quotes], partition_key="EURUSD", resources=resources,
                            instance=instance)  # fmt: skip
    assert result.success
    warnings = [e.message for e in instance.all_logs(result.run_id) if e.level == 30]
    assert any(f"asset prices/quotes partition USDJPY: {sibling} cannot be read" in w
               for w in warnings)  # fmt: skip
