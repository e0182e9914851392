"""Trading metrics on trade lists worked out by hand, FX day boundaries, and properties.

Trading days are days since 1970-01-01 (a Thursday): day 1 is a Friday, 4 a Monday, 6 a
Wednesday.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forex_assets.market.fx_calendar import DEFAULT_CALENDAR
from forex_assets.metrics.trading import (
    TradeInputError,
    TradingMetrics,
    daily_returns,
    trading_metrics,
)

EPOCH = date(1970, 1, 1)
FRIDAY, MONDAY, TUESDAY, WEDNESDAY = 1, 4, 5, 6


def day_number(day: date) -> int:
    return (day - EPOCH).days


def utc_us(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp()) * 1_000_000


def test_three_trades_by_hand():
    returns = np.array([0.01, -0.02, 0.03])
    m = trading_metrics(returns, np.array([MONDAY, MONDAY, WEDNESDAY]))
    # Equity 1.01, 1.01 x 0.98 = 0.9898, 0.9898 x 1.03 = 1.019494.
    assert m.trades == 3
    assert m.net_profit == pytest.approx(0.019494)
    # Daily returns Mon 0.9898 - 1 = -0.0102, Tue (no trade) 0, Wed 0.03.
    # Mean 0.0198 / 3 = 0.0066; deviations -0.0168, -0.0066, 0.0234, squares
    # 0.00028224 + 0.00004356 + 0.00054756 = 0.00087336, / 2 = 0.00043668.
    assert m.sharpe == pytest.approx(0.0066 / math.sqrt(0.00043668) * math.sqrt(252))
    # Downside: mean(min(r, 0)^2) = 0.0102^2 / 3 = 0.00003468.
    assert m.sortino == pytest.approx(0.0066 / math.sqrt(0.00003468) * math.sqrt(252))
    # Peak 1.01 before the fall to 0.9898: 1 - 0.9898 / 1.01 = 0.02.
    assert m.max_drawdown == pytest.approx(0.02)
    # Monday starts at 1.0 and its lowest point is 0.9898; Wednesday only rises.
    assert m.worst_daily_drawdown == pytest.approx(0.0102)
    # P&L in units of the initial equity: 0.01, 1.01 x -0.02 = -0.0202, 0.9898 x 0.03 =
    # 0.029694.
    pnl = np.array([0.01, -0.0202, 0.029694])
    assert m.profit_factor == pytest.approx((0.01 + 0.029694) / 0.0202)
    assert m.win_rate == pytest.approx(2 / 3)
    assert m.expectancy == pytest.approx(0.019494 / 3)
    assert m.sqn == pytest.approx(math.sqrt(3) * pnl.mean() / pnl.std(ddof=1))
    assert m.monthly_consistency == 1.0  # one month, net positive
    assert m.trading_days == 2


def test_daily_returns_fill_idle_weekdays_with_zero_but_skip_the_weekend():
    # Monday's two trades compound: 1.01 x 0.98 - 1 = -0.0102.
    days, returns = daily_returns(np.array([0.01, -0.02, 0.03]), np.array([4, 4, 6]))
    assert days.tolist() == [MONDAY, TUESDAY, WEDNESDAY]
    assert returns == pytest.approx([-0.0102, 0.0, 0.03])
    # Friday to Monday: Saturday and Sunday are no trading days.
    days, returns = daily_returns(np.array([0.01, 0.02]), np.array([FRIDAY, MONDAY]))
    assert days.tolist() == [FRIDAY, MONDAY]
    assert returns == pytest.approx([0.01, 0.02])


def test_drawdown_is_measured_from_the_running_peak_including_the_start():
    # Equity 1.1, 0.55, 0.66, 0.594: the worst fall is 1.1 -> 0.55 = 50%; the later
    # 1.1 -> 0.594 is only 46%. One trade a day, so each day's drawdown is its own loss.
    m = trading_metrics(np.array([0.1, -0.5, 0.2, -0.1]), np.array([4, 5, 6, 7]))
    assert m.max_drawdown == pytest.approx(0.5)
    assert m.worst_daily_drawdown == pytest.approx(0.5)
    # The starting equity 1.0 is the first peak: an opening loss is a drawdown.
    assert trading_metrics(np.array([-0.1, 0.05]), np.array([4, 5])).max_drawdown == (
        pytest.approx(0.1)
    )
    rising = trading_metrics(np.array([0.01, 0.02]), np.array([4, 4]))
    assert rising.max_drawdown == 0.0
    assert rising.worst_daily_drawdown == 0.0


def test_daily_drawdown_is_the_fall_below_the_day_start():
    # One day: equity 1.0 -> 2.0 -> 0.2. The day fell 80% below its start (the prop-firm
    # daily loss), while the fall from the 2.0 peak is the 90% max_drawdown.
    m = trading_metrics(np.array([1.0, -0.9]), np.array([4, 4]))
    assert m.worst_daily_drawdown == pytest.approx(0.8)
    assert m.max_drawdown == pytest.approx(0.9)
    # Day 2 starts at 0.97 after day 1's loss: (0.97 - 0.9506) / 0.97 = 0.02.
    split = trading_metrics(np.array([-0.03, -0.02]), np.array([4, 5]))
    assert split.worst_daily_drawdown == pytest.approx(0.03)


@pytest.mark.parametrize(
    ("new_york_day", "utc_offset_hours"),
    [
        (date(2024, 3, 5), -5),  # Tuesday in winter time, before the March switch
        (date(2024, 3, 12), -4),  # Tuesday in summer time, after it
        (date(2024, 11, 5), -5),  # Tuesday after the November switch back
    ],
)
def test_trades_at_1659_and_1701_new_york_land_on_different_days(new_york_day, utc_offset_hours):
    close = datetime(new_york_day.year, new_york_day.month, new_york_day.day, 17, tzinfo=UTC)
    close -= timedelta(hours=utc_offset_hours)  # 17:00 New York in UTC
    exits = [close - timedelta(minutes=1), close + timedelta(minutes=1)]
    exit_us = np.array([int(t.timestamp()) * 1_000_000 for t in exits])
    days = DEFAULT_CALENDAR.trading_day(exit_us)
    assert days.tolist() == [day_number(new_york_day), day_number(new_york_day) + 1]
    # Both exits share one UTC date: counted that way the two losses would be one day's
    # 1 - 0.97 x 0.98 = 4.94%; on the FX clock they are 3% and 2% days.
    returns = np.array([-0.03, -0.02])
    assert trading_metrics(returns, days).worst_daily_drawdown == pytest.approx(0.03)
    same_utc_day = np.full(2, day_number(exits[0].date()))
    assert trading_metrics(returns, same_utc_day).worst_daily_drawdown == pytest.approx(0.0494)


def test_no_trades_gives_zeros_and_nans_without_raising():
    m = trading_metrics(np.array([]), np.array([]))
    assert (m.trades, m.trading_days) == (0, 0)
    assert (m.net_profit, m.max_drawdown, m.worst_daily_drawdown) == (0.0, 0.0, 0.0)
    for name in ("sharpe", "sortino", "profit_factor", "win_rate", "expectancy", "sqn"):
        assert math.isnan(getattr(m, name)), name
    days, returns = daily_returns(np.array([]), np.array([]))
    assert days.size == returns.size == 0


def test_all_wins_give_an_infinite_profit_factor_and_no_sortino():
    m = trading_metrics(np.array([0.01, 0.02, 0.01]), np.array([4, 5, 6]))
    assert m.profit_factor == math.inf
    assert m.win_rate == 1.0
    assert math.isnan(m.sortino)  # no losing day: no downside deviation
    assert m.sharpe > 0


def test_single_day_and_flat_trades_leave_ratios_undefined():
    one_day = trading_metrics(np.array([0.01, -0.01]), np.array([4, 4]))
    assert math.isnan(one_day.sharpe) and math.isnan(one_day.sortino)
    flat = trading_metrics(np.array([0.0, 0.0]), np.array([4, 5]))
    assert math.isnan(flat.profit_factor) and math.isnan(flat.sqn)
    assert flat.win_rate == 0.0


def test_as_dict_lists_every_field_as_a_float():
    m = trading_metrics(np.array([0.01, -0.02, 0.03]), np.array([4, 4, 6]))
    as_dict = m.as_dict()
    assert list(as_dict) == list(TradingMetrics.__dataclass_fields__)
    assert all(type(value) is float for value in as_dict.values())
    assert as_dict["trades"] == 3.0


@pytest.mark.parametrize(
    ("returns", "days", "kwargs", "message"),
    [
        ([0.01, 0.02], [4], {}, "same length"),
        ([0.01, 0.02], [4.0, 5.0], {}, "integer trading-day"),
        ([0.01, -1.0], [4, 5], {}, "above -1"),
        ([0.01, np.nan], [4, 5], {}, "finite"),
        ([0.01, 0.02], [5, 4], {}, "exit order"),
        ([0.01], [4], {"periods_per_year": 0}, "at least 1"),
        ([0.01], [4], {"periods_per_year": 252.0}, "must be an int"),
    ],
)
def test_unmeasurable_trade_lists_are_refused(returns, days, kwargs, message):
    with pytest.raises(TradeInputError, match=message):
        trading_metrics(np.array(returns), np.array(days), **kwargs)


def brute_force_worst_daily_drawdown(returns: np.ndarray, days: np.ndarray) -> float:
    equity, worst = 1.0, 0.0
    day_start = 1.0
    for i, r in enumerate(returns):
        if i == 0 or days[i] != days[i - 1]:
            day_start = equity
        equity *= 1 + r
        worst = max(worst, (day_start - equity) / day_start)
    return worst


trade_lists = st.lists(
    st.tuples(st.floats(-0.5, 0.5), st.integers(0, 3)), min_size=0, max_size=40
).map(
    lambda trades: (
        np.array([r for r, _ in trades], dtype=np.float64),
        MONDAY + np.cumsum([step for _, step in trades], dtype=np.int64),
    )
)


@settings(max_examples=200, deadline=None)
@given(trade_lists)
def test_metric_properties(trades):
    returns, days = trades
    m = trading_metrics(returns, days)
    assert m.net_profit == pytest.approx(np.prod(1 + returns) - 1, abs=1e-12)
    assert 0 <= m.max_drawdown < 1
    assert m.worst_daily_drawdown == pytest.approx(
        brute_force_worst_daily_drawdown(returns, days), abs=1e-12
    )
    # A day starts at or below the running peak, so its fall is never the larger one.
    assert 0 <= m.worst_daily_drawdown <= m.max_drawdown + 1e-12
    if returns.size and (np.diff(days) > 0).all():  # one trade a day: the day's own loss
        assert m.worst_daily_drawdown == pytest.approx(max(0.0, -returns.min()))
    assert m.trades == returns.size
    assert m.trading_days == np.unique(days).size
