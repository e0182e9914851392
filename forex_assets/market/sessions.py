"""FX trading sessions (Asia, London, New York) in their own local time, DST included.

A session is defined where traders define it: 08:00 to 17:00 on London's and New York's
own clocks, 09:00 to 18:00 in Tokyo. Their UTC hours move twice a year, on different
dates (the US and Europe switch weeks apart), so flags are computed from each zone's real
UTC offset, never from fixed UTC hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time

import numpy as np
import polars as pl

US_PER_HOUR = 3_600_000_000
US_PER_MINUTE = 60_000_000
MINUTES_PER_DAY = 1440


@dataclass(frozen=True)
class TradingSession:
    name: str
    zone: str
    opens: time
    closes: time

    def contains_minute(self, local_minute: np.ndarray) -> np.ndarray:
        start = self.opens.hour * 60 + self.opens.minute
        end = self.closes.hour * 60 + self.closes.minute
        return (local_minute >= start) & (local_minute < end)


SESSIONS = (
    TradingSession("asia", "Asia/Tokyo", time(9), time(18)),
    TradingSession("london", "Europe/London", time(8), time(17)),
    TradingSession("new_york", "America/New_York", time(8), time(17)),
)


def utc_offsets_us(utc_us: np.ndarray, zone: str) -> np.ndarray:
    """The zone's UTC offset (microseconds) at each UTC instant (int64 microseconds).

    Every zone used here changes its offset only on a whole UTC hour, so the offsets of
    every hour in the span give the zone's transitions; each instant then finds its
    offset by binary search, without converting a million timestamps one by one.
    """
    if utc_us.size == 0:
        return np.zeros(0, dtype=np.int64)
    first, last = np.floor_divide([utc_us.min(), utc_us.max()], US_PER_HOUR)
    hours = np.arange(first, last + 1, dtype=np.int64) * US_PER_HOUR
    instants = pl.Series(hours).cast(pl.Datetime("us", "UTC"))
    local_wall = instants.dt.convert_time_zone(zone).dt.replace_time_zone(None)
    hourly = local_wall.cast(pl.Int64).to_numpy() - hours
    changes = np.flatnonzero(np.diff(hourly)) + 1
    starts = np.concatenate(([hours[0]], hours[changes]))
    offsets = np.concatenate(([hourly[0]], hourly[changes]))
    return offsets[np.searchsorted(starts, utc_us, side="right") - 1]


def session_flags(utc_us: np.ndarray) -> dict[str, np.ndarray]:
    """1.0 where a bar opening at that instant opens inside the session, else 0.0."""
    flags: dict[str, np.ndarray] = {}
    for session in SESSIONS:
        local = utc_us + utc_offsets_us(utc_us, session.zone)
        minute = np.floor_divide(local, US_PER_MINUTE) % MINUTES_PER_DAY
        flags[session.name] = session.contains_minute(minute).astype(np.float64)
    return flags
