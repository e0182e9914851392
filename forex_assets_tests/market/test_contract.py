"""Contract terms: what a lot is worth, how lots round, and which symbols can be priced."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forex_assets.market.contract import Contract, ContractError


def free(symbol: str, **terms: float) -> Contract:
    return Contract.for_symbol(symbol, **{"commission_per_lot": 0.0, **terms})


def test_value_of_a_price_move_per_lot():
    assert free("EURUSD").value_per_price_unit(1.1) == 100_000.0
    assert free("USDJPY").value_per_price_unit(150.0) == pytest.approx(100_000 / 150)
    assert free("XAUUSD").value_per_price_unit(2_000.0) == 100.0
    assert free("XAGUSD").value_per_price_unit(25.0) == 5_000.0
    assert free("USDJPY").pip_value(150.0) == pytest.approx(0.01 * 100_000 / 150.0)


def test_pnl_of_a_usd_base_pair_converts_at_the_exit_price():
    # Long 3 lots of USDJPY from 150 to 151: 3 x 100,000 yen = 300,000 yen at 151.
    assert free("USDJPY").pnl(1, 150.0, 151.0, 3.0) == pytest.approx(300_000 / 151.0)
    assert free("EURUSD").pnl(-1, 1.1, 1.099, 2.0) == pytest.approx(200.0)


def test_risk_at_the_stop_includes_the_round_trip_commission():
    contract = free("EURUSD", commission_per_lot=7.0)
    assert contract.risk_at_stop(2.0, 0.0020, 1.1) == pytest.approx(414.0)


@given(st.floats(0.0, 1_000.0), st.sampled_from([0.01, 0.1, 1.0]))
def test_lots_round_down_to_whole_steps(lots, step):
    rounded = Contract.for_symbol("EURUSD", lot_step=step).lots_rounded_down(lots)
    assert rounded <= lots + 1e-9
    assert lots - rounded < step + 1e-9
    assert math.isclose(rounded / step, round(rounded / step), abs_tol=1e-6)


def test_lot_rounding_survives_floating_point():
    # 0.3 / 0.01 is 29.999999999999996: still 30 steps.
    assert Contract.for_symbol("EURUSD").lots_rounded_down(0.3) == 0.3


def test_crosses_without_usd_and_metals_without_a_standard_size_are_refused():
    with pytest.raises(ContractError, match="conversion rate"):
        Contract.for_symbol("EURGBP")
    with pytest.raises(ContractError, match="pass contract_size="):
        Contract.for_symbol("XPTUSD")
    assert Contract.for_symbol("XPTUSD", contract_size=50.0).contract_size == 50.0
    with pytest.raises(ContractError, match="unknown Contract fields"):
        Contract.for_symbol("EURUSD", comission_per_lot=1.0)
    with pytest.raises(ContractError, match="contract_size"):
        Contract(pip_size=0.0001, contract_size=0, quote_is_account=True)
