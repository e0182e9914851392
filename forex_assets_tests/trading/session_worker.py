"""A paper session over sample bars, run (and killed) in a child process by the crash test."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from forex_assets.ingest.sample import generate_sample_m1
from forex_assets.market.contract import Contract
from forex_assets.strategies.backtest.market import Market
from forex_assets.trading.paper_broker import PaperBroker
from forex_assets.trading.paper_session import PaperSession, SessionSummary, SignalSource
from forex_assets.trading.risk_ledger import RiskLedger
from forex_assets.trading.risk_limits import RiskLimits
from forex_assets.trading.risk_manager import RiskManager


def run_session(directory: str | Path) -> SessionSummary:
    """Deterministic: the same bars and signals on every (re)start."""
    directory = Path(directory)
    bars = generate_sample_m1("EURUSD", years=0.08)
    market = Market.from_bars(bars)
    times = bars.get_column("time").dt.epoch("us").to_numpy()
    rng = np.random.default_rng(11)
    sources = [
        SignalSource(
            f"source-{i}",
            np.where(rng.random(len(market)) < 0.01, rng.choice([-1, 1], len(market)), 0).astype(
                np.int8
            ),
            stop_atr=2.0,
            take_atr=3.0,
            max_hold_bars=120,
            trail_atr=1.0 if i % 2 else 0.0,
        )
        for i in range(3)
    ]
    ledger = RiskLedger(directory / "ledger.sqlite")
    broker = PaperBroker(
        directory / "broker.sqlite", "acct", "EURUSD", market, times, Contract.for_symbol("EURUSD")
    )
    manager = RiskManager(ledger, RiskLimits(max_trades_per_day=4))
    session = PaperSession(
        "acct", "worker-1", "EURUSD", market, times, sources, np.zeros(len(market)), manager, broker
    )
    print("started", flush=True)
    return session.run(100_000.0)
