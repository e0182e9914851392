"""A trader SIGKILLed between reserve and fill, restarted: the ledger ends consistent.

The child process reserves a trade in the shared ledger (and, in one case, hands the order
to the paper broker), then is killed with SIGKILL: no cleanup, no exception handler, no
atexit runs. A restarted trader reconciles with the broker: a reservation the broker never
saw is released, one the broker holds is booked when it fills, and nothing is counted
twice. A whole paper session killed at random moments and resumed keeps the same
invariants.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from forex_assets.market.contract import Contract
from forex_assets.trading.broker import OrderStatus
from forex_assets.trading.paper_broker import PaperBroker
from forex_assets.trading.risk_ledger import CANCELLED, FILLED, RiskLedger
from forex_assets_tests.trading.race_workers import START_US, SYMBOL, flat_market

pytestmark = pytest.mark.skipif(
    not hasattr(signal, "SIGKILL"), reason="SIGKILL does not exist on this platform (Windows)"
)
REPO = Path(__file__).resolve().parents[2]


def kill_after_reserve(directory: Path, stage: str) -> str:
    """Run the hanging child, SIGKILL it once it has reserved; its intent id."""
    child = subprocess.Popen(
        [sys.executable, "-m", "forex_assets_tests.trading.race_workers", str(directory), stage],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    intent_id = child.stdout.readline().strip()
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL, child.stderr.read() if child.stderr else ""
    assert len(intent_id) == 32, f"child printed {intent_id!r}"
    return intent_id


def restarted(directory: Path) -> tuple[RiskLedger, PaperBroker]:
    market, times = flat_market()
    broker = PaperBroker(
        directory / "broker.sqlite", "acct", SYMBOL, market, times, Contract.for_symbol(SYMBOL)
    )
    return RiskLedger(directory / "ledger.sqlite"), broker


def test_a_reservation_the_broker_never_saw_is_released(tmp_path):
    intent_id = kill_after_reserve(tmp_path, "reserved")
    ledger, broker = restarted(tmp_path)
    before = ledger.account_state("acct", START_US)
    assert (before.open_positions, before.trades_today) == (1, 1)  # held by the dead process
    report = ledger.reconcile("acct", "worker-1", broker)
    assert report.cancelled == (intent_id,)
    after = ledger.account_state("acct", START_US)
    assert (after.open_positions, after.trades_today, after.open_risk) == (0, 0, 0.0)
    assert after.balance == 100_000.0
    assert ledger.intents("acct").get_column("state").to_list() == [CANCELLED]
    # Reconciling again changes nothing: each intent is settled once.
    again = ledger.reconcile("acct", "worker-1", broker)
    assert again.cancelled == again.filled == again.pending == ()


def test_a_reservation_the_broker_holds_is_booked_once_when_it_fills(tmp_path):
    intent_id = kill_after_reserve(tmp_path, "submitted")
    ledger, broker = restarted(tmp_path)
    assert broker.order(intent_id).status == OrderStatus.PENDING
    report = ledger.reconcile("acct", "worker-1", broker)
    assert report.pending == (intent_id,) and report.cancelled == ()
    # The restarted broker carries on from its clock; the fill comes with the next bar.
    fills = broker.advance(broker.bar + 1)
    assert [o.client_order_id for o in fills] == [intent_id]
    report = ledger.reconcile("acct", "worker-1", broker)
    assert report.filled == (intent_id,)
    intents = ledger.intents("acct")
    assert intents.get_column("state").to_list() == [FILLED]
    assert intents.get_column("fill_price")[0] == fills[0].fill_price
    state = ledger.account_state("acct", START_US)
    assert (state.open_positions, state.trades_today) == (1, 1)
    assert state.open_risk == pytest.approx(fills[0].risk)


def test_a_restart_does_not_resubmit_or_double_count(tmp_path):
    """A second crash and restart after the fill: still one position, one trade."""
    intent_id = kill_after_reserve(tmp_path, "submitted")
    ledger, broker = restarted(tmp_path)
    broker.advance(broker.bar + 1)
    ledger.reconcile("acct", "worker-1", broker)
    ledger, broker = restarted(tmp_path)  # restart again with the position open
    report = ledger.reconcile("acct", "worker-1", broker)
    assert report.filled == report.cancelled == report.closed == ()
    assert ledger.intents("acct").height == 1
    assert broker.order(intent_id).status == OrderStatus.OPEN
    assert ledger.account_state("acct", START_US).trades_today == 1


SESSION_SCRIPT = """
import sys
from forex_assets_tests.trading.session_worker import run_session
run_session(sys.argv[1])
"""


def consistent(directory: Path) -> None:
    """Every intent agrees with the broker's order book, and the balance with the P&L."""
    ledger = RiskLedger(directory / "ledger.sqlite")
    intents = ledger.intents("acct")
    with closing(sqlite3.connect(directory / "broker.sqlite")) as connection:
        rows = connection.execute("SELECT client_order_id, status, pnl FROM paper_orders")
        book = pl.DataFrame(
            rows.fetchall(), schema=["client_order_id", "status", "pnl"], orient="row"
        )
    states = dict(zip(intents["intent_id"], intents["state"], strict=True))
    for order_id, status in zip(book["client_order_id"], book["status"], strict=True):
        expected = {"open": "filled", "closed": "closed", "rejected": "cancelled"}[status]
        assert states.get(order_id) == expected, (order_id, status, states.get(order_id))
    unsent = intents.filter(~pl.col("intent_id").is_in(book["client_order_id"].implode()))
    assert set(unsent["state"]) <= {"cancelled"}, unsent
    closed = intents.filter(pl.col("state") == "closed")
    booked = dict(zip(book["client_order_id"], book["pnl"], strict=True))
    assert np.allclose(closed["pnl"].to_numpy(), [booked[i] for i in closed["intent_id"]])
    state = ledger.account_state("acct", START_US)
    assert state.balance == pytest.approx(100_000.0 + closed["pnl"].sum())
    per_day = intents.filter(pl.col("state") != "cancelled").group_by("day").len()
    assert per_day["len"].max() <= 4  # the session's max_trades_per_day


def test_a_paper_session_killed_at_random_moments_resumes_consistent(tmp_path):
    from forex_assets_tests.trading.session_worker import run_session

    rng = np.random.default_rng(3)
    kills = 0
    for _ in range(6):
        child = subprocess.Popen(
            [sys.executable, "-c", SESSION_SCRIPT, str(tmp_path)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert child.stdout is not None
        child.stdout.readline()  # the session has started trading
        time.sleep(float(rng.uniform(0.0, 0.4)))
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
            kills += 1
        child.wait(timeout=60)
    assert kills >= 3, "the session finished too fast to be interrupted; lengthen it"
    summary = run_session(tmp_path)  # the last restart runs to the end
    assert summary.reconciled is not None
    consistent(tmp_path)
