"""Asset checks: quality gates evaluated in the same step that produces the bars.

Bar integrity (monotonic UTC index, OHLC consistency, unique timestamps) blocks
downstream assets when it fails: features computed on broken bars are worse than none.
Session coverage only warns, since thin instruments and holidays legitimately miss bars.
Running the checks inside the producing step costs no extra process per check.
"""

from collections.abc import Callable, Iterator

import dagster as dg
import polars as pl

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
