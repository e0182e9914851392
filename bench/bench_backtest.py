"""Backtest kernel throughput in bar-steps (one candidate over one bar) per second per core.

Workload: a year of sample M1 bars and an EMA(50) cross signal (+1 where the close crosses
above its EMA, -1 below, about 17,000 trades a year), 3-ATR stop, 6-ATR take, 3-ATR trail,
240-bar max hold, 0.05% risk: small enough that the account, which loses the costs on a
random walk, keeps trading all year with a position open on about half the bars.

- ours, single: `backtest`, trades and per-bar equity recorded, metrics included, timed
  over back-to-back calls;
- ours, batch: `backtest_batch` on 64 candidates (8 EMA periods x 8 rule sets) over numba's
  threads; per core = bar-steps / (wall x threads); its anchor is the same 64 candidates
  as `backtest` calls in a row on one core;
- anchors: the same rules as a plain Python loop over bars, and written with pandas
  (vectorized per trade: each trade's exit is found with array operations on its holding
  window, the walk from trade to trade is a loop). Both produce the trades, per-bar equity
  and the daily summary, not the metrics; they run on a 50,000-bar slice and their time is
  scaled to the year, since a year in the Python loop takes long for no new information.

Before timing: both anchors give the kernel's trades and equity on the slice, and batch
metrics equal single backtests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numba
import numpy as np
import pandas as pd
import talib

from bench.harness import (
    BenchConfig,
    BenchResult,
    BenchRow,
    Measurement,
    check,
    time_best,
    warm_and_check,
)
from forex_assets.features.labels import cross_side
from forex_assets.ingest.sample import generate_sample_m1
from forex_assets.market.contract import Contract
from forex_assets.strategies.backtest.market import Market
from forex_assets.strategies.backtest.rules import TradeRules
from forex_assets.strategies.backtest.run import backtest, backtest_batch

DESCRIPTION = (
    "backtest kernel bar-steps/s/core (single and 64-candidate batch) vs Python and pandas"
)
# Each timed call takes milliseconds: best of 10 sees past other processes on the cores.
DEFAULT_CONFIG = {"years": 1.0, "repeats": 10}
TARGET_PER_CORE = 100e6
SLICE_BARS = 50_000
# backtest() takes milliseconds; the harness's gc.collect() before a sample evicts the bars
# from the caches, so a sample times this many calls back to back, as a search makes them.
CALLS_PER_SAMPLE = 10
EMA_PERIOD = 50
RULES = TradeRules(
    stop_atr=3.0, take_atr=6.0, max_hold_bars=240, trail_atr=3.0, risk_fraction=0.0005
)
BATCH_EMA_PERIODS = (20, 30, 50, 75, 100, 150, 200, 300)
# (stop_atr, take_atr, trail_atr); every set holds at most 240 bars.
BATCH_RULE_SETS = [(s, t, tr) for s in (1.5, 3.0) for t in (2.0, 4.0) for tr in (0.0, 2.0)]


def ema_cross(close: np.ndarray, period: int) -> np.ndarray:
    return cross_side(close - talib.EMA(close, timeperiod=period))


@dataclass(frozen=True)
class Evaluation:
    """What every implementation produces: trades as tuples in the order of `backtest`'s
    trade columns, per-bar equity and equity low, daily (start, min, end, trades opened)."""

    trades: list[tuple]
    equity: np.ndarray
    equity_low: np.ndarray
    daily: np.ndarray


def _kernel(market: Market, signal: np.ndarray, contract: Contract) -> Evaluation:
    """`backtest`'s answer in the anchors' shape."""
    result = backtest(market, signal, RULES, contract)
    frame = result.trades.with_columns(result.trades["exit_reason"].cast(str))
    daily = result.daily.drop("day").to_numpy().astype(np.float64)
    return Evaluation(frame.rows(), result.equity, result.equity_low, daily)


def python_loop(market: Market, signal: np.ndarray, contract: Contract) -> Evaluation:
    """The rules of `forex_assets.strategies.backtest.kernel` bar by bar in plain Python."""
    o, h, lo, c = (a.tolist() for a in (market.open, market.high, market.low, market.close))
    atr, spread, sig = market.atr.tolist(), market.spread.tolist(), signal.tolist()
    day_index = market.day_index.tolist()
    rules, n = RULES, len(market)
    default = contract.default_spread_pips * contract.pip_size
    quote = contract.quote_is_account

    def value(side: int, entry: float, price: float, units: float) -> float:
        gross = side * (price - entry) * units
        return gross if quote else gross / price

    realized = equity = rules.initial_equity
    equity_out, low_out, trades, daily = [0.0] * n, [0.0] * n, [], []
    side = pending = 0
    exit_next = trailed = False
    entry = stop = take = best = units = lots = cost = stop_dist = take_dist = trail = 0.0
    entry_bar = held = 0
    for j in range(n):
        if day_index[j] == len(daily):
            daily.append([equity, equity, equity, 0])
        worst = realized
        if side or pending:
            half = spread[j] if spread[j] == spread[j] else default
            half *= 0.5
            if pending:
                side, pending = pending, 0
                entry = o[j] + side * half
                stop, take = entry - side * stop_dist, entry + side * take_dist
                per_lot = stop_dist * contract.contract_size
                if not quote:
                    per_lot /= entry
                steps = np.floor(
                    rules.risk_fraction * realized / (per_lot * contract.lot_step) + 1e-9
                )
                lots = max(steps * contract.lot_step, contract.min_lot)
                units, cost = lots * contract.contract_size, contract.commission_per_lot * lots
                best, entry_bar, held, trailed = -np.inf * side, j, 0, False
                daily[-1][3] += 1
            reason = None
            exit_open = o[j] - side * half
            if exit_next:
                exit_price = worst_price = exit_open
                reason, exit_next = "opposite", False
            else:
                worst_price = lo[j] - half if side > 0 else h[j] + half
                best_price = h[j] - half if side > 0 else lo[j] + half
                if side * (worst_price - stop) <= 0:
                    exit_price = min(exit_open, stop) if side > 0 else max(exit_open, stop)
                    worst_price = exit_price
                    reason = "trail" if trailed else "stop"
                elif side * (best_price - take) >= 0:
                    exit_price = max(exit_open, take) if side > 0 else min(exit_open, take)
                    reason = "take"
                held += 1
                if reason is None and (held >= rules.max_hold_bars or j == n - 1):
                    exit_price = c[j] - side * half
                    reason = "max_hold" if held >= rules.max_hold_bars else "end"
            worst = realized - cost + value(side, entry, worst_price, units)
            if reason is not None:
                pnl = value(side, entry, exit_price, units) - cost
                realized += pnl
                equity = realized
                trades.append((entry_bar, j, side, entry, exit_price, lots, pnl, reason))
                side = 0
            else:
                if trail > 0:
                    best = max(best, c[j]) if side > 0 else min(best, c[j])
                    tightened = max(stop, best - trail) if side > 0 else min(stop, best + trail)
                    trailed = trailed or tightened != stop
                    stop = tightened
                equity = realized - cost + value(side, entry, c[j] - side * half, units)
        else:
            equity = realized
        worst = min(worst, equity)
        equity_out[j], low_out[j] = equity, worst
        today = daily[-1]
        today[1], today[2] = min(today[1], worst), equity
        if sig[j] != 0:
            if side == 0:
                if j + 1 < n and atr[j] > 0 and realized > 0:
                    pending = sig[j]
                    stop_dist, take_dist = rules.stop_atr * atr[j], rules.take_atr * atr[j]
                    trail = rules.trail_atr * atr[j]
            elif sig[j] != side:
                exit_next = True
    return Evaluation(trades, np.array(equity_out), np.array(low_out), np.array(daily, float))


def pandas_evaluation(market: Market, signal: np.ndarray, contract: Contract) -> Evaluation:
    """The same rules with pandas: array operations over each trade's holding window."""
    rules, n = RULES, len(market)
    bars = pd.DataFrame(
        {
            "open": market.open,
            "high": market.high,
            "low": market.low,
            "close": market.close,
            "atr": market.atr,
            "signal": signal,
            "day": market.day_index,
        }
    )
    half = pd.Series(market.spread).fillna(contract.default_spread_pips * contract.pip_size) / 2
    bid_open, ask_open = (bars["open"] - half).to_numpy(), (bars["open"] + half).to_numpy()
    bid_low, bid_high = (bars["low"] - half).to_numpy(), (bars["high"] - half).to_numpy()
    ask_low, ask_high = (bars["low"] + half).to_numpy(), (bars["high"] + half).to_numpy()
    bid_close, ask_close = (bars["close"] - half).to_numpy(), (bars["close"] + half).to_numpy()
    close, sig, atr = bars["close"].to_numpy(), bars["signal"].to_numpy(), bars["atr"].to_numpy()
    quote = contract.quote_is_account

    def value(side: int, entry: float, price: np.ndarray, units: float) -> np.ndarray:
        gross = side * (price - entry) * units
        return gross if quote else gross / price

    candidates = np.flatnonzero((sig != 0) & (atr > 0) & (np.arange(n) + 1 < n))
    equity = pd.Series(np.nan, index=bars.index)
    equity_low = pd.Series(np.nan, index=bars.index)
    realized, flat_from, trades = rules.initial_equity, 0, []
    while True:
        k = np.searchsorted(candidates, flat_from)
        if k == candidates.size or realized <= 0:
            break
        i = candidates[k]
        side, e, a = int(sig[i]), i + 1, atr[i]
        entry = (ask_open if side > 0 else bid_open)[e]
        stop_dist = rules.stop_atr * a
        stop0, take = entry - side * stop_dist, entry + side * rules.take_atr * a
        per_lot = stop_dist * contract.contract_size / (1.0 if quote else entry)
        steps = np.floor(rules.risk_fraction * realized / (per_lot * contract.lot_step) + 1e-9)
        lots = max(steps * contract.lot_step, contract.min_lot)
        units, cost = lots * contract.contract_size, contract.commission_per_lot * lots
        last = min(e + rules.max_hold_bars - 1, n - 1)
        w = slice(e, last + 1)
        stop = np.full(last + 1 - e, stop0)
        if rules.trail_atr > 0:
            level = close[w] - side * rules.trail_atr * a
            pull = np.maximum.accumulate(side * level[:-1]) * side
            stop[1:] = np.maximum(stop0, pull) if side > 0 else np.minimum(stop0, pull)
        worst_price = (bid_low if side > 0 else ask_high)[w].copy()
        best_price = (bid_high if side > 0 else ask_low)[w]
        exit_open = (bid_open if side > 0 else ask_open)[w]
        stop_hit = side * (worst_price - stop) <= 0
        event = stop_hit | (side * (best_price - take) >= 0)
        opposite = np.flatnonzero(sig[e:last] == -side)
        first_event = int(np.argmax(event)) if event.any() else None
        if opposite.size and (first_event is None or opposite[0] + 1 <= first_event):
            x = int(opposite[0]) + 1
            exit_price = worst_price[x] = exit_open[x]
            reason = "opposite"
        elif first_event is not None:
            x = first_event
            if stop_hit[x]:
                pick = min if side > 0 else max
                exit_price = worst_price[x] = pick(exit_open[x], stop[x])
                reason = "trail" if stop[x] != stop0 else "stop"
            else:
                exit_price = (max if side > 0 else min)(exit_open[x], take)
                reason = "take"
        else:
            x = last - e
            exit_price = (bid_close if side > 0 else ask_close)[last]
            reason = "max_hold" if x + 1 >= rules.max_hold_bars else "end"
        marks = value(side, entry, (bid_close if side > 0 else ask_close)[e : e + x], units)
        pnl = float(value(side, entry, exit_price, units) - cost)
        held = slice(e, e + x + 1)
        lows = realized - cost + value(side, entry, worst_price[: x + 1], units)
        equity.iloc[held] = np.append(realized - cost + marks, realized + pnl)
        equity_low.iloc[held] = lows
        trades.append((int(e), int(e + x), side, entry, float(exit_price), lots, pnl, reason))
        realized += pnl
        flat_from = e + x
    # Flat bars hold the realised equity of the last exit before them.
    exits = pd.Series([t[6] for t in trades], index=[t[1] for t in trades], dtype=float)
    realized_path = (rules.initial_equity + exits.cumsum()).reindex(bars.index).ffill()
    equity = equity.fillna(realized_path.fillna(rules.initial_equity))
    equity_low = np.minimum(equity_low.fillna(equity), equity)
    frame = pd.DataFrame({"day": bars["day"], "equity": equity, "low": equity_low})
    frame["start"] = frame["equity"].shift(1, fill_value=rules.initial_equity)
    days = frame.groupby("day").agg(
        start=("start", "first"), low=("low", "min"), end=("equity", "last")
    )
    days["low"] = np.minimum(days["low"], days["start"])
    opened = np.bincount(market.day_index[[t[0] for t in trades]], minlength=len(days))
    daily = np.column_stack([days[["start", "low", "end"]].to_numpy(), opened])
    return Evaluation(trades, equity.to_numpy(), equity_low.to_numpy(), daily.astype(float))


