"""One metric set: the backtest kernel and the trade-list metrics agree name for name.

A backtest whose every trade opens and closes within one trading day leaves nothing open
at any day's end, so its marked daily equity is the closed-trade equity of its trade
list: every metric must then be equal on both paths, except the two drawdowns, which the
kernel measures on intrabar lows a trade list cannot see (so they can only be larger).
"""

import numpy as np
import pytest

from forex_assets.ingest.sample import generate_sample_m1
from forex_assets.market.contract import Contract
from forex_assets.market.fx_calendar import FxCalendar
from forex_assets.market.resample import resample_bars
from forex_assets.market.timeframes import Timeframe
from forex_assets.metrics.performance import METRIC_NAMES
from forex_assets.metrics.trading import trading_metrics
from forex_assets.strategies.backtest.market import Market
from forex_assets.strategies.backtest.rules import TradeRules
from forex_assets.strategies.backtest.run import backtest

HOLD = 3
DRAWDOWNS = ("max_drawdown", "worst_daily_drawdown")


@pytest.fixture(scope="module")
def market() -> Market:
    m1 = generate_sample_m1("EURUSD", years=0.25, seed=3)
    return Market.from_bars(resample_bars(m1, Timeframe.H1, FxCalendar()).filter(complete=True))


def intraday_signals(market: Market, seed: int) -> np.ndarray:
    """Sparse random signals on bars whose trade (entry next bar, at most HOLD bars held)
    cannot reach the next trading day."""
    rng = np.random.default_rng(seed)
    signal = np.zeros(len(market), dtype=np.int8)
    same_day = market.day[HOLD + 1 :] == market.day[: -HOLD - 1]
    candidates = np.flatnonzero(same_day & np.isfinite(market.atr[: -HOLD - 1]))
    chosen = np.sort(rng.choice(candidates, size=60, replace=False))
    chosen = chosen[np.concatenate(([True], np.diff(chosen) > HOLD + 1))]
    signal[chosen] = rng.choice(np.array([-1, 1], dtype=np.int8), size=chosen.size)
    return signal


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kernel_and_trade_list_metrics_are_one_definition(market, seed):
    rules = TradeRules(stop_atr=1.0, take_atr=1.5, max_hold_bars=HOLD)
    run = backtest(market, intraday_signals(market, seed), rules, Contract.for_symbol("EURUSD"))
    pnl = run.trades["pnl"].to_numpy()
    assert pnl.size >= 20
    before = rules.initial_equity + np.concatenate(([0.0], np.cumsum(pnl)[:-1]))
    exit_day = market.day[run.trades["exit_bar"].to_numpy()]
    listed = trading_metrics(pnl / before, exit_day, days=market.days).as_dict()
    for name in METRIC_NAMES:
        if name in DRAWDOWNS:
            assert run.metrics[name] >= listed[name] - 1e-12, name
        else:
            assert run.metrics[name] == pytest.approx(listed[name], rel=1e-9, abs=1e-12), name
