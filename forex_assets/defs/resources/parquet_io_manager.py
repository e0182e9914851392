"""IO manager over the Parquet store: atomic writes, catalog views, useful metadata, and
reads that name the asset, partition, file and rebuild command of a damaged partition."""

from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import polars as pl

from forex_assets.defs.resources.duckdb_catalog import DuckDBCatalogResource
from forex_assets.storage.catalog import REBUILD_COMMAND, CatalogBusyError, CatalogError
from forex_assets.storage.damage import StoredDataError
from forex_assets.storage.parquet_store import partition_file, read_partition, write_frame


class ParquetIOManager(dg.ConfigurableIOManager):
    """Stores polars (or pandas) frames as `<root>/<key>/symbol=<partition>/data.parquet`.

    Loads return polars frames: one frame for one partition, a dict keyed by partition
    when a downstream asset reads several.
    """

    root: str
    catalog: DuckDBCatalogResource

    def _file(self, key: dg.AssetKey, partition: str | None) -> Path:
        return partition_file(Path(self.root), key.path, partition)

    def handle_output(
        self, context: dg.OutputContext, obj: pl.DataFrame | pd.DataFrame | None
    ) -> None:
        if obj is None:
            return
        if isinstance(obj, pd.DataFrame):
            obj = pl.from_pandas(obj)
        if not isinstance(obj, pl.DataFrame):
            raise TypeError(
                f"asset {context.asset_key.to_user_string()} returned {type(obj).__name__}; "
                "ParquetIOManager stores polars or pandas DataFrames. Return a DataFrame or "
                "give the asset another io_manager_key."
            )
        partition = context.asset_partition_key if context.has_asset_partitions else None
        path = self._file(context.asset_key, partition)
        write_frame(obj, path)
        metadata = {
            "dagster/row_count": obj.height,
            "dagster/uri": dg.MetadataValue.path(str(path)),
            "columns": obj.width,
            "bytes": path.stat().st_size,
        }
        view = self._register_view(context, partition, path)
        context.add_output_metadata(metadata | ({"duckdb_view": view} if view else {}))

    def _register_view(
        self, context: dg.OutputContext, partition: str | None, path: Path
    ) -> str | None:
        """The asset's catalog view. The data is already written, so a catalog that cannot
        take the view only warns: a query registers it on demand, or `catalog rebuild`."""
        try:
            return self.catalog.get_catalog(context.log.warning).register_asset(
                Path(self.root), context.asset_key.path, partitioned=partition is not None
            )
        except (CatalogBusyError, CatalogError, StoredDataError, duckdb.Error, OSError) as error:
            where = f" partition {partition}" if partition is not None else ""
            context.log.warning(
                f"asset {context.asset_key.to_user_string()}{where}: written to {path}, but "
                f"its catalog view was not registered ({error}); a query registers it on "
                f"demand, or run `{REBUILD_COMMAND}`"
            )
            return None

    def load_input(self, context: dg.InputContext) -> pl.DataFrame | dict[str, pl.DataFrame]:
        key = context.asset_key
        if not context.has_asset_partitions:
            return self.read(key, None)
        partitions = context.asset_partition_keys
        if len(partitions) == 1:
            return self.read(key, partitions[0])
        return {p: self.read(key, p) for p in partitions}

    def read(self, key: dg.AssetKey, partition: str | None) -> pl.DataFrame:
        """One stored partition (or the unpartitioned asset); a missing or damaged file
        raises `StoredDataError` with the asset, partition, path and rebuild command."""
        return read_partition(Path(self.root), key.path, partition)
