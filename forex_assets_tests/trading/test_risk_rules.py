"""Pre-trade rules on hand-built account states and instants, both sides of every limit.

Unless a test says otherwise: an account of 100,000 that is flat at the start of its FX
day, an EURUSD buy at 1.1000 with a 20 pip stop on Wednesday 2024-07-10 12:00 UTC (inside
the London and New York sessions, summer time), limits of 5 % daily and 10 % total loss.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from forex_assets.trading.risk_limits import NewsCalendar, NewsEvent, RiskLimits
from forex_assets.trading.risk_rules import (
    RULES,
    TOLERANCE,
    AccountState,
    OrderRequest,
    Refusal,
    check_account_gates,
    check_loss_limits,
    check_market,
    drawdown_used,
)

EURUSD_PIP = 0.0001
USDJPY_PIP = 0.01
MINUTE_US = 60_000_000
NO_NEWS = NewsCalendar()
LIMITS = RiskLimits(daily_loss_limit=0.05, max_total_loss=0.10)


def us(*args: int) -> int:
    """UTC microseconds of a wall-clock UTC instant."""
    return int(datetime(*args, tzinfo=UTC).timestamp()) * 1_000_000


WEDNESDAY_NOON = us(2024, 7, 10, 12)


def state(**overrides: float) -> AccountState:
    values = {
        "initial_equity": 100_000.0,
        "balance": 100_000.0,
        "equity": 100_000.0,
        "high_water": 100_000.0,
        "day_start_equity": 100_000.0,
        "day_peak_equity": 100_000.0,
        "trades_today": 0,
        "open_positions": 0,
        "open_risk": 0.0,
        "loss_streak": 0,
        "last_loss_us": None,
    }
    return AccountState(**{**values, **overrides})


def order(**overrides: object) -> OrderRequest:
    values = {
        "symbol": "EURUSD",
        "side": 1,
        "time_us": WEDNESDAY_NOON,
        "price": 1.1,
        "stop_distance": 0.002,
        "spread": 0.0001,
    }
    return OrderRequest(**{**values, **overrides})


def market(limits: RiskLimits, request: OrderRequest, pip: float = EURUSD_PIP, news=NO_NEWS):
    return check_market(limits, request, pip, news)


def refused(result: Refusal | None, rule: str) -> Refusal:
    assert isinstance(result, Refusal), f"expected a {rule} refusal, got {result!r}"
    assert result.rule == rule, result
    assert result.rule in RULES
    return result


# -- the worst-case loss rules -------------------------------------------------------------


def test_rules_are_named_in_the_documented_order():
    assert RULES[0] == "invalid_order"
    assert RULES.index("weekend") < RULES.index("session") < RULES.index("news_blackout")
    assert RULES.index("news_blackout") < RULES.index("spread") < RULES.index("slippage")
    assert RULES.index("slippage") < RULES.index("cooldown") < RULES.index("max_trades_per_day")
    assert RULES.index("daily_profit_lock") < RULES.index("position_size")
    assert RULES[-3:] == ("daily_loss_limit", "daily_peak_drawdown", "max_total_loss")
    assert len(set(RULES)) == len(RULES)


def test_daily_loss_allows_exactly_the_limit_and_refuses_a_cent_more():
    # 5 % of 100,000 is 5,000: open risk 3,000 leaves 2,000 for this order.
    account = state(open_risk=3_000.0)
    assert check_loss_limits(LIMITS, account, 2_000.0) is None
    refusal = refused(check_loss_limits(LIMITS, account, 2_000.01), "daily_loss_limit")
    assert refusal.numbers["open_risk"] == 3_000.0
    assert refusal.numbers["order_risk"] == 2_000.01
    assert refusal.numbers["worst_equity"] == pytest.approx(94_999.99)
    assert refusal.numbers["day_start_equity"] == 100_000.0
    assert refusal.numbers["loss"] == pytest.approx(0.0500001)
    assert refusal.numbers["limit"] == 0.05
    for text in ("3,000.00", "2,000.01", "100,000.00", "5.00%"):
        assert text in refusal.message


def test_daily_loss_counts_from_the_day_start_equity_not_the_balance():
    # The day started at 102,000 and has lost 1,000 closed: 5,100 allowed, 4,100 left.
    account = state(balance=101_000.0, equity=101_000.0, day_start_equity=102_000.0)
    assert check_loss_limits(LIMITS, account, 4_100.0) is None
    refusal = refused(check_loss_limits(LIMITS, account, 4_100.5), "daily_loss_limit")
    assert refusal.numbers["day_start_equity"] == 102_000.0
    assert refusal.numbers["worst_equity"] == pytest.approx(96_899.5)


def test_daily_loss_judges_the_worst_case_not_the_marked_equity():
    # Marked equity is up 2,000 on open positions, but their stops risk 4,000: a stop-out
    # leaves 96,000, so only 1,000 more may be risked today.
    account = state(equity=102_000.0, open_risk=4_000.0)
    assert check_loss_limits(LIMITS, account, 1_000.0) is None
    refused(check_loss_limits(LIMITS, account, 1_000.01), "daily_loss_limit")


@pytest.mark.parametrize("day_start", [100_000.0, 110_000.0, 123_456.0, 77_777.0, 99_999.0])
def test_a_loss_exactly_at_the_limit_is_allowed_despite_float_rounding(day_start):
    # (start - (start - 5 % of start)) / start is 0.05000000000000007 for some starts.
    account = state(balance=day_start, equity=day_start, day_start_equity=day_start)
    limits = RiskLimits(daily_loss_limit=0.05, max_total_loss=0.5)
    assert check_loss_limits(limits, account, day_start * 0.05) is None
    refused(check_loss_limits(limits, account, day_start * 0.05 * (1 + 1e-6)), "daily_loss_limit")


def test_tolerance_is_tiny():
    assert 0 < TOLERANCE <= 1e-8


def test_daily_peak_drawdown_counts_from_the_intraday_peak():
    # The day peaked at 103,000 and is at 102,000: 2 % of the peak is 2,060, so the worst
    # case may fall to 100,940, i.e. 1,060 of risk; the 5 % daily limit is far away.
    limits = replace(LIMITS, daily_peak_drawdown=0.02)
    account = state(balance=102_000.0, equity=102_000.0, day_peak_equity=103_000.0)
    assert check_loss_limits(limits, account, 1_060.0) is None
    refusal = refused(check_loss_limits(limits, account, 1_061.0), "daily_peak_drawdown")
    assert refusal.numbers["day_peak_equity"] == 103_000.0
    assert refusal.numbers["loss"] == pytest.approx(2_061 / 103_000)
    assert refusal.numbers["limit"] == 0.02
    assert "103,000.00" in refusal.message
    assert "2.00%" in refusal.message
    # Off by default: the same order passes.
    assert check_loss_limits(LIMITS, account, 1_061.0) is None


def test_static_total_loss_counts_below_the_initial_balance():
    # Down 8,000 overall, a fresh day at 92,000 (daily room 4,600): total room is 2,000.
    account = state(balance=92_000.0, equity=92_000.0, day_start_equity=92_000.0)
    assert check_loss_limits(LIMITS, account, 2_000.0) is None
    refusal = refused(check_loss_limits(LIMITS, account, 2_001.0), "max_total_loss")
    assert refusal.numbers["reference"] == 100_000.0
    assert refusal.numbers["loss"] == pytest.approx(0.10001)
    assert "initial balance" in refusal.message
    assert "100,000.00" in refusal.message


def test_trailing_total_loss_counts_below_the_high_water_mark():
    # Equity peaked at 108,000 and fell back to 100,000: a trailing floor sits at 98,000.
    account = state(high_water=108_000.0)
    trailing = replace(LIMITS, trailing_drawdown=True)
    assert check_loss_limits(trailing, account, 2_000.0) is None
    refusal = refused(check_loss_limits(trailing, account, 2_001.0), "max_total_loss")
    assert refusal.numbers["reference"] == 108_000.0
    assert "high-water mark" in refusal.message
    assert "108,000.00" in refusal.message
    # A static limit ignores the high-water mark: the same order passes.
    assert check_loss_limits(LIMITS, account, 2_001.0) is None


def test_the_first_broken_loss_rule_is_named():
    account = state(balance=92_000.0, equity=92_000.0, day_start_equity=92_000.0)
    # 10,000 breaks daily (10.9 % of 92,000) and total (18 %): daily comes first.
    assert refused(check_loss_limits(LIMITS, account, 10_000.0), "daily_loss_limit")
    # With a peak rule too, a risk breaking peak and total but not daily names the peak.
    limits = replace(LIMITS, daily_peak_drawdown=0.01)
    assert refused(check_loss_limits(limits, account, 2_500.0), "daily_peak_drawdown")


# -- account gates ---------------------------------------------------------------------------


def test_profit_lock_refuses_once_the_day_is_up_the_lock_and_allows_just_below():
    limits = replace(LIMITS, daily_profit_lock=0.02)
    assert check_account_gates(limits, state(equity=101_999.0), order()) is None
    refusal = refused(
        check_account_gates(limits, state(equity=102_000.0), order()), "daily_profit_lock"
    )
    assert refusal.numbers["day_gain"] == pytest.approx(0.02)
    assert refusal.numbers["limit"] == 0.02
    assert "2.00%" in refusal.message
    # The gain is of the day's start, not of the initial balance.
    later = state(equity=104_000.0, day_start_equity=103_000.0)
    assert check_account_gates(limits, later, order()) is None
    assert check_account_gates(LIMITS, state(equity=150_000.0), order()) is None  # off


def test_max_trades_per_day_counts_reserved_and_opened_trades():
    limits = replace(LIMITS, max_trades_per_day=3)
    assert check_account_gates(limits, state(trades_today=2), order()) is None
    refusal = refused(
        check_account_gates(limits, state(trades_today=3), order()), "max_trades_per_day"
    )
    assert refusal.numbers == {"trades_today": 3, "limit": 3}
    assert "3 trades" in refusal.message
    assert "(limit 3)" in refusal.message
    assert check_account_gates(LIMITS, state(trades_today=500), order()) is None


def test_max_open_positions():
    limits = replace(LIMITS, max_open_positions=2)
    assert check_account_gates(limits, state(open_positions=1), order()) is None
    refusal = refused(
        check_account_gates(limits, state(open_positions=2), order()), "max_open_positions"
    )
    assert refusal.numbers == {"open_positions": 2, "limit": 2}
    assert "2 positions" in refusal.message


def test_cooldown_after_a_loss_streak_inside_and_after_the_pause():
    limits = replace(LIMITS, loss_streak_limit=3, cooldown_minutes=60.0)
    last_loss = WEDNESDAY_NOON
    streak = state(loss_streak=3, last_loss_us=last_loss)
    inside = order(time_us=last_loss + 59 * MINUTE_US)
    refusal = refused(check_account_gates(limits, streak, inside), "cooldown")
    assert refusal.numbers == {
        "loss_streak": 3,
        "minutes_since_loss": 59.0,
        "cooldown_minutes": 60.0,
    }
    assert "3 losses in a row" in refusal.message
    assert "59 of 60 min" in refusal.message
    assert check_account_gates(limits, streak, order(time_us=last_loss + 60 * MINUTE_US)) is None
    # A shorter streak, a streak without a loss time, or no streak rule: no pause.
    assert check_account_gates(limits, replace(streak, loss_streak=2), inside) is None
    assert check_account_gates(limits, replace(streak, last_loss_us=None), inside) is None
    assert check_account_gates(LIMITS, streak, inside) is None
    # A longer streak than the limit pauses too.
    assert refused(check_account_gates(limits, replace(streak, loss_streak=7), inside), "cooldown")


def test_the_first_broken_gate_is_named():
    limits = replace(
        LIMITS,
        loss_streak_limit=1,
        max_trades_per_day=1,
        max_open_positions=1,
        daily_profit_lock=0.01,
    )
    everything = state(
        loss_streak=1,
        last_loss_us=WEDNESDAY_NOON,
        trades_today=1,
        open_positions=1,
        equity=105_000.0,
    )
    expected = ["cooldown", "max_trades_per_day", "max_open_positions", "daily_profit_lock"]
    fixes = [
        {"loss_streak": 0},
        {"trades_today": 0},
        {"open_positions": 0},
        {"equity": 100_000.0},
    ]
    account = everything
    for rule, fix in zip(expected, fixes, strict=True):
        refused(check_account_gates(limits, account, order()), rule)
        account = replace(account, **fix)
    assert check_account_gates(limits, account, order()) is None


# -- drawdown used ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "trailing", "used"),
    [
        ({}, False, 0.0),
        # Worst case 97,000: 3,000 of the 5,000 daily room, 3,000 of the 10,000 total room.
        ({"balance": 98_000.0, "open_risk": 1_000.0}, False, 0.6),
        # Trailing from 105,000: 8,000 of the 10,000 total room beats the daily 0.6.
        ({"balance": 98_000.0, "open_risk": 1_000.0, "high_water": 105_000.0}, True, 0.8),
        # Up on the day and overall: the day's own loss of 1,000 of 5,200.
        ({"balance": 103_000.0, "day_start_equity": 104_000.0}, False, 1_000 / 5_200),
        ({"balance": 110_000.0}, False, 0.0),  # above every reference
        ({"balance": 80_000.0}, False, 1.0),  # past the limits: capped at 1
    ],
)
def test_drawdown_used_is_the_tighter_share_of_the_loss_limits(overrides, trailing, used):
    limits = replace(LIMITS, trailing_drawdown=trailing)
    assert drawdown_used(limits, state(**overrides)) == pytest.approx(used)


# -- the clock: week, sessions -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("instant", "is_open"),
    [
        # Summer (EDT, UTC-4): Friday closes 21:00 UTC, Sunday opens 21:00 UTC.
        (us(2024, 7, 12, 20, 59), True),
        (us(2024, 7, 12, 21, 0), False),
        (us(2024, 7, 13, 12, 0), False),
        (us(2024, 7, 14, 20, 59), False),
        (us(2024, 7, 14, 21, 0), True),
        # Winter (EST, UTC-5): an hour later in UTC.
        (us(2024, 1, 12, 21, 59), True),
        (us(2024, 1, 12, 22, 0), False),
        (us(2024, 1, 14, 21, 59), False),
        (us(2024, 1, 14, 22, 0), True),
        # New York springs forward on Sunday 2024-03-10: closes in EST, reopens in EDT.
        (us(2024, 3, 8, 21, 59), True),
        (us(2024, 3, 8, 22, 0), False),
        (us(2024, 3, 10, 20, 59), False),
        (us(2024, 3, 10, 21, 0), True),
        # ... and falls back on Sunday 2024-11-03: closes in EDT, reopens in EST.
        (us(2024, 11, 1, 20, 59), True),
        (us(2024, 11, 1, 21, 0), False),
        (us(2024, 11, 3, 21, 59), False),
        (us(2024, 11, 3, 22, 0), True),
    ],
)
def test_weekend_closure_follows_new_york_17_00_in_both_seasons(instant, is_open):
    result = market(LIMITS, order(time_us=instant))
    if is_open:
        assert result is None
    else:
        refusal = refused(result, "weekend")
        assert "closed" in refusal.message
        assert "minutes_since_week_open" in refusal.numbers


@pytest.mark.parametrize(
    ("sunday_open", "friday_close"),
    [
        (us(2024, 7, 14, 21), us(2024, 7, 12, 21)),  # EDT
        (us(2024, 1, 14, 22), us(2024, 1, 12, 22)),  # EST
        (us(2024, 3, 10, 21), us(2024, 3, 8, 22)),  # closes EST, opens EDT
        (us(2024, 11, 3, 22), us(2024, 11, 1, 21)),  # closes EDT, opens EST
    ],
)
def test_week_open_and_close_buffers(sunday_open, friday_close):
    limits = replace(LIMITS, week_open_buffer_minutes=60.0, week_close_buffer_minutes=30.0)
    early = refused(market(limits, order(time_us=sunday_open + 59 * MINUTE_US)), "weekend")
    assert early.numbers == {"minutes_since_open": 59.0, "limit": 60.0}
    assert "59 min after the week opened" in early.message
    assert market(limits, order(time_us=sunday_open + 60 * MINUTE_US)) is None
    late = refused(market(limits, order(time_us=friday_close - 29 * MINUTE_US)), "weekend")
    assert late.numbers == {"minutes_to_close": 29.0, "limit": 30.0}
    assert "29 min before the week closes" in late.message
    assert market(limits, order(time_us=friday_close - 30 * MINUTE_US)) is None
    # Without buffers both instants trade.
    assert market(LIMITS, order(time_us=sunday_open + MINUTE_US)) is None
    assert market(LIMITS, order(time_us=friday_close - MINUTE_US)) is None


@pytest.mark.parametrize(
    ("session", "instant", "inside"),
    [
        # London 08:00-17:00 local: BST (UTC+1) in July, GMT in January.
        ("london", us(2024, 7, 10, 6, 59), False),
        ("london", us(2024, 7, 10, 7, 0), True),
        ("london", us(2024, 7, 10, 15, 59), True),
        ("london", us(2024, 7, 10, 16, 0), False),
        ("london", us(2024, 1, 10, 7, 59), False),
        ("london", us(2024, 1, 10, 8, 0), True),
        ("london", us(2024, 1, 10, 16, 59), True),
        ("london", us(2024, 1, 10, 17, 0), False),
        # New York 08:00-17:00 local: EDT (UTC-4) in July, EST (UTC-5) in January.
        ("new_york", us(2024, 7, 10, 11, 59), False),
        ("new_york", us(2024, 7, 10, 12, 0), True),
        ("new_york", us(2024, 7, 10, 20, 59), True),
        ("new_york", us(2024, 7, 10, 21, 0), False),
        ("new_york", us(2024, 1, 10, 12, 59), False),
        ("new_york", us(2024, 1, 10, 13, 0), True),
        ("new_york", us(2024, 1, 10, 21, 59), True),
        ("new_york", us(2024, 1, 10, 22, 0), False),
        # 2024-03-13: New York is on summer time, London not yet.
        ("new_york", us(2024, 3, 13, 12, 0), True),
        ("london", us(2024, 3, 13, 7, 59), False),
        ("london", us(2024, 3, 13, 8, 0), True),
        # Tokyo 09:00-18:00 JST (UTC+9, no DST).
        ("asia", us(2024, 7, 9, 23, 59), False),
        ("asia", us(2024, 7, 10, 0, 0), True),
        ("asia", us(2024, 7, 10, 8, 59), True),
        ("asia", us(2024, 7, 10, 9, 0), False),
    ],
)
def test_sessions_in_summer_and_winter_time(session, instant, inside):
    limits = replace(LIMITS, sessions=(session,))
    result = market(limits, order(time_us=instant))
    if inside:
        assert result is None
    else:
        refusal = refused(result, "session")
        assert f"['{session}']" in refusal.message
        assert refusal.numbers == {"time_us": instant}


def test_any_allowed_session_is_enough_and_no_sessions_means_any_time():
    both = replace(LIMITS, sessions=("london", "new_york"))
    evening = us(2024, 7, 10, 20, 0)  # London closed (21:00 BST), New York open (16:00 EDT)
    assert market(both, order(time_us=evening)) is None
    assert refused(market(replace(LIMITS, sessions=("london",)), order(time_us=evening)), "session")
    assert market(LIMITS, order(time_us=us(2024, 7, 10, 2, 0))) is None


# -- news, spread, slippage --------------------------------------------------------------------

EVENT = NewsEvent(WEDNESDAY_NOON, "USD", "CPI", before_minutes=30.0, after_minutes=15.0)
NEWS = NewsCalendar((EVENT,))


@pytest.mark.parametrize(
    ("symbol", "offset_us", "blocked"),
    [
        ("EURUSD", -30 * MINUTE_US, True),  # the window's first instant
        ("EURUSD", -30 * MINUTE_US - 1, False),
        ("EURUSD", 0, True),
        ("EURUSD", 15 * MINUTE_US, True),  # the window's last instant
        ("EURUSD", 15 * MINUTE_US + 1, False),
        ("USDJPY", -10 * MINUTE_US, True),  # USD as the base currency
        ("XAUUSD", 5 * MINUTE_US, True),
        ("EURJPY", 0, False),  # no USD leg
        ("EURGBP", 0, False),
    ],
)
def test_news_blackout_window_for_the_currencies_of_the_pair(symbol, offset_us, blocked):
    request = order(symbol=symbol, time_us=WEDNESDAY_NOON + offset_us)
    result = market(LIMITS, request, news=NEWS)
    assert (NEWS.blackout(symbol, request.time_us) is EVENT) is blocked
    if blocked:
        refusal = refused(result, "news_blackout")
        assert "USD news 'CPI'" in refusal.message
        assert "30 min before to 15 min after" in refusal.message
        assert refusal.numbers["minutes_from_event"] == pytest.approx(offset_us / MINUTE_US)
    else:
        assert result is None


def test_news_window_minutes_are_rounded_to_microseconds():
    event = NewsEvent(WEDNESDAY_NOON, "EUR", "ECB", before_minutes=0.5, after_minutes=0.0)
    assert event.window_us == (WEDNESDAY_NOON - 30_000_000, WEDNESDAY_NOON)


@pytest.mark.parametrize(
    ("symbol", "pip", "ok_spread", "bad_spread", "bad_pips"),
    [
        ("EURUSD", EURUSD_PIP, 0.00015, 0.00016, 1.6),
        ("USDJPY", USDJPY_PIP, 0.015, 0.016, 1.6),
    ],
)
def test_spread_guard_in_pips(symbol, pip, ok_spread, bad_spread, bad_pips):
    limits = replace(LIMITS, max_spread_pips=1.5)
    assert market(limits, order(symbol=symbol, spread=ok_spread), pip) is None  # 1.5 pips
    refusal = refused(market(limits, order(symbol=symbol, spread=bad_spread), pip), "spread")
    assert refusal.numbers["spread_pips"] == pytest.approx(bad_pips)
    assert refusal.numbers["limit"] == 1.5
    assert "1.60 pips" in refusal.message
    assert "1.5 pip limit" in refusal.message
    # The same spread read with the wrong pip size (EURUSD's for a yen pair) is 160 pips.
    if symbol == "USDJPY":
        assert refused(market(limits, order(spread=ok_spread), EURUSD_PIP), "spread")
    assert market(LIMITS, order(symbol=symbol, spread=bad_spread * 100), pip) is None  # off


@pytest.mark.parametrize(
    ("symbol", "pip", "ok_slippage", "bad_slippage"),
    [("EURUSD", EURUSD_PIP, 0.00005, 0.00006), ("USDJPY", USDJPY_PIP, 0.005, 0.006)],
)
def test_slippage_guard_in_pips(symbol, pip, ok_slippage, bad_slippage):
    limits = replace(LIMITS, max_slippage_pips=0.5)
    assert market(limits, order(symbol=symbol, expected_slippage=ok_slippage), pip) is None
    refusal = refused(
        market(limits, order(symbol=symbol, expected_slippage=bad_slippage), pip), "slippage"
    )
    assert refusal.numbers["slippage_pips"] == pytest.approx(0.6)
    assert refusal.numbers["limit"] == 0.5
    assert "0.60 pips" in refusal.message


def test_the_first_broken_market_gate_is_named():
    limits = replace(
        LIMITS,
        sessions=("asia",),
        max_spread_pips=0.5,
        max_slippage_pips=0.1,
        week_close_buffer_minutes=60 * 24,
    )
    friday = us(2024, 7, 12, 12, 0)  # inside the one-day closing buffer, outside Asia
    request = order(time_us=friday, spread=0.001, expected_slippage=0.001)
    news = NewsCalendar((replace(EVENT, time_us=friday),))
    steps = [
        ("weekend", {"week_close_buffer_minutes": 0.0}),
        ("session", {"sessions": ()}),
        ("news_blackout", None),
        ("spread", {"max_spread_pips": None}),
        ("slippage", {"max_slippage_pips": None}),
    ]
    for rule, fix in steps:
        refused(market(limits, request, news=news), rule)
        if fix is None:
            news = NO_NEWS
        else:
            limits = replace(limits, **fix)
    assert market(limits, request, news=news) is None
