"""The risk limits a trading account runs under, and news blackout windows, as data.

Limits are the prop firm's terms plus the desk's own guards. They are checked before an
order is placed (`forex_assets.trading.risk_rules`), against the worst case the order can
produce: every open and reserved position stopped out at once, plus this one. A limit is
therefore never breached by the orders the manager accepts, only by gaps and slippage
past a stop, which no pre-trade check can prevent.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path

from forex_assets.market.instruments import CURRENCIES
from forex_assets.market.sessions import SESSIONS
from forex_assets.prop_firms.rules import PropFirmRules

US_PER_MINUTE = 60_000_000


class RiskConfigError(ValueError):
    """Risk limits or news data that cannot be enforced; the message names the setting."""


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


_FRACTIONS = ("daily_loss_limit", "max_total_loss")
_OPTIONAL_FRACTIONS = ("daily_peak_drawdown", "daily_profit_lock")
_OPTIONAL_COUNTS = ("max_trades_per_day", "max_open_positions", "loss_streak_limit")
_MINUTES = ("cooldown_minutes", "week_open_buffer_minutes", "week_close_buffer_minutes")
_OPTIONAL_PIPS = ("max_spread_pips", "max_slippage_pips")


@dataclass(frozen=True)
class RiskLimits:
    """Limits of one account. Fractions are of equity (0.05 = 5 %); None switches a rule off.

    * daily_loss_limit: of the FX day's start equity (prop-firm daily loss).
    * daily_peak_drawdown: of the day's highest marked equity (a tighter, intraday guard).
    * max_total_loss: of the initial balance, below the initial balance or, with
      `trailing_drawdown`, below the highest marked equity so far.
    * daily_profit_lock: once the day is up this much, no new trades that day.
    * max_trades_per_day / max_open_positions: positions opened per FX day / open at once
      (reserved ones count: they may fill).
    * loss_streak_limit losses in a row start a pause of `cooldown_minutes`.
    * sessions: names of `forex_assets.market.sessions.SESSIONS` to trade in (empty: any).
    * week_open/close_buffer_minutes: no new trades this close to the Sunday 17:00 New York
      open or the Friday 17:00 close (weekend gaps jump stops).
    * max_spread_pips / max_slippage_pips: the quoted spread and the expected slippage.
    """

    daily_loss_limit: float = 0.05
    max_total_loss: float = 0.10
    trailing_drawdown: bool = False
    daily_peak_drawdown: float | None = None
    daily_profit_lock: float | None = None
    max_trades_per_day: int | None = None
    max_open_positions: int | None = None
    loss_streak_limit: int | None = None
    cooldown_minutes: float = 60.0
    sessions: tuple[str, ...] = ()
    week_open_buffer_minutes: float = 0.0
    week_close_buffer_minutes: float = 0.0
    max_spread_pips: float | None = None
    max_slippage_pips: float | None = None

    def __post_init__(self) -> None:
        for name in _FRACTIONS:
            value = getattr(self, name)
            if not (_number(value) and 0 < value < 1):
                raise RiskConfigError(
                    f"RiskLimits.{name}={value!r} must be a fraction in (0, 1), e.g. 0.05 for "
                    "5%: zero forbids every trade and 1 or more never binds."
                )
        for name in _OPTIONAL_FRACTIONS:
            value = getattr(self, name)
            if value is not None and not (_number(value) and 0 < value < 1):
                raise RiskConfigError(
                    f"RiskLimits.{name}={value!r} must be a fraction in (0, 1) or None (off)."
                )
        for name in _OPTIONAL_COUNTS:
            value = getattr(self, name)
            whole = isinstance(value, int) and not isinstance(value, bool)
            if value is not None and not (whole and value >= 1):
                raise RiskConfigError(
                    f"RiskLimits.{name}={value!r} must be a whole number >= 1 or None (off): "
                    "a limit of 0 forbids trading."
                )
        for name in (*_MINUTES, *_OPTIONAL_PIPS):
            value = getattr(self, name)
            if (value is not None or name in _MINUTES) and not (_number(value) and value >= 0):
                raise RiskConfigError(f"RiskLimits.{name}={value!r} must be a number >= 0.")
        if not isinstance(self.trailing_drawdown, bool):
            raise RiskConfigError(
                f"RiskLimits.trailing_drawdown={self.trailing_drawdown!r} must be true or false."
            )
        known = [s.name for s in SESSIONS]
        unknown = [s for s in self.sessions if s not in known]
        if isinstance(self.sessions, str) or unknown:
            raise RiskConfigError(
                f"RiskLimits.sessions={self.sessions!r} names unknown sessions {unknown}; "
                f"choose from {known} (empty: trade at any time)."
            )

    @classmethod
    def from_prop_firm(cls, rules: PropFirmRules, **guards: object) -> RiskLimits:
        """The firm's loss limits and trade cap, plus the desk's own `guards`, which may
        tighten the firm's terms but never loosen them (the firm would still enforce its
        own, and the account would fail on a limit the manager thought it had)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(guards) - known)
        if unknown:
            raise RiskConfigError(f"unknown RiskLimits fields {unknown}; fields: {sorted(known)}.")
        firm = {
            "daily_loss_limit": rules.daily_loss_limit,
            "max_total_loss": rules.max_total_loss,
            "trailing_drawdown": rules.trailing_drawdown,
            "max_trades_per_day": rules.max_trades_per_day,
        }
        limits = cls(**{**firm, **guards})
        looser = [
            f"{name}={getattr(limits, name)!r} (firm: {firm[name]!r})"
            for name in ("daily_loss_limit", "max_total_loss")
            if getattr(limits, name) > firm[name]
        ]
        cap = rules.max_trades_per_day
        if cap is not None and (limits.max_trades_per_day or cap + 1) > cap:
            looser.append(f"max_trades_per_day={limits.max_trades_per_day!r} (firm: {cap})")
        if rules.trailing_drawdown and not limits.trailing_drawdown:
            looser.append("trailing_drawdown=False (firm: True)")
        if looser:
            raise RiskConfigError(
                f"guards loosen {rules.name}'s own terms: {', '.join(looser)}. A guard may only "
                "tighten the firm's limits; leave it out to use the firm's."
            )
        return limits


