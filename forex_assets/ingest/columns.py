"""Bars in named columns of any common spelling, timestamps in any common layout.

Shared by the header-driven formats (CSV, Parquet): which file column is the time (or
date + time), open, high, low, close, volume and spread, and how its time values are
written (epoch numbers, ISO with an offset, or a naive layout on the source clock).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from forex_assets.ingest.bar_format import BarFileError
from forex_assets.ingest.parsing import epoch_times, parse_time, with_errors
from forex_assets.ingest.timezones import SourceTimezone
from forex_assets.market.bar_schema import PRICE_COLUMNS, TIME


def canonical(name: str) -> str:
    """A column name without case, spaces, quotes, brackets, underscores, dashes or dots."""
    return re.sub(r"[\s<>\"'_\-.]", "", name).lower()


COLUMN_ALIASES: dict[str, set[str]] = {
    "time": {
        "time", "timestamp", "datetime", "datetimeutc", "timeutc", "time(utc)", "gmttime",
        "localtime", "date_time", "dt", "ts", "index", "level0", "unnamed:0", "",
        "opentime", "bartime",
        # pandas stores an unnamed index in Parquet as "__index_level_0__".
        "indexlevel0",
    },
    "date": {"date", "day"},
    "clock": {"time", "clock", "hour"},
    "open": {"open", "o", "openbid", "bidopen", "openprice", "first"},
    "high": {"high", "h", "highbid", "bidhigh", "highprice", "max"},
    "low": {"low", "l", "lowbid", "bidlow", "lowprice", "min"},
    "close": {"close", "c", "closebid", "bidclose", "closeprice", "last"},
    "volume": {"volume", "vol", "v", "tickvol", "tickvolume", "ticks", "realvolume", "volumes"},
    "spread": {"spread"},
}  # fmt: skip

_NAIVE_TIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y.%m.%d %H:%M:%S",
    "%Y.%m.%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%d.%m.%Y %H:%M:%S%.f",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%Y%m%d %H%M%S",
    "%Y%m%d %H:%M:%S",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
)
_AWARE_TIME_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S%.f%z",
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%d %H:%M:%S%z",
)
_OFFSET_SUFFIX_RE = r"(?:Z|[+-]\d{2}:?\d{2})$"


def looks_like_header(line: str) -> bool:
    """Whether `line` names an open and a close column, in any common spelling."""
    fields = [canonical(f) for f in re.split(r"[,;\t|]", line)]
    return any(f in COLUMN_ALIASES["open"] for f in fields) and any(
        f in COLUMN_ALIASES["close"] for f in fields
    )


def map_columns(path: Path, names: Sequence[str]) -> dict[str, str]:
    """Map canonical roles (time/date/clock/open/...) to the file's own column names."""
    canonical_names = {name: canonical(name) for name in names}
    roles: dict[str, str] = {}
    for role in ("open", "high", "low", "close", "volume", "spread"):
        for name in names:
            if canonical_names[name] in COLUMN_ALIASES[role] and name not in roles.values():
                roles[role] = name
                break
    date = next((n for n in names if canonical_names[n] in COLUMN_ALIASES["date"]), None)
    clock = next(
        (n for n in names if canonical_names[n] in COLUMN_ALIASES["clock"] and n != date), None
    )
    stamp = next(
        (
            n
            for n in names
            if canonical_names[n] in COLUMN_ALIASES["time"] and n not in roles.values()
        ),
        None,
    )
    if date is not None and clock is not None:
        roles["date"], roles["clock"] = date, clock
    elif stamp is not None:
        roles["time"] = stamp
    elif date is not None:
        roles["time"] = date
    missing = [r for r in PRICE_COLUMNS if r not in roles]
    if "time" not in roles and "date" not in roles:
        missing.insert(0, "time")
    if missing:
        raise BarFileError(
            path,
            f"no column for {missing} among {list(names)}; expected a time (or date + time) "
            "column and open/high/low/close columns, volume optional.",
        )
    return roles


def parse_text_timestamps(
    path: Path, frame: pl.DataFrame, text: pl.Expr, tz: SourceTimezone
) -> pl.DataFrame:
    """Timestamps of unknown layout: epoch numbers, ISO with offsets, or a naive format."""
    stripped = text.str.strip_chars().str.strip_chars('"')
    values = frame.select(stripped.alias("t")).get_column("t")
    sample = values.drop_nulls().head(1000)
    if sample.len() == 0:
        raise BarFileError(path, "the time column is empty")
    # The layout is what most values look like, not all: one garbage row must stay a row
    # error instead of making an epoch or ISO-offset file unreadable.
    if sample.str.contains(r"^\d{9,19}$").mean() > 0.5:
        return epoch_times(frame, stripped, values)
    if sample.str.contains(_OFFSET_SUFFIX_RE).mean() > 0.5:
        normalized = stripped.str.replace(r"Z$", "+00:00")
        fmt = _best_format(path, frame, normalized, _AWARE_TIME_FORMATS, aware=True)
        if fmt is None:
            raise BarFileError(
                path, f"time values such as {sample[0]!r} carry an offset in no known layout"
            )
        parsed = normalized.str.to_datetime(fmt, strict=False, time_unit="us", time_zone="UTC")
        checked = with_errors(
            frame.with_columns(parsed.alias("_utc")),
            pl.col("_utc").is_null(),
            pl.format(f"time {{}} does not match {fmt}", stripped),
        )
        return checked.with_columns(pl.col("_utc").alias(TIME)).drop("_utc")
    fmt = _best_format(path, frame, stripped, _NAIVE_TIME_FORMATS, aware=False)
    if fmt is None:
        raise BarFileError(
            path,
            f"time values such as {sample[0]!r} match no known layout; write them as ISO 8601 "
            "(2023-01-02 17:00:00) or epoch seconds/milliseconds.",
        )
    return parse_time(frame, stripped, fmt, tz)


def _best_format(
    path: Path, frame: pl.DataFrame, text: pl.Expr, formats: Sequence[str], aware: bool
) -> str | None:
    """The format that parses the most values; day/month order must not be ambiguous."""
    head = frame.head(20_000)
    kwargs = {"time_zone": "UTC"} if aware else {}
    scores = head.select(
        text.str.to_datetime(fmt, strict=False, time_unit="us", **kwargs)
        .is_not_null()
        .sum()
        .alias(str(i))
        for i, fmt in enumerate(formats)
    ).row(0)
    best = int(np.argmax(scores))
    if scores[best] == 0:
        return None
    chosen = formats[best]
    if chosen.startswith("%d/%m"):
        twin = formats.index(chosen.replace("%d/%m", "%m/%d"))
        if scores[twin] == scores[best]:
            raise BarFileError(
                path,
                "dates like 01/02/2023 are ambiguous (day/month or month/day); write ISO dates",
            )
    return chosen
