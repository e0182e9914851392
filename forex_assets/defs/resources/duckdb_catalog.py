"""The DuckDB catalog as a resource, so assets and the IO manager share one lock file."""

from collections.abc import Callable
from pathlib import Path

import dagster as dg

from forex_assets.storage.catalog import DEFAULT_LOCK_TIMEOUT_S, DuckDBCatalog


class DuckDBCatalogResource(dg.ConfigurableResource):
    """A DuckDB file of views over the Parquet store, with the registries beside it (see
    `forex_assets.storage.catalog`)."""

    database: str
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S

    def get_catalog(self, warn: Callable[[str], None] | None = None) -> DuckDBCatalog:
        """`warn`: where repairs are reported (a step's `context.log.warning`)."""
        return DuckDBCatalog(Path(self.database), self.lock_timeout_s, warn)
