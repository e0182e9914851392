"""Code run in separate processes by the concurrency and crash tests.

Kept importable (not nested in a test) so that `spawn` children and `python -m` children
find it: the point of these tests is that the processes share nothing but the ledger file
(and the paper broker's file), as traders on one host would.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from forex_assets.market.contract import Contract
from forex_assets.market.fx_calendar import DEFAULT_CALENDAR
from forex_assets.strategies.backtest.market import Market
from forex_assets.trading.broker import MarketOrder
from forex_assets.trading.paper_broker import PaperBroker
from forex_assets.trading.risk_ledger import Reservation, RiskLedger
from forex_assets.trading.risk_limits import RiskLimits
from forex_assets.trading.risk_manager import RiskManager
from forex_assets.trading.risk_rules import OrderRequest
from forex_assets.trading.sizing import SizingPolicy

SYMBOL = "EURUSD"
# A Tuesday in March, well inside the FX week and the London session.
START_US = int(datetime(2024, 3, 5, 10, 0, tzinfo=UTC).timestamp() * 1_000_000)
MINUTE_US = 60_000_000
TERMS = {SYMBOL: {"commission_per_lot": 0.0}}
STOP_DISTANCE = 0.0020


def flat_market(bars: int = 40) -> tuple[Market, np.ndarray]:
    """Quiet bars around 1.1000 (0.4 pip range, 0.2 pip spread): stops 20 pips away are
    never touched, so positions stay open and every fill is predictable."""
    times = START_US + np.arange(bars, dtype=np.int64) * MINUTE_US
    close = 1.1 + 0.00001 * (np.arange(bars) % 3)
    day = DEFAULT_CALENDAR.trading_day(times)
    month = day.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) + 1970 * 12
    market = Market(
        open=close,
        high=close + 0.00002,
        low=close - 0.00002,
        close=close,
        atr=np.full(bars, 0.001),
        spread=np.full(bars, 0.00002),
        day=day,
        month=month,
    )
    return market, times


def manager(ledger: RiskLedger, limits: RiskLimits) -> RiskManager:
    """Whole 1 % risk per order (no confidence or drawdown scaling), no commission."""
    policy = SizingPolicy(scale_by_confidence=False, scale_by_drawdown=False)
    return RiskManager(ledger, limits, policy, TERMS)


def request(source: str, time_us: int = START_US) -> OrderRequest:
    return OrderRequest(SYMBOL, 1, time_us, 1.1, STOP_DISTANCE, source=source)


def race(location: str, worker: str, rounds, results, barrier) -> None:
    """Per round (account, limits, attempts): wait for all racers, then ask `attempts`
    times as fast as possible; report how many reservations this worker got. `location`
    is the ledger's SQLite path or PostgreSQL URL."""
    ledger = RiskLedger(location)
    while (job := rounds.get()) is not None:
        account, limits, attempts = job
        risk = manager(ledger, limits)
        barrier.wait()
        won = sum(
            isinstance(risk.request(account, worker, request(worker)), Reservation)
            for _ in range(attempts)
        )
        results.put((worker, account, won))


def reserve_then_hang(directory: str, stage: str) -> None:
    """Reserve one trade (and, at stage "submitted", send it to the broker), say which,
    then wait to be killed: the process dies between reserve and fill."""
    ledger = RiskLedger(Path(directory) / "ledger.sqlite")
    market, times = flat_market()
    broker = PaperBroker(
        Path(directory) / "broker.sqlite",
        "acct",
        SYMBOL,
        market,
        times,
        Contract.for_symbol(SYMBOL),
    )
    ledger.open_account("acct", 100_000.0, START_US)
    broker.advance(broker.bar + 1)
    risk = manager(ledger, RiskLimits(max_trades_per_day=3))
    reservation = risk.request("acct", "worker-1", request("crashy", int(times[broker.bar + 1])))
    assert isinstance(reservation, Reservation), reservation
    if stage == "submitted":
        broker.submit(
            MarketOrder(reservation.intent_id, SYMBOL, 1, reservation.lots, STOP_DISTANCE)
        )
    print(reservation.intent_id, flush=True)
    time.sleep(600)


if __name__ == "__main__":
    reserve_then_hang(sys.argv[1], sys.argv[2])
