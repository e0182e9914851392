"""M1 -> any timeframe, on the FX session clock.

Open is the first M1 open, high the max, low the min, close the last close, volume the
sum (null when no M1 bar in the period had a volume), spread the mean. A bar whose period
had not fully elapsed when the data ended is kept but marked `complete = False`, so
consumers that must only see finished bars (as-of joins of higher timeframes) can filter
it out instead of silently mixing a partial bar with finished ones.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from forex_assets.market.bar_schema import TIME, TIMEFRAME_BAR_SCHEMA
from forex_assets.market.fx_calendar import FxCalendar
from forex_assets.market.timeframes import Timeframe, bar_close_session, bar_open_session

M1_BAR_LENGTH = timedelta(minutes=1)
# Bars up to a day long never contain a DST switch: New York switches at 02:00 on a Sunday,
# inside the weekend closure, and a bar only exists where M1 bars do. For those bars the
# UTC open is the first M1 time minus its offset into the bar, which is far cheaper than a
# timezone conversion per bar. Weeks and months span switches and are converted exactly.
LONGEST_FIXED_OFFSET_BAR = Timeframe.D1


def resample_bars(m1: pl.DataFrame, timeframe: Timeframe, calendar: FxCalendar) -> pl.DataFrame:
    """Aggregate validated M1 bars (sorted, unique UTC times) into `timeframe` bars."""
    if m1.height == 0:
        return pl.DataFrame(schema=TIMEFRAME_BAR_SCHEMA)
    session = calendar.to_session_clock(pl.col(TIME))
    bars = (
        m1.lazy()
        .with_columns(_session=session)
        .with_columns(
            _bucket=bar_open_session(pl.col("_session"), timeframe, calendar).set_sorted()
        )
        .group_by("_bucket", maintain_order=True)
        .agg(
            pl.col(TIME).first().alias("_first_time"),
            pl.col("_session").first().alias("_first_session"),
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.when(pl.col("volume").count() > 0).then(pl.col("volume").sum()).alias("volume"),
            pl.col("spread").mean(),
            pl.len().cast(pl.UInt32).alias("bar_count"),
        )
    )
    close_session = bar_close_session(pl.col("_bucket"), timeframe)
    if timeframe.nominal_minutes <= LONGEST_FIXED_OFFSET_BAR.nominal_minutes:
        opened = pl.col("_first_time") - (pl.col("_first_session") - pl.col("_bucket"))
        bars = bars.with_columns(opened.alias(TIME)).with_columns(
            (pl.col(TIME) + (close_session - pl.col("_bucket"))).alias("close_time")
        )
    else:
        bars = bars.with_columns(
            calendar.from_session_clock(pl.col("_bucket")).alias(TIME),
            calendar.from_session_clock(close_session).alias("close_time"),
        )
    data_end = m1.get_column(TIME).max() + M1_BAR_LENGTH
    return (
        bars.with_columns((pl.col("close_time") <= pl.lit(data_end)).alias("complete"))
        .select([pl.col(name).cast(dtype) for name, dtype in TIMEFRAME_BAR_SCHEMA.items()])
        .collect()
    )
