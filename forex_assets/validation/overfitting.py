"""Overfitting statistics for a strategy picked among many trials (Bailey & López de Prado).

Choosing the best of many backtests selects for luck as much as for skill, so its Sharpe
ratio is biased upward; these statistics price that selection in:

* **PSR** (probabilistic Sharpe ratio): the probability that the true Sharpe exceeds a
  benchmark, given the sample length and the returns' skew and kurtosis, which widen the
  Sharpe estimate's error (Bailey & López de Prado 2012).
* **DSR** (deflated Sharpe ratio): PSR against the Sharpe the best of N skill-less trials
  is expected to reach by chance (Bailey & López de Prado 2014).
* **PBO** (probability of backtest overfitting): with combinatorially symmetric
  cross-validation, how often the in-sample winner ranks in the bottom half out of
  sample (Bailey, Borwein, López de Prado & Zhu 2017).

Sharpe ratios here are per observation, not annualized: the PSR standard error is
expressed in observations, so annualized inputs would overstate the evidence.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from scipy.stats import kurtosis as sample_kurtosis
from scipy.stats import norm
from scipy.stats import skew as sample_skew

# C(16, 8) = 12870 splits; each more pair of blocks multiplies the count by about 4.
MAX_PBO_BLOCKS = 16


class OverfittingInputError(ValueError):
    """Inputs that cannot give an overfitting statistic; the message says what to change."""


def probabilistic_sharpe_ratio(
    sharpe: float, benchmark: float, n_obs: int, skew: float, kurtosis: float
) -> float:
    """P(true Sharpe > benchmark) for a per-observation Sharpe from `n_obs` returns.

    `kurtosis` is the raw kurtosis (3 for normal returns). Negative skew and fat tails
    make a high sample Sharpe more likely by chance, so they lower the probability.
    """
    if n_obs < 2:
        raise OverfittingInputError(f"n_obs={n_obs} must be at least 2 to estimate a Sharpe.")
    variance_term = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if not variance_term > 0:
        raise OverfittingInputError(
            f"skew={skew!r} and kurtosis={kurtosis!r} give no Sharpe standard error; pass the "
            "raw kurtosis (normal = 3, not excess 0), which is at least 1 + skew^2 for any "
            "distribution."
        )
    z = (sharpe - benchmark) * math.sqrt(n_obs - 1) / math.sqrt(variance_term)
    return float(norm.cdf(z))


def expected_maximum_sharpe(trial_sharpes_variance: float, n_trials: int) -> float:
    """Expected best Sharpe among `n_trials` skill-less trials with the given Sharpe variance.

    The extreme-value approximation of the maximum of N normals; 0 for a single trial,
    since one trial selects nothing.
    """
    if isinstance(n_trials, bool) or not isinstance(n_trials, int | np.integer) or n_trials < 1:
        raise OverfittingInputError(f"n_trials={n_trials!r} must be an int of at least 1.")
    if not (math.isfinite(trial_sharpes_variance) and trial_sharpes_variance >= 0):
        raise OverfittingInputError(
            f"trial_sharpes_variance={trial_sharpes_variance!r} must be a finite variance >= 0."
        )
    if n_trials == 1:
        return 0.0
    gamma = np.euler_gamma
    return float(
        math.sqrt(trial_sharpes_variance)
        * ((1 - gamma) * norm.ppf(1 - 1 / n_trials) + gamma * norm.ppf(1 - 1 / (n_trials * math.e)))
    )


@dataclass(frozen=True)
class DeflatedSharpe:
    """The selected strategy's per-observation Sharpe, deflated for the trials behind it."""

    sharpe: float
    benchmark: float
    dsr: float
    n_trials: int
    n_obs: int
    skew: float
    kurtosis: float


def deflated_sharpe_ratio(returns: np.ndarray, trial_sharpes: np.ndarray) -> DeflatedSharpe:
    """PSR of the selected strategy's `returns` against the expected best of its trials.

    `trial_sharpes` are the per-observation Sharpes of every trial tried, the selected one
    included: their spread sets how high luck alone reaches. Skew and raw kurtosis are the
    plain (biased) sample moments: unlike the bias-corrected ones they always satisfy
    kurtosis >= 1 + skew^2, which keeps the PSR variance term from going negative.
    """
    returns = np.asarray(returns, dtype=np.float64)
    trials = np.asarray(trial_sharpes, dtype=np.float64)
    if returns.ndim != 1 or returns.size < 2 or not np.isfinite(returns).all():
        raise OverfittingInputError(
            f"returns of shape {returns.shape} must be a 1-D array of at least 2 finite "
            "per-period returns of the selected strategy."
        )
    if trials.ndim != 1 or trials.size == 0 or not np.isfinite(trials).all():
        raise OverfittingInputError(
            f"trial_sharpes of shape {trials.shape} must be a non-empty 1-D array of finite "
            "per-observation Sharpes, one per trial, the selected strategy included."
        )
    if returns.min() == returns.max():
        raise OverfittingInputError("returns are constant: a Sharpe needs some variation.")
    sharpe = float(returns.mean() / returns.std(ddof=1))
    skew = float(sample_skew(returns))
    kurtosis = float(sample_kurtosis(returns, fisher=False))
    variance = float(trials.var(ddof=1)) if trials.size > 1 else 0.0
    benchmark = expected_maximum_sharpe(variance, trials.size)
    return DeflatedSharpe(
        sharpe=sharpe,
        benchmark=benchmark,
        dsr=probabilistic_sharpe_ratio(sharpe, benchmark, returns.size, skew, kurtosis),
        n_trials=int(trials.size),
        n_obs=int(returns.size),
        skew=skew,
        kurtosis=kurtosis,
    )


