"""RiskLimits validation, limits from prop-firm presets, and the news calendar CSV."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import pytest

from forex_assets.prop_firms.registry import PRESETS, preset
from forex_assets.prop_firms.rules import PropFirmRules
from forex_assets.trading.risk_limits import (
    NewsCalendar,
    NewsEvent,
    RiskConfigError,
    RiskLimits,
)


def test_defaults_are_valid_and_switch_the_optional_rules_off():
    limits = RiskLimits()
    assert (limits.daily_loss_limit, limits.max_total_loss) == (0.05, 0.10)
    assert limits.daily_peak_drawdown is None
    assert limits.max_trades_per_day is None
    assert limits.sessions == ()


def test_every_optional_rule_accepts_a_sensible_value():
    limits = RiskLimits(
        daily_loss_limit=0.04,
        max_total_loss=0.08,
        trailing_drawdown=True,
        daily_peak_drawdown=0.03,
        daily_profit_lock=0.02,
        max_trades_per_day=5,
        max_open_positions=2,
        loss_streak_limit=3,
        cooldown_minutes=0,
        sessions=("london", "new_york"),
        week_open_buffer_minutes=30,
        week_close_buffer_minutes=60.0,
        max_spread_pips=0.0,
        max_slippage_pips=1.5,
    )
    assert limits.sessions == ("london", "new_york")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("daily_loss_limit", 0.0),
        ("daily_loss_limit", 1.0),
        ("daily_loss_limit", -0.05),
        ("daily_loss_limit", math.nan),
        ("daily_loss_limit", True),
        ("daily_loss_limit", "0.05"),
        ("max_total_loss", 0),
        ("max_total_loss", 1.5),
        ("max_total_loss", None),
        ("daily_peak_drawdown", 0.0),
        ("daily_peak_drawdown", 1.0),
        ("daily_profit_lock", -0.01),
        ("daily_profit_lock", math.inf),
        ("max_trades_per_day", 0),
        ("max_trades_per_day", 2.0),
        ("max_trades_per_day", True),
        ("max_open_positions", -1),
        ("loss_streak_limit", 0),
        ("cooldown_minutes", -1.0),
        ("cooldown_minutes", None),
        ("cooldown_minutes", math.nan),
        ("week_open_buffer_minutes", -5),
        ("week_close_buffer_minutes", math.inf),
        ("max_spread_pips", -0.1),
        ("max_slippage_pips", math.nan),
        ("trailing_drawdown", "yes"),
        ("trailing_drawdown", 1),
    ],
)
def test_a_bad_field_is_refused_by_name(field, value):
    with pytest.raises(RiskConfigError) as error:
        RiskLimits(**{field: value})
    assert f"RiskLimits.{field}={value!r}" in str(error.value)


@pytest.mark.parametrize("sessions", [("tokyo",), ("london", "sydney"), "london"])
def test_unknown_sessions_or_a_bare_string_are_refused(sessions):
    with pytest.raises(RiskConfigError, match=r"RiskLimits\.sessions=") as error:
        RiskLimits(sessions=sessions)
    message = str(error.value)
    assert "['asia', 'london', 'new_york']" in message
    if not isinstance(sessions, str):
        assert repr([s for s in sessions if s not in ("asia", "london", "new_york")]) in message


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_from_prop_firm_takes_the_firms_loss_limits_and_trade_cap(name):
    rules = preset(name)
    limits = RiskLimits.from_prop_firm(rules)
    assert limits.daily_loss_limit == rules.daily_loss_limit
    assert limits.max_total_loss == rules.max_total_loss
    assert limits.trailing_drawdown == rules.trailing_drawdown
    assert limits.max_trades_per_day == rules.max_trades_per_day
    assert limits.sessions == ()  # the desk's guards stay at their defaults


def test_from_prop_firm_with_trailing_drawdown_and_a_trade_cap_plus_guards():
    rules = PropFirmRules(
        "strict", 0.04, 0.08, 0.10, 3, max_trades_per_day=5, trailing_drawdown=True
    )
    limits = RiskLimits.from_prop_firm(
        rules, max_open_positions=2, sessions=("london",), daily_peak_drawdown=0.03
    )
    assert (limits.daily_loss_limit, limits.max_total_loss) == (0.04, 0.08)
    assert limits.trailing_drawdown is True
    assert limits.max_trades_per_day == 5
    assert limits.max_open_positions == 2
    assert limits.sessions == ("london",)
    assert limits.daily_peak_drawdown == 0.03


def test_the5ers_preset_has_its_tighter_limits():
    limits = RiskLimits.from_prop_firm(preset("the5ers_hyper_growth"), loss_streak_limit=2)
    assert (limits.daily_loss_limit, limits.max_total_loss) == (0.03, 0.06)
    assert limits.loss_streak_limit == 2


def test_from_prop_firm_refuses_unknown_guard_names():
    with pytest.raises(RiskConfigError) as error:
        RiskLimits.from_prop_firm(preset("ftmo_challenge"), max_lots=5, sesions=("london",))
    message = str(error.value)
    assert "['max_lots', 'sesions']" in message
    assert "max_open_positions" in message  # the valid fields are listed


def test_from_prop_firm_validates_the_guards():
    with pytest.raises(RiskConfigError, match=r"RiskLimits\.max_open_positions=0"):
        RiskLimits.from_prop_firm(preset("ftmo_challenge"), max_open_positions=0)


# -- the news calendar -------------------------------------------------------------------------


def write(tmp_path: Path, text: str, name: str = "news.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def utc_us(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp()) * 1_000_000


def test_news_csv_with_utc_offsets_and_default_windows(tmp_path):
    path = write(
        tmp_path,
        "time,currency,title,before_minutes,after_minutes\n"
        "2024-03-08T13:30:00Z,USD,Non-farm payrolls,45,20\n"
        "2024-03-07T14:15:00+01:00, eur , ECB rate decision ,,\n"
        "2024-03-12 12:30:00+00:00,usd,CPI,0,90.5\n",
    )
    calendar = NewsCalendar.from_csv(path)
    assert calendar.events == (
        NewsEvent(utc_us(2024, 3, 8, 13, 30), "USD", "Non-farm payrolls", 45.0, 20.0),
        NewsEvent(utc_us(2024, 3, 7, 13, 15), "EUR", "ECB rate decision", 30.0, 30.0),
        NewsEvent(utc_us(2024, 3, 12, 12, 30), "USD", "CPI", 0.0, 90.5),
    )
    assert calendar.blackout("EURUSD", utc_us(2024, 3, 8, 12, 45)) == calendar.events[0]
    assert calendar.blackout("EURUSD", utc_us(2024, 3, 8, 12, 44)) is None
    assert calendar.blackout("GBPJPY", utc_us(2024, 3, 8, 13, 30)) is None


def test_news_csv_without_before_and_after_columns_uses_30_minutes(tmp_path):
    path = write(tmp_path, "time,currency,title\n2024-03-08T13:30:00Z,JPY,BoJ\n")
    (event,) = NewsCalendar.from_csv(path).events
    assert (event.before_minutes, event.after_minutes) == (30.0, 30.0)


def test_news_csv_with_only_a_header_is_an_empty_calendar(tmp_path):
    path = write(tmp_path, "time,currency,title\n")
    assert NewsCalendar.from_csv(path).events == ()


GOOD_ROW = "2024-03-08T13:30:00Z,USD,NFP,30,30\n"
HEADER = "time,currency,title,before_minutes,after_minutes\n"


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        ("time,currency\n2024-03-08T13:30:00Z,USD\n", 2, "['title']"),
        (HEADER + GOOD_ROW + ",USD,NFP,30,30\n", 3, "['time']"),
        (HEADER + GOOD_ROW + "2024-03-08T13:30:00,USD,NFP,30,30\n", 3, "has no UTC offset"),
        (HEADER + "2024-03-08 13:30,USD,NFP,30,30\n", 2, "has no UTC offset"),
        (HEADER + "next friday,USD,NFP,30,30\n", 2, "time='next friday' is not an ISO 8601"),
        (
            HEADER + GOOD_ROW + GOOD_ROW + "2024-03-08T13:30:00Z,XXX,NFP,30,30\n",
            4,
            "currency='XXX'",
        ),
        (HEADER + "2024-03-08T13:30:00Z,US Dollar,NFP,30,30\n", 2, "currency='US Dollar'"),
        (HEADER + "2024-03-08T13:30:00Z,USD,NFP,soon,30\n", 2, "before_minutes='soon'"),
        (
            HEADER + "2024-03-08T13:30:00Z,USD,NFP,30,-5\n",
            2,
            "after_minutes='-5' must be a finite number >= 0",
        ),
        (
            HEADER + "2024-03-08T13:30:00Z,USD,NFP,nan,30\n",
            2,
            "before_minutes='nan' must be a finite number >= 0",
        ),
    ],
)
def test_a_bad_news_row_names_the_file_and_line(tmp_path, text, line, expected):
    path = write(tmp_path, text, "calendar_2024.csv")
    with pytest.raises(RiskConfigError) as error:
        NewsCalendar.from_csv(path)
    message = str(error.value)
    assert f"{path}, line {line}:" in message
    assert expected in message


def test_an_infinite_news_window_is_refused_when_the_file_is_read(tmp_path):
    path = write(tmp_path, HEADER + "2024-03-08T13:30:00Z,USD,NFP,inf,30\n")
    try:
        calendar = NewsCalendar.from_csv(path)
    except RiskConfigError as error:
        assert f"{path}, line 2:" in str(error)
        assert "before_minutes='inf'" in str(error)
        return
    # Accepted: then it must at least not break the check of an unrelated pair.
    assert calendar.blackout("GBPJPY", utc_us(2024, 3, 8, 13, 30)) is None
