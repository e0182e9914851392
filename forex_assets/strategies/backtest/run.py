"""The public entry points: check the inputs, run the kernel, return typed records."""

from __future__ import annotations

import numpy as np
import polars as pl

from forex_assets.market.contract import Contract
from forex_assets.metrics.performance import METRIC_NAMES
from forex_assets.strategies.backtest.errors import BacktestInputError
from forex_assets.strategies.backtest.kernel import simulate, simulate_batch
from forex_assets.strategies.backtest.market import Market
from forex_assets.strategies.backtest.records import (
    TRADE_RECORD,
    BacktestResult,
    BatchResult,
    trades_frame,
)
from forex_assets.strategies.backtest.rules import (
    RULE_COLUMNS,
    TradeRules,
    check_account,
    rule_problem,
)


def _checked_signals(signal: object, bars: int, name: str, ndim: int) -> np.ndarray:
    """`signal` as contiguous int8 after checking its shape and that it holds only -1, 0, 1."""
    array = np.asarray(signal)
    if array.ndim != ndim or array.shape[-1] != bars:
        want = f"({bars},)" if ndim == 1 else f"(candidates, {bars})"
        raise BacktestInputError(
            f"{name} has shape {array.shape}; pass shape {want}, one entry per market bar."
        )
    if array.dtype.kind in "iub":
        # Integer signals: two reductions, no temporaries (batches hold millions of entries).
        valid = array.size == 0 or (array.min() >= -1 and array.max() <= 1)
    elif array.dtype.kind == "f":
        valid = bool(((array == -1) | (array == 0) | (array == 1)).all())
    else:
        valid = False
    if not valid:
        flat = array.ravel()
        bad = int(np.argmax(~np.isin(flat, (-1, 0, 1)))) if array.dtype.kind in "iubf" else 0
        value = flat[bad].item()
        raise BacktestInputError(
            f"{name} has dtype {array.dtype} and holds {value!r} at flat position {bad}; "
            "signals must be -1 (short), 0 (no signal) or +1 (long)."
        )
    return np.ascontiguousarray(array, dtype=np.int8)


def _market_args(market: Market) -> tuple[np.ndarray, ...]:
    """The bar arrays in `simulate`'s parameter order."""
    return (
        market.open,
        market.high,
        market.low,
        market.close,
        market.atr,
        market.spread,
        market.day_index,
        market.month,
    )


def _contract_args(contract: Contract) -> tuple[float | bool, ...]:
    """The contract in `simulate`'s parameter order, the default spread in price units."""
    return (
        float(contract.contract_size),
        bool(contract.quote_is_account),
        float(contract.commission_per_lot),
        contract.default_spread,
        float(contract.lot_step),
        float(contract.min_lot),
    )


def backtest(
    market: Market, signal: np.ndarray, rules: TradeRules, contract: Contract
) -> BacktestResult:
    """Trades, equity, daily summary and metrics of `signal` on `market` (see `kernel`)."""
    checked = _checked_signals(signal, len(market), "signal", 1)
    days = market.days.size
    daily = [np.empty(days) for _ in range(3)]
    daily_trades = np.empty(days, dtype=np.int64)
    metrics = np.empty(len(METRIC_NAMES))
    equity = np.empty(len(market))
    equity_low = np.empty(len(market))
    records = np.empty(np.count_nonzero(checked), dtype=TRADE_RECORD)
    # A hold longer than the data never binds; capping it keeps it an int64 in the kernel.
    max_hold = min(int(rules.max_hold_bars), len(market))
    count = simulate(
        *_market_args(market), checked, float(rules.stop_atr), float(rules.take_atr),
        max_hold, float(rules.trail_atr), float(rules.risk_fraction),
        float(rules.initial_equity), *_contract_args(contract), *daily, daily_trades, metrics,
        True, equity, equity_low, records,
    )  # fmt: skip
    start, low, end = daily
    frame = pl.DataFrame(
        {
            "day": market.days,
            "start_equity": start,
            "min_equity": low,
            "end_equity": end,
            "trades": daily_trades,
        }
    )
    return BacktestResult(
        trades=trades_frame(records[:count]),
        equity=equity,
        equity_low=equity_low,
        daily=frame,
        metrics=dict(zip(METRIC_NAMES, metrics.tolist(), strict=True)),
    )


def backtest_batch(
    market: Market,
    signals: np.ndarray,
    rules: np.ndarray,
    contract: Contract,
    risk_fraction: float = 0.01,
    initial_equity: float = 100_000.0,
) -> BatchResult:
    """Metrics and daily equity of many candidates at once, one per row of `signals`.

    `rules` has one row per candidate, columns `RULE_COLUMNS`. Candidates run in parallel on
    numba's threads (`numba.set_num_threads` bounds them); each matches `backtest` with the
    same inputs exactly, since both run the same kernel.
    """
    checked = _checked_signals(signals, len(market), "signals", 2)
    table = np.array(rules, dtype=np.float64)  # a copy: the max hold is capped below
    if table.shape != (checked.shape[0], len(RULE_COLUMNS)):
        raise BacktestInputError(
            f"rules has shape {table.shape} for {checked.shape[0]} signal rows; pass shape "
            f"({checked.shape[0]}, {len(RULE_COLUMNS)}), columns {RULE_COLUMNS}."
        )
    problem = rule_problem(table)
    if problem is not None:
        row, column, why = problem
        value = table[row, column].item()
        raise BacktestInputError(
            f"rules[{row}, {column}] ({RULE_COLUMNS[column]}) = {value!r} {why}."
        )
    check_account(risk_fraction, initial_equity, "")
    np.minimum(table[:, 2], len(market), out=table[:, 2])
    shape = (checked.shape[0], market.days.size)
    daily = [np.empty(shape) for _ in range(3)]
    daily_trades = np.empty(shape, dtype=np.int64)
    metrics = np.empty((checked.shape[0], len(METRIC_NAMES)))
    simulate_batch(
        *_market_args(market), checked, table, float(risk_fraction), float(initial_equity),
        *_contract_args(contract), *daily, daily_trades, metrics,
    )  # fmt: skip
    return BatchResult(metrics, market.days, *daily, daily_trades)