def _same(ours: Evaluation, theirs: Evaluation, anchor: str) -> None:
    check(
        len(ours.trades) == len(theirs.trades),
        f"{anchor}: {len(theirs.trades)} trades, the kernel {len(ours.trades)}",
    )
    for a, b in zip(ours.trades, theirs.trades, strict=True):
        check(a[:3] == b[:3] and a[-1] == b[-1], f"{anchor}: trade {b} != kernel's {a}")
        check(
            bool(np.allclose(a[3:-1], b[3:-1], rtol=1e-12, atol=1e-9)),
            f"{anchor}: trade {b} != kernel's {a}",
        )
    for name in ("equity", "equity_low", "daily"):
        check(
            bool(np.allclose(getattr(ours, name), getattr(theirs, name), rtol=1e-12, atol=1e-6)),
            f"{anchor}: {name} differs from the kernel's",
        )


def _slice(market: Market, bars: int) -> Market:
    cut = slice(0, bars)
    return Market(
        market.open[cut],
        market.high[cut],
        market.low[cut],
        market.close[cut],
        market.atr[cut],
        market.spread[cut],
        market.day[cut],
        market.month[cut],
    )


def _scaled(seconds: float, samples: list[float], factor: float, rows: int) -> Measurement:
    return Measurement(seconds * factor, rows, tuple(s * factor for s in samples))


