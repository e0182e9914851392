"""The code location: assets, checks, jobs, sensors, resources and the executor."""

import dagster as dg

from forex_assets import settings
from forex_assets.assets.bars import m1_bars, timeframe_bars_assets
from forex_assets.assets.features import feature_assets
from forex_assets.assets.models import model_assets
from forex_assets.assets.strategies import build_strategy_assets
from forex_assets.executor import budgeted_executor
from forex_assets.jobs import symbol_pipeline_job
from forex_assets.resources import (
    BarSourceResource,
    DuckDBCatalogResource,
    MarketCalendarResource,
    ModelStoreResource,
    ParquetIOManager,
)
from forex_assets.sensors import symbol_registry_sensor


def build_resources() -> dict[str, object]:
    """Resources rooted at the project home (see `forex_assets.settings`)."""
    catalog = DuckDBCatalogResource(database=str(settings.catalog_path()))
    return {
        "io_manager": ParquetIOManager(root=str(settings.storage_root()), catalog=catalog),
        "duckdb_catalog": catalog,
        "bar_source": BarSourceResource(
            data_dir=str(settings.data_dir()), sample_years=settings.sample_years()
        ),
        "market_calendar": MarketCalendarResource(),
        "model_store": ModelStoreResource(root=str(settings.models_root())),
    }


def build_definitions() -> dg.Definitions:
    """The code location, with resources resolved from the environment at call time."""
    features = settings.feature_settings()
    return dg.Definitions(
        assets=[
            m1_bars,
            *timeframe_bars_assets,
            *feature_assets(features),
            *model_assets(features),
            *build_strategy_assets(features),
        ],
        jobs=[symbol_pipeline_job],
        sensors=[symbol_registry_sensor],
        resources=build_resources(),
        executor=budgeted_executor,
    )


defs = build_definitions()
