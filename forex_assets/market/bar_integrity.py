"""Integrity tests of a bar frame, as plain functions the asset checks call.

Each returns whether the bars pass and the numbers behind the verdict, so a failing
check in the UI says how many rows broke the rule and shows the first of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import polars as pl

from forex_assets.market.bar_schema import TIME
from forex_assets.market.fx_calendar import FxCalendar, in_weekend_closure
from forex_assets.market.timeframes import Timeframe, bar_open_session

EXAMPLES = 5


@dataclass(frozen=True)
class IntegrityResult:
    passed: bool
    details: dict[str, object] = field(default_factory=dict)


def _examples(frame: pl.DataFrame) -> str:
    return str(frame.head(EXAMPLES).get_column(TIME).dt.to_string("%Y-%m-%d %H:%M").to_list())


def monotonic_utc_index(bars: pl.DataFrame) -> IntegrityResult:
    """Times are UTC and strictly increasing."""
    dtype = bars.schema[TIME]
    is_utc = isinstance(dtype, pl.Datetime) and dtype.time_zone == "UTC"
    backwards = bars.filter(pl.col(TIME).diff() < timedelta(0))
    return IntegrityResult(
        is_utc and backwards.height == 0,
        {
            "time_dtype": str(dtype),
            "backward_steps": backwards.height,
            "first_backward": _examples(backwards),
        },
    )


def unique_timestamps(bars: pl.DataFrame) -> IntegrityResult:
    duplicated = bars.filter(pl.col(TIME).is_duplicated())
    return IntegrityResult(
        duplicated.height == 0,
        {"duplicated_rows": duplicated.height, "examples": _examples(duplicated)},
    )


def ohlc_consistency(bars: pl.DataFrame) -> IntegrityResult:
    """Prices finite and positive, high >= max(open, close), low <= min(open, close)."""
    o, h, lo, c = (pl.col(n) for n in ("open", "high", "low", "close"))
    broken = bars.filter(
        ~pl.all_horizontal(
            [pl.col(n).is_finite() for n in ("open", "high", "low", "close")]
        ).fill_null(False)
        | (pl.min_horizontal(o, h, lo, c) <= 0)
        | (h < pl.max_horizontal(o, c))
        | (lo > pl.min_horizontal(o, c))
    )
    return IntegrityResult(
        broken.height == 0, {"inconsistent_rows": broken.height, "examples": _examples(broken)}
    )


def session_coverage(
    bars: pl.DataFrame, timeframe: Timeframe, calendar: FxCalendar, min_coverage: float
) -> IntegrityResult:
    """Share of the bars the market's trading hours imply between the first and last bar.

    Expected bars are counted from the grid of trading minutes (weekend closure excluded)
    mapped onto the timeframe, so holidays and feed gaps lower the share while weekends
    do not. Low coverage is a warning: thin instruments legitimately miss minutes.
    """
    if bars.height == 0:
        return IntegrityResult(False, {"coverage": 0.0, "reason": "no bars"})
    first, last = bars.get_column(TIME).min(), bars.get_column(TIME).max()
    grid = pl.DataFrame(
        {TIME: pl.datetime_range(first, last, "1m", time_unit="us", time_zone="UTC", eager=True)}
    ).filter(~in_weekend_closure(pl.col(TIME)))
    session = calendar.to_session_clock(pl.col(TIME))
    expected = grid.select(bar_open_session(session, timeframe, calendar).n_unique()).item()
    observed = bars.select(bar_open_session(session, timeframe, calendar).n_unique()).item()
    coverage = observed / max(1, expected)
    return IntegrityResult(
        coverage >= min_coverage,
        {
            "coverage": round(coverage, 6),
            "observed_bars": observed,
            "expected_bars": expected,
            "min_coverage": min_coverage,
        },
    )
