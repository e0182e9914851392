"""Deterministic synthetic M1 bars so the whole pipeline runs with no data and no network.

The generator reproduces the statistical features FX research code trips over when it
only ever sees a random walk: the weekend closure (Friday 17:00 to Sunday 17:00 New York)
with a gap at the reopen, an intraday activity cycle (quiet late Asia, busy London/New
York overlap, dead rollover hour), volatility clustering (a persistent log-volatility
process), fat-tailed returns, scheduled news spikes (first Friday of the month), tick
volume that follows activity, and spreads that widen when liquidity is thin. Prices sit
on each instrument's quote grid (5 decimals, 3 for JPY pairs).

Same symbol, seed, start and length give identical bars and identical Parquet bytes.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl

from forex_assets.market.bar_schema import M1_SCHEMA, TIME
from forex_assets.market.fx_calendar import in_weekend_closure
from forex_assets.market.instruments import instrument_for

DEFAULT_SEED = 20_240_101
DEFAULT_START = date(2023, 1, 1)
DEFAULT_YEARS = 2.0

# Trading minutes per year: 52 weeks x 5 days x 1440 minutes.
TRADING_MINUTES_PER_YEAR = 52 * 5 * 1440
# Volatility clustering: log-volatility half-life of two trading days, stationary sd 0.45
# (realised daily vol of majors moves between roughly half and double its average).
LOG_VOL_HALF_LIFE_MINUTES = 2 * 1440
LOG_VOL_SD = 0.45
# Student-t with 5 degrees of freedom: the kurtosis of one-minute FX returns.
RETURN_TAIL_DF = 5
# Relative activity by UTC hour (Tokyo, London open 07-08, New York overlap 12-16,
# rollover 21-22); scaled to mean 1 below.
HOURLY_ACTIVITY = np.array(
    [0.70, 0.75, 0.70, 0.60, 0.55, 0.60, 0.80, 1.30, 1.50, 1.30, 1.10, 1.00,
     1.40, 1.70, 1.60, 1.40, 1.10, 0.90, 0.80, 0.70, 0.60, 0.45, 0.50, 0.65]
)  # fmt: skip
ASIA_HOURS_UTC = np.array([23, 0, 1, 2, 3, 4, 5, 6])
ROLLOVER_HOURS_UTC = np.array([21])
NEWS_MINUTE_UTC = 13 * 60 + 30  # 13:30 UTC, the US employment report slot.
NEWS_SPIKE_MINUTES = 10
NEWS_SPIKE_FACTOR = 4.0
WEEKEND_GAP_MINUTES_OF_VOL = 240  # reopen gap sd = four hours of average volatility


@dataclass(frozen=True)
class SampleProfile:
    """Market character of one sample symbol, at 2023-2024 levels."""

    symbol: str
    start_price: float
    annual_volatility: float
    spread_pips: float
    ticks_per_minute: float
    asia_activity: float = 1.0


SAMPLE_PROFILES: dict[str, SampleProfile] = {
    p.symbol: p
    for p in (
        SampleProfile("EURUSD", 1.0705, 0.075, 0.6, 60.0),
        SampleProfile("GBPUSD", 1.2085, 0.085, 0.9, 55.0),
        SampleProfile("USDJPY", 131.10, 0.095, 0.7, 65.0, asia_activity=1.4),
        SampleProfile("AUDUSD", 0.6812, 0.100, 0.8, 45.0, asia_activity=1.3),
        SampleProfile("USDCHF", 0.9245, 0.080, 1.1, 35.0),
        SampleProfile("XAUUSD", 1824.0, 0.140, 2.5, 90.0),
    )
}


def sample_symbols() -> list[str]:
    return list(SAMPLE_PROFILES)


def generate_sample_m1(
    symbol: str,
    *,
    start: date = DEFAULT_START,
    years: float = DEFAULT_YEARS,
    seed: int = DEFAULT_SEED,
) -> pl.DataFrame:
    """M1 bars for a sample symbol in the canonical bar schema, fully deterministic."""
    if symbol not in SAMPLE_PROFILES:
        raise KeyError(
            f"symbol={symbol!r} has no sample profile; sample symbols are "
            f"{', '.join(SAMPLE_PROFILES)}. Put real files for it in the data directory instead."
        )
    if not years > 0:
        raise ValueError(f"years={years!r} must be positive, e.g. 2.0 for two years of bars.")
    profile = SAMPLE_PROFILES[symbol]
    instrument = instrument_for(symbol)
    rng = np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(symbol.encode())]))

    times = _trading_minutes(start, years)
    n = times.len()
    if n == 0:
        raise ValueError(
            f"years={years!r} from {start} spans {years * 365.25 * 24:.1f} hours, all inside "
            "the FX weekend closure, so it gives no bar; ask for more, e.g. years=0.1 "
            "(FOREX_ASSETS_SAMPLE_YEARS=0.1 for the pipeline)."
        )
    minutes_utc = times.dt.hour().to_numpy().astype(np.int64) * 60 + times.dt.minute().to_numpy()
    reopen = _reopen_mask(times)

    activity = _activity(minutes_utc // 60, profile)
    log_vol = _log_volatility(rng, n)
    vol_level = np.exp(log_vol - LOG_VOL_SD**2)  # E[vol_level**2] == 1
    news = _news_spike(times, minutes_utc)
    sigma = profile.annual_volatility / np.sqrt(TRADING_MINUTES_PER_YEAR)
    sigma_t = sigma * np.sqrt(activity) * vol_level * news

    t = rng.standard_t(RETURN_TAIL_DF, size=n) / np.sqrt(RETURN_TAIL_DF / (RETURN_TAIL_DF - 2))
    returns = sigma_t * t
    gaps = np.where(reopen, rng.normal(0.0, sigma * np.sqrt(WEEKEND_GAP_MINUTES_OF_VOL), n), 0.0)
    log_close = np.log(profile.start_price) + np.cumsum(gaps + returns)
    log_open = log_close - returns

    decimals = instrument.price_decimals
    open_ = np.round(np.exp(log_open), decimals)
    close = np.round(np.exp(log_close), decimals)
    price = np.exp(log_close)
    upper_wick = np.abs(rng.normal(0.0, 0.6, n)) * sigma_t * price
    lower_wick = np.abs(rng.normal(0.0, 0.6, n)) * sigma_t * price
    high = np.round(np.maximum(open_, close) + upper_wick, decimals)
    low = np.round(np.minimum(open_, close) - lower_wick, decimals)

    volume = np.maximum(1, rng.poisson(profile.ticks_per_minute * activity * vol_level**2))
    spread = _spread(
        profile, instrument.pip_size, instrument.point, activity, vol_level, minutes_utc
    )

    return pl.DataFrame(
        {
            TIME: times,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume.astype(np.float64),
            "spread": spread,
        },
        schema=M1_SCHEMA,
    )


def _trading_minutes(start: date, years: float) -> pl.Series:
    begin = datetime(start.year, start.month, start.day, tzinfo=UTC)
    end = begin + timedelta(minutes=int(years * 365.25 * 1440))
    grid = pl.datetime_range(begin, end, "1m", closed="left", time_unit="us", eager=True)
    frame = pl.DataFrame({TIME: grid}).filter(~in_weekend_closure(pl.col(TIME)))
    return frame.get_column(TIME)


def _reopen_mask(times: pl.Series) -> np.ndarray:
    """First minute after each weekend closure (a jump of more than one minute)."""
    step = times.diff().dt.total_minutes().fill_null(1).to_numpy()
    return step > 1


def _activity(hour_utc: np.ndarray, profile: SampleProfile) -> np.ndarray:
    hourly = HOURLY_ACTIVITY.copy()
    hourly[ASIA_HOURS_UTC] *= profile.asia_activity
    hourly /= hourly.mean()
    return hourly[hour_utc]


def _log_volatility(rng: np.random.Generator, n: int, block: int = 4096) -> np.ndarray:
    """AR(1) log-volatility, computed blockwise with closed-form sums instead of a loop."""
    phi = 0.5 ** (1.0 / LOG_VOL_HALF_LIFE_MINUTES)
    shocks = rng.normal(0.0, LOG_VOL_SD * np.sqrt(1.0 - phi * phi), n)
    out = np.empty(n)
    level = rng.normal(0.0, LOG_VOL_SD)
    powers = phi ** np.arange(1, block + 1)
    for begin in range(0, n, block):
        e = shocks[begin : begin + block]
        k = e.size
        # h_j = phi^j h_0 + sum_{i<=j} phi^(j-i) e_i, via a scaled cumulative sum.
        scaled = np.cumsum(e / powers[:k]) * powers[:k]
        out[begin : begin + k] = powers[:k] * level + scaled
        level = out[begin + k - 1]
    return out


def _news_spike(times: pl.Series, minutes_utc: np.ndarray) -> np.ndarray:
    first_friday = ((times.dt.weekday() == 5) & (times.dt.day() <= 7)).to_numpy()
    in_window = (minutes_utc >= NEWS_MINUTE_UTC) & (
        minutes_utc < NEWS_MINUTE_UTC + NEWS_SPIKE_MINUTES
    )
    return np.where(first_friday & in_window, NEWS_SPIKE_FACTOR, 1.0)


def _spread(
    profile: SampleProfile,
    pip: float,
    point: float,
    activity: np.ndarray,
    vol_level: np.ndarray,
    minutes_utc: np.ndarray,
) -> np.ndarray:
    """Spreads widen when liquidity is thin and around the 21:00 UTC rollover."""
    rollover = np.isin(minutes_utc // 60, ROLLOVER_HOURS_UTC)
    widening = np.where(rollover, 3.0, 1.0) / np.sqrt(activity) * (0.75 + 0.25 * vol_level)
    points = np.maximum(1.0, np.round(profile.spread_pips * pip * widening / point))
    return points * point
