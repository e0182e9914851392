"""Column layout of bars, shared by every reader, the validator and the resampler.

Times are UTC at microsecond resolution. `volume` is tick volume where the source has it
and null where it has none (a 0 would claim a fact the file never stated). `spread` is in
price units, null when unknown.
"""

from __future__ import annotations

import polars as pl

TIME = "time"
PRICE_COLUMNS = ("open", "high", "low", "close")
UTC_TIME = pl.Datetime("us", "UTC")

M1_SCHEMA: dict[str, pl.DataType] = {
    TIME: UTC_TIME,
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
    "spread": pl.Float64(),
}

# A resampled bar also carries its exclusive end, how many M1 bars built it, and whether
# its period had fully elapsed when the data ended.
TIMEFRAME_BAR_SCHEMA: dict[str, pl.DataType] = {
    TIME: UTC_TIME,
    "close_time": UTC_TIME,
    **{name: dtype for name, dtype in M1_SCHEMA.items() if name != TIME},
    "bar_count": pl.UInt32(),
    "complete": pl.Boolean(),
}
