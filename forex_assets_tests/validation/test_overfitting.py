"""PSR, DSR and PBO against hand-computed values and constructed strategy matrices."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate
from scipy.stats import norm

from forex_assets.validation.overfitting import (
    OverfittingInputError,
    deflated_sharpe_ratio,
    expected_maximum_sharpe,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
)


def test_psr_by_hand():
    # SR 0.1 vs benchmark 0.02 over 253 observations, skew -0.5, kurtosis 5:
    # variance term 1 - (-0.5)(0.1) + (5 - 1) / 4 x 0.01 = 1.06.
    expected = norm.cdf((0.1 - 0.02) * math.sqrt(252) / math.sqrt(1.06))
    assert probabilistic_sharpe_ratio(0.1, 0.02, 253, -0.5, 5.0) == pytest.approx(expected)
    assert probabilistic_sharpe_ratio(0.1, 0.1, 253, 0.0, 3.0) == 0.5


def test_psr_refuses_excess_kurtosis_and_too_few_observations():
    # Skew 2 with excess kurtosis 0 instead of raw 3: 1 - 2 - 1/4 < 0.
    with pytest.raises(OverfittingInputError, match="raw kurtosis"):
        probabilistic_sharpe_ratio(1.0, 0.0, 100, 2.0, 0.0)
    with pytest.raises(OverfittingInputError, match="n_obs=1"):
        probabilistic_sharpe_ratio(0.1, 0.0, 1, 0.0, 3.0)


def test_expected_maximum_sharpe_is_zero_for_one_trial_and_grows_with_trials():
    assert expected_maximum_sharpe(0.04, 1) == 0.0
    values = [expected_maximum_sharpe(0.04, n) for n in (2, 5, 10, 100, 1000)]
    assert (np.diff(values) > 0).all()
    assert expected_maximum_sharpe(4.0, 10) == pytest.approx(2 * expected_maximum_sharpe(1.0, 10))


@pytest.mark.parametrize("n_trials", [10, 100, 1000])
def test_expected_maximum_sharpe_approximates_the_maximum_of_normals(n_trials):
    exact, _ = integrate.quad(
        lambda x: x * n_trials * norm.pdf(x) * norm.cdf(x) ** (n_trials - 1), -10, 10
    )
    assert expected_maximum_sharpe(1.0, n_trials) == pytest.approx(exact, rel=0.03)


def test_expected_maximum_sharpe_refuses_bad_inputs():
    with pytest.raises(OverfittingInputError, match="n_trials=0"):
        expected_maximum_sharpe(0.1, 0)
    with pytest.raises(OverfittingInputError, match="variance"):
        expected_maximum_sharpe(-0.1, 5)


def test_dsr_of_a_strong_strategy_falls_as_trials_grow():
    returns = np.random.default_rng(1).normal(0.1, 1.0, 2000)  # per-observation SR ~ 0.1
    single = deflated_sharpe_ratio(returns, np.array([0.1]))
    assert single.benchmark == 0.0
    assert single.dsr > 0.99
    assert (single.n_obs, single.n_trials) == (2000, 1)
    assert abs(single.skew) < 0.2 and abs(single.kurtosis - 3) < 0.3
    assert single.sharpe == pytest.approx(returns.mean() / returns.std(ddof=1))
    dsrs = []
    for n_trials in (10, 100, 1000):
        trials = np.where(np.arange(n_trials) % 2, 0.05, -0.05)  # Sharpes spread +-0.05
        deflated = deflated_sharpe_ratio(returns, trials)
        assert deflated.benchmark == pytest.approx(
            expected_maximum_sharpe(float(trials.var(ddof=1)), n_trials)
        )
        assert deflated.dsr == pytest.approx(
            probabilistic_sharpe_ratio(
                deflated.sharpe, deflated.benchmark, 2000, deflated.skew, deflated.kurtosis
            )
        )
        dsrs.append(deflated.dsr)
    assert single.dsr > dsrs[0] > dsrs[1] > dsrs[2]
    assert dsrs[2] < 0.01


@pytest.mark.parametrize(
    ("returns", "trials", "message"),
    [
        (np.array([0.1]), np.array([0.1]), "at least 2"),
        (np.full(10, 0.01), np.array([0.1]), "constant"),
        (np.array([0.1, -0.1]), np.array([]), "non-empty"),
    ],
)
def test_dsr_refuses_unusable_inputs(returns, trials, message):
    with pytest.raises(OverfittingInputError, match=message):
        deflated_sharpe_ratio(returns, trials)


def test_pbo_is_zero_when_one_strategy_dominates_every_block():
    rng = np.random.default_rng(2)
    performance = rng.normal(0.0, 1.0, (160, 6))
    performance[:, 3] = 1.0 + 0.1 * rng.normal(size=160)  # Sharpe ~ 10 against ~ 0
    result = probability_of_backtest_overfitting(performance, n_blocks=8)
    assert result.pbo == 0.0
    assert result.n_combinations == math.comb(8, 4) == result.logits.size
    assert result.n_strategies == 6
    assert result.logits == pytest.approx(np.full(70, math.log(6 / 1)))  # rank 6 of 6


def test_pbo_of_pure_noise_is_near_one_half():
    performance = np.random.default_rng(1).normal(size=(320, 20))
    result = probability_of_backtest_overfitting(performance, n_blocks=16)
    assert result.n_combinations == 12870
    assert 0.25 <= result.pbo <= 0.75


def test_pbo_is_one_when_the_in_sample_winner_always_loses_out_of_sample():
    # Strategy A has block means 3, -1, -4, 2 (sum 0, no two blocks sum to 0) plus a
    # zero-mean wiggle; B = -A. The in-sample winner has a positive in-sample sum, so its
    # out-of-sample sum is negative and the mirror beats it: rank 1 of 2, logit ln(1/2).
    wiggle = np.tile([0.1, -0.1], 5)
    a = np.concatenate([mean + wiggle for mean in (3.0, -1.0, -4.0, 2.0)])
    result = probability_of_backtest_overfitting(np.column_stack([a, -a]), n_blocks=4)
    assert result.pbo == 1.0
    assert result.logits == pytest.approx(np.full(6, math.log(0.5)))


def test_pbo_takes_a_custom_metric():
    # Constant columns have no Sharpe, but their mean ranks them.
    performance = np.column_stack([np.zeros(40), np.ones(40), np.full(40, 0.5)])
    with pytest.raises(OverfittingInputError, match="constant"):
        probability_of_backtest_overfitting(performance, n_blocks=4)
    result = probability_of_backtest_overfitting(
        performance, n_blocks=4, metric=lambda rows: rows.mean(axis=0)
    )
    assert result.pbo == 0.0


@pytest.mark.parametrize(
    ("shape", "n_blocks", "message"),
    [
        ((100, 1), 4, "at least 2 strategies"),
        ((100, 3), 5, "must be even"),
        ((100, 3), 18, "between 2 and 16"),
        ((6, 3), 8, "cannot fill 8 blocks"),
    ],
)
def test_pbo_refuses_unusable_settings(shape, n_blocks, message):
    performance = np.random.default_rng(0).normal(size=shape)
    with pytest.raises(OverfittingInputError, match=message):
        probability_of_backtest_overfitting(performance, n_blocks=n_blocks)


def test_pbo_refuses_non_finite_returns_and_a_misshapen_metric():
    performance = np.random.default_rng(0).normal(size=(40, 3))
    performance[5, 1] = np.nan
    with pytest.raises(OverfittingInputError, match="NaN"):
        probability_of_backtest_overfitting(performance, n_blocks=4)
    with pytest.raises(OverfittingInputError, match=r"shape \(3,\)"):
        probability_of_backtest_overfitting(
            np.ones((40, 3)), n_blocks=4, metric=lambda rows: rows.mean()
        )
