"""The risk manager over a real ledger file: refusals recorded, reservations counted.

Unless a test says otherwise: account "acct" of 100,000, EURUSD without commission, 1 %
risk without scaling, so a buy at 1.1000 with a 20 pip stop reserves 5 lots risking
1,000, on Wednesday 2024-07-10 12:00 UTC.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from forex_assets.market.fx_calendar import DayClose, FxCalendar
from forex_assets.trading.broker import BrokerOrder, OrderStatus
from forex_assets.trading.risk_ledger import (
    CANCELLED,
    CLOSED,
    FILLED,
    RESERVED,
    LedgerStateError,
    Reservation,
    RiskLedger,
)
from forex_assets.trading.risk_limits import NewsCalendar, NewsEvent, RiskLimits
from forex_assets.trading.risk_manager import RiskManager
from forex_assets.trading.risk_rules import RULES, OrderRequest, Refusal
from forex_assets.trading.sizing import SizingPolicy

ACCOUNT = "acct"
MINUTE_US = 60_000_000
PLAIN = SizingPolicy(scale_by_confidence=False, scale_by_drawdown=False)
FREE = {"EURUSD": {"commission_per_lot": 0.0}}


def us(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp()) * 1_000_000


NOON = us(2024, 7, 10, 12)


@pytest.fixture
def ledger(tmp_path):
    ledger = RiskLedger(tmp_path / "risk.sqlite")
    ledger.open_account(ACCOUNT, 100_000.0, NOON - 60 * MINUTE_US)
    yield ledger
    ledger.close()


def manager(ledger: RiskLedger, **kwargs: object) -> RiskManager:
    values = {"limits": RiskLimits(), "sizing": PLAIN, "contract_terms": FREE}
    return RiskManager(ledger, **{**values, **kwargs})


def request(**overrides: object) -> OrderRequest:
    values = {
        "symbol": "EURUSD",
        "side": 1,
        "time_us": NOON,
        "price": 1.1,
        "stop_distance": 0.002,
        "take_distance": 0.004,
        "spread": 0.0001,
        "confidence": 0.5,
        "source": "model",
    }
    return OrderRequest(**{**values, **overrides})


def reserve(risk: RiskManager, **overrides: object) -> Reservation:
    outcome = risk.request(ACCOUNT, "worker", request(**overrides))
    assert isinstance(outcome, Reservation), outcome
    return outcome


def refuse(risk: RiskManager, rule: str, **overrides: object) -> Refusal:
    outcome = risk.request(ACCOUNT, "worker", request(**overrides))
    assert isinstance(outcome, Refusal), outcome
    assert outcome.rule == rule, outcome
    return outcome


def filled(reservation: Reservation, fill_price: float = 1.1, time_us: int = NOON) -> BrokerOrder:
    return BrokerOrder(
        reservation.intent_id,
        "EURUSD",
        1,
        reservation.lots,
        OrderStatus.OPEN,
        0.002,
        None,
        stop_price=fill_price - 0.002,
        fill_price=fill_price,
        fill_us=time_us,
        risk=reservation.risk,
    )


def closed(order: BrokerOrder, pnl: float, time_us: int, reason: str = "stop") -> BrokerOrder:
    return replace(
        order,
        status=OrderStatus.CLOSED,
        exit_price=order.fill_price + pnl / (order.lots * 100_000),
        exit_us=time_us,
        exit_reason=reason,
        pnl=pnl,
    )


# -- bad input: a refusal, never an exception --------------------------------------------------

BAD_REQUESTS = [
    ({"stop_distance": 0.0}, "stop_distance=0.0"),
    ({"stop_distance": -0.001}, "stop_distance=-0.001"),
    ({"stop_distance": math.nan}, "stop_distance=nan"),
    ({"stop_distance": math.inf}, "stop_distance=inf"),
    ({"side": 0}, "side=0"),
    ({"side": 2}, "side=2"),
    ({"side": -1.5}, "side=-1.5"),
    ({"confidence": 1.5}, "confidence=1.5"),
    ({"confidence": -0.1}, "confidence=-0.1"),
    ({"confidence": math.nan}, "confidence=nan"),
    ({"price": 0.0}, "price=0.0"),
    ({"price": math.nan}, "price=nan"),
    ({"take_distance": -0.004}, "take_distance=-0.004"),
    ({"spread": -0.0001}, "spread=-0.0001"),
    ({"spread": math.inf}, "spread=inf"),
    ({"expected_slippage": math.nan}, "expected_slippage=nan"),
    ({"symbol": "XYZABC"}, "symbol='XYZABC'"),
    ({"symbol": "EURGBP"}, "EURGBP has no USD leg"),
]


@pytest.mark.parametrize(("overrides", "expected"), BAD_REQUESTS)
def test_bad_input_is_a_recorded_refusal_naming_the_field(ledger, overrides, expected):
    outcome = manager(ledger).request(ACCOUNT, "worker", request(**overrides))
    assert isinstance(outcome, Refusal)
    assert outcome.rule == "invalid_order"
    assert expected in outcome.message
    refusals = ledger.refusals(ACCOUNT)
    assert refusals.height == 1
    row = refusals.row(0, named=True)
    assert (row["rule"], row["message"], row["worker"]) == (
        "invalid_order",
        outcome.message,
        "worker",
    )
    assert row["time_us"] == NOON
    assert row["day"] == ledger.trading_day(NOON)
    assert ledger.intents(ACCOUNT).height == 0


@pytest.mark.parametrize(
    ("terms", "expected"),
    [
        ({"lot_step": -0.01}, "Contract.lot_step=-0.01"),
        ({"min_lot": 0.0}, "Contract.min_lot=0.0"),
        ({"commission_per_lot": -7.0}, "Contract.commission_per_lot=-7.0"),
        ({"lotstep": 0.01}, "unknown Contract fields ['lotstep']"),
    ],
)
def test_bad_contract_terms_are_a_recorded_refusal(ledger, terms, expected):
    risk = manager(ledger, contract_terms={"EURUSD": terms})
    refusal = refuse(risk, "invalid_order")
    assert expected in refusal.message
    assert ledger.refusals(ACCOUNT)["message"].to_list() == [refusal.message]
    # Another symbol's terms are its own: USDJPY still trades.
    assert reserve(risk, symbol="USDJPY", price=150.0, stop_distance=0.3).lots > 0


@pytest.mark.parametrize("side", [None, "buy"])
def test_a_non_numeric_side_is_a_refusal_not_an_exception(ledger, side):
    refusal = refuse(manager(ledger), "invalid_order", side=side)
    assert f"side={side!r}" in refusal.message
    assert ledger.refusals(ACCOUNT).height == 1


@pytest.mark.parametrize("symbol", [None, 123])
def test_a_non_string_symbol_is_a_refusal_not_an_exception(ledger, symbol):
    refuse(manager(ledger), "invalid_order", symbol=symbol)


def test_a_boolean_side_is_refused(ledger):
    refuse(manager(ledger), "invalid_order", side=True)


@pytest.mark.parametrize("symbol", ["eurusd", "EUR/USD"])
def test_a_differently_written_symbol_is_still_in_the_news_blackout(ledger, symbol):
    news = NewsCalendar((NewsEvent(NOON, "USD", "CPI"),))
    refuse(manager(ledger, news=news), "news_blackout", symbol=symbol)


# -- reservations ------------------------------------------------------------------------------


def test_a_good_order_is_reserved_with_its_size_and_levels(ledger):
    reservation = reserve(manager(ledger))
    assert reservation.lots == 5.0
    assert reservation.risk == pytest.approx(1_000.0)
    (intent,) = ledger.intents(ACCOUNT).iter_rows(named=True)
    assert intent["intent_id"] == reservation.intent_id
    assert intent["state"] == RESERVED
    assert (intent["symbol"], intent["source"], intent["side"]) == ("EURUSD", "model", 1)
    assert intent["stop_price"] == pytest.approx(1.098)
    assert intent["take_price"] == pytest.approx(1.104)
    assert intent["day"] == ledger.trading_day(NOON)
    state = ledger.account_state(ACCOUNT, NOON)
    assert (state.trades_today, state.open_positions) == (1, 1)
    assert state.open_risk == pytest.approx(1_000.0)
    assert ledger.refusals(ACCOUNT).height == 0


def test_a_short_has_its_stop_above_and_target_below(ledger):
    reserve(manager(ledger), side=-1)
    (intent,) = ledger.intents(ACCOUNT).iter_rows(named=True)
    assert intent["stop_price"] == pytest.approx(1.102)
    assert intent["take_price"] == pytest.approx(1.096)


def test_commission_and_usd_base_sizing_come_from_the_contract(ledger):
    risk = manager(ledger, contract_terms={})  # the standard 7 USD a lot
    assert reserve(risk).lots == 4.83  # 1,000 / 207
    assert reserve(risk, symbol="USDJPY", price=150.0, stop_distance=0.3).lots == 4.83


def test_a_reservation_counts_against_the_daily_trade_cap_until_cancelled(ledger):
    risk = manager(ledger, limits=RiskLimits(max_trades_per_day=1))
    first = reserve(risk)
    refusal = refuse(risk, "max_trades_per_day", time_us=NOON + MINUTE_US)
    assert refusal.numbers == {"trades_today": 1, "limit": 1}
    ledger.cancel(first.intent_id, "broker rejected")
    assert ledger.account_state(ACCOUNT, NOON).trades_today == 0
    reserve(risk, time_us=NOON + 2 * MINUTE_US)
    # The next FX day (after 17:00 New York = 21:00 UTC) has its own count.
    reserve(risk, time_us=us(2024, 7, 10, 21, 1))
    rows = ledger.intents(ACCOUNT)
    assert rows["state"].to_list() == [CANCELLED, RESERVED, RESERVED]
    assert rows["note"].to_list() == ["broker rejected", None, None]


def test_open_risk_of_a_reservation_leaves_no_room_for_a_second_order(ledger):
    # 1.5 % daily loss: the first order's 1,000 leaves 500, the second wants 1,000.
    risk = manager(ledger, limits=RiskLimits(daily_loss_limit=0.015))
    first = reserve(risk)
    refusal = refuse(risk, "daily_loss_limit")
    assert refusal.numbers["open_risk"] == pytest.approx(1_000.0)
    assert refusal.numbers["order_risk"] == pytest.approx(1_000.0)
    assert refusal.numbers["worst_equity"] == pytest.approx(98_000.0)
    recorded = ledger.refusals(ACCOUNT).row(0, named=True)
    assert recorded["rule"] == "daily_loss_limit"
    assert json.loads(recorded["numbers"])["open_risk"] == pytest.approx(1_000.0)
    ledger.cancel(first.intent_id, "never sent")
    assert ledger.account_state(ACCOUNT, NOON).open_risk == 0.0
    reserve(risk)


def test_max_open_positions_counts_reserved_and_filled(ledger):
    risk = manager(
        ledger, limits=RiskLimits(max_open_positions=2, daily_loss_limit=0.5, max_total_loss=0.5)
    )
    first = reserve(risk)
    ledger.fill(filled(first))
    reserve(risk)
    refuse(risk, "max_open_positions")
    ledger.close_position(closed(filled(first), 100.0, NOON + MINUTE_US))
    reserve(risk)


def test_fill_and_close_update_balance_streak_and_the_days_pnl(ledger):
    risk = manager(ledger, limits=RiskLimits(daily_loss_limit=0.5, max_total_loss=0.5))
    orders = [filled(reserve(risk, time_us=NOON + k * MINUTE_US)) for k in range(3)]
    for order in orders:
        ledger.fill(order)
    assert set(ledger.intents(ACCOUNT)["state"]) == {FILLED}
    ledger.close_position(closed(orders[0], -500.0, NOON + 10 * MINUTE_US))
    state = ledger.account_state(ACCOUNT, NOON)
    assert state.balance == pytest.approx(99_500.0)
    assert (state.loss_streak, state.last_loss_us) == (1, NOON + 10 * MINUTE_US)
    assert state.open_positions == 2
    assert state.open_risk == pytest.approx(2_000.0)
    ledger.close_position(closed(orders[1], -250.0, NOON + 20 * MINUTE_US))
    assert ledger.account_state(ACCOUNT, NOON).loss_streak == 2
    # A loss closed on the next FX day books there.
    next_day = us(2024, 7, 10, 22)
    ledger.close_position(closed(orders[2], 300.0, next_day, "take"))
    state = ledger.account_state(ACCOUNT, next_day)
    assert state.balance == pytest.approx(99_550.0)
    assert (state.loss_streak, state.last_loss_us) == (0, NOON + 20 * MINUTE_US)
    assert (state.open_positions, state.open_risk) == (0, 0.0)
    days = dict(zip(*ledger.days(ACCOUNT).select("day", "realized_pnl"), strict=True))
    assert days == {
        ledger.trading_day(NOON): pytest.approx(-750.0),
        ledger.trading_day(next_day): pytest.approx(300.0),
    }

    intents = ledger.intents(ACCOUNT)
    assert intents["state"].to_list() == [CLOSED] * 3
    assert intents["exit_reason"].to_list() == ["stop", "stop", "take"]
    assert intents["pnl"].to_list() == pytest.approx([-500.0, -250.0, 300.0])


def test_a_loss_streak_pauses_new_orders_for_the_cooldown(ledger):
    limits = RiskLimits(loss_streak_limit=2, cooldown_minutes=30.0)
    risk = manager(ledger, limits=limits)
    first, second = (filled(reserve(risk, time_us=NOON + k)) for k in range(2))
    ledger.fill(first)
    ledger.fill(second)
    ledger.close_position(closed(first, -100.0, NOON + 5 * MINUTE_US))
    reserve(risk, time_us=NOON + 6 * MINUTE_US)  # one loss is no streak yet
    ledger.close_position(closed(second, -100.0, NOON + 10 * MINUTE_US))
    refusal = refuse(risk, "cooldown", time_us=NOON + 39 * MINUTE_US)
    assert refusal.numbers["minutes_since_loss"] == pytest.approx(29.0)
    reserve(risk, time_us=NOON + 40 * MINUTE_US)


def test_a_stale_transition_is_refused_with_the_state_it_found(ledger):
    risk = manager(ledger)
    reservation = reserve(risk)
    ledger.cancel(reservation.intent_id, "never sent")
    with pytest.raises(LedgerStateError, match="cannot move from reserved: it is cancelled"):
        ledger.fill(filled(reservation))
    with pytest.raises(LedgerStateError, match="no such intent"):
        ledger.cancel("nope", "x")
    other = reserve(risk)
    with pytest.raises(LedgerStateError, match="not closed"):
        ledger.close_position(filled(other))


def test_min_confidence_refuses_an_unsure_order(ledger):
    risk = manager(ledger, sizing=replace(PLAIN, min_confidence=0.6))
    refusal = refuse(risk, "position_size", confidence=0.55)
    assert refusal.numbers == {"confidence": 0.55, "limit": 0.6}
    assert "0.550 is below the minimum 0.600" in refusal.message
    reserve(risk, confidence=0.6)


def test_confidence_and_drawdown_scale_the_reserved_size(ledger):
    scaled = manager(ledger, sizing=SizingPolicy(), limits=RiskLimits(daily_loss_limit=0.05))
    # Confidence 0.8 and no drawdown: 800 of risk, 4 lots.
    first = reserve(scaled, confidence=0.8)
    assert first.lots == 4.0
    # That reservation's 800 uses 16 % of the 5,000 daily room: 0.8 x 0.84 x 1,000 = 672.
    assert reserve(scaled, confidence=0.8).lots == 3.36


def test_a_nan_spread_is_replaced_by_the_contract_default(ledger):
    limits = RiskLimits(max_spread_pips=0.5)
    refusal = refuse(manager(ledger, limits=limits), "spread", spread=math.nan)
    assert refusal.numbers["spread_pips"] == pytest.approx(1.0)  # EURUSD default: 1 pip
    tight = {"EURUSD": {"commission_per_lot": 0.0, "default_spread_pips": 0.4}}
    reserve(manager(ledger, limits=limits, contract_terms=tight), spread=math.nan)


def test_market_refusals_are_recorded_before_the_account_is_consulted(ledger):
    saturday = us(2024, 7, 13, 12)
    refusal = refuse(manager(ledger), "weekend", time_us=saturday)
    row = ledger.refusals(ACCOUNT).row(0, named=True)
    assert (row["rule"], row["message"], row["time_us"]) == ("weekend", refusal.message, saturday)
    assert json.loads(row["numbers"]) == pytest.approx(refusal.numbers)


def test_account_gates_come_before_sizing_and_loss_limits(ledger):
    # Both the trade cap and the daily loss would refuse: the cap is named.
    risk = manager(ledger, limits=RiskLimits(daily_loss_limit=0.015, max_trades_per_day=1))
    reserve(risk)
    refuse(risk, "max_trades_per_day")


def test_every_rule_can_be_recorded(ledger):
    """Each rule in RULES refuses some order through the manager, and is recorded."""
    saturday, friday_late = us(2024, 7, 13, 12), us(2024, 7, 12, 20, 30)
    news = NewsCalendar((NewsEvent(us(2024, 7, 9, 12), "USD", "CPI"),))
    base = {"limits": RiskLimits(), "news": news}
    cases = [
        ("invalid_order", {}, {"stop_distance": 0.0}),
        ("weekend", {}, {"time_us": saturday}),
        ("weekend", {"limits": RiskLimits(week_close_buffer_minutes=60)}, {"time_us": friday_late}),
        ("session", {"limits": RiskLimits(sessions=("asia",))}, {}),
        ("news_blackout", {}, {"time_us": us(2024, 7, 9, 12)}),
        ("spread", {"limits": RiskLimits(max_spread_pips=0.5)}, {}),
        ("slippage", {"limits": RiskLimits(max_slippage_pips=0.5)}, {"expected_slippage": 0.0001}),
        ("position_size", {"sizing": replace(PLAIN, min_confidence=0.9)}, {}),
        ("position_size", {}, {"stop_distance": 2.0}),  # 0.01 lots would lose 2,000
        ("daily_loss_limit", {"limits": RiskLimits(daily_loss_limit=0.005)}, {}),
        (
            "daily_peak_drawdown",
            {"limits": RiskLimits(daily_peak_drawdown=0.005)},
            {},
        ),
        ("max_total_loss", {"limits": RiskLimits(daily_loss_limit=0.05, max_total_loss=0.009)}, {}),
    ]
    seen = set()
    for rule, settings, overrides in cases:
        refuse(manager(ledger, **{**base, **settings}), rule, **overrides)
        seen.add(rule)
    # The account gates, on the account's own history.
    gated = manager(
        ledger,
        limits=RiskLimits(
            max_trades_per_day=3,
            max_open_positions=1,
            loss_streak_limit=1,
            daily_profit_lock=0.01,
            daily_loss_limit=0.5,
            max_total_loss=0.5,
        ),
    )
    loser = filled(reserve(gated))
    ledger.fill(loser)
    refuse(gated, "max_open_positions", time_us=NOON + MINUTE_US)
    ledger.close_position(closed(loser, -10.0, NOON + 2 * MINUTE_US))
    refuse(gated, "cooldown", time_us=NOON + 3 * MINUTE_US)
    winner = filled(reserve(gated, time_us=NOON + 62 * MINUTE_US))  # the pause is over
    ledger.fill(winner)
    ledger.close_position(closed(winner, 2_000.0, NOON + 63 * MINUTE_US, "take"))
    ledger.mark(ACCOUNT, NOON + 63 * MINUTE_US, 101_990.0)
    refuse(gated, "daily_profit_lock", time_us=NOON + 64 * MINUTE_US)
    unlocked = replace(gated, limits=replace(gated.limits, daily_profit_lock=None))
    reserve(unlocked, time_us=NOON + 65 * MINUTE_US)
    refuse(gated, "max_trades_per_day", time_us=NOON + 66 * MINUTE_US)
    seen |= {"max_open_positions", "cooldown", "daily_profit_lock", "max_trades_per_day"}
    assert seen == set(RULES)
    assert set(ledger.refusals(ACCOUNT)["rule"]) == set(RULES)


def test_a_request_for_an_unopened_account_raises(ledger):
    with pytest.raises(LedgerStateError, match="does not exist"):
        manager(ledger).request("ghost", "worker", request())


def test_open_account_keeps_an_existing_account(ledger):
    reserve(manager(ledger))
    ledger.open_account(ACCOUNT, 50_000.0, NOON)
    state = ledger.account_state(ACCOUNT, NOON)
    assert (state.initial_equity, state.trades_today) == (100_000.0, 1)
    with pytest.raises(ValueError, match="initial_equity=0"):
        ledger.open_account("new", 0, NOON)


def test_numpy_numbers_are_accepted_and_stored_as_plain_numbers(tmp_path):
    """Signals come from numpy arrays: an np.int64 time and side are ordinary input."""
    import numpy as np

    from forex_assets.trading.risk_ledger import Reservation, RiskLedger
    from forex_assets.trading.risk_limits import RiskLimits
    from forex_assets_tests.trading.race_workers import START_US, manager, request

    ledger = RiskLedger(tmp_path / "ledger.sqlite")
    ledger.open_account("acct", 100_000.0, START_US)
    numpy_request = dataclasses.replace(
        request("numpy"), time_us=np.int64(START_US), side=np.int8(1)
    )
    assert isinstance(
        manager(ledger, RiskLimits()).request("acct", "w", numpy_request), Reservation
    )
    intent = ledger.intents("acct").row(0, named=True)
    assert (intent["reserved_us"], intent["side"]) == (START_US, 1)


def test_the_ledger_counts_days_by_its_calendar(tmp_path):
    """22:00 UTC is 18:00 New York: the next FX day on the New York close, the same day on
    a UTC-midnight close; the daily rules must start their day where the bars do."""
    late = us(2024, 7, 10, 22)
    new_york = RiskLedger(tmp_path / "ny.sqlite")
    utc_close = RiskLedger(tmp_path / "utc.sqlite", calendar=FxCalendar(DayClose.UTC_MIDNIGHT))
    assert new_york.trading_day(late) == new_york.trading_day(NOON) + 1
    assert utc_close.trading_day(late) == utc_close.trading_day(NOON)
    for ledger in (new_york, utc_close):
        ledger.close()
