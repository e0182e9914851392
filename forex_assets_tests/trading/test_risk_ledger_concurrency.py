"""Eight processes race to open trades on one account: the limits hold exactly.

Each round opens a fresh account, releases all eight racers at once through a barrier,
and lets each ask for more trades than the limit allows. The check-and-reserve must be
atomic across processes: exactly the limit's worth succeeds, never one more (a joint
breach) and never one less (a lost reservation), round after round.
"""

from __future__ import annotations

import multiprocessing
import random

import pytest

from forex_assets.trading.risk_ledger import RiskLedger
from forex_assets.trading.risk_limits import RiskLimits
from forex_assets_tests.trading.race_workers import START_US, race

RACERS = 8
ROUNDS = 30


@pytest.fixture(scope="module")
def racers(tmp_path_factory):
    """Eight spawned processes (the start method Windows and macOS use), kept for every
    round, sharing only the ledger file."""
    path = tmp_path_factory.mktemp("race") / "ledger.sqlite"
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(RACERS)
    results = context.Queue()
    queues = [context.Queue() for _ in range(RACERS)]
    processes = [
        context.Process(target=race, args=(str(path), f"racer-{i}", queues[i], results, barrier))
        for i in range(RACERS)
    ]
    for process in processes:
        process.start()
    yield path, queues, results
    for queue in queues:
        queue.put(None)
    for process in processes:
        process.join(timeout=30)
        if process.is_alive():
            process.kill()


def run_round(racers, account: str, limits: RiskLimits, attempts: int) -> dict[str, int]:
    path, queues, results = racers
    RiskLedger(path).open_account(account, 100_000.0, START_US)
    for queue in queues:
        queue.put((account, limits, attempts))
    wins = {}
    for _ in range(RACERS):
        worker, reported_account, won = results.get(timeout=120)
        assert reported_account == account
        wins[worker] = won
    return wins


def test_exactly_the_daily_trade_limit_succeeds_round_after_round(racers):
    rng = random.Random(7)
    ledger = RiskLedger(racers[0])
    for round_ in range(ROUNDS):
        limit = rng.randint(1, 12)
        account = f"trades-{round_}"
        limits = RiskLimits(daily_loss_limit=0.5, max_total_loss=0.5, max_trades_per_day=limit)
        wins = run_round(racers, account, limits, attempts=limit)
        assert sum(wins.values()) == limit, (round_, limit, wins)
        intents = ledger.intents(account)
        assert intents.height == limit
        refusals = ledger.refusals(account)
        assert refusals.height == RACERS * limit - limit
        assert set(refusals.get_column("rule")) == {"max_trades_per_day"}
        assert ledger.account_state(account, START_US).trades_today == limit


def test_open_risk_never_jointly_breaches_the_daily_loss_limit(racers):
    """Each order risks just under 1 % of equity; a 5 % daily limit admits exactly five
    open at once, whoever asks."""
    ledger = RiskLedger(racers[0])
    for round_ in range(10):
        account = f"risk-{round_}"
        wins = run_round(racers, account, RiskLimits(daily_loss_limit=0.05), attempts=2)
        assert sum(wins.values()) == 5, wins
        state = ledger.account_state(account, START_US)
        assert state.open_positions == 5
        assert state.open_risk <= 0.05 * 100_000.0
        assert set(ledger.refusals(account).get_column("rule")) == {"daily_loss_limit"}


def test_max_open_positions_holds_under_the_race(racers):
    ledger = RiskLedger(racers[0])
    for round_ in range(10):
        account = f"open-{round_}"
        wins = run_round(racers, account, RiskLimits(0.5, 0.5, max_open_positions=3), attempts=3)
        assert sum(wins.values()) == 3, wins
        assert ledger.account_state(account, START_US).open_positions == 3