@dataclass(frozen=True)
class NewsEvent:
    """A scheduled release: no new trades in `currency` pairs from `before` minutes ahead
    of it to `after` minutes past it."""

    time_us: int
    currency: str
    title: str
    before_minutes: float = 30.0
    after_minutes: float = 30.0

    @property
    def window_us(self) -> tuple[int, int]:
        return (
            self.time_us - round(self.before_minutes * US_PER_MINUTE),
            self.time_us + round(self.after_minutes * US_PER_MINUTE),
        )


@dataclass(frozen=True)
class NewsCalendar:
    """Blackout windows; `blackout` finds the event that blocks a symbol at an instant."""

    events: tuple[NewsEvent, ...] = field(default=())

    def blackout(self, symbol: str, time_us: int) -> NewsEvent | None:
        for event in self.events:
            start, end = event.window_us
            if event.currency in (symbol[:3], symbol[3:6]) and start <= time_us <= end:
                return event
        return None

    @classmethod
    def from_csv(cls, path: Path) -> NewsCalendar:
        """Events from a CSV with columns time (ISO 8601 with offset, or UTC), currency,
        title and optionally before_minutes, after_minutes."""
        with Path(path).open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        return cls(tuple(_news_event(path, number, row) for number, row in enumerate(rows, 2)))


def _news_event(path: Path, line: int, row: dict[str, str]) -> NewsEvent:
    where = f"{path}, line {line}"
    missing = [c for c in ("time", "currency", "title") if not (row.get(c) or "").strip()]
    if missing:
        raise RiskConfigError(
            f"{where}: column(s) {missing} are empty or absent; every news row needs time, "
            "currency and title."
        )
    try:
        moment = datetime.fromisoformat(row["time"].strip().replace("Z", "+00:00"))
    except ValueError:
        raise RiskConfigError(
            f"{where}: time={row['time']!r} is not an ISO 8601 timestamp such as "
            "2024-03-08T13:30:00Z."
        ) from None
    if moment.tzinfo is None:
        raise RiskConfigError(
            f"{where}: time={row['time']!r} has no UTC offset; write it as UTC (...Z) or with "
            "its offset, since a news time in an unknown zone blocks the wrong hour."
        )
    currency = row["currency"].strip().upper()
    if currency not in CURRENCIES:
        raise RiskConfigError(
            f"{where}: currency={row['currency']!r} is not a known currency code (e.g. USD)."
        )
    minutes = {}
    for name in ("before_minutes", "after_minutes"):
        raw = (row.get(name) or "").strip()
        try:
            minutes[name] = float(raw) if raw else 30.0
        except ValueError:
            raise RiskConfigError(f"{where}: {name}={raw!r} is not a number of minutes.") from None
        if not (math.isfinite(minutes[name]) and minutes[name] >= 0):
            raise RiskConfigError(f"{where}: {name}={raw!r} must be a finite number >= 0.")
    return NewsEvent(
        round(moment.timestamp() * 1_000_000), currency, row["title"].strip(), **minutes
    )
