"""Position sizing worked out by hand, and the property that rounding never risks more.

Unless a test says otherwise: 1 % of 100,000 = 1,000 at risk, no confidence or drawdown
scaling, no commission.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forex_assets.market.contract import Contract
from forex_assets.trading.risk_limits import RiskConfigError
from forex_assets.trading.sizing import (
    PositionSize,
    SizingPolicy,
    size_position,
)

PLAIN = SizingPolicy(risk_fraction=0.01, scale_by_confidence=False, scale_by_drawdown=False)


def free(symbol: str, **terms: float) -> Contract:
    return Contract.for_symbol(symbol, **{"commission_per_lot": 0.0, **terms})


def size(
    contract: Contract,
    price: float,
    stop: float,
    equity: float = 100_000.0,
    policy: SizingPolicy = PLAIN,
    confidence: float = 0.5,
    drawdown: float = 0.0,
) -> PositionSize | str:
    return size_position(policy, contract, equity, price, stop, confidence, drawdown)


def lots_of(result: PositionSize | str) -> float:
    assert isinstance(result, PositionSize), result
    return result.lots


def test_eurusd_twenty_pip_stop():
    # 20 pips of 1 lot (100,000 EUR) is 200 USD: 1,000 buys 5 lots.
    result = size(free("EURUSD"), 1.1, 0.0020)
    assert result == PositionSize(lots=5.0, risk=pytest.approx(1_000.0), target_risk=1_000.0)


def test_usdjpy_value_divides_by_the_price():
    # 30 pips (0.30 yen) of 100,000 USD is 30,000 yen = 200 USD at 150, 300 USD at 100.
    assert free("USDJPY").pip_size == 0.01
    at_150 = size(free("USDJPY"), 150.0, 0.30)
    assert lots_of(at_150) == 5.0
    assert at_150.risk == pytest.approx(1_000.0)
    at_100 = size(free("USDJPY"), 100.0, 0.30)
    assert lots_of(at_100) == 3.33  # 1,000 / 300 = 3.333...
    assert at_100.risk == pytest.approx(999.0)


def test_xauusd_is_100_ounces_with_a_ten_cent_pip():
    gold = free("XAUUSD")
    assert (gold.contract_size, gold.pip_size, gold.quote_is_account) == (100.0, 0.1, True)
    # A 50 pip (5 dollar) stop on 100 oz loses 500 USD a lot: 2 lots.
    assert lots_of(size(gold, 2_000.0, 5.0)) == 2.0
    # With 7 USD commission a lot: 507 a lot, 1.97 lots.
    with_commission = size(free("XAUUSD", commission_per_lot=7.0), 2_000.0, 5.0)
    assert lots_of(with_commission) == 1.97
    assert with_commission.risk == pytest.approx(1.97 * 507.0)


def test_xagusd_is_5000_ounces_with_a_one_cent_pip():
    silver = free("XAGUSD")
    assert (silver.contract_size, silver.pip_size) == (5_000.0, 0.01)
    # A 10 pip (10 cent) stop on 5,000 oz loses 500 USD a lot: 2 lots.
    assert lots_of(size(silver, 25.0, 0.10)) == 2.0


def test_commission_is_part_of_the_risk():
    # 200 at the stop + 7 commission = 207 a lot: 1,000 / 207 = 4.83 lots.
    contract = free("EURUSD", commission_per_lot=7.0)
    result = size(contract, 1.1, 0.0020)
    assert lots_of(result) == 4.83
    assert result.risk == pytest.approx(4.83 * 207.0)
    assert result.risk <= result.target_risk


@pytest.mark.parametrize(("lot_step", "lots"), [(0.01, 4.83), (0.1, 4.8), (1.0, 4.0)])
def test_lots_round_down_to_the_lot_step(lot_step, lots):
    contract = free("EURUSD", commission_per_lot=7.0, lot_step=lot_step, min_lot=lot_step)
    assert lots_of(size(contract, 1.1, 0.0020)) == lots


@pytest.mark.parametrize("hundredths", [29, 57, 113])
def test_an_exact_multiple_of_the_lot_step_is_not_rounded_away(hundredths):
    # 0.29 / 0.01 is 28.999999999999996 in floating point; the answer is still 0.29 lots.
    lots = hundredths / 100
    assert math.floor(lots / 0.01) == hundredths - 1  # the trap is real
    equity = hundredths * 1_000.0  # 1 % of it over a 100 pip stop (1,000 a lot)
    result = size(free("EURUSD"), 1.1, 0.01, equity=equity)
    assert lots_of(result) == lots


def test_max_lot_caps_the_order():
    policy = SizingPolicy(scale_by_confidence=False, scale_by_drawdown=False, max_lot=2.0)
    result = size(free("EURUSD"), 1.1, 0.0020, policy=policy)
    assert lots_of(result) == 2.0
    assert result.risk == pytest.approx(400.0)
    assert result.target_risk == 1_000.0
    odd = SizingPolicy(scale_by_confidence=False, scale_by_drawdown=False, max_lot=2.005)
    assert lots_of(size(free("EURUSD"), 1.1, 0.0020, policy=odd)) == 2.0


def test_too_small_an_account_for_the_minimum_lot_says_why():
    # 1 % of 1,000 is 10; a 100 pip stop costs 1,007 a lot: 0.0099 lots < 0.01.
    result = size(Contract.for_symbol("EURUSD"), 1.1, 0.01, equity=1_000.0)
    assert isinstance(result, str)
    assert "risking 10.00" in result
    assert "1.00% of equity 1,000.00" in result
    assert "0.0099 lots" in result
    assert "below the minimum lot 0.01" in result


def test_a_minimum_lot_above_the_step_refuses_smaller_sizes():
    contract = free("EURUSD", min_lot=0.1)
    assert isinstance(size(contract, 1.1, 0.01, equity=5_000.0), str)  # 0.05 lots
    assert lots_of(size(contract, 1.1, 0.01, equity=10_000.0)) == 0.1


@pytest.mark.parametrize(
    ("confidence", "drawdown", "by_confidence", "by_drawdown", "lots"),
    [
        (0.5, 0.0, True, False, 2.5),  # a neutral model halves the size
        (0.8, 0.0, True, False, 4.0),
        (1.0, 0.0, True, False, 5.0),
        (0.5, 0.6, False, True, 2.0),  # 60 % of the loss room used: 40 % of the size
        (0.5, 0.6, True, True, 1.0),
        (0.3, 0.9, False, False, 5.0),  # scaling switched off
    ],
)
def test_confidence_and_drawdown_scaling(confidence, drawdown, by_confidence, by_drawdown, lots):
    policy = SizingPolicy(scale_by_confidence=by_confidence, scale_by_drawdown=by_drawdown)
    result = size(
        free("EURUSD"), 1.1, 0.0020, policy=policy, confidence=confidence, drawdown=drawdown
    )
    assert lots_of(result) == pytest.approx(lots)
    assert result.target_risk == pytest.approx(lots * 200.0)


def test_a_used_up_loss_room_buys_nothing():
    policy = SizingPolicy(scale_by_confidence=False)
    result = size(free("EURUSD"), 1.1, 0.0020, policy=policy, drawdown=1.0)
    assert isinstance(result, str)
    assert "scale 0.000" in result


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("risk_fraction", 0.0),
        ("risk_fraction", 0.2),
        ("risk_fraction", math.nan),
        ("risk_fraction", True),
        ("min_confidence", 1.0),
        ("min_confidence", -0.1),
        ("max_lot", 0.0),
        ("max_lot", math.inf),
    ],
)
def test_a_bad_policy_is_refused_by_name(field, value):
    with pytest.raises(RiskConfigError, match=rf"SizingPolicy\.{field}="):
        SizingPolicy(**{field: value})


CONTRACTS = {
    "EURUSD": (0.5, 2.0),
    "USDJPY": (50.0, 300.0),
    "XAUUSD": (1_000.0, 3_000.0),
    "XAGUSD": (10.0, 50.0),
}


@st.composite
def sizing_cases(draw: st.DrawFn):
    symbol = draw(st.sampled_from(sorted(CONTRACTS)))
    low, high = CONTRACTS[symbol]
    step = draw(st.sampled_from([0.01, 0.1, 1.0]))
    contract = Contract.for_symbol(
        symbol,
        lot_step=step,
        min_lot=step,
        commission_per_lot=draw(st.sampled_from([0.0, 3.5, 7.0])),
    )
    policy = SizingPolicy(
        risk_fraction=draw(st.floats(0.001, 0.1)),
        max_lot=draw(st.floats(0.5, 100.0)),
        scale_by_confidence=draw(st.booleans()),
        scale_by_drawdown=draw(st.booleans()),
    )
    price = draw(st.floats(low, high))
    stop = draw(st.floats(1.0, 500.0)) * contract.pip_size
    equity = draw(st.floats(1_000.0, 1e7))
    confidence = draw(st.floats(0.0, 1.0))
    drawdown = draw(st.floats(0.0, 1.0))
    return policy, contract, equity, price, stop, confidence, drawdown


@settings(max_examples=300, deadline=None)
@given(sizing_cases())
def test_realised_risk_never_exceeds_the_target_and_one_more_step_would(case):
    policy, contract, equity, price, stop, confidence, drawdown = case
    result = size_position(policy, contract, equity, price, stop, confidence, drawdown)
    scale = (confidence if policy.scale_by_confidence else 1.0) * (
        1.0 - drawdown if policy.scale_by_drawdown else 1.0
    )
    target = policy.risk_fraction * equity * scale
    per_lot = contract.risk_at_stop(1.0, stop, price)
    if isinstance(result, str):
        assert min(target / per_lot, policy.max_lot) < contract.min_lot * (1 + 1e-9)
        return
    assert result.target_risk == pytest.approx(target, rel=1e-12)
    assert result.lots >= contract.min_lot
    assert result.lots <= policy.max_lot + 1e-12
    steps = result.lots / contract.lot_step
    assert abs(steps - round(steps)) < 1e-9
    assert result.risk == pytest.approx(contract.risk_at_stop(result.lots, stop, price), rel=1e-12)
    assert result.risk <= target * (1 + 1e-9)
    # Rounded down, not further: one more step would break the aim or the cap.
    bigger = result.lots + contract.lot_step
    assert contract.risk_at_stop(bigger, stop, price) > target * (1 - 1e-9) or (
        bigger > policy.max_lot * (1 - 1e-9)
    )
