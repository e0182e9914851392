"""How the out-of-fold predictions score: per path, per model, and against overfitting.

Per path and model: accuracy, log-loss and one-vs-rest AUC of the probabilities, and the
strategy metrics of trading them (`signal_trading`) with costs at the primary edge
threshold. Overfitting is judged over every strategy tried, each (model, threshold)
pair: the Deflated Sharpe Ratio of the best one given how many were tried and how much
their Sharpes spread, and the Probability of Backtest Overfitting from CSCV over their
daily returns (averaged over paths, each path being a full out-of-fold history).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from forex_assets.market.fx_calendar import DEFAULT_CALENDAR, FxCalendar
from forex_assets.metrics.classification import accuracy, log_loss, roc_auc_ovr
from forex_assets.metrics.trading import daily_returns, trading_metrics
from forex_assets.models.dataset import TrainingData
from forex_assets.models.signal_trading import trade_signals
from forex_assets.validation.overfitting import (
    DeflatedSharpe,
    OverfittingInputError,
    Pbo,
    deflated_sharpe_ratio,
    probability_of_backtest_overfitting,
)

PRIMARY_THRESHOLD = 0.1
THRESHOLDS = (0.0, 0.1, 0.2)
MAX_PBO_BLOCKS = 16
MIN_DAYS_PER_PBO_BLOCK = 5


@dataclass(frozen=True)
class EquityCurve:
    model: str
    path: int
    exit_us: np.ndarray
    equity: np.ndarray


@dataclass(frozen=True)
class Overfitting:
    selected: str | None
    deflated_sharpe: DeflatedSharpe | None
    pbo: Pbo | None
    dsr_note: str
    pbo_note: str


@dataclass(frozen=True)
class Evaluation:
    per_path: pl.DataFrame
    summary: pl.DataFrame
    strategies: tuple[str, ...]
    overfitting: Overfitting
    curves: tuple[EquityCurve, ...]


def _strategy(model: str, threshold: float) -> str:
    return f"{model}@{threshold:g}"


def _pbo_blocks(days: int) -> int:
    blocks = min(MAX_PBO_BLOCKS, days // MIN_DAYS_PER_PBO_BLOCK)
    return blocks - blocks % 2


@dataclass(frozen=True)
class ModelScore:
    """One model's part of an `Evaluation`: scored on its own (a task of its own while
    the other models' work still runs), then combined with the others'."""

    model: str
    rows: tuple[dict[str, object], ...]  # per path, at the primary threshold
    curves: tuple[EquityCurve, ...]  # per path, at the primary threshold
    daily: dict[str, np.ndarray]  # strategy -> daily returns averaged over paths


def score_model(
    model: str,
    proba: np.ndarray,
    data: TrainingData,
    cost: np.ndarray,
    thresholds: Sequence[float] = THRESHOLDS,
    primary: float = PRIMARY_THRESHOLD,
    calendar: FxCalendar = DEFAULT_CALENDAR,
) -> ModelScore:
    """Score one model's (paths, rows, classes) probabilities at every threshold.

    The primary threshold is always among the strategies, listed or not; daily returns
    fall on `calendar`'s trading days.
    """
    thresholds = tuple(sorted({*thresholds, primary}))
    t0, t1 = np.asarray(data.t0), np.asarray(data.t1)
    classes = np.asarray(data.classes)
    trade_return = np.asarray(data.trade_return)
    days_with_bars = np.unique(calendar.trading_day(np.concatenate([t0, t1])))
    rows: list[dict[str, object]] = []
    curves: list[EquityCurve] = []
    daily: dict[str, np.ndarray] = {}
    for threshold in thresholds:
        per_path_days = np.zeros((proba.shape[0], days_with_bars.size))
        for path in range(proba.shape[0]):
            trades = trade_signals(proba[path], t0, t1, trade_return, cost, threshold)
            exit_day = calendar.trading_day(trades.exit_us)
            days, returns = daily_returns(trades.returns, exit_day)
            # Weekdays without bars (holidays) are no trading day; nothing exits there.
            known = np.isin(days, days_with_bars)
            per_path_days[path, np.searchsorted(days_with_bars, days[known])] = returns[known]
            if threshold != primary:
                continue
            metrics = trading_metrics(trades.returns, exit_day, days=days_with_bars)
            rows.append(
                {
                    "model": model,
                    "path": path,
                    "accuracy": accuracy(classes, proba[path].argmax(axis=1)),
                    "log_loss": log_loss(classes, proba[path]),
                    "auc": roc_auc_ovr(classes, proba[path]),
                    **metrics.as_dict(),
                }
            )
            curves.append(
                EquityCurve(model, path, trades.exit_us, np.cumprod(1.0 + trades.returns))
            )
        daily[_strategy(model, threshold)] = per_path_days.mean(axis=0)
    return ModelScore(model, tuple(rows), tuple(curves), daily)


def combine_scores(scores: Sequence[ModelScore]) -> Evaluation:
    """The evaluation of every scored model together: overfitting is judged over all
    their strategies at once, since each one tried counts against the best."""
    models = [score.model for score in scores]
    if len(set(models)) != len(models):
        raise ValueError(
            f"scores of models {models}: each model is scored once; a repeated one would "
            "count its strategies twice against the best"
        )
    per_path = pl.DataFrame([row for score in scores for row in score.rows])
    summary = per_path.drop("path").group_by("model", maintain_order=True).mean()
    daily = {name: returns for score in scores for name, returns in score.daily.items()}
    names = tuple(daily)
    overfitting = judge_overfitting(np.column_stack([daily[name] for name in names]), names)
    curves = tuple(curve for score in scores for curve in score.curves)
    return Evaluation(per_path, summary, names, overfitting, curves)


def evaluate_paths(
    path_proba: Mapping[str, np.ndarray],
    data: TrainingData,
    cost: np.ndarray,
    thresholds: Sequence[float] = THRESHOLDS,
    primary: float = PRIMARY_THRESHOLD,
    calendar: FxCalendar = DEFAULT_CALENDAR,
) -> Evaluation:
    """Score every model's (paths, rows, classes) probabilities; see the module docstring."""
    return combine_scores(
        [
            score_model(model, proba, data, cost, thresholds, primary, calendar)
            for model, proba in path_proba.items()
        ]
    )


