"""Asset checks: quality gates evaluated in the same step that produces the bars.

Bar integrity (monotonic UTC index, OHLC consistency, unique timestamps) blocks
downstream assets when it fails: features computed on broken bars are worse than none.
Session coverage only warns, since thin instruments and holidays legitimately miss bars.
Running the checks inside the producing step costs no extra process per check.
"""

import math
from collections.abc import Callable, Iterator

import dagster as dg
import polars as pl

from forex_assets.defs.keys import (
    DEFLATED_SHARPE_RATIO,
    FEATURE_MATRIX,
    M1_BARS,
    PBO,
    TRAINED_MODELS,
)
from forex_assets.defs.resources import MarketCalendarResource, ParquetIOManager
from forex_assets.features.feature_config import FeatureSettings
from forex_assets.features.look_ahead import audit_look_ahead
from forex_assets.market import bar_integrity
from forex_assets.market.fx_calendar import FxCalendar
from forex_assets.market.timeframes import Timeframe

# Share of expected trading-hour bars below which coverage warns. Major pairs from
# HistData/Dukascopy cover > 97 % of trading minutes; a lower share means missing files.
DEFAULT_MIN_COVERAGE = 0.9

_BLOCKING_BAR_CHECKS: dict[
    str, tuple[str, Callable[[pl.DataFrame], bar_integrity.IntegrityResult]]
] = {
    "monotonic_utc_index": (
        "Bar times are UTC and strictly increasing.",
        bar_integrity.monotonic_utc_index,
    ),
    "ohlc_consistency": (
        "Prices are finite and positive; high >= max(open, close) and low <= min(open, close).",
        bar_integrity.ohlc_consistency,
    ),
    "unique_timestamps": ("No two bars share a timestamp.", bar_integrity.unique_timestamps),
}
SESSION_COVERAGE = "session_coverage"
MODEL_GATE = "deflated_sharpe_and_pbo"


def bar_check_specs(asset_key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    specs = [
        dg.AssetCheckSpec(name, asset=asset_key, description=description, blocking=True)
        for name, (description, _) in _BLOCKING_BAR_CHECKS.items()
    ]
    specs.append(
        dg.AssetCheckSpec(
            SESSION_COVERAGE,
            asset=asset_key,
            description="Bars cover the expected share of FX trading hours (weekends excluded).",
        )
    )
    return specs


def bar_check_results(
    asset_key: dg.AssetKey,
    bars: pl.DataFrame,
    timeframe: Timeframe,
    calendar: FxCalendar,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
) -> Iterator[dg.AssetCheckResult]:
    for name, (_, check) in _BLOCKING_BAR_CHECKS.items():
        result = check(bars)
        yield dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=name,
            passed=result.passed,
            metadata=dict(result.details),
        )
    coverage = bar_integrity.session_coverage(bars, timeframe, calendar, min_coverage)
    yield dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=SESSION_COVERAGE,
        passed=coverage.passed,
        severity=dg.AssetCheckSeverity.WARN,
        metadata=dict(coverage.details),
    )


class ModelGateConfig(dg.Config):
    """Deflated Sharpe at least `min_deflated_sharpe` (0.95: the selected strategy's Sharpe
    beats the best expected from that many trials by luck, at 95 % confidence) and a
    probability of backtest overfitting at most `max_pbo`. A minimum of 0 or a maximum of 1
    switches that half of the gate off (then a value that could not be estimated passes)."""

    min_deflated_sharpe: float = 0.95
    max_pbo: float = 0.5


def _latest_metadata(
    context: dg.AssetCheckExecutionContext, asset_key: dg.AssetKey
) -> dict[str, object]:
    partition = context.op_execution_context.partition_key
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition]), limit=1
    ).records
    if not records or records[0].asset_materialization is None:
        raise dg.Failure(
            f"{asset_key.to_user_string()} has never been materialized for {partition}; "
            "materialize it (e.g. the symbol_pipeline job) before the gate can judge it."
        )
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def build_quality_checks(settings: FeatureSettings) -> list[dg.AssetChecksDefinition]:
    """Gates that guard what flows downstream: no look-ahead in the features, and a model
    that beat chance honestly before anything trades on it."""

    @dg.asset_check(
        asset=FEATURE_MATRIX,
        additional_deps=[M1_BARS],
        blocking=True,
        description=(
            "Rebuilds the matrix from the M1 bars before a cut and requires every stored row "
            "that closed by the cut to be identical: a feature that changes when the future "
            "is deleted is look-ahead."
        ),
    )
    def no_look_ahead(
        context: dg.AssetCheckExecutionContext,
        io_manager: dg.ResourceParam[ParquetIOManager],
        market_calendar: MarketCalendarResource,
    ) -> dg.AssetCheckResult:
        # Read the run's partition explicitly: an asset check's inputs are not partition-
        # aware in Dagster 1.13 and would load every partition of the asset.
        partition = context.op_execution_context.partition_key
        report = audit_look_ahead(
            io_manager.read(M1_BARS, partition),
            io_manager.read(FEATURE_MATRIX, partition),
            settings,
            market_calendar.calendar,
        )
        return dg.AssetCheckResult(
            passed=report.passed,
            metadata={
                "cut": str(report.cut),
                "rows_compared": report.rows_compared,
                "values_compared": report.values_compared,
                "mismatches": report.mismatches,
                "first_mismatch": dg.MetadataValue.json(report.first_mismatch or {}),
            },
            description=(
                "no value changed when the data after the cut was removed"
                if report.passed
                else f"{report.mismatches} values depend on data after their row closed"
                if report.rows_compared
                else "no stored row closed before the cut: nothing to compare"
            ),
        )

    @dg.asset_check(
        asset=TRAINED_MODELS,
        name=MODEL_GATE,
        blocking=True,
        description=(
            "Paper trading only trades models whose out-of-fold results survive the "
            "multiple-testing deflation (Deflated Sharpe) and are unlikely to be overfit "
            "(PBO). Reads the latest trained_models materialization of the partition."
        ),
    )
    def deflated_sharpe_and_pbo(
        context: dg.AssetCheckExecutionContext, config: ModelGateConfig
    ) -> dg.AssetCheckResult:
        metadata = _latest_metadata(context, TRAINED_MODELS)
        dsr = float(metadata.get(DEFLATED_SHARPE_RATIO, math.nan))
        pbo = float(metadata.get(PBO, math.nan))
        problems = []
        if config.min_deflated_sharpe > 0 and not dsr >= config.min_deflated_sharpe:
            why = metadata.get("dsr_note", "") if math.isnan(dsr) else ""
            problems.append(
                f"Deflated Sharpe {dsr:.3f} is below {config.min_deflated_sharpe} {why}".strip()
            )
        if config.max_pbo < 1 and not pbo <= config.max_pbo:
            why = f" ({metadata.get('pbo_note', '')})" if math.isnan(pbo) else ""
            problems.append(f"PBO {pbo:.3f}{why} is above {config.max_pbo}")
        return dg.AssetCheckResult(
            passed=not problems,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                DEFLATED_SHARPE_RATIO: dsr,
                PBO: pbo,
                "min_deflated_sharpe": config.min_deflated_sharpe,
                "max_pbo": config.max_pbo,
                "selected_strategy": str(metadata.get("selected_strategy", "")),
            },
            description=(
                "; ".join(problems) + ". The model may not feed paper_trading; lower the "
                "thresholds in the check's config only to study a model, not to trade it."
                if problems
                else "the model's out-of-fold edge survived deflation and PBO"
            ),
        )

    return [no_look_ahead, deflated_sharpe_and_pbo]
