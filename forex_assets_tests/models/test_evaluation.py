"""Scoring out-of-fold paths: per path, per model, and against overfitting.

The synthetic history is 2,000 rows picked evenly from 12 weeks of weekday 5-minute bars
(t0 in epoch microseconds), each label ending 3 bars later. The barrier trade returns
+0.2% for class +1, -0.2% for class -1 and ~0 for class 0. Three models predict it on two
paths: `good` leans strongly towards the true class, `weak` slightly, `noise` not at all.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from forex_assets.market.fx_calendar import DEFAULT_CALENDAR
from forex_assets.models.dataset import TrainingData
from forex_assets.models.evaluation import (
    PRIMARY_THRESHOLD,
    THRESHOLDS,
    Evaluation,
    combine_scores,
    evaluate_paths,
    judge_overfitting,
    score_model,
)
from forex_assets.models.signal_trading import trade_signals

ROWS = 2000
PATHS = 2
STEP_US = 300_000_000
MONDAY = 1_704_672_000_000_000  # 2024-01-08 00:00 UTC
MODELS = ("good", "weak", "noise")


def softmax(scores: np.ndarray) -> np.ndarray:
    exp = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def synthetic(seed: int = 0) -> tuple[dict[str, np.ndarray], TrainingData, np.ndarray]:
    rng = np.random.default_rng(seed)
    grid = MONDAY + np.arange(12 * 7 * 288, dtype=np.int64) * STEP_US
    grid = grid[(grid // 86_400_000_000 + 3) % 7 < 5]  # Monday..Friday (UTC)
    t0 = grid[np.linspace(0, grid.size - 1, ROWS).astype(int)]
    classes = rng.integers(0, 3, ROWS)
    data = TrainingData(
        features=np.zeros((ROWS, 1), dtype=np.float32),
        classes=classes,
        t0=t0,
        t1=t0 + 3 * STEP_US,
        trade_return=(classes - 1) * 0.002 + rng.normal(0, 0.0005, ROWS),
        feature_names=("unused",),
    )
    onehot = np.eye(3)[classes]

    def leaning(strength: float) -> np.ndarray:
        return softmax(strength * onehot + rng.normal(0, 1, (PATHS, ROWS, 3))).astype(np.float32)

    proba = {
        "good": leaning(2.0),
        "weak": leaning(0.5),
        "noise": rng.dirichlet(np.ones(3), (PATHS, ROWS)).astype(np.float32),
    }
    return proba, data, np.full(ROWS, 1e-4)


PROBA, DATA, COST = synthetic()


@pytest.fixture(scope="module")
def evaluation() -> Evaluation:
    return evaluate_paths(PROBA, DATA, COST)


def test_history_spans_about_sixty_trading_days():
    days = np.unique(DEFAULT_CALENDAR.trading_day(DATA.t0))
    assert 60 <= days.size <= 75


def test_per_path_has_one_row_per_model_and_path_at_the_primary_threshold(evaluation):
    per_path = evaluation.per_path
    assert per_path.height == len(MODELS) * PATHS
    assert per_path.select("model", "path").rows() == [(m, p) for m in MODELS for p in range(2)]
    for column in ("accuracy", "log_loss", "auc", "trades", "sharpe", "max_drawdown"):
        assert column in per_path.columns
    for model, path, trades in per_path.select("model", "path", "trades").rows():
        expected = trade_signals(
            PROBA[model][path], DATA.t0, DATA.t1, DATA.trade_return, COST, PRIMARY_THRESHOLD
        )
        assert trades == expected.returns.size


def test_classification_scores_rank_the_models(evaluation):
    summary = evaluation.summary
    assert summary.get_column("model").to_list() == list(MODELS)
    accuracy = dict(summary.select("model", "accuracy").rows())
    assert accuracy["good"] > accuracy["weak"] > accuracy["noise"]
    auc = dict(summary.select("model", "auc").rows())
    assert auc["good"] > 0.9
    assert auc["noise"] == pytest.approx(0.5, abs=0.05)


def test_summary_is_the_mean_over_paths(evaluation):
    expected = (
        evaluation.per_path.group_by("model", maintain_order=True)
        .agg(pl.col("accuracy").mean(), pl.col("net_profit").mean())
        .sort("model")
    )
    got = evaluation.summary.select("model", "accuracy", "net_profit").sort("model")
    assert got.equals(expected)
    assert "path" not in evaluation.summary.columns


def test_strategies_are_every_model_and_threshold(evaluation):
    assert evaluation.strategies == tuple(f"{m}@{t:g}" for m in MODELS for t in THRESHOLDS)
    assert len(evaluation.strategies) == 9


def test_overfitting_selects_a_tried_strategy_with_dsr_and_pbo_in_range(evaluation):
    overfitting = evaluation.overfitting
    assert overfitting.selected in evaluation.strategies
    assert overfitting.selected.startswith("good@")
    deflated = overfitting.deflated_sharpe
    assert deflated is not None
    assert 0.0 <= deflated.dsr <= 1.0
    assert deflated.n_trials == 9
    assert overfitting.dsr_note == ""
    if overfitting.pbo is None:
        assert overfitting.pbo_note
    else:
        assert 0.0 <= overfitting.pbo.pbo <= 1.0
        assert overfitting.pbo.n_strategies == 9
        # One strategy dominates on every half: the in-sample winner never ranks low.
        assert overfitting.pbo.pbo < 0.5


def test_equity_curves_compound_each_paths_trades(evaluation):
    assert len(evaluation.curves) == len(MODELS) * PATHS
    for curve in evaluation.curves:
        trades = trade_signals(
            PROBA[curve.model][curve.path],
            DATA.t0,
            DATA.t1,
            DATA.trade_return,
            COST,
            PRIMARY_THRESHOLD,
        )
        np.testing.assert_array_equal(curve.exit_us, trades.exit_us)
        np.testing.assert_allclose(curve.equity, np.cumprod(1.0 + trades.returns))
        assert (np.diff(curve.exit_us) > 0).all()


def test_a_model_that_never_trades_is_left_out_of_the_overfitting_judgement():
    never = np.full((PATHS, ROWS, 3), 1 / 3, dtype=np.float32)  # edge 0: never above 0
    result = evaluate_paths({"good": PROBA["good"], "idle": never}, DATA, COST)
    idle = result.per_path.filter(pl.col("model") == "idle")
    assert idle.get_column("trades").to_list() == [0.0, 0.0]
    assert idle.get_column("net_profit").to_list() == [0.0, 0.0]
    assert result.overfitting.selected.startswith("good@")
    assert result.overfitting.deflated_sharpe.n_trials == len(THRESHOLDS)


def test_the_primary_threshold_is_evaluated_even_when_not_listed():
    result = evaluate_paths(PROBA, DATA, COST, thresholds=(0.0, 0.2), primary=0.1)
    assert result.per_path.height > 0
    assert {name.split("@")[1] for name in result.strategies} == {"0", "0.1", "0.2"}


# --- judge_overfitting ----------------------------------------------------------------


NAMES = ("a@0", "a@0.1", "b@0", "b@0.1")


def test_nothing_traded_says_so_instead_of_computing():
    verdict = judge_overfitting(np.zeros((60, 4)), NAMES)
    assert verdict.selected is None
    assert verdict.deflated_sharpe is None
    assert verdict.pbo is None
    assert "no strategy traded" in verdict.dsr_note
    assert "no strategy traded" in verdict.pbo_note


def test_one_traded_strategy_gets_a_dsr_but_pbo_needs_several():
    performance = np.zeros((60, 4))
    performance[:, 2] = np.random.default_rng(0).normal(0.001, 0.01, 60)
    verdict = judge_overfitting(performance, NAMES)
    assert verdict.selected == "b@0"
    assert verdict.deflated_sharpe is not None
    assert verdict.deflated_sharpe.n_trials == 1
    assert verdict.deflated_sharpe.benchmark == 0.0  # one trial selects nothing
    assert 0.0 <= verdict.deflated_sharpe.dsr <= 1.0
    assert verdict.pbo is None
    assert verdict.pbo_note == "one strategy traded; PBO ranks several"


def test_the_best_sharpe_among_traded_strategies_is_selected():
    rng = np.random.default_rng(1)
    performance = np.zeros((80, 4))
    performance[:, 0] = rng.normal(0.0, 0.01, 80)
    performance[:, 1] = rng.normal(0.004, 0.01, 80)
    performance[:, 3] = rng.normal(-0.002, 0.01, 80)
    verdict = judge_overfitting(performance, NAMES)
    assert verdict.selected == "a@0.1"
    assert verdict.deflated_sharpe.n_trials == 3  # the idle b@0 is no trial
    assert verdict.pbo is not None
    assert verdict.pbo.n_strategies == 3
    assert 0.0 <= verdict.pbo.pbo <= 1.0
    assert verdict.pbo_note == ""


def test_a_short_history_skips_pbo_and_says_why():
    rng = np.random.default_rng(2)
    performance = rng.normal(0, 0.01, (8, 4))
    verdict = judge_overfitting(performance, NAMES)
    assert verdict.selected in NAMES
    assert verdict.deflated_sharpe is not None
    assert verdict.pbo is None
    assert "8 trading days give fewer than 2 blocks" in verdict.pbo_note


def test_an_undefined_pbo_reports_the_reason():
    """A strategy that traded only in the first week has no Sharpe on most halves."""
    rng = np.random.default_rng(3)
    performance = np.zeros((40, 4))
    performance[:, 0] = rng.normal(0, 0.01, 40)
    performance[:5, 1] = rng.normal(0, 0.01, 5)
    verdict = judge_overfitting(performance, NAMES)
    assert verdict.pbo is None
    assert verdict.pbo_note.startswith("PBO undefined:")
    assert verdict.deflated_sharpe is not None


def test_models_scored_apart_combine_into_the_evaluation_of_all_at_once(evaluation):
    # what trained_models does: each model scored by a task of its own, in any order
    scores = [score_model(model, PROBA[model], DATA, COST) for model in reversed(MODELS)]
    combined = combine_scores(scores[::-1])
    assert combined.per_path.equals(evaluation.per_path)
    assert combined.strategies == evaluation.strategies
    assert combined.overfitting.selected == evaluation.overfitting.selected
    assert combined.overfitting.pbo.pbo == evaluation.overfitting.pbo.pbo
    assert combined.overfitting.deflated_sharpe == evaluation.overfitting.deflated_sharpe
    assert [(c.model, c.path) for c in combined.curves] == [
        (c.model, c.path) for c in evaluation.curves
    ]


def test_a_model_scored_twice_is_refused_before_it_skews_the_overfitting_judgement():
    score = score_model("good", PROBA["good"], DATA, COST)
    with pytest.raises(ValueError, match=r"scores of models \['good', 'good'\].*once"):
        combine_scores([score, score])
