"""The backtest kernel on hand-built price paths whose fills and P&L can be worked out by hand.

Unless a test says otherwise: EURUSD (USD quote, 100,000 units a lot), no spread, no
commission, ATR 0.001 on every bar, 1% risk of 100,000 and a 1-ATR stop, so every trade
is 1,000 / (0.001 x 100,000) = 10 lots = 1,000,000 units and a 0.0001 move is 100 USD.
Bars are written (open, high, low, close).
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forex_assets.market.contract import Contract
from forex_assets.market.fx_calendar import DayClose, FxCalendar
from forex_assets.metrics.performance import METRIC_NAMES
from forex_assets.strategies.backtest.errors import BacktestInputError
from forex_assets.strategies.backtest.market import Market
from forex_assets.strategies.backtest.records import BacktestResult
from forex_assets.strategies.backtest.rules import TradeRules
from forex_assets.strategies.backtest.run import backtest, backtest_batch
from forex_assets_tests.conftest import utc

ATR = 0.001
FREE = Contract.for_symbol("EURUSD", commission_per_lot=0.0)
RULES = TradeRules(stop_atr=1.0, take_atr=2.0, max_hold_bars=50)
FLAT = (1.1, 1.1001, 1.0999, 1.1)
EXACT = 1e-9  # prices and P&L agree to floating-point rounding


def market(
    *bars: tuple[float, float, float, float], spread: float = 0.0, atr: float = ATR
) -> Market:
    """One bar per (open, high, low, close), all on one FX day."""
    o, h, lo, c = (np.array(column, dtype=np.float64) for column in zip(*bars, strict=True))
    n = o.size
    day = np.zeros(n, np.int64)
    return Market(o, h, lo, c, np.full(n, atr), np.full(n, spread), day, day)


def signals(n: int, **at: int) -> np.ndarray:
    """Zeros except `at` ({"b3": 1} puts +1 on bar 3)."""
    out = np.zeros(n, dtype=np.int8)
    for key, value in at.items():
        out[int(key[1:])] = value
    return out


def only_trade(result: BacktestResult) -> dict:
    assert result.trades.height == 1, result.trades
    return result.trades.row(0, named=True)


def test_long_stop_exits_at_the_stop_and_loses_exactly_the_risk():
    # Signal at bar 0's close, entry at bar 1's open 1.1000, stop 1.0990, hit in bar 3.
    m = market(FLAT, FLAT, FLAT, (1.1, 1.1001, 1.0985, 1.0988), FLAT)
    trade = only_trade(backtest(m, signals(5, b0=1), RULES, FREE))
    assert (trade["entry_bar"], trade["exit_bar"], trade["side"]) == (1, 3, 1)
    assert trade["entry_price"] == 1.1
    assert trade["exit_price"] == pytest.approx(1.099, abs=EXACT)
    assert trade["lots"] == pytest.approx(10.0)
    assert trade["pnl"] == pytest.approx(-1000.0, abs=1e-6)
    assert trade["exit_reason"] == "stop"


def test_short_take_profit_exits_at_the_take():
    # Short entry 1.1000, take 2 ATR below at 1.0980, reached by bar 2's low.
    m = market(FLAT, FLAT, (1.1, 1.1005, 1.0975, 1.0985), FLAT)
    trade = only_trade(backtest(m, signals(4, b0=-1), RULES, FREE))
    assert (trade["side"], trade["exit_bar"], trade["exit_reason"]) == (-1, 2, "take")
    assert trade["exit_price"] == pytest.approx(1.098, abs=EXACT)
    assert trade["pnl"] == pytest.approx(2000.0, abs=1e-6)


def test_a_bar_touching_stop_and_take_is_a_stop():
    m = market(FLAT, FLAT, (1.1, 1.1030, 1.0980, 1.1), FLAT)
    trade = only_trade(backtest(m, signals(4, b0=1), RULES, FREE))
    assert trade["exit_reason"] == "stop"
    assert trade["exit_price"] == pytest.approx(1.099, abs=EXACT)


def test_a_gap_through_the_stop_fills_at_the_open():
    # Bar 2 opens at 1.0980, below the 1.0990 stop: the fill is the open, a 2,000 loss.
    m = market(FLAT, FLAT, (1.098, 1.0985, 1.0975, 1.0982), FLAT)
    trade = only_trade(backtest(m, signals(4, b0=1), RULES, FREE))
    assert trade["exit_price"] == 1.098
    assert trade["pnl"] == pytest.approx(-2000.0, abs=1e-6)


def test_the_entry_bar_itself_can_stop_out():
    m = market(FLAT, (1.1, 1.1001, 1.0985, 1.0990), FLAT)
    trade = only_trade(backtest(m, signals(3, b0=1), RULES, FREE))
    assert (trade["entry_bar"], trade["exit_bar"], trade["exit_reason"]) == (1, 1, "stop")


def test_max_hold_exits_at_the_close_of_the_last_bar_held():
    # Entry at bar 1; with max_hold_bars=3 bars 1, 2, 3 are held and bar 3's close exits.
    up = [
        (1.1 + k * 1e-4, 1.1 + k * 1e-4 + 5e-5, 1.1 + k * 1e-4 - 5e-5, 1.1 + k * 1e-4)
        for k in range(6)
    ]
    rules = replace(RULES, max_hold_bars=3)
    trade = only_trade(backtest(market(*up), signals(6, b0=1), rules, FREE))
    assert (trade["exit_bar"], trade["exit_reason"]) == (3, "max_hold")
    assert trade["exit_price"] == up[3][3]
    assert trade["pnl"] == pytest.approx((up[3][3] - up[1][0]) * 1e6, abs=1e-6)


def test_trailing_stop_follows_the_best_close_and_exits_as_trail():
    # Closes 1.1000, 1.1010, 1.1020 pull a 1-ATR trail up to 1.1010; bar 4 dips to 1.1005.
    m = market(
        FLAT,
        (1.1, 1.1002, 1.0998, 1.1),
        (1.1, 1.1012, 1.0998, 1.101),
        (1.101, 1.1022, 1.1008, 1.102),
        (1.102, 1.1021, 1.1005, 1.1008),
        FLAT,
    )
    rules = replace(RULES, take_atr=5.0, trail_atr=1.0)
    trade = only_trade(backtest(m, signals(6, b0=1), rules, FREE))
    assert (trade["exit_bar"], trade["exit_reason"]) == (4, "trail")
    assert trade["exit_price"] == pytest.approx(1.101, abs=EXACT)
    assert trade["pnl"] == pytest.approx(1000.0, abs=1e-6)


def test_an_untightened_trail_leaves_a_plain_stop():
    # Closes never rise, so the trail (best close - 1 ATR) never beats the initial stop.
    m = market(FLAT, FLAT, FLAT, (1.1, 1.1001, 1.0985, 1.0988))
    trade = only_trade(backtest(m, signals(4, b0=1), replace(RULES, trail_atr=1.0), FREE))
    assert trade["exit_reason"] == "stop"


def test_an_opposite_signal_exits_at_the_next_open_without_reversing():
    bars = [FLAT, FLAT, FLAT, (1.1004, 1.1006, 1.1, 1.1002), FLAT, FLAT, FLAT]
    # Long from bar 1; -1 at bar 2 exits at bar 3's open 1.1004; -1 again at bar 4 enters.
    result = backtest(market(*bars), signals(7, b0=1, b2=-1, b4=-1), RULES, FREE)
    first, second = result.trades.iter_rows(named=True)
    assert (first["exit_bar"], first["exit_reason"]) == (3, "opposite")
    assert first["exit_price"] == 1.1004
    assert first["pnl"] == pytest.approx(400.0, abs=1e-6)
    assert (second["entry_bar"], second["side"], second["exit_reason"]) == (5, -1, "end")


def test_entries_come_on_the_bar_after_the_signal_and_never_from_the_last_bar():
    result = backtest(market(FLAT, FLAT, FLAT), signals(3, b2=1), RULES, FREE)
    assert result.trades.height == 0
    trade = only_trade(backtest(market(FLAT, FLAT, FLAT), signals(3, b1=-1), RULES, FREE))
    assert (trade["entry_bar"], trade["exit_bar"], trade["exit_reason"]) == (2, 2, "end")


def test_one_position_at_a_time():
    # Same-side signals while long are ignored; the position runs to its max hold.
    rules = replace(RULES, max_hold_bars=4)
    sig = signals(8, b0=1, b1=1, b2=1, b3=1)
    trade = only_trade(backtest(market(*[FLAT] * 8), sig, rules, FREE))
    assert (trade["entry_bar"], trade["exit_bar"]) == (1, 4)


def test_rules_from_numpy_scalars_are_accepted():
    # What an optimizer hands over: numpy floats and ints, as in a row of a rules array.
    rules = TradeRules(np.float64(1.0), np.float64(2.0), np.int64(3))
    trade = only_trade(backtest(market(*[FLAT] * 6), signals(6, b0=1), rules, FREE))
    assert trade["exit_bar"] == 3


def test_no_entry_on_a_warm_up_atr():
    m = replace(market(FLAT, FLAT, FLAT), atr=np.array([np.nan, ATR, ATR]))
    assert backtest(m, signals(3, b0=1), RULES, FREE).trades.height == 0


def test_spread_is_paid_half_at_entry_and_half_at_exit_plus_commission():
    # Entry bar 1 spread 0.0002: buy at 1.1001. Exit bar 2 (max hold 2) spread 0.0004:
    # sell at 1.1010 - 0.0002 = 1.1008. Stop distance 0.001 -> 10 lots, commission 70.
    m = market(FLAT, FLAT, (1.1, 1.1012, 1.0999, 1.101))
    m = replace(m, spread=np.array([0.0, 0.0002, 0.0004]))
    contract = Contract.for_symbol("EURUSD")  # 7 USD per lot round trip
    trade = only_trade(backtest(m, signals(3, b0=1), replace(RULES, max_hold_bars=2), contract))
    assert trade["entry_price"] == pytest.approx(1.1001, abs=EXACT)
    assert trade["exit_price"] == pytest.approx(1.1008, abs=EXACT)
    assert trade["pnl"] == pytest.approx(0.0007 * 1e6 - 70.0, abs=1e-6)


def test_a_missing_spread_is_the_contract_default():
    # NaN spread, default 1 pip: buy at 1.10005, sell the end close at 1.09995.
    m = replace(market(FLAT, FLAT, FLAT), spread=np.full(3, np.nan))
    trade = only_trade(backtest(m, signals(3, b0=1), RULES, Contract.for_symbol("EURUSD")))
    assert trade["entry_price"] == pytest.approx(1.10005, abs=EXACT)
    assert trade["exit_price"] == pytest.approx(1.09995, abs=EXACT)


def test_usdjpy_pnl_is_converted_at_the_exit_price():
    contract = Contract.for_symbol("USDJPY", commission_per_lot=0.0)
    assert (contract.pip_size, contract.quote_is_account) == (0.01, False)
    # Stop 0.5 yen: one lot risks 0.5 x 100,000 / 150 = 333.33 USD -> 3 lots for 1,000.
    bars = [
        (150.0, 150.1, 149.9, 150.0),
        (150.0, 150.6, 149.9, 150.5),
        (150.5, 151.2, 150.4, 151.0),
    ]
    trade = only_trade(backtest(market(*bars, atr=0.5), signals(3, b0=1), RULES, contract))
    assert trade["lots"] == pytest.approx(3.0)
    assert trade["pnl"] == pytest.approx(1.0 * 300_000 / 151.0, abs=1e-6)


def test_xauusd_has_a_100_ounce_contract():
    contract = Contract.for_symbol("XAUUSD", commission_per_lot=0.0)
    assert (contract.pip_size, contract.contract_size, contract.quote_is_account) == (
        0.1,
        100,
        True,
    )
    # Stop 5 USD x 100 oz = 500 USD a lot -> 2 lots; +10 USD on 200 oz = 2,000 USD.
    bars = [(2000.0, 2001.0, 1999.0, 2000.0)] * 2 + [(2000.0, 2011.0, 1999.0, 2010.0)]
    trade = only_trade(backtest(market(*bars, atr=5.0), signals(3, b0=1), RULES, contract))
    assert trade["lots"] == pytest.approx(2.0)
    assert trade["pnl"] == pytest.approx(2000.0, abs=1e-6)


@pytest.mark.parametrize(
    ("risk", "atr", "lots"),
    [
        (0.01, 0.0014, 7.14),  # 1,000 / 140 = 7.1428 -> 7.14, rounded down
        (0.003, 0.01, 0.30),  # 300 / 1,000 = 0.3 exactly, not 0.29 from 29.999999999999996
        (0.01, 100.0, 0.01),  # a 10-million-USD stop per lot: the 0.01 minimum lot
    ],
)
def test_lots_come_from_the_risk_fraction_rounded_down_to_the_lot_step(risk, atr, lots):
    rules = replace(RULES, risk_fraction=risk)
    trade = only_trade(backtest(market(FLAT, FLAT, atr=atr), signals(2, b0=1), rules, FREE))
    assert trade["lots"] == pytest.approx(lots, abs=1e-12)


def test_daily_drawdown_is_split_at_the_new_york_close():
    # January (EST): 21:55 UTC is 16:55 New York, 22:05 UTC is 17:05, the next FX day.
    times = [utc(2024, 1, 9, 21, 45) + timedelta(minutes=5 * k) for k in (0, 1, 2, 4, 5)]
    bars = pl.DataFrame(
        {
            "time": pl.Series(times, dtype=pl.Datetime("us", "UTC")),
            "open": [1.1, 1.1, 1.0996, 1.0995, 1.0992],
            "high": [1.1001, 1.1001, 1.0997, 1.0996, 1.0994],
            "low": [1.0999, 1.0995, 1.0994, 1.0991, 1.0991],
            "close": [1.1, 1.0996, 1.0995, 1.0992, 1.0993],
            "spread": pl.Series([0.0] * 5, dtype=pl.Float64),
        }
    )
    m = replace(Market.from_bars(bars), atr=np.full(5, ATR))
    assert m.day[2] == m.day[0] != m.day[3] == m.day[4]
    # Long 5 lots (2-ATR stop) at 1.1000: 500,000 units, 50 USD per 0.0001.
    result = backtest(m, signals(5, b0=1), replace(RULES, stop_atr=2.0), FREE)
    daily = result.daily.to_dict(as_series=False)
    assert daily["trades"] == [1, 0]
    # Day 1: low 1.0994 (-300), closes at 1.0995 (-250); day 2 starts there, low 1.0991.
    np.testing.assert_allclose(daily["start_equity"], [100_000, 99_750], atol=1e-6)
    np.testing.assert_allclose(daily["min_equity"], [99_700, 99_550], atol=1e-6)
    np.testing.assert_allclose(daily["end_equity"], [99_750, 99_650], atol=1e-6)
    # 300 / 100,000 on day 1 beats 200 / 99,750 on day 2; all-time 450 / 100,000.
    assert result.metrics["worst_daily_drawdown"] == pytest.approx(0.003)
    assert result.metrics["max_drawdown"] == pytest.approx(0.0045)


def test_from_bars_dates_months_by_the_fx_day_and_computes_atr():
    # 2024-01-31 22:30 UTC is 17:30 New York: FX day 1 February.
    times = [utc(2024, 1, 31, 21, 30) + timedelta(hours=k) for k in range(20)]
    close = 1.1 + 0.0001 * np.arange(20)
    bars = pl.DataFrame(
        {
            "time": pl.Series(times, dtype=pl.Datetime("us", "UTC")),
            "open": close,
            "high": close + 0.0005,
            "low": close - 0.0005,
            "close": close,
            "spread": pl.Series([None] * 20, dtype=pl.Float64),
        }
    )
    m = Market.from_bars(bars, atr_period=3)
    assert m.month[0] == 2024 * 12 + 0 and m.month[1] == 2024 * 12 + 1
    assert np.isnan(m.atr[:3]).all() and m.atr[10] == pytest.approx(0.001)
    assert np.isnan(m.spread).all()
    assert m.days.size == 2 and m.day_index.tolist() == [0] + [1] * 19
    # With daily bars cut at UTC midnight the same bars span 31 January and 1 February
    # differently: the day changes at 00:00 UTC, the 4th bar.
    utc_days = Market.from_bars(bars, FxCalendar(DayClose.UTC_MIDNIGHT), atr_period=3)
    assert utc_days.day_index.tolist() == [0, 0, 0] + [1] * 17
    assert utc_days.month[2] == 2024 * 12 + 0 and utc_days.month[3] == 2024 * 12 + 1


def random_market(rng: np.random.Generator, n: int, bars_per_day: int = 60) -> Market:
    close = 1.1 + np.cumsum(rng.normal(0, 2e-4, n))
    open_ = np.concatenate(([1.1], close[:-1])) + rng.normal(0, 5e-5, n)
    high = np.maximum(open_, close) + np.abs(rng.normal(0, 2e-4, n))
    low = np.minimum(open_, close) - np.abs(rng.normal(0, 2e-4, n))
    spread = np.where(rng.random(n) < 0.1, np.nan, rng.uniform(0, 2e-4, n))
    atr = np.where(np.arange(n) < 5, np.nan, rng.uniform(3e-4, 1e-3, n))
    day = np.arange(n, dtype=np.int64) // bars_per_day + 19_000
    month = (day - 19_000) // 5
    return Market(open_, high, low, close, atr, spread, day, month)


def test_metrics_agree_with_the_recorded_trades_equity_and_days():
    rng = np.random.default_rng(3)
    m = random_market(rng, 3000)
    sig = rng.choice(np.array([-1, 0, 1], dtype=np.int8), 3000, p=[0.02, 0.96, 0.02])
    rules = TradeRules(1.5, 2.5, 40, trail_atr=1.0)
    result = backtest(m, sig, rules, Contract.for_symbol("EURUSD"))
    metrics, pnl = result.metrics, result.trades.get_column("pnl").to_numpy()
    assert metrics["trades"] == pnl.size > 20
    assert metrics["net_profit"] == pytest.approx(pnl.sum() / 100_000, abs=1e-12)
    assert metrics["win_rate"] == pytest.approx(np.mean(pnl > 0))
    assert metrics["expectancy"] == pytest.approx(pnl.mean() / 100_000)
    assert metrics["profit_factor"] == pytest.approx(pnl[pnl > 0].sum() / -pnl[pnl < 0].sum())
    assert metrics["sqn"] == pytest.approx(math.sqrt(pnl.size) * pnl.mean() / pnl.std(ddof=1))
    daily = result.daily
    returns = (daily["end_equity"] / daily["start_equity"] - 1).to_numpy()
    assert metrics["sharpe"] == pytest.approx(returns.mean() / returns.std(ddof=1) * math.sqrt(252))
    downside = math.sqrt(np.mean(np.minimum(returns, 0) ** 2))
    assert metrics["sortino"] == pytest.approx(returns.mean() / downside * math.sqrt(252))
    peak = np.maximum.accumulate(np.concatenate(([100_000.0], result.equity)))[:-1]
    assert metrics["max_drawdown"] == pytest.approx(np.max((peak - result.equity_low) / peak))
    by_month = pl.DataFrame({"month": m.month[result.trades["exit_bar"].to_numpy()], "pnl": pnl})
    monthly = by_month.group_by("month").agg(pl.col("pnl").sum())["pnl"].to_numpy()
    assert metrics["monthly_consistency"] == pytest.approx(np.mean(monthly > 0))
    assert daily["trades"].sum() == pnl.size


def test_no_trades_gives_undefined_ratios_not_zero_skill():
    result = backtest(market(FLAT, FLAT), signals(2), RULES, FREE)
    assert result.metrics["trades"] == 0 and result.metrics["net_profit"] == 0
    for name in ("profit_factor", "win_rate", "expectancy", "sqn", "monthly_consistency"):
        assert math.isnan(result.metrics[name]), name


def test_batch_equals_single_backtests():
    rng = np.random.default_rng(11)
    m = random_market(rng, 2000)
    k = 7
    sig = rng.choice(np.array([-1, 0, 1], dtype=np.int8), (k, 2000), p=[0.03, 0.94, 0.03])
    rules = np.column_stack(
        [
            rng.uniform(0.5, 3, k),
            rng.uniform(0.5, 4, k),
            rng.integers(1, 80, k),
            np.where(rng.random(k) < 0.5, 0.0, rng.uniform(0.5, 2, k)),
        ]
    )
    contract = Contract.for_symbol("EURUSD")
    batch = backtest_batch(m, sig, rules, contract, risk_fraction=0.02, initial_equity=50_000.0)
    assert batch.metrics.shape == (k, len(METRIC_NAMES)) and batch.METRIC_NAMES == METRIC_NAMES
    assert batch.daily_start.shape == (k, m.days.size)
    for c in range(k):
        single = backtest(
            m,
            sig[c],
            TradeRules(*rules[c, :2], int(rules[c, 2]), rules[c, 3], 0.02, 50_000.0),
            contract,
        )
        np.testing.assert_array_equal(batch.metrics[c], list(single.metrics.values()))
        daily = single.daily
        np.testing.assert_array_equal(batch.days, daily["day"].to_numpy())
        np.testing.assert_array_equal(batch.daily_start[c], daily["start_equity"].to_numpy())
        np.testing.assert_array_equal(batch.daily_min[c], daily["min_equity"].to_numpy())
        np.testing.assert_array_equal(batch.daily_end[c], daily["end_equity"].to_numpy())
        np.testing.assert_array_equal(batch.daily_trades[c], daily["trades"].to_numpy())


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Market, list[int], TradeRules, str]:
    n = draw(st.integers(2, 60))
    seed = draw(st.integers(0, 2**32 - 1))
    sig = draw(st.lists(st.sampled_from([-1, 0, 1]), min_size=n, max_size=n))
    rules = TradeRules(
        stop_atr=draw(st.floats(0.2, 3.0)),
        take_atr=draw(st.floats(0.2, 5.0)),
        max_hold_bars=draw(st.integers(1, 20)),
        trail_atr=draw(st.sampled_from([0.0, 0.5, 1.5])),
    )
    symbol = draw(st.sampled_from(["EURUSD", "USDJPY"]))
    return random_market(np.random.default_rng(seed), n, bars_per_day=7), sig, rules, symbol


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_trades_follow_their_signals_never_overlap_and_sum_to_the_equity(scenario):
    m, sig, rules, symbol = scenario
    sig = np.array(sig, dtype=np.int8)
    result = backtest(m, sig, rules, Contract.for_symbol(symbol))
    trades = result.trades
    entry, exit_ = trades["entry_bar"].to_numpy(), trades["exit_bar"].to_numpy()
    assert (entry >= 1).all() and (exit_ >= entry).all()
    # The signal that opened each trade is on the bar before its entry, never the same bar.
    np.testing.assert_array_equal(sig[entry - 1], trades["side"].to_numpy())
    assert (entry[1:] > exit_[:-1]).all()
    final = rules.initial_equity + trades["pnl"].sum()
    assert result.equity[-1] == pytest.approx(final, abs=1e-6)
    assert result.daily["end_equity"][-1] == result.equity[-1]
    assert (result.equity_low <= result.equity).all()
    assert (result.daily["min_equity"] <= result.daily["start_equity"]).all()


def test_bad_inputs_are_refused_with_the_reason():
    m = market(FLAT, FLAT, FLAT)
    with pytest.raises(BacktestInputError, match="lengths"):
        Market(*(np.ones(3),) * 5, np.ones(2), np.zeros(3, np.int64), np.zeros(3, np.int64))
    with pytest.raises(BacktestInputError, match="high and low must bound"):
        market((1.1, 1.0, 1.05, 1.1))
    with pytest.raises(BacktestInputError, match="time order"):
        replace(m, day=np.array([2, 1, 1]))
    with pytest.raises(BacktestInputError, match=r"shape \(4,\); pass shape \(3,\)"):
        backtest(m, np.zeros(4, np.int8), RULES, FREE)
    with pytest.raises(BacktestInputError, match="holds 2 at flat position 1"):
        backtest(m, np.array([0, 2, 0]), RULES, FREE)
    with pytest.raises(BacktestInputError, match="holds nan"):
        backtest(m, np.array([0.0, np.nan, 1.0]), RULES, FREE)
    with pytest.raises(BacktestInputError, match="stop_atr=0"):
        TradeRules(stop_atr=0, take_atr=1, max_hold_bars=5)
    with pytest.raises(BacktestInputError, match="max_hold_bars=0"):
        TradeRules(stop_atr=1, take_atr=1, max_hold_bars=0)
    with pytest.raises(BacktestInputError, match="trail_atr=-1"):
        TradeRules(stop_atr=1, take_atr=1, max_hold_bars=5, trail_atr=-1)
    with pytest.raises(BacktestInputError, match=r"risk_fraction=0\.5"):
        TradeRules(stop_atr=1, take_atr=1, max_hold_bars=5, risk_fraction=0.5)
    good = np.array([[1.0, 2.0, 10, 0.0]] * 2)
    bad = good.copy()
    bad[1, 2] = 2.5
    with pytest.raises(BacktestInputError, match=r"rules\[1, 2\] \(max_hold_bars\) = 2\.5"):
        backtest_batch(m, np.zeros((2, 3), np.int8), bad, FREE)
    with pytest.raises(BacktestInputError, match=r"rules has shape \(1, 4\) for 2 signal rows"):
        backtest_batch(m, np.zeros((2, 3), np.int8), good[:1], FREE)


def test_trade_rules_from_a_row_are_the_rules_that_row_means():
    rules = TradeRules(stop_atr=1.5, take_atr=3.0, max_hold_bars=48, trail_atr=0.5)
    assert TradeRules.from_row(rules.as_row()) == rules
    funded = TradeRules.from_row([1.0, 2.0, 10.0, 0.0], risk_fraction=0.02, initial_equity=5e4)
    assert (funded.max_hold_bars, funded.risk_fraction, funded.initial_equity) == (10, 0.02, 5e4)
    with pytest.raises(BacktestInputError, match=r"max_hold_bars=2\.5 must be an int"):
        TradeRules.from_row([1.0, 2.0, 2.5, 0.0])
    with pytest.raises(BacktestInputError, match=r"shape \(3,\); pass 4 values"):
        TradeRules.from_row([1.0, 2.0, 10.0])
