"""A portfolio of strategies that are good and different: greedy, correlation-niched.

Adding a strategy whose signals move with one already held adds risk, not
diversification. Candidates are taken best first, and one is kept only if its signal
correlation with every strategy kept so far is below the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_MAX_CORRELATION = 0.7
DEFAULT_MAX_STRATEGIES = 20


@dataclass(frozen=True)
class Portfolio:
    members: tuple[int, ...]  # candidate indices, best first
    correlation: np.ndarray  # (members, members) signal correlation


def signal_correlation(signals: np.ndarray) -> np.ndarray:
    """Pearson correlation between rows of (strategies, bars) signals; 0 for flat rows."""
    x = signals.astype(np.float64)
    x -= x.mean(axis=1, keepdims=True)
    norms = np.sqrt((x * x).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = (x @ x.T) / np.outer(norms, norms)
    corr = np.nan_to_num(corr)
    np.fill_diagonal(corr, 1.0)
    return corr


def select_portfolio(
    fitness: np.ndarray,
    signals: np.ndarray,
    max_correlation: float = DEFAULT_MAX_CORRELATION,
    max_strategies: int = DEFAULT_MAX_STRATEGIES,
) -> Portfolio:
    """Greedy selection by fitness (higher is better) under a pairwise correlation cap."""
    if not 0.0 < max_correlation <= 1.0:
        raise ValueError(f"max_correlation={max_correlation!r} must be in (0, 1].")
    if max_strategies < 1:
        raise ValueError(f"max_strategies={max_strategies!r} must be at least 1.")
    if len(fitness) != signals.shape[0]:
        raise ValueError(
            f"{len(fitness)} fitness values for {signals.shape[0]} signal rows; pass one each."
        )
    corr = signal_correlation(signals)
    members: list[int] = []
    for candidate in np.argsort(-np.asarray(fitness), kind="stable"):
        if not np.isfinite(fitness[candidate]) or not signals[candidate].any():
            continue
        if all(abs(corr[candidate, m]) < max_correlation for m in members):
            members.append(int(candidate))
            if len(members) == max_strategies:
                break
    return Portfolio(tuple(members), corr[np.ix_(members, members)])
