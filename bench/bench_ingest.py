"""Ingestion and resampling throughput on two years of M1 bars of one symbol.

Ingestion: our reader + validator (`read_bar_file` with format auto-detection, then
`validate_files`) on the same bars written as HistData ASCII, MetaTrader 4 CSV, a generic
CSV with ISO 8601 timestamps and Parquet, against the pandas code a user would write for
each file (read, parse the time with a known format, convert to UTC, drop rows with
missing/inconsistent prices or in the weekend closure, drop duplicate times, sort).

Resampling: `resample_bars` for each of the 11 timeframes against
``df.resample(rule).agg(...).dropna()`` on the index shifted to the New York + 7 h session
clock, which pandas cannot do natively and without which its daily bars would close at
UTC midnight instead of 17:00 New York.

Before anything is timed, every result is checked against the generated bars (ingestion)
or against the anchor (resampling); a mismatch raises `BenchCheckError`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

from bench.harness import (
    BenchConfig,
    BenchResult,
    BenchRow,
    Measurement,
    check,
    measure,
    warm_and_check,
)
from forex_assets.ingest.bar_files import read_bar_file
from forex_assets.ingest.sample import generate_sample_m1
from forex_assets.ingest.validation import ValidatedBars, validate_files
from forex_assets.market.bar_schema import PRICE_COLUMNS, TIME
from forex_assets.market.fx_calendar import NEW_YORK, NEW_YORK_CLOSE_SHIFT_HOURS, FxCalendar
from forex_assets.market.resample import resample_bars
from forex_assets.market.timeframes import Timeframe

DESCRIPTION = "ingest (read + validate) of 4 file formats and resampling to all 11 timeframes"

PRICES = list(PRICE_COLUMNS)
SESSION_SHIFT = pd.Timedelta(hours=NEW_YORK_CLOSE_SHIFT_HOURS)
# Prices go through text with at most 6 decimals; parsing can land one ulp away from the
# generator's np.round result, nothing more.
PRICE_TOLERANCE = 1e-9

# pandas rules on the session clock; W1 bars open Monday 00:00 session = Sunday 17:00 NY.
PANDAS_RULES = {
    Timeframe.M1: "1min",
    Timeframe.M3: "3min",
    Timeframe.M5: "5min",
    Timeframe.M15: "15min",
    Timeframe.M30: "30min",
    Timeframe.H1: "1h",
    Timeframe.H2: "2h",
    Timeframe.H4: "4h",
    Timeframe.D1: "1D",
    Timeframe.W1: "W-MON",
    Timeframe.MN1: "MS",
}
PANDAS_AGG = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}

ANCHOR_CHECKS = "dropna, price>0, OHLC consistency, weekend filter, drop_duplicates, sort_index"


# --------------------------------------------------------------------------- files


def _write_histdata(bars: pl.DataFrame, path: Path) -> None:
    """HistData ASCII M1: ``20230101 170000;1.070500;...;0``, fixed EST (UTC-5), 6 decimals."""
    est = pl.col(TIME).dt.replace_time_zone(None) - pl.duration(hours=5)
    bars.select(
        est.dt.strftime("%Y%m%d %H%M%S").alias("stamp"),
        *PRICES,
        pl.lit(0).alias("volume"),
    ).write_csv(path, separator=";", include_header=False, float_precision=6)


def _write_mt4(bars: pl.DataFrame, path: Path) -> None:
    """MetaTrader 4 History Center export: ``2023.01.02,00:00,o,h,l,c,v`` on NY+7 server time."""
    server = pl.col(TIME).dt.convert_time_zone(NEW_YORK).dt.replace_time_zone(None) + pl.duration(
        hours=NEW_YORK_CLOSE_SHIFT_HOURS
    )
    bars.select(
        server.dt.strftime("%Y.%m.%d").alias("date"),
        server.dt.strftime("%H:%M").alias("clock"),
        *PRICES,
        pl.col("volume").cast(pl.Int64),
    ).write_csv(path, include_header=False, float_precision=5)


def _write_csv(bars: pl.DataFrame, path: Path) -> None:
    """Generic CSV with a header and ISO 8601 UTC timestamps (``2023-01-01T22:00:00+00:00``)."""
    bars.select(
        pl.col(TIME).dt.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
        *PRICES,
        pl.col("volume").cast(pl.Int64),
    ).write_csv(path)


def _write_parquet(bars: pl.DataFrame, path: Path) -> None:
    bars.select(TIME, *PRICES, "volume").write_parquet(path)


# --------------------------------------------------------------------------- pandas anchors


def _pandas_checks(df: pd.DataFrame) -> pd.DataFrame:
    """What a careful user does after parsing: the basic bar checks, dedup, sort."""
    df = df.dropna(subset=[TIME, *PRICES])
    body_high = df[["open", "close"]].max(axis=1)
    body_low = df[["open", "close"]].min(axis=1)
    session = df[TIME].dt.tz_convert(NEW_YORK).dt.tz_localize(None) + SESSION_SHIFT
    ok = (
        (df[PRICES] > 0).all(axis=1)
        & (df["high"] >= body_high)
        & (df["low"] <= body_low)
        & (session.dt.dayofweek < 5)
    )
    df = df[ok]
    return df.drop_duplicates(subset=TIME, keep="first").set_index(TIME).sort_index()


def _pandas_histdata(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, sep=";", header=None, names=["stamp", *PRICES, "volume"])
    local = pd.to_datetime(df.pop("stamp"), format="%Y%m%d %H%M%S")
    df.insert(0, TIME, (local + pd.Timedelta(hours=5)).dt.tz_localize("UTC"))
    return _pandas_checks(df)


def _pandas_mt4(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, header=None, names=["date", "clock", *PRICES, "volume"])
    local = pd.to_datetime(df.pop("date") + " " + df.pop("clock"), format="%Y.%m.%d %H:%M")
    utc = (
        (local - SESSION_SHIFT)
        .dt.tz_localize(NEW_YORK, ambiguous="NaT", nonexistent="NaT")
        .dt.tz_convert("UTC")
    )
    df.insert(0, TIME, utc)
    return _pandas_checks(df)


def _pandas_csv(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path)
    df[TIME] = pd.to_datetime(df[TIME], format="ISO8601", utc=True)
    return _pandas_checks(df)


def _pandas_parquet(path: Path) -> pd.DataFrame:
    df = pd.read_parquet(path)
    df[TIME] = df[TIME].dt.tz_convert("UTC")
    return _pandas_checks(df)


@dataclass(frozen=True)
class FileCase:
    label: str
    suffix: str
    format: str  # the name of its BarFormat
    write: Callable[[pl.DataFrame, Path], None]
    anchor: Callable[[Path], pd.DataFrame]
    anchor_does: str
    has_volume: bool


FILE_CASES = (
    FileCase(
        "HistData ASCII (EST)",
        ".csv",
        "histdata",
        _write_histdata,
        _pandas_histdata,
        "read_csv(sep=';') + to_datetime(fmt) + 5h -> UTC + checks",
        has_volume=False,
    ),
    FileCase(
        "MetaTrader 4 CSV (NY+7)",
        ".csv",
        "mt4",
        _write_mt4,
        _pandas_mt4,
        "read_csv + date+' '+time + to_datetime(fmt) - 7h, tz_localize(NY) -> UTC + checks",
        has_volume=True,
    ),
    FileCase(
        "generic CSV (ISO 8601)",
        ".csv",
        "csv",
        _write_csv,
        _pandas_csv,
        "read_csv + to_datetime(ISO8601, utc=True) + checks",
        has_volume=True,
    ),
    FileCase(
        "Parquet",
        ".parquet",
        "parquet",
        _write_parquet,
        _pandas_parquet,
        "read_parquet + tz_convert(UTC) + checks",
        has_volume=True,
    ),
)


# --------------------------------------------------------------------------- checks


def _check_ours(case: FileCase, validated: ValidatedBars, expected: pl.DataFrame) -> None:
    where = f"ingest {case.label}"
    check(
        validated.quarantine.height == 0,
        f"{where}: {validated.quarantine.height} rows quarantined, "
        f"reasons {validated.reason_counts()}",
    )
    bars = validated.bars
    check(
        bars.height == expected.height,
        f"{where}: {bars.height} rows ingested, {expected.height} generated",
    )
    check(
        bars.get_column(TIME).equals(expected.get_column(TIME)),
        f"{where}: ingested times differ from the generated ones",
    )
    for column in PRICES:
        diff = (bars.get_column(column) - expected.get_column(column)).abs().max()
        check(
            diff is not None and diff <= PRICE_TOLERANCE,
            f"{where}: {column} differs by up to {diff}",
        )
    volume = bars.get_column("volume")
    if case.has_volume:
        check(
            volume.equals(expected.get_column("volume")),
            f"{where}: volume differs from the generated one",
        )
    else:
        check(volume.null_count() == volume.len(), f"{where}: all-zero volume was not nulled")


def _check_anchor(case: FileCase, frame: pd.DataFrame, expected: pl.DataFrame) -> None:
    where = f"ingest anchor {case.label}"
    check(
        len(frame) == expected.height,
        f"{where}: {len(frame)} rows after checks, {expected.height} generated",
    )
    times = frame.index.as_unit("us").asi8
    expected_times = expected.get_column(TIME).dt.epoch("us").to_numpy()
    check(np.array_equal(times, expected_times), f"{where}: times differ from the generated ones")
    for column in PRICES:
        diff = np.abs(frame[column].to_numpy() - expected.get_column(column).to_numpy()).max()
        check(diff <= PRICE_TOLERANCE, f"{where}: {column} differs by up to {diff}")


def _check_resample(timeframe: Timeframe, ours: pl.DataFrame, anchor: pd.DataFrame) -> None:
    where = f"resample {timeframe.value}"
    check(
        ours.height == len(anchor),
        f"{where}: ours has {ours.height} bars, the pandas anchor {len(anchor)}",
    )
    session = ours.select(FxCalendar().to_session_clock(pl.col(TIME))).to_series()
    check(
        np.array_equal(
            session.dt.epoch("us").to_numpy(), anchor.index.as_unit("us").asi8.astype(np.int64)
        ),
        f"{where}: bar open times differ from the anchor's (session clock)",
    )
    for column in (*PRICES, "volume"):
        ours_values = ours.get_column(column).to_numpy()
        anchor_values = anchor[column].to_numpy()
        check(
            np.array_equal(ours_values, anchor_values),
            f"{where}: {column} differs from the anchor's in "
            f"{int((ours_values != anchor_values).sum())} bars",
        )


# --------------------------------------------------------------------------- resampling


def _pandas_resample(frame: pd.DataFrame, rule: str) -> pd.DataFrame:
    """The naive pandas resample, on the index shifted to the New York + 7 h session clock."""
    session = frame.index.tz_convert(NEW_YORK).tz_localize(None) + SESSION_SHIFT
    shifted = frame.set_axis(session)
    return (
        shifted.resample(rule, closed="left", label="left")
        .agg(PANDAS_AGG)  # type: ignore[arg-type]
        .dropna()
    )


def _bench_resample(bars: pl.DataFrame, config: BenchConfig, result: BenchResult) -> list[BenchRow]:
    calendar = FxCalendar()
    frame = bars.select(TIME, *PRICES, "volume").to_pandas().set_index(TIME)
    n = bars.height
    rows = []
    for timeframe in Timeframe:
        rule = PANDAS_RULES[timeframe]

        def ours(tf: Timeframe = timeframe) -> pl.DataFrame:
            return resample_bars(bars, tf, calendar)

        def anchor(rule: str = rule) -> pd.DataFrame:
            return _pandas_resample(frame, rule)

        ours_bars = warm_and_check(ours, config)
        anchor_bars = warm_and_check(anchor, config)
        _check_resample(timeframe, ours_bars, anchor_bars)
        result.checks.append(
            f"resample {timeframe.value}: {ours_bars.height} bars; open time, OHLC and volume "
            f"equal to the pandas anchor's"
        )
        rows.append(
            BenchRow(
                f"resample {timeframe.value}",
                measure(ours, n, config, warmed=True),
                measure(anchor, n, config, warmed=True),
                f"resample('{rule}').agg(OHLCV).dropna() on NY+7h index",
            )
        )
    total_ours = sum(r.ours.seconds for r in rows)
    total_anchor = sum(r.anchor.seconds for r in rows if r.anchor is not None)
    rows.append(
        BenchRow(
            f"resample all {len(rows)} timeframes (sum)",
            Measurement(total_ours, n * len(rows)),
            Measurement(total_anchor, n * len(rows)),
            "sum of the rows above",
        )
    )
    return rows


# --------------------------------------------------------------------------- entry point


def run(config: BenchConfig) -> BenchResult:
    result = BenchResult(
        name="ingest",
        title=f"{config.years:g} years of {config.symbol} M1 bars",
    )
    bars = generate_sample_m1(config.symbol, years=config.years)
    n = bars.height
    check(n > 0, "the sample generator returned no bars")
    result.notes.append(
        f"input: generate_sample_m1({config.symbol!r}, years={config.years:g}) = {n:,} M1 bars "
        f"{bars.get_column(TIME).min()} .. {bars.get_column(TIME).max()}"
    )

    with tempfile.TemporaryDirectory(prefix="bench_ingest_") as tmp:
        sizes = []
        for case in FILE_CASES:
            path = Path(tmp) / f"{config.symbol}_{case.format}{case.suffix}"
            case.write(bars, path)
            sizes.append(f"{case.label} {path.stat().st_size / 2**20:.1f} MiB")

            def ours(path: Path = path) -> ValidatedBars:
                return validate_files([read_bar_file(path)])

            def anchor(path: Path = path, case: FileCase = case) -> pd.DataFrame:
                return case.anchor(path)

            detected = read_bar_file(path).format
            check(
                detected == case.format,
                f"ingest {case.label}: detected as {detected}, written as {case.format}",
            )
            _check_ours(case, warm_and_check(ours, config), bars)
            _check_anchor(case, warm_and_check(anchor, config), bars)
            result.checks.append(
                f"ingest {case.label}: detected as {case.format}; ours and the anchor "
                f"both return all {n:,} rows, times and OHLC equal to the generated bars"
            )
            result.rows.append(
                BenchRow(
                    f"ingest {case.label}",
                    measure(ours, n, config, warmed=True),
                    measure(anchor, n, config, warmed=True),
                    case.anchor_does,
                )
            )
        result.notes.append("file sizes: " + ", ".join(sizes))

    result.rows += _bench_resample(bars, config, result)
    result.notes += [
        "ingest ours = read_bar_file(path) with format auto-detection + validate_files([...]); "
        "besides parsing it keeps each row's line number and raw text, reports every rejected "
        "row with a reason, and resolves out-of-order rows by longest non-decreasing run.",
        f"ingest anchor checks = {ANCHOR_CHECKS}: it drops bad rows silently and knows the "
        "format and timezone up front.",
        "resample ours = resample_bars(m1, timeframe, FxCalendar()) on UTC bars: 17:00 New York "
        "daily close, also computes spread mean, bar_count, close_time and complete.",
        "resample anchor = index.tz_convert('America/New_York').tz_localize(None) + 7h, then "
        "df.resample(rule, closed='left', label='left').agg({'open':'first','high':'max',"
        "'low':'min','close':'last','volume':'sum'}).dropna(); the shift (timed) gives it the "
        "same session-clock alignment, which pandas cannot do natively. Labels stay on the "
        "session clock (ours converts them back to UTC).",
        "rows/s counts input M1 rows; the total row adds the 11 best times.",
    ]
    return result
