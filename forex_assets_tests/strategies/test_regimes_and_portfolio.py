"""ADX regimes with hysteresis, and the correlation-niched portfolio."""

import numpy as np
import pytest

from forex_assets.strategies.portfolio import select_portfolio, signal_correlation
from forex_assets.strategies.regimes import RANGE, TRANSITION, TREND, classify_adx, regime_shares

NAN = float("nan")


def test_regimes_hold_their_state_inside_the_band():
    adx = [NAN, 22, 26, 23, 21, 19, 22, 24, 25]
    assert classify_adx(adx).tolist() == [
        TRANSITION, TRANSITION, TREND, TREND, TREND, RANGE, RANGE, RANGE, TREND,
    ]  # fmt: skip
    shares = regime_shares(classify_adx(adx))
    assert shares == pytest.approx({"range": 3 / 9, "transition": 2 / 9, "trend": 4 / 9})


def test_regime_levels_must_leave_a_band():
    with pytest.raises(ValueError, match="enter_range=25 must be below enter_trend=20"):
        classify_adx([30.0], enter_trend=20, enter_range=25)


def test_portfolio_takes_the_best_and_skips_lookalikes():
    rng = np.random.default_rng(0)
    base = rng.choice([-1, 0, 1], size=(3, 500)).astype(np.int8)
    signals = np.vstack([base[0], base[0], base[1], base[2], np.zeros(500, np.int8)])
    fitness = np.array([5.0, 4.0, 3.0, 2.0, 9.0])
    portfolio = select_portfolio(fitness, signals)
    # 4 has no signal at all; 1 copies 0; 2 and 3 are independent.
    assert portfolio.members == (0, 2, 3)
    assert np.all(np.abs(portfolio.correlation[np.triu_indices(3, 1)]) < 0.7)


def test_portfolio_stops_at_the_size_cap_and_validates():
    signals = np.random.default_rng(1).choice([-1, 0, 1], size=(6, 300)).astype(np.int8)
    assert len(select_portfolio(np.arange(6.0), signals, max_strategies=2).members) == 2
    with pytest.raises(ValueError, match=r"max_correlation=1\.5"):
        select_portfolio(np.arange(6.0), signals, max_correlation=1.5)
    with pytest.raises(ValueError, match="5 fitness values for 6 signal rows"):
        select_portfolio(np.arange(5.0), signals)


def test_correlation_of_opposite_signals_is_minus_one():
    s = np.array([[1, -1, 0, 1], [-1, 1, 0, -1]], dtype=np.int8)
    assert signal_correlation(s)[0, 1] == pytest.approx(-1.0)