@dataclass(frozen=True, eq=False)  # an array field makes field-wise equality ambiguous
class Pbo:
    """PBO and the logit of the in-sample winner's out-of-sample rank for every split."""

    pbo: float
    logits: np.ndarray
    n_combinations: int
    n_strategies: int


def column_sharpe(returns: np.ndarray) -> np.ndarray:
    """Per-observation Sharpe (mean / std, ddof=1) of each column; NaN where undefined."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return returns.mean(axis=0) / returns.std(axis=0, ddof=1)


def probability_of_backtest_overfitting(
    performance: np.ndarray,
    n_blocks: int = 16,
    metric: Callable[[np.ndarray], np.ndarray] = column_sharpe,
) -> Pbo:
    """CSCV estimate of how often selecting the in-sample best picks a below-median strategy.

    `performance` is a (T observations x N strategies) matrix of returns. Its rows are cut
    into `n_blocks` contiguous blocks; every choice of half the blocks is an in-sample set
    and the rest its out-of-sample set, so each split is tested both ways round. For each
    split the in-sample best strategy by `metric` gets its out-of-sample rank w = rank /
    (N + 1) (rank N = best) and the logit ln(w / (1 - w)); PBO is the share of logits <= 0.
    `metric` maps a (rows x N) matrix to N scores, higher = better.
    """
    performance = np.asarray(performance, dtype=np.float64)
    if performance.ndim != 2 or performance.shape[1] < 2:
        raise OverfittingInputError(
            f"performance of shape {performance.shape} must be a (observations x strategies) "
            "matrix with at least 2 strategies: overfitting is about choosing among them."
        )
    if not np.isfinite(performance).all():
        raise OverfittingInputError("performance holds NaN or infinite returns; fill or drop them.")
    if isinstance(n_blocks, bool) or not isinstance(n_blocks, int | np.integer):
        raise OverfittingInputError(f"n_blocks={n_blocks!r} must be an even int.")
    if n_blocks < 2 or n_blocks % 2 or n_blocks > MAX_PBO_BLOCKS:
        raise OverfittingInputError(
            f"n_blocks={n_blocks} must be even (in- and out-of-sample halves of equal size) and "
            f"between 2 and {MAX_PBO_BLOCKS} (C({MAX_PBO_BLOCKS}, {MAX_PBO_BLOCKS // 2}) = "
            f"{math.comb(MAX_PBO_BLOCKS, MAX_PBO_BLOCKS // 2)} splits)."
        )
    n_obs, n_strategies = performance.shape
    if n_obs < n_blocks:
        raise OverfittingInputError(
            f"{n_obs} observations cannot fill {n_blocks} blocks; use fewer blocks or more data."
        )
    block_of_row = np.arange(n_obs) * n_blocks // n_obs
    logits = []
    for chosen in combinations(range(n_blocks), n_blocks // 2):
        in_sample_block = np.zeros(n_blocks, dtype=bool)
        in_sample_block[list(chosen)] = True
        in_sample = in_sample_block[block_of_row]
        best = int(np.argmax(_scores(metric, performance[in_sample], n_strategies)))
        out_of_sample = _scores(metric, performance[~in_sample], n_strategies)
        # Average rank, 1 = worst: ties share the mean of the ranks they span.
        below = np.sum(out_of_sample < out_of_sample[best])
        rank = below + (np.sum(out_of_sample == out_of_sample[best]) + 1) / 2
        w = rank / (n_strategies + 1)
        logits.append(math.log(w / (1 - w)))
    logit_array = np.array(logits)
    return Pbo(
        pbo=float(np.mean(logit_array <= 0)),
        logits=logit_array,
        n_combinations=logit_array.size,
        n_strategies=n_strategies,
    )


def _scores(
    metric: Callable[[np.ndarray], np.ndarray], rows: np.ndarray, n_strategies: int
) -> np.ndarray:
    scores = np.asarray(metric(rows), dtype=np.float64)
    if scores.shape != (n_strategies,):
        raise OverfittingInputError(
            f"metric returned shape {scores.shape} for a {rows.shape} matrix; it must return "
            f"one score per strategy column, shape ({n_strategies},)."
        )
    undefined = np.flatnonzero(np.isnan(scores))
    if undefined.size:
        raise OverfittingInputError(
            f"metric is NaN for strategies {undefined[:5].tolist()} on a half of {rows.shape[0]} "
            "rows: a Sharpe needs at least 2 rows and non-constant returns; use fewer blocks, "
            "more data, or drop constant strategies."
        )
    return scores
