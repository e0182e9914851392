"""The paper broker on hand-built bars, with its order book in a real SQLite file.

Unless a test says otherwise: EURUSD without commission, a 2 pip spread (the bid is mid
- 0.0001, the ask mid + 0.0001), five-minute bars from Wednesday 2024-07-10 12:00 UTC on
one FX day, and 2 lots (200,000 EUR: a 0.0001 move is 20 USD) with a 20 pip stop and a
40 pip target. A buy submitted after bar 0 fills at bar 1's ask open 1.1001, so its stop
sits at 1.0981 and its target at 1.1041. Bars are written (open, high, low, close).
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest

from forex_assets.market.contract import Contract
from forex_assets.market.fx_calendar import DEFAULT_CALENDAR
from forex_assets.strategies.backtest.market import Market
from forex_assets.trading.broker import BrokerOrder, MarketOrder, OrderStatus
from forex_assets.trading.paper_broker import PaperBroker, SwapRates

FREE = Contract.for_symbol("EURUSD", commission_per_lot=0.0)
FLAT = (1.1, 1.1001, 1.0999, 1.1)
HALF = 0.0001
EXACT = 1e-9
MINUTE_US = 60_000_000
T0 = int(datetime(2024, 7, 10, 12, tzinfo=UTC).timestamp()) * 1_000_000
TUESDAY = int(
    DEFAULT_CALENDAR.trading_day(
        np.array([int(datetime(2024, 7, 9, 12, tzinfo=UTC).timestamp()) * 1_000_000])
    )[0]
)


def bars(
    *rows: tuple[float, float, float, float],
    spread: float = 2 * HALF,
    days: list[int] | None = None,
) -> Market:
    o, h, lo, c = (np.array(column, dtype=np.float64) for column in zip(*rows, strict=True))
    n = o.size
    day = np.full(n, TUESDAY + 1, np.int64) if days is None else np.array(days, np.int64)
    return Market(o, h, lo, c, np.full(n, 0.001), np.full(n, spread), day, np.zeros(n, np.int64))


def times(market: Market) -> np.ndarray:
    return T0 + np.arange(len(market), dtype=np.int64) * 5 * MINUTE_US


def paper(
    path,
    market: Market,
    contract: Contract = FREE,
    symbol: str = "EURUSD",
    book: str = "acct",
    **kw,
) -> PaperBroker:
    return PaperBroker(path, book, symbol, market, times(market), contract, **kw)


def buy(client_id: str = "a", lots: float = 2.0, **kw: object) -> MarketOrder:
    values = {"stop_distance": 0.002, "take_distance": 0.004}
    return MarketOrder(client_id, "EURUSD", 1, lots, **{**values, **kw})


def sell(client_id: str = "b", lots: float = 2.0, **kw: object) -> MarketOrder:
    return replace(buy(client_id, lots, **kw), side=-1)


def replay(broker: PaperBroker, *orders: MarketOrder, until: int | None = None) -> PaperBroker:
    """Advance bar 0, submit `orders`, then advance up to `until` (default: the end)."""
    broker.advance(0)
    for order in orders:
        assert broker.submit(order).status == OrderStatus.PENDING
    for bar in range(1, len(broker.market) if until is None else until + 1):
        broker.advance(bar)
    return broker


def one(broker: PaperBroker, client_id: str = "a") -> BrokerOrder:
    order = broker.order(client_id)
    assert order is not None
    return order


def stored_rows(path) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT client_order_id, status FROM paper_orders").fetchall()


# -- fills --------------------------------------------------------------------------------------


def test_market_orders_fill_at_the_next_open_plus_or_minus_half_the_spread(tmp_path):
    market = bars(FLAT, (1.1, 1.1005, 1.0995, 1.1002), FLAT)
    broker = paper(tmp_path / "paper.sqlite", market)
    broker.advance(0)
    pending = broker.submit(buy())
    assert (pending.status, pending.fill_price) == (OrderStatus.PENDING, None)
    broker.submit(sell())
    changed = broker.advance(1)
    assert [o.client_order_id for o in changed] == ["a", "b"]
    long, short = changed
    assert long.status == OrderStatus.OPEN
    assert long.fill_price == pytest.approx(1.1001, abs=EXACT)
    assert long.fill_us == times(market)[1]
    assert long.stop_price == pytest.approx(1.0981, abs=EXACT)
    assert long.take_price == pytest.approx(1.1041, abs=EXACT)
    assert long.risk == pytest.approx(400.0)
    assert short.fill_price == pytest.approx(1.0999, abs=EXACT)
    assert short.stop_price == pytest.approx(1.1019, abs=EXACT)
    assert short.take_price == pytest.approx(1.0959, abs=EXACT)
    assert broker.advance(2) == []  # nothing happened on the flat bar


def test_slippage_moves_both_fills_against_the_trader(tmp_path):
    broker = replay(
        paper(tmp_path / "p.sqlite", bars(FLAT, FLAT), slippage_pips=0.5), buy(), sell()
    )
    assert one(broker, "a").fill_price == pytest.approx(1.10015, abs=EXACT)
    assert one(broker, "b").fill_price == pytest.approx(1.09985, abs=EXACT)


def test_an_unknown_spread_is_the_contracts_default(tmp_path):
    market = bars(FLAT, FLAT, spread=math.nan)  # EURUSD default: 1 pip
    assert one(replay(paper(tmp_path / "p.sqlite", market), buy())).fill_price == pytest.approx(
        1.10005, abs=EXACT
    )


def test_no_target_means_only_the_stop(tmp_path):
    market = bars(FLAT, FLAT, (1.1, 1.12, 1.0999, 1.119))
    order = one(replay(paper(tmp_path / "p.sqlite", market), buy(take_distance=None)))
    assert (order.status, order.take_price) == (OrderStatus.OPEN, None)


# -- stops and targets --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("order", "bar", "hit"),
    [
        # Long stop 1.0981 on the bid: a mid low of 1.09815 is a bid low of 1.09805.
        (buy(), (1.1, 1.1003, 1.09815, 1.1), True),
        (buy(), (1.1, 1.1003, 1.09825, 1.1), False),
        # Short stop 1.1019 on the ask: a mid high of 1.10185 is an ask high of 1.10195.
        (sell("a"), (1.1, 1.10185, 1.0995, 1.1), True),
        (sell("a"), (1.1, 1.10175, 1.0995, 1.1), False),
    ],
)
def test_stops_are_judged_on_the_exit_side_price(tmp_path, order, bar, hit):
    broker = replay(paper(tmp_path / "p.sqlite", bars(FLAT, FLAT, bar)), order)
    result = one(broker)
    if hit:
        assert (result.status, result.exit_reason) == (OrderStatus.CLOSED, "stop")
        assert result.exit_price == pytest.approx(result.stop_price, abs=EXACT)
        assert result.pnl == pytest.approx(-400.0)  # exactly the risk
        assert result.exit_us == times(broker.market)[2]
    else:
        assert result.status == OrderStatus.OPEN


@pytest.mark.parametrize(
    ("order", "bar", "hit"),
    [
        (buy(), (1.1, 1.10425, 1.0999, 1.1), True),  # bid high 1.10415 >= 1.1041
        (buy(), (1.1, 1.10415, 1.0999, 1.1), False),  # bid high 1.10405
        (sell("a"), (1.1, 1.1001, 1.09575, 1.1), True),  # ask low 1.09585 <= 1.0959
        (sell("a"), (1.1, 1.1001, 1.09585, 1.1), False),
    ],
)
def test_targets_are_judged_on_the_exit_side_price(tmp_path, order, bar, hit):
    result = one(replay(paper(tmp_path / "p.sqlite", bars(FLAT, FLAT, bar)), order))
    if hit:
        assert (result.status, result.exit_reason) == (OrderStatus.CLOSED, "take")
        assert result.exit_price == pytest.approx(result.take_price, abs=EXACT)
        assert result.pnl == pytest.approx(800.0)
    else:
        assert result.status == OrderStatus.OPEN


def test_a_bar_reaching_both_stop_and_target_is_a_stop(tmp_path):
    market = bars(FLAT, FLAT, (1.1, 1.106, 1.097, 1.1))
    result = one(replay(paper(tmp_path / "p.sqlite", market), buy()))
    assert result.exit_reason == "stop"
    assert result.exit_price == pytest.approx(1.0981, abs=EXACT)


def test_a_gap_through_the_stop_fills_at_the_open(tmp_path):
    market = bars(FLAT, FLAT, (1.097, 1.0975, 1.0965, 1.0972))
    result = one(replay(paper(tmp_path / "p.sqlite", market), buy()))
    assert (result.exit_reason, result.exit_price) == ("stop", pytest.approx(1.0969, abs=EXACT))
    assert result.pnl == pytest.approx(-640.0)  # worse than the 400 at risk


def test_a_gap_through_the_target_fills_at_the_better_open(tmp_path):
    market = bars(FLAT, FLAT, (1.105, 1.106, 1.1045, 1.1055))
    result = one(replay(paper(tmp_path / "p.sqlite", market), buy()))
    assert (result.exit_reason, result.exit_price) == ("take", pytest.approx(1.1049, abs=EXACT))
    assert result.pnl == pytest.approx(960.0)


def test_a_short_gapping_through_its_stop_fills_at_the_ask_open(tmp_path):
    market = bars(FLAT, FLAT, (1.103, 1.1035, 1.1025, 1.103))
    result = one(replay(paper(tmp_path / "p.sqlite", market), sell("a")))
    assert (result.exit_reason, result.exit_price) == ("stop", pytest.approx(1.1031, abs=EXACT))
    assert result.pnl == pytest.approx((1.0999 - 1.1031) * 200_000)


def test_the_fill_bar_itself_can_stop_out(tmp_path):
    market = bars(FLAT, (1.1, 1.1003, 1.097, 1.0975), FLAT)
    broker = paper(tmp_path / "p.sqlite", market)
    broker.advance(0)
    broker.submit(buy())
    (changed,) = broker.advance(1)  # reported once, filled and closed
    assert changed.status == OrderStatus.CLOSED
    assert changed.fill_price == pytest.approx(1.1001, abs=EXACT)
    assert changed.exit_price == pytest.approx(1.0981, abs=EXACT)
    assert changed.fill_us == changed.exit_us == times(market)[1]
    assert broker.advance(2) == []


def test_a_close_order_fills_at_the_next_open_with_its_reason(tmp_path):
    # Bar 3 also dips through the stop, but the close order fills first, at its open.
    market = bars(FLAT, FLAT, FLAT, (1.101, 1.1012, 1.097, 1.0975), FLAT)
    broker = replay(paper(tmp_path / "p.sqlite", market), buy(), sell(), until=2)
    assert broker.close("a", "max_hold").exit_reason == "max_hold"
    assert broker.close("b").status == OrderStatus.OPEN  # closes at the next bar
    changed = broker.advance(3)
    assert [(o.client_order_id, o.exit_reason) for o in changed] == [
        ("a", "max_hold"),
        ("b", "close"),
    ]
    long, short = changed
    assert long.exit_price == pytest.approx(1.1009, abs=EXACT)  # the bid open
    assert short.exit_price == pytest.approx(1.1011, abs=EXACT)  # the ask open
    assert long.pnl == pytest.approx((1.1009 - 1.1001) * 200_000)
    assert short.pnl == pytest.approx((1.0999 - 1.1011) * 200_000)


def test_a_moved_stop_exits_as_trail_with_its_reduced_risk(tmp_path):
    market = bars(FLAT, FLAT, FLAT, (1.1, 1.1003, 1.099, 1.1))
    broker = replay(paper(tmp_path / "p.sqlite", market), buy(), until=2)
    moved = broker.modify_stop("a", 1.0995)
    assert moved.stop_price == 1.0995
    assert moved.risk == pytest.approx(120.0)  # 6 pips of 2 lots
    assert one(broker).stop_price == 1.0995
    (result,) = broker.advance(3)
    assert (result.exit_reason, result.exit_price) == ("trail", 1.0995)
    assert result.pnl == pytest.approx(-120.0)


def test_a_stop_moved_back_to_its_original_level_is_a_plain_stop(tmp_path):
    market = bars(FLAT, FLAT, FLAT, (1.1, 1.1003, 1.097, 1.1))
    broker = replay(paper(tmp_path / "p.sqlite", market), buy(), until=2)
    original = one(broker).stop_price
    broker.modify_stop("a", original)
    assert broker.advance(3)[0].exit_reason == "stop"


# -- money --------------------------------------------------------------------------------------


def test_usd_base_pnl_is_divided_by_the_exit_price(tmp_path):
    yen = Contract.for_symbol("USDJPY", commission_per_lot=0.0)
    flat = (150.0, 150.01, 149.99, 150.0)
    market = bars(flat, flat, (150.0, 150.8, 149.99, 150.5), spread=0.02)
    order = MarketOrder("a", "USDJPY", 1, 1.0, 0.3, 0.6)
    result = one(replay(paper(tmp_path / "p.sqlite", market, yen, "USDJPY"), order))
    assert result.fill_price == pytest.approx(150.01, abs=EXACT)
    assert result.risk == pytest.approx(0.3 * 100_000 / 150.01)
    assert (result.exit_reason, result.exit_price) == ("take", pytest.approx(150.61, abs=EXACT))
    assert result.pnl == pytest.approx((150.61 - 150.01) * 100_000 / 150.61)


def test_gold_pnl_uses_the_100_ounce_contract(tmp_path):
    gold = Contract.for_symbol("XAUUSD", commission_per_lot=0.0)
    flat = (2_000.0, 2_000.5, 1_999.5, 2_000.0)
    market = bars(flat, flat, (2_000.0, 2_000.5, 1_994.0, 1_995.0), spread=0.4)
    order = MarketOrder("a", "XAUUSD", 1, 0.5, 5.0, 10.0)
    result = one(replay(paper(tmp_path / "p.sqlite", market, gold, "XAUUSD"), order))
    assert result.exit_reason == "stop"
    assert result.pnl == pytest.approx(-5.0 * 100 * 0.5)


def test_commission_is_charged_per_lot_and_counted_in_the_risk(tmp_path):
    charged = Contract.for_symbol("EURUSD", commission_per_lot=7.0)
    market = bars(FLAT, FLAT, (1.1, 1.1045, 1.0999, 1.1))
    result = one(replay(paper(tmp_path / "p.sqlite", market, charged), buy()))
    assert result.risk == pytest.approx(400.0 + 14.0)
    assert result.pnl == pytest.approx(800.0 - 14.0)


SWAPS = SwapRates(long_per_lot=-6.5, short_per_lot=1.25)
# Tuesday, Tuesday (fill), Wednesday, Thursday (triple: the weekend's value dates), Friday.
WEEK = [TUESDAY, TUESDAY, TUESDAY + 1, TUESDAY + 2, TUESDAY + 3, TUESDAY + 3]


def test_swaps_are_charged_per_lot_at_each_rollover_triple_into_thursday(tmp_path):
    assert (TUESDAY + 2 + 3) % 7 == 3  # TUESDAY + 2 is a Thursday (day 0 was one)
    market = bars(*[FLAT] * 6, days=WEEK)
    broker = replay(paper(tmp_path / "p.sqlite", market, swaps=SWAPS), buy(), sell(), until=4)
    # Rollovers into Wednesday (1), Thursday (3) and Friday (1): 5 nights.
    nights = 5
    broker.close("a")
    broker.close("b")
    long, short = broker.advance(5)
    assert long.pnl == pytest.approx((1.0999 - 1.1001) * 200_000 + nights * -6.5 * 2)
    assert short.pnl == pytest.approx((1.0999 - 1.1001) * 200_000 + nights * 1.25 * 2)


def test_swaps_are_ignored_by_default(tmp_path):
    market = bars(*[FLAT] * 6, days=WEEK)
    broker = replay(paper(tmp_path / "p.sqlite", market), buy(), until=4)
    broker.close("a")
    (long,) = broker.advance(5)
    assert long.pnl == pytest.approx(-40.0)  # the spread only


def test_an_order_filled_after_the_rollover_pays_no_swap_for_it(tmp_path):
    # Filled at bar 2, the first bar of Wednesday: the Tuesday rollover is not its.
    market = bars(*[FLAT] * 4, days=[TUESDAY, TUESDAY, TUESDAY + 1, TUESDAY + 1])
    broker = paper(tmp_path / "p.sqlite", market, swaps=SWAPS)
    broker.advance(0)
    broker.advance(1)
    broker.submit(buy())
    broker.advance(2)
    broker.close("a")
    (long,) = broker.advance(3)
    assert long.pnl == pytest.approx(-40.0)


def test_the_weekend_is_one_rollover_from_friday_to_monday(tmp_path):
    friday, monday = TUESDAY + 3, TUESDAY + 6
    market = bars(*[FLAT] * 4, days=[friday, friday, monday, monday])
    broker = replay(paper(tmp_path / "p.sqlite", market, swaps=SWAPS), buy(), until=2)
    broker.close("a")
    (long,) = broker.advance(3)
    assert long.pnl == pytest.approx(-40.0 - 6.5 * 2)


def test_swaps_accrued_before_a_restart_are_kept(tmp_path):
    market = bars(*[FLAT] * 6, days=WEEK)
    reference = replay(paper(tmp_path / "ref.sqlite", market, swaps=SWAPS), buy(), until=4)
    reference.close("a")
    (expected,) = reference.advance(5)
    first = replay(paper(tmp_path / "p.sqlite", market, swaps=SWAPS), buy(), until=4)
    del first
    restarted = paper(tmp_path / "p.sqlite", market, swaps=SWAPS)
    restarted.close("a")
    (result,) = restarted.advance(5)
    assert result.pnl == pytest.approx(expected.pnl)


def test_open_pnl_marks_open_positions_at_the_exit_side_close(tmp_path):
    charged = Contract.for_symbol("EURUSD", commission_per_lot=7.0)
    market = bars(FLAT, FLAT, (1.1, 1.1012, 1.0999, 1.101), FLAT)
    broker = paper(tmp_path / "p.sqlite", market, charged)
    broker.advance(0)
    broker.submit(buy())
    broker.submit(sell(lots=1.0))
    assert broker.open_pnl(0) == 0.0  # pending orders are not positions
    broker.advance(1)
    broker.advance(2)
    long = (1.1009 - 1.1001) * 200_000 - 14.0  # bid close 1.1009
    short = (1.0999 - 1.1011) * 100_000 - 7.0  # ask close 1.1011
    assert broker.open_pnl(2) == pytest.approx(long + short)
    broker.close("a")
    broker.advance(3)
    assert broker.open_pnl(3) == pytest.approx((1.0999 - 1.1001) * 100_000 - 7.0)


# -- submission -------------------------------------------------------------------------------


def test_submit_is_idempotent_on_the_client_order_id(tmp_path):
    path = tmp_path / "p.sqlite"
    broker = paper(path, bars(FLAT, FLAT, FLAT))
    broker.advance(0)
    first = broker.submit(buy())
    assert broker.submit(buy()) == first
    assert broker.submit(buy(lots=9.0)) == first  # the first order stands
    assert stored_rows(path) == [("a", "pending")]
    (filled,) = broker.advance(1)
    assert filled.lots == 2.0
    assert broker.submit(buy()) == filled
    assert stored_rows(path) == [("a", "open")]


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (replace(buy(), symbol="GBPUSD"), "this book trades EURUSD, not GBPUSD"),
        (replace(buy(), side=0), "side=0"),
        (buy(lots=0.015), "lots=0.015 must be at least 0.01 and a multiple of the lot step 0.01"),
        (buy(lots=0.0), "lots=0.0"),
        (buy(lots=-1.0), "lots=-1.0"),
        (buy(stop_distance=0.0), "stop_distance=0.0 must be a positive price distance"),
        (buy(stop_distance=-0.001), "stop_distance=-0.001"),
        (buy(take_distance=0.0), "take_distance=0.0"),
        (buy(take_distance=math.inf), "take_distance=inf"),
    ],
)
def test_bad_orders_are_rejected_with_the_reason(tmp_path, order, expected):
    path = tmp_path / "p.sqlite"
    broker = paper(path, bars(FLAT, FLAT, FLAT))
    broker.advance(0)
    rejected = broker.submit(order)
    assert rejected.status == OrderStatus.REJECTED
    assert expected in rejected.message
    assert broker.advance(1) == []
    assert one(broker).status == OrderStatus.REJECTED
    assert one(broker).message == rejected.message
    assert broker.submit(buy()) == one(broker)  # resubmitting does not revive it
    assert stored_rows(path) == [("a", "rejected")]


@pytest.mark.parametrize(
    ("order", "expected"),
    [(buy(lots=math.nan), "lots=nan"), (buy(stop_distance=math.nan), "stop_distance=nan")],
)
def test_a_nan_order_is_rejected_not_an_exception(tmp_path, order, expected):
    broker = paper(tmp_path / "p.sqlite", bars(FLAT, FLAT, FLAT))
    broker.advance(0)
    rejected = broker.submit(order)
    assert rejected.status == OrderStatus.REJECTED
    assert expected in rejected.message
    assert one(broker).status == OrderStatus.REJECTED


def test_a_coarser_lot_step_rejects_finer_lots(tmp_path):
    coarse = Contract.for_symbol("EURUSD", lot_step=0.1, min_lot=0.1)
    broker = paper(tmp_path / "p.sqlite", bars(FLAT, FLAT), coarse)
    broker.advance(0)
    assert broker.submit(buy("x", lots=0.25)).status == OrderStatus.REJECTED
    assert broker.submit(buy("y", lots=0.3)).status == OrderStatus.PENDING


def test_an_order_without_a_next_bar_is_rejected(tmp_path):
    broker = paper(tmp_path / "p.sqlite", bars(FLAT, FLAT))
    early = broker.submit(buy("early"))
    assert early.status == OrderStatus.REJECTED
    assert "no next bar" in early.message
    broker.advance(0)
    broker.advance(1)
    late = broker.submit(buy("late"))
    assert (late.status, late.message) == (early.status, early.message)


def test_only_open_positions_can_be_modified_or_closed(tmp_path):
    broker = paper(tmp_path / "p.sqlite", bars(FLAT, FLAT))
    broker.advance(0)
    broker.submit(buy())
    with pytest.raises(ValueError, match="order a is pending, not open"):
        broker.close("a")
    with pytest.raises(ValueError, match="order nope is unknown, not open"):
        broker.modify_stop("nope", 1.0)
    assert broker.order("nope") is None


def test_bars_are_played_in_order(tmp_path):
    broker = paper(tmp_path / "p.sqlite", bars(FLAT, FLAT, FLAT))
    with pytest.raises(ValueError, match="bar 1 is not the next bar after -1"):
        broker.advance(1)
    broker.advance(0)
    with pytest.raises(ValueError, match="bar 0 is not the next bar after 0"):
        broker.advance(0)


def test_the_constructor_checks_its_arguments(tmp_path):
    market = bars(FLAT, FLAT)
    with pytest.raises(ValueError, match="times_us has 1 entries for 2 bars"):
        PaperBroker(tmp_path / "p.sqlite", "acct", "EURUSD", market, times(market)[:1], FREE)
    with pytest.raises(ValueError, match="slippage_pips=-1"):
        paper(tmp_path / "p.sqlite", market, slippage_pips=-1.0)


# -- restart ----------------------------------------------------------------------------------

RESTART_BARS = (
    FLAT,
    FLAT,
    (1.1, 1.1008, 1.0998, 1.1005),
    FLAT,
    (1.1, 1.1003, 1.0975, 1.098),  # stops the long
    (1.098, 1.0985, 1.0955, 1.096),  # the short reaches its target
    FLAT,
)


def restart_script(broker: PaperBroker, stop_at: int | None) -> PaperBroker:
    """The same orders; with `stop_at`, a new broker object takes over after that bar."""
    for bar in range(len(broker.market)):
        broker.advance(bar)
        if bar == 0:
            broker.submit(buy("a"))
        if bar == 1:
            broker.submit(sell("b", take_distance=0.003))
        if bar == 2:
            broker.submit(sell("c", lots=1.0))
        if bar == 3:
            broker.close("c", "opposite")
        if bar == stop_at:
            broker = paper(broker.path, broker.market)
            assert broker.bar == bar
    return broker


@pytest.mark.parametrize("stop_at", [0, 1, 2, 3, 4, 5])
def test_a_new_broker_on_the_same_file_resumes_the_book(tmp_path, stop_at):
    reference = restart_script(paper(tmp_path / "ref.sqlite", bars(*RESTART_BARS)), None)
    resumed = restart_script(paper(tmp_path / "p.sqlite", bars(*RESTART_BARS)), stop_at)
    for client_id in "abc":
        assert resumed.order(client_id) == reference.order(client_id)
    a, b, c = (one(reference, k) for k in "abc")
    assert (a.status, a.exit_reason) == (OrderStatus.CLOSED, "stop")
    assert (b.status, b.exit_reason) == (OrderStatus.CLOSED, "take")
    assert (c.status, c.exit_reason) == (OrderStatus.CLOSED, "opposite")


def test_a_restarted_broker_knows_open_and_pending_orders_and_its_clock(tmp_path):
    path = tmp_path / "p.sqlite"
    market = bars(*RESTART_BARS)
    first = paper(path, market)
    first.advance(0)
    first.submit(buy("a"))
    first.advance(1)
    first.submit(sell("b"))
    opened = one(first, "a")
    first.close("a", "manual")
    second = paper(path, market)
    assert second.bar == 1
    assert one(second, "a") == replace(opened, exit_reason="manual")
    assert one(second, "b").status == OrderStatus.PENDING
    with pytest.raises(ValueError, match="not the next bar"):
        second.advance(1)
    changed = {o.client_order_id: o for o in second.advance(2)}
    assert changed["a"].exit_reason == "manual"
    assert changed["a"].status == OrderStatus.CLOSED
    assert changed["b"].status == OrderStatus.OPEN
    # Another book in the same file has its own clock and orders.
    other = paper(path, market, book="other")
    assert (other.bar, other.order("a")) == (-1, None)


def test_reset_empties_the_book(tmp_path):
    path = tmp_path / "p.sqlite"
    broker = replay(paper(path, bars(FLAT, FLAT, FLAT)), buy(), until=1)
    broker.reset()
    assert (broker.bar, broker.order("a")) == (-1, None)
    assert stored_rows(path) == []
    assert paper(path, bars(FLAT, FLAT, FLAT)).bar == -1
