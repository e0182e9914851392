"""Parquet: the CSV format's columns in any common spelling, or a pandas datetime index.

A tz-aware time column keeps its zone; naive times are on the declared (default UTC)
clock. Recognised from its magic bytes or its suffix, before anything is decoded as text.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from forex_assets.ingest.bar_format import BarFileError, BarFormat, ReadRequest, Rows
from forex_assets.ingest.columns import map_columns, parse_text_timestamps
from forex_assets.ingest.parsing import epoch_times, parse_numbers
from forex_assets.market.bar_schema import PRICE_COLUMNS, TIME

_SUFFIXES = (".parquet", ".pq")


def _detect(path: Path, head: bytes) -> bool:
    return head.startswith(b"PAR1") or path.suffix.lower() in _SUFFIXES


def _read(request: ReadRequest) -> Rows:
    """The whole file (a columnar file has no lines to take a head of)."""
    path, tz = request.path, request.timezone
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several unrelated types for corrupt files
        raise BarFileError(path, f"unreadable Parquet ({type(exc).__name__}: {exc})") from None
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    roles = map_columns(path, frame.columns)
    if "time" not in roles:
        raise BarFileError(
            path, "Parquet bar files need one timestamp column (or a datetime index)"
        )
    numeric_roles = [r for r in (*PRICE_COLUMNS, "volume", "spread") if r in roles]
    frame = frame.with_row_index("line", offset=1).with_columns(
        pl.col("line").cast(pl.Int64),
        pl.concat_str(
            [pl.col(c).cast(pl.String).fill_null("null") for c in frame.columns], separator=","
        ).alias("raw"),
        error=pl.lit(None, pl.String),
    )
    for role in numeric_roles:
        column = frame.get_column(roles[role])
        if column.dtype.is_numeric():
            frame = frame.with_columns(pl.col(roles[role]).cast(pl.Float64).alias(role))
        else:
            frame = frame.with_columns(pl.col(roles[role]).cast(pl.String).alias(role))
            frame = parse_numbers(frame, [role])
    time_column = frame.get_column(roles["time"])
    if isinstance(time_column.dtype, pl.Datetime):
        if time_column.dtype.time_zone is None:
            stamp = tz.to_utc(pl.col(roles["time"]).dt.cast_time_unit("us"))
        else:
            stamp = pl.col(roles["time"]).dt.convert_time_zone("UTC").dt.cast_time_unit("us")
        frame = frame.with_columns(stamp.alias(TIME))
    elif time_column.dtype.is_integer():
        frame = epoch_times(
            frame, pl.col(roles["time"]).cast(pl.String), time_column.cast(pl.String)
        )
    else:
        frame = parse_text_timestamps(path, frame, pl.col(roles["time"]).cast(pl.String), tz)
    missing = [pl.lit(None, pl.Float64).alias(r) for r in ("volume", "spread") if r not in roles]
    return frame.with_columns(missing), ()


FORMAT = BarFormat(
    name="parquet",
    title="Parquet",
    example="the CSV columns, or a pandas datetime index",
    suffixes=_SUFFIXES,
    default_timezone="UTC",
    precedence=10,
    detect_bytes=_detect,
    read=_read,
)