def run(config: BenchConfig) -> BenchResult:
    result = BenchResult(name="backtest", title="backtest kernel throughput", unit="bar-steps")
    load = os.getloadavg()[0]
    bars = generate_sample_m1(config.symbol, years=config.years)
    market = Market.from_bars(bars)
    contract = Contract.for_symbol(config.symbol)
    signal = ema_cross(market.close, EMA_PERIOD)
    n = len(market)
    check(n > SLICE_BARS, f"{n:,} bars is fewer than the {SLICE_BARS:,}-bar anchor slice")

    part = _slice(market, SLICE_BARS)
    kernel_part = _kernel(part, signal[:SLICE_BARS], contract)
    check(len(kernel_part.trades) > 50, "the slice has too few trades to compare anything")
    reasons = {t[-1] for t in kernel_part.trades}
    for name, anchor in (("python loop", python_loop), ("pandas", pandas_evaluation)):
        _same(kernel_part, anchor(part, signal[:SLICE_BARS], contract), name)
    result.checks.append(
        f"the Python loop and the pandas version give the kernel's {len(kernel_part.trades)} "
        f"trades (exit reasons {sorted(reasons)}), per-bar equity and daily summary on the "
        f"first {SLICE_BARS:,} bars"
    )

    def single() -> object:
        return backtest(market, signal, RULES, contract)

    def back_to_back() -> None:
        for _ in range(CALLS_PER_SAMPLE):
            single()

    full = warm_and_check(single, config)
    in_position = int((full.trades["exit_bar"] - full.trades["entry_bar"] + 1).sum())
    best, samples = time_best(back_to_back, config.repeats)
    ours = _scaled(best, samples, 1 / CALLS_PER_SAMPLE, n)
    scale = n / SLICE_BARS
    for name, anchor in (("plain Python loop", python_loop), ("pandas", pandas_evaluation)):
        best, samples = time_best(
            lambda a=anchor: a(part, signal[:SLICE_BARS], contract), config.repeats, config.warmup
        )
        result.rows.append(
            BenchRow(
                f"backtest(), {n:,} M1 bars, 1 candidate",
                ours,
                _scaled(best, samples, scale, n),
                f"{name}, same rules, on {SLICE_BARS:,} bars, time x{scale:.1f}",
            )
        )

    signals, rules = _batch_workload(market.close)
    candidates = signals.shape[0]

    def batch_run() -> object:
        return backtest_batch(market, signals, rules, contract, RULES.risk_fraction)

    batch = warm_and_check(batch_run, config)
    for c in (0, candidates // 2, candidates - 1):
        one = backtest(market, signals[c], _rules_of(rules[c]), contract)
        check(
            bool(np.array_equal(batch.metrics[c], list(one.metrics.values()), equal_nan=True)),
            f"batch candidate {c} metrics differ from backtest()",
        )
    result.checks.append(
        f"backtest_batch metrics equal backtest() for candidates 0, {candidates // 2} and "
        f"{candidates - 1}"
    )
    threads = numba.get_num_threads()
    wall, samples = time_best(batch_run, config.repeats)
    per_core = _scaled(wall, samples, threads, candidates * n)

    def serial() -> None:
        for c in range(candidates):
            backtest(market, signals[c], _rules_of(rules[c]), contract)

    serial_seconds, serial_samples = time_best(serial, config.repeats)
    result.rows.append(
        BenchRow(
            f"backtest_batch(), {candidates} candidates, per core ({threads} threads)",
            per_core,
            Measurement(serial_seconds, candidates * n, tuple(serial_samples)),
            f"{candidates} backtest() calls in a row on one core",
        )
    )
    rates = {"single": ours.rows_per_s, "batch per core": per_core.rows_per_s}
    result.notes += [
        "target >= 100 M bar-steps/s/core: "
        + ", ".join(
            f"{k} {v / 1e6:.0f} M ({'met' if v >= TARGET_PER_CORE else 'MISSED'})"
            for k, v in rates.items()
        ),
        f"batch wall time {wall:.3f} s = {candidates * n / wall / 1e6:.0f} M bar-steps/s on "
        f"{threads} numba threads; its 'ours (s)' column is wall x threads (core-seconds)",
        f"single workload: {full.trades.height:,} trades, a position open on "
        f"{in_position / n:.0%} of {n:,} bars; net profit {full.metrics['net_profit']:.1%}",
        "anchors produce trades, per-bar equity and the daily summary but no metrics; the "
        "kernel computes the metrics too",
        f"1-minute load average when the benchmark started: {load:.1f} on "
        f"{len(os.sched_getaffinity(0))} usable cores (other processes sharing the cores "
        "lower the per-core figures)",
    ]
    return result


def _rules_of(row: np.ndarray) -> TradeRules:
    return TradeRules.from_row(row, risk_fraction=RULES.risk_fraction)


def _batch_workload(close: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """8 EMA-cross signals x 8 (stop, take, trail) sets, 240-bar max hold."""
    signals = np.stack([ema_cross(close, p) for p in BATCH_EMA_PERIODS for _ in BATCH_RULE_SETS])
    rules = np.array(
        [
            (s, t, RULES.max_hold_bars, tr)
            for _ in BATCH_EMA_PERIODS
            for s, t, tr in BATCH_RULE_SETS
        ],
        dtype=np.float64,
    )
    return signals, rules
