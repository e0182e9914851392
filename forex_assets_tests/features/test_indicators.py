"""Parity of the feature engine with TA-Lib called directly, column by column.

Every column of the default set must equal `talib_reference` to 1e-9 (relative) after the
warm-up, with the same NaN mask, on generated M1 bars of three very different price
scales, on bars written to real file formats and read back, and on resampled H1 bars.
Then: every indicator is causal, session flags follow each zone's own DST switch, and a
float32 matrix is the float64 one rounded.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forex_assets.features.feature_config import default_indicators
from forex_assets.features.indicator_set import (
    INDICATORS,
    IndicatorSpec,
    compute_indicators,
    feature_columns,
)
from forex_assets.ingest.bar_files import read_bar_file
from forex_assets.ingest.sample import generate_sample_m1
from forex_assets.market.fx_calendar import FxCalendar
from forex_assets.market.instruments import instrument_for
from forex_assets.market.resample import resample_bars
from forex_assets.market.sessions import session_flags
from forex_assets.market.timeframes import Timeframe
from forex_assets_tests.features.talib_reference import REFERENCE_COLUMNS, talib_reference

SPECS = default_indicators()
COLUMNS = list(REFERENCE_COLUMNS)
RTOL = 1e-9
# Absolute slack for values crossing zero (MACD histogram, log returns): 1e-12 of the
# column's largest magnitude, far below anything a real disagreement produces.
ATOL_SCALE = 1e-12

# Four weeks around the 2024 spring switches: New York on 10 March, London on 31 March.
SAMPLE_START = date(2024, 3, 4)
SAMPLE_YEARS = 30 / 365.25

SAMPLES = ("EURUSD", "USDJPY", "XAUUSD")
FILES = ("histdata:EURUSD", "mt4:USDJPY", "csv:XAUUSD")
RESAMPLED = ("H1:EURUSD",)
DATASETS = SAMPLES + FILES + RESAMPLED


@functools.cache
def sample(symbol: str) -> pl.DataFrame:
    return generate_sample_m1(symbol, start=SAMPLE_START, years=SAMPLE_YEARS)


# --------------------------------------------------------------------------- real formats


def _price_text(bars: pl.DataFrame, symbol: str) -> pd.DataFrame:
    decimals = instrument_for(symbol).price_decimals
    frame = bars.select("open", "high", "low", "close").to_pandas()
    return frame.map(lambda value: f"{value:.{decimals}f}")


def write_histdata(bars: pl.DataFrame, symbol: str, directory: Path) -> Path:
    """HistData ASCII M1: `YYYYMMDD HHMMSS;o;h;l;c;0` on a fixed EST (UTC-5) clock."""
    est = bars.get_column("time").to_pandas() - pd.Timedelta(hours=5)
    text = _price_text(bars, symbol)
    text.insert(0, "stamp", est.dt.strftime("%Y%m%d %H%M%S").to_numpy())
    text["volume"] = "0"
    path = directory / f"DAT_ASCII_{symbol}_M1_2024.csv"
    path.write_text(text.to_csv(sep=";", header=False, index=False, lineterminator="\n"))
    return path


def write_mt4(bars: pl.DataFrame, symbol: str, directory: Path) -> Path:
    """MT4 history export: `YYYY.MM.DD,HH:MM,o,h,l,c,v` on New York close server time."""
    utc = bars.get_column("time").to_pandas()
    server = utc.dt.tz_convert("America/New_York").dt.tz_localize(None) + pd.Timedelta(hours=7)
    text = _price_text(bars, symbol)
    text.insert(0, "date", server.dt.strftime("%Y.%m.%d").to_numpy())
    text.insert(1, "clock", server.dt.strftime("%H:%M").to_numpy())
    text["volume"] = bars.get_column("volume").cast(pl.Int64).to_numpy()
    path = directory / f"{symbol}1.csv"
    path.write_text(text.to_csv(header=False, index=False, lineterminator="\n"))
    return path


def write_csv(bars: pl.DataFrame, symbol: str, directory: Path) -> Path:
    """A plain CSV with a header and naive UTC timestamps."""
    text = _price_text(bars, symbol)
    stamps = bars.get_column("time").to_pandas().dt.strftime("%Y-%m-%d %H:%M:%S")
    text.insert(0, "timestamp", stamps.to_numpy())
    text["volume"] = bars.get_column("volume").to_numpy()
    path = directory / f"{symbol}_bars.csv"
    path.write_text(text.to_csv(index=False, lineterminator="\n"))
    return path


WRITERS = {"histdata": write_histdata, "mt4": write_mt4, "csv": write_csv}


def read_back(dataset: str, directory: Path) -> pl.DataFrame:
    kind, symbol = dataset.split(":")
    original = sample(symbol)
    parsed = read_bar_file(WRITERS[kind](original, symbol, directory))
    assert parsed.format == kind
    rows = parsed.rows
    errors = rows.filter(pl.col("error").is_not_null())
    assert errors.height == 0, errors.head(3)
    # The file really is the sample: same instants, same prices to the quote grid.
    assert rows.get_column("time").to_list() == original.get_column("time").to_list()
    for name in ("open", "high", "low", "close"):
        np.testing.assert_allclose(
            rows.get_column(name).to_numpy(), original.get_column(name).to_numpy(), rtol=1e-12
        )
    return rows


def load(dataset: str, directory: Path) -> pl.DataFrame:
    if dataset in SAMPLES:
        return sample(dataset)
    if dataset in RESAMPLED:
        timeframe, symbol = dataset.split(":")
        return resample_bars(sample(symbol), Timeframe(timeframe), FxCalendar())
    return read_back(dataset, directory)


@pytest.fixture(scope="module")
def computed(tmp_path_factory):
    """dataset -> (bars, our features, the TA-Lib reference), each built once."""
    directory = tmp_path_factory.mktemp("bar_files")
    cache: dict[str, tuple[pl.DataFrame, pl.DataFrame, dict[str, np.ndarray]]] = {}

    def get(dataset: str):
        if dataset not in cache:
            bars = load(dataset, directory)
            cache[dataset] = (bars, compute_indicators(bars, SPECS), talib_reference(bars))
        return cache[dataset]

    return get


def assert_parity(ours: np.ndarray, reference: np.ndarray, column: str) -> None:
    ours_nan, reference_nan = np.isnan(ours), np.isnan(reference)
    differ = np.flatnonzero(ours_nan != reference_nan)
    assert differ.size == 0, (
        f"{column}: NaN masks differ at {differ.size} row(s), first {differ[:5].tolist()}: "
        f"ours {ours[differ[:5]].tolist()}, reference {reference[differ[:5]].tolist()}"
    )
    valid = ~reference_nan
    assert valid.any(), f"{column}: the reference never leaves its warm-up"
    atol = ATOL_SCALE * float(np.abs(reference[valid]).max())
    np.testing.assert_allclose(ours[valid], reference[valid], rtol=RTOL, atol=atol, err_msg=column)


# --------------------------------------------------------------------------- parity


def test_reference_covers_the_default_set_in_order():
    assert feature_columns(SPECS) == COLUMNS
    assert {spec.name for spec in SPECS} == set(INDICATORS)


@pytest.mark.parametrize("dataset", DATASETS)
def test_output_layout(computed, dataset):
    bars, ours, reference = computed(dataset)
    keys = ["time", "close_time", "complete"] if dataset in RESAMPLED else ["time"]
    assert ours.columns == keys + COLUMNS
    assert list(reference) == COLUMNS
    assert ours.height == bars.height
    assert ours.select(keys).equals(bars.select(keys))
    assert all(ours.schema[c] == pl.Float64 for c in COLUMNS)


@pytest.mark.parametrize("column", COLUMNS)
@pytest.mark.parametrize("dataset", DATASETS)
def test_matches_talib_called_directly(computed, dataset, column):
    _, ours, reference = computed(dataset)
    assert_parity(ours.get_column(column).to_numpy(), reference[column], column)


def test_float32_matrix_is_the_float64_matrix_rounded(computed):
    bars, ours64, reference = computed("EURUSD")
    ours32 = compute_indicators(bars, SPECS, float32=True)
    assert ours32.columns == ours64.columns
    assert ours32.schema["time"] == ours64.schema["time"]
    assert ours32.get_column("time").equals(ours64.get_column("time"))
    for column in COLUMNS:
        assert ours32.schema[column] == pl.Float32, column
        np.testing.assert_array_equal(
            ours32.get_column(column).to_numpy(),
            reference[column].astype(np.float32),
            err_msg=column,
        )


# --------------------------------------------------------------------------- quirks of real data


def quiet_bars() -> pl.DataFrame:
    """Real-data shapes samples lack: a frozen quote for two hours, and zero-range bars."""
    bars = sample("EURUSD").head(3000)
    frozen = pl.int_range(pl.len()).is_between(1200, 1320)
    flat_bar = pl.int_range(pl.len()) % 97 == 0
    level = bars.item(1199, "close")
    return bars.with_columns(
        [
            pl.when(frozen).then(level).otherwise(pl.col(name)).alias(name)
            for name in ("open", "high", "low", "close")
        ]
    ).with_columns(
        [
            pl.when(flat_bar).then(pl.col("close")).otherwise(pl.col(name)).alias(name)
            for name in ("open", "high", "low")
        ]
    )


@functools.cache
def quiet_features() -> tuple[pl.DataFrame, dict[str, np.ndarray]]:
    bars = quiet_bars()
    features = compute_indicators(bars, SPECS)
    reference = talib_reference(bars)
    # The shapes are really there: a zero-return stretch and NaN candle shares.
    assert (reference["log_return_1"][1201:1320] == 0.0).all()
    assert np.isnan(reference["candle_body"][::97]).all()
    return features, reference


@pytest.mark.parametrize("column", COLUMNS)
def test_frozen_quotes_and_flat_bars(column):
    ours, reference = quiet_features()
    assert_parity(ours.get_column(column).to_numpy(), reference[column], column)
    if column.startswith("realized_vol"):
        # A frozen quote's volatility is exactly 0, not a running sum's rounding residue.
        assert (ours.get_column(column).to_numpy()[1320:1321] == 0.0).all()


def test_no_bars_give_no_rows():
    features = compute_indicators(sample("EURUSD").head(0), SPECS)
    assert features.height == 0
    assert features.columns == ["time", *COLUMNS]


# --------------------------------------------------------------------------- causality


@functools.cache
def causal_full(symbol: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    bars = generate_sample_m1(symbol, start=date(2024, 10, 21), years=4 / 365.25)
    return bars, compute_indicators(bars, SPECS)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(symbol=st.sampled_from(SAMPLES), fraction=st.floats(0.0, 1.0))
def test_every_indicator_is_causal(symbol, fraction):
    """Values at bar i never change when later bars arrive."""
    bars, full = causal_full(symbol)
    k = max(1, round(fraction * bars.height))
    prefix = compute_indicators(bars.head(k), SPECS)
    for column in COLUMNS:
        np.testing.assert_array_equal(
            prefix.get_column(column).to_numpy(),
            full.get_column(column).head(k).to_numpy(),
            err_msg=f"{column} at k={k}",
        )


# --------------------------------------------------------------------------- sessions


def minutes_of(day: date) -> np.ndarray:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return np.arange(1440, dtype=np.int64) * 60_000_000 + int(start.timestamp()) * 1_000_000


def utc_window(flags: np.ndarray) -> tuple[str, str]:
    """The [open, close) of a flag that is on for one stretch of the UTC day, as HH:MM."""
    on = np.flatnonzero(flags == 1.0)
    assert on.size and np.all(np.diff(on) == 1), "one contiguous stretch expected"
    first, last = int(on[0]), int(on[-1]) + 1
    return f"{first // 60:02d}:{first % 60:02d}", f"{last // 60:02d}:{last % 60:02d}"


# Tokyo keeps no DST; London and New York switch on different weekends.
SESSION_DAYS = [
    ("winter", date(2024, 3, 4), ("08:00", "17:00"), ("13:00", "22:00")),
    ("us_summer_uk_winter", date(2024, 3, 18), ("08:00", "17:00"), ("12:00", "21:00")),
    ("summer", date(2024, 4, 8), ("07:00", "16:00"), ("12:00", "21:00")),
    ("uk_winter_us_summer", date(2024, 10, 29), ("08:00", "17:00"), ("12:00", "21:00")),
    ("winter_again", date(2024, 11, 5), ("08:00", "17:00"), ("13:00", "22:00")),
]


@pytest.mark.parametrize(
    ("day", "london", "new_york"),
    [pytest.param(day, london, ny, id=label) for label, day, london, ny in SESSION_DAYS],
)
def test_session_hours_follow_each_zones_dst(day, london, new_york):
    utc_us = minutes_of(day)
    flags = session_flags(utc_us)
    assert utc_window(flags["asia"]) == ("00:00", "09:00")
    assert utc_window(flags["london"]) == london
    assert utc_window(flags["new_york"]) == new_york


def test_session_columns_through_a_year_of_switches():
    """Every quarter hour of 2024 (weekends and switch nights included) against pandas."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    times = pl.datetime_range(
        start, start + timedelta(days=366), "15m", closed="left", time_unit="us", eager=True
    )
    bars = pl.DataFrame({"time": times}).with_columns(
        open=pl.lit(1.0), high=pl.lit(1.0), low=pl.lit(1.0), close=pl.lit(1.0)
    )
    ours = compute_indicators(bars, [IndicatorSpec("session", ())])
    reference = talib_reference(bars)
    for name in ("session_asia", "session_london", "session_new_york"):
        np.testing.assert_array_equal(ours.get_column(name).to_numpy(), reference[name], name)
