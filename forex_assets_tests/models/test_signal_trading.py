"""Trading out-of-fold signals one position at a time, and the round-trip cost per row.

Probabilities are multiples of 1/8 so every edge P(up) - P(down) is exact in floating
point and the threshold comparisons are unambiguous.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forex_assets.models.signal_trading import round_trip_cost, trade_signals

NAN3 = (np.nan, np.nan, np.nan)
THRESHOLD = 0.25

# (P(down), P(flat), P(up)), t0, t1, and what happens at THRESHOLD = 0.25.
TABLE = [
    ((0.125, 0.375, 0.5), 0, 25),  # edge +0.375: buy, open until 25
    ((0.75, 0.25, 0.0), 10, 12),  # edge -0.75: ignored, the buy is open
    ((0.0, 0.25, 0.75), 20, 30),  # edge +0.75: ignored, the buy is open
    ((0.25, 0.5, 0.25), 30, 31),  # edge 0: no trade
    (NAN3, 40, 90),  # NaN edge: skipped, and it blocks nothing
    ((0.5, 0.25, 0.25), 50, 60),  # edge -0.25: exactly the threshold, no trade
    ((0.625, 0.25, 0.125), 55, 60),  # edge -0.5: sell, open until 60
    ((0.0, 0.5, 0.5), 60, 70),  # edge +0.5 at t0 == previous exit: buy
    ((0.25, 0.25, 0.5), 65, 80),  # edge +0.25: exactly the threshold, and the buy is open
    ((0.5, 0.375, 0.125), 70, 75),  # edge -0.375 at t0 == exit: sell
]
PROBA = np.array([row[0] for row in TABLE], dtype=np.float32)
T0 = np.array([row[1] for row in TABLE], dtype=np.int64)
T1 = np.array([row[2] for row in TABLE], dtype=np.int64)
TRADE_RETURN = np.linspace(-0.01, 0.01, len(TABLE))
COST = np.full(len(TABLE), 0.0002) + np.arange(len(TABLE)) * 1e-5


def test_hand_built_signals_trade_as_the_rules_say():
    trades = trade_signals(PROBA, T0, T1, TRADE_RETURN, COST, THRESHOLD)
    np.testing.assert_array_equal(trades.entry_rows, [0, 6, 7, 9])
    np.testing.assert_array_equal(trades.sides, [1, -1, 1, -1])
    np.testing.assert_array_equal(trades.exit_us, [25, 60, 70, 75])
    expected = trades.sides * TRADE_RETURN[[0, 6, 7, 9]] - COST[[0, 6, 7, 9]]
    np.testing.assert_allclose(trades.returns, expected, rtol=0, atol=1e-15)


def test_trades_never_overlap():
    trades = trade_signals(PROBA, T0, T1, TRADE_RETURN, COST, THRESHOLD)
    entry_t0 = T0[trades.entry_rows]
    assert (entry_t0[1:] >= trades.exit_us[:-1]).all()


def test_threshold_zero_trades_any_nonzero_edge():
    trades = trade_signals(PROBA, T0, T1, TRADE_RETURN, COST, 0.0)
    # Row 3 (edge 0) still does not trade; row 5 (edge -0.25) now sells, until 60.
    np.testing.assert_array_equal(trades.entry_rows, [0, 5, 7, 9])
    np.testing.assert_array_equal(trades.sides, [1, -1, 1, -1])


def test_a_high_threshold_trades_nothing():
    trades = trade_signals(PROBA, T0, T1, TRADE_RETURN, COST, 0.9)
    assert trades.entry_rows.size == trades.sides.size == trades.returns.size == 0
    assert trades.exit_us.size == 0


def test_all_nan_signals_trade_nothing():
    proba = np.full((4, 3), np.nan, dtype=np.float32)
    trades = trade_signals(proba, T0[:4], T1[:4], TRADE_RETURN[:4], COST[:4], 0.0)
    assert trades.entry_rows.size == 0


def reference_trades(edge, t0, t1, threshold):
    """The rules written out plainly: flat, not blocked, |edge| above threshold: enter."""
    entries, sides, free_at = [], [], None
    for i, value in enumerate(edge):
        if free_at is not None and t0[i] < free_at:
            continue
        if np.isnan(value) or abs(value) <= threshold:
            continue
        entries.append(i)
        sides.append(1 if value > 0 else -1)
        free_at = t1[i]
    return entries, sides


@settings(max_examples=200, deadline=None)
@given(
    rows=st.integers(min_value=0, max_value=60),
    threshold=st.sampled_from([0.0, 0.1, 0.25, 0.5]),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_trades_match_the_plain_rules_on_random_signals(rows, threshold, seed):
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.ones(3), rows).astype(np.float32)
    proba[rng.random(rows) < 0.1] = np.nan
    t0 = np.cumsum(rng.integers(0, 3, rows)).astype(np.int64)
    t1 = t0 + rng.integers(0, 8, rows)
    trade_return = rng.normal(0, 0.01, rows)
    cost = rng.uniform(0, 0.001, rows)
    trades = trade_signals(proba, t0, t1, trade_return, cost, threshold)
    edge = proba[:, 2].astype(np.float64) - proba[:, 0].astype(np.float64)
    entries, sides = reference_trades(edge, t0, t1, threshold)
    np.testing.assert_array_equal(trades.entry_rows, entries)
    np.testing.assert_array_equal(trades.sides, sides)
    np.testing.assert_array_equal(trades.exit_us, t1[entries])
    np.testing.assert_allclose(
        trades.returns, np.asarray(sides) * trade_return[entries] - cost[entries], atol=1e-15
    )
    assert (t0[trades.entry_rows][1:] >= trades.exit_us[:-1]).all()


# --- round-trip cost ------------------------------------------------------------------


def test_round_trip_cost_uses_the_spread_where_known_and_fallback_pips_elsewhere():
    close = np.array([1.1, 1.25, 150.0])
    spread = np.array([0.0002, np.nan, np.nan])
    cost = round_trip_cost(close, spread, pip_size=0.0001, fallback_pips=1.5, commission=5e-5)
    np.testing.assert_allclose(
        cost, [0.0002 / 1.1 + 5e-5, 0.00015 / 1.25 + 5e-5, 0.00015 / 150.0 + 5e-5], rtol=1e-12
    )


def test_round_trip_cost_of_a_yen_pair_uses_its_pip_size():
    cost = round_trip_cost(
        np.array([150.0]), np.array([np.nan]), pip_size=0.01, fallback_pips=2.0, commission=0.0
    )
    np.testing.assert_allclose(cost, [0.02 / 150.0], rtol=1e-12)


def test_zero_costs_are_allowed():
    cost = round_trip_cost(np.array([1.0, 2.0]), np.array([0.0, np.nan]), 0.0001, 0.0, 0.0)
    np.testing.assert_array_equal(cost, [0.0, 0.0])


@pytest.mark.parametrize(
    ("fallback_pips", "commission", "named"),
    [(-1.0, 0.0, r"fallback_pips=-1\.0"), (1.0, -0.0001, r"commission=-0\.0001")],
)
def test_negative_cost_inputs_are_refused_naming_them(fallback_pips, commission, named):
    with pytest.raises(ValueError, match=named) as error:
        round_trip_cost(np.array([1.1]), np.array([np.nan]), 0.0001, fallback_pips, commission)
    assert "must be >= 0" in str(error.value)


@pytest.mark.parametrize(
    ("spread", "pip_size"), [(np.array([np.nan]), -0.0001), (np.array([-0.0002]), 0.0001)]
)
def test_negative_pip_size_or_spread_is_refused(spread, pip_size):
    with pytest.raises(ValueError, match=r"must be >= 0|is negative"):
        round_trip_cost(np.array([1.1]), spread, pip_size, 1.0, 0.0)
