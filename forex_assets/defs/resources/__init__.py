"""Dagster resources: thin, configurable shells over the Dagster-free cores."""

from forex_assets.defs.resources.bar_source import BarSourceResource, FileOverrideConfig
from forex_assets.defs.resources.duckdb_catalog import DuckDBCatalogResource
from forex_assets.defs.resources.market_calendar import MarketCalendarResource
from forex_assets.defs.resources.model_store import ModelStoreResource
from forex_assets.defs.resources.parquet_io_manager import ParquetIOManager
from forex_assets.defs.resources.trading_ledger import TradingLedgerResource

__all__ = [
    "BarSourceResource",
    "DuckDBCatalogResource",
    "FileOverrideConfig",
    "MarketCalendarResource",
    "ModelStoreResource",
    "ParquetIOManager",
    "TradingLedgerResource",
]
