"""IO manager over the Parquet store: atomic writes, catalog views, useful metadata."""

from pathlib import Path

import dagster as dg
import pandas as pd
import polars as pl

from forex_assets.resources.duckdb_catalog import DuckDBCatalogResource
from forex_assets.storage.parquet_store import partition_file, read_frame, write_frame


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
        view = self.catalog.get_catalog().register_asset(
            Path(self.root), context.asset_key.path, partitioned=partition is not None
        )
        context.add_output_metadata(
            {
                "dagster/row_count": obj.height,
                "dagster/uri": dg.MetadataValue.path(str(path)),
                "columns": obj.width,
                "bytes": path.stat().st_size,
                "duckdb_view": view,
            }
        )

    def load_input(self, context: dg.InputContext) -> pl.DataFrame | dict[str, pl.DataFrame]:
        key = context.asset_key
        if not context.has_asset_partitions:
            return self.read(key, None)
        partitions = context.asset_partition_keys
        if len(partitions) == 1:
            return self.read(key, partitions[0])
        return {p: self.read(key, p) for p in partitions}

    def read(self, key: dg.AssetKey, partition: str | None) -> pl.DataFrame:
        """One stored partition (or the unpartitioned asset)."""
        path = self._file(key, partition)
        if not path.exists():
            where = f" partition {partition!r}" if partition else ""
            raise FileNotFoundError(
                f"asset {key.to_user_string()}{where} has not been materialized: {path} does "
                "not exist. Materialize it first (or point the IO manager's root at the store "
                "that holds it)."
            )
        return read_frame(path)
