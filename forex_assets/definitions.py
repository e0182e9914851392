"""The code location: assets, checks, jobs, sensors, resources and the executor."""

import dagster as dg

from forex_assets import settings
from forex_assets.defs.assets.bars import bar_files, m1_bars, timeframe_bars_assets
from forex_assets.defs.assets.features import feature_assets
from forex_assets.defs.assets.models import model_assets
from forex_assets.defs.assets.strategies import build_strategy_assets
from forex_assets.defs.assets.trading import build_paper_trading
from forex_assets.defs.checks import build_quality_checks
from forex_assets.defs.inbox_ingest import inbox_ingest_job
from forex_assets.defs.jobs import (
    paper_trading_job,
    refresh_features_job,
    retrain_job,
    symbol_pipeline_job,
)
from forex_assets.defs.resources import (
    BarSourceResource,
    DuckDBCatalogResource,
    MarketCalendarResource,
    ModelStoreResource,
    ParquetIOManager,
    TradingLedgerResource,
)
from forex_assets.defs.schedules import daily_refresh_schedule, weekly_retrain_schedule
from forex_assets.defs.sensors import (
    data_inbox_sensor,
    inbox_refresh_sensor,
    symbol_registry_sensor,
)
from forex_assets.executor import budgeted_executor


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
        "trading_ledger": TradingLedgerResource(
            directory=str(settings.trading_dir()), risk_ledger=settings.risk_ledger()
        ),
    }


def build_definitions(executor: dg.ExecutorDefinition = budgeted_executor) -> dg.Definitions:
    """The code location, with resources resolved from the environment at call time; the
    same definitions run on a Ray cluster with `forex_assets.ray_definitions`."""
    features = settings.feature_settings()
    return dg.Definitions(
        assets=[
            bar_files,
            m1_bars,
            *timeframe_bars_assets,
            *feature_assets(features),
            *model_assets(features),
            *build_strategy_assets(features),
            build_paper_trading(features),
        ],
        asset_checks=build_quality_checks(features),
        jobs=[
            symbol_pipeline_job,
            refresh_features_job,
            retrain_job,
            paper_trading_job,
            inbox_ingest_job,
        ],
        schedules=[daily_refresh_schedule, weekly_retrain_schedule],
        sensors=[symbol_registry_sensor, data_inbox_sensor, inbox_refresh_sensor],
        resources=build_resources(),
        executor=executor,
    )


defs = build_definitions()
