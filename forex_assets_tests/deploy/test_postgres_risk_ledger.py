"""The risk ledger on PostgreSQL: the same transactions for traders on several hosts.

Eight processes that share nothing but the server's URL race for trades against one
account's limits: exactly the limit's worth succeeds, round after round, as on SQLite.
"""

import dataclasses
import multiprocessing
import random
from urllib.parse import quote

import pytest

from forex_assets.trading.risk_ledger import CLOSED, RiskLedger
from forex_assets.trading.risk_limits import RiskLimits
from forex_assets_tests.trading.race_workers import START_US, manager, race, request

RACERS = 8


@pytest.fixture(scope="module")
def ledger_url(pg_server) -> str:
    db = pg_server.create_database("risk_ledger")
    dsn = pg_server.dsn(db)
    return (
        f"postgresql://{quote(str(dsn['user']))}:{quote(str(dsn['password']))}"
        f"@{dsn['host']}:{dsn['port']}/{dsn['dbname']}"
    )


def test_a_trade_lives_and_is_booked_the_same_as_on_sqlite(ledger_url):
    from forex_assets.trading.broker import BrokerOrder, OrderStatus

    ledger = RiskLedger(ledger_url)
    ledger.open_account("life", 100_000.0, START_US)
    ledger.open_account("life", 5.0, START_US)  # a restarted worker keeps the account
    risk = manager(ledger, RiskLimits(max_trades_per_day=1))
    reservation = risk.request("life", "w", request("s"))
    assert risk.request("life", "w", request("s")).rule == "max_trades_per_day"
    filled = BrokerOrder(
        reservation.intent_id, "EURUSD", 1, reservation.lots, OrderStatus.OPEN, 0.002, None,
        1.098, None, 1.1, START_US, reservation.risk,
    )  # fmt: skip
    ledger.fill(filled)
    ledger.mark("life", START_US + 60_000_000, 100_250.0)
    closed = dataclasses.replace(
        filled, status=OrderStatus.CLOSED, exit_price=1.1025, exit_us=START_US + 120_000_000,
        exit_reason="take", pnl=250.0,
    )  # fmt: skip
    ledger.close_position(closed)
    state = ledger.account_state("life", START_US)
    assert (state.balance, state.high_water, state.trades_today) == (100_250.0, 100_250.0, 1)
    assert ledger.intents("life").get_column("state").to_list() == [CLOSED]
    assert ledger.days("life").get_column("peak_equity").to_list() == [100_250.0]
    assert ledger.refusals("life").get_column("rule").to_list() == ["max_trades_per_day"]


def test_eight_processes_never_jointly_breach_the_daily_trade_limit(ledger_url):
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(RACERS), context.Queue()
    queues = [context.Queue() for _ in range(RACERS)]
    racers = [
        context.Process(target=race, args=(ledger_url, f"host-{i}", queues[i], results, barrier))
        for i in range(RACERS)
    ]
    for process in racers:
        process.start()
    ledger, rng = RiskLedger(ledger_url), random.Random(5)
    try:
        for round_ in range(10):
            limit, account = rng.randint(1, 8), f"race-{round_}"
            ledger.open_account(account, 100_000.0, START_US)
            limits = RiskLimits(0.5, 0.5, max_trades_per_day=limit)
            for queue in queues:
                queue.put((account, limits, limit))
            won = sum(results.get(timeout=120)[2] for _ in range(RACERS))
            assert won == limit, (round_, limit, won)
            assert ledger.account_state(account, START_US).trades_today == limit
            assert ledger.refusals(account).height == RACERS * limit - limit
    finally:
        for queue in queues:
            queue.put(None)
        for process in racers:
            process.join(timeout=30)