def judge_overfitting(performance: np.ndarray, names: Sequence[str]) -> Overfitting:
    """DSR of the best strategy and PBO across strategies, from (days, strategies) returns.

    A strategy that never traded has no Sharpe ratio and cannot be ranked; it is left out
    of both, and a statistic that cannot be computed says why instead of taking a value.
    """
    traded = [i for i in range(performance.shape[1]) if np.std(performance[:, i]) > 0]
    if not traded:
        reason = "no strategy traded; nothing to deflate or rank"
        return Overfitting(None, None, None, reason, reason)
    returns = performance[:, traded]
    sharpes = returns.mean(axis=0) / returns.std(axis=0, ddof=1)
    best = int(np.argmax(sharpes))
    deflated = deflated_sharpe_ratio(returns[:, best], sharpes)
    blocks = _pbo_blocks(returns.shape[0])
    if len(traded) < 2:
        return Overfitting(
            names[traded[best]], deflated, None, "", "one strategy traded; PBO ranks several"
        )
    if blocks < 2:
        reason = (
            f"{returns.shape[0]} trading days give fewer than 2 blocks of "
            f"{MIN_DAYS_PER_PBO_BLOCK} days; PBO needs a longer history"
        )
        return Overfitting(names[traded[best]], deflated, None, "", reason)
    try:
        pbo = probability_of_backtest_overfitting(returns, n_blocks=blocks)
    except OverfittingInputError as error:
        return Overfitting(names[traded[best]], deflated, None, "", f"PBO undefined: {error}")
    return Overfitting(names[traded[best]], deflated, pbo, "", "")
