"""Classification scores on small arrays worked out by hand, and AUC against pair counting."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forex_assets.metrics.classification import (
    ScoreInputError,
    accuracy,
    log_loss,
    roc_auc,
    roc_auc_ovr,
)


def test_accuracy_is_the_share_of_exact_matches():
    # Matches at positions 0, 2 and 3: 3 of 4.
    assert accuracy(np.array([0, 1, 2, 1]), np.array([0, 2, 2, 1])) == 0.75


def test_accuracy_refuses_mismatched_or_empty_inputs():
    with pytest.raises(ScoreInputError, match="same length"):
        accuracy(np.array([0, 1]), np.array([0, 1, 1]))
    with pytest.raises(ScoreInputError, match="empty"):
        accuracy(np.array([]), np.array([]))


def test_log_loss_is_the_mean_negative_log_probability_of_the_true_class():
    # -(ln 0.8 + ln 0.6) / 2
    proba = np.array([[0.8, 0.2], [0.4, 0.6]])
    assert log_loss(np.array([0, 1]), proba) == pytest.approx(-(math.log(0.8) + math.log(0.6)) / 2)
    # Three classes, true class 2 at 0.5: ln 2.
    assert log_loss(np.array([2]), np.array([[0.2, 0.3, 0.5]])) == pytest.approx(math.log(2))


def test_log_loss_renormalizes_rows_and_clips_certain_misses():
    # Row [2, 2] renormalizes to [0.5, 0.5]: ln 2.
    assert log_loss(np.array([0]), np.array([[2.0, 2.0]])) == pytest.approx(math.log(2))
    # A certain hit costs -ln(1 - eps), a certain miss -ln(eps), not infinity.
    eps = 1e-6
    proba = np.array([[1.0, 0.0], [0.0, 1.0]])
    expected = -(math.log(1 - eps) + math.log(eps)) / 2
    assert log_loss(np.array([0, 0]), proba, eps=eps) == pytest.approx(expected)


def test_log_loss_accepts_integral_float_labels():
    proba = np.array([[0.8, 0.2], [0.4, 0.6]])
    assert log_loss(np.array([0.0, 1.0]), proba) == log_loss(np.array([0, 1]), proba)


@pytest.mark.parametrize(
    ("labels", "proba", "message"),
    [
        (np.array([0, 1, 1]), np.full((2, 2), 0.5), "one row per label"),
        (np.array([0, 1]), np.full(2, 0.5), "one row per label"),
        (np.array([0, 2]), np.full((2, 2), 0.5), r"0\.\.1"),
        (np.array([-1, 1]), np.full((2, 2), 0.5), "map e.g. -1/0/1"),
        (np.array([0.5, 1.0]), np.full((2, 2), 0.5), "class indices"),
        (np.array([0, 1]), np.array([[0.5, np.nan], [0.5, 0.5]]), "NaN"),
    ],
)
def test_log_loss_refuses_labels_and_probabilities_that_do_not_fit(labels, proba, message):
    with pytest.raises(ScoreInputError, match=message):
        log_loss(labels, proba)


def test_roc_auc_by_hand():
    # Positives score 0.35 and 0.8, negatives 0.1 and 0.4: of the 4 pairs the positive
    # wins 3 (0.35 > 0.1, 0.8 > 0.1, 0.8 > 0.4). Ranks 1..4 = [0.1, 0.35, 0.4, 0.8];
    # positive rank sum 2 + 4 = 6, minus 2 x 3 / 2 = 3, over 2 x 2 pairs: 0.75.
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == 0.75


def test_roc_auc_counts_ties_as_half():
    # Pairs (pos, neg): (0.5, 0.5) tie = 0.5, (0.5, 0.2) win, (0.9, 0.5) win, (0.9, 0.2)
    # win: 3.5 / 4.
    assert roc_auc(np.array([0, 1, 0, 1]), np.array([0.5, 0.5, 0.2, 0.9])) == 0.875


def test_roc_auc_is_nan_with_a_single_class():
    assert math.isnan(roc_auc(np.array([1, 1, 1]), np.array([0.1, 0.2, 0.3])))
    assert math.isnan(roc_auc(np.array([0, 0]), np.array([0.1, 0.2])))


def test_roc_auc_refuses_non_binary_labels_and_nan_scores():
    with pytest.raises(ScoreInputError, match="roc_auc_ovr"):
        roc_auc(np.array([0, 1, 2]), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(ScoreInputError, match="NaN"):
        roc_auc(np.array([0, 1]), np.array([0.1, np.nan]))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.integers(-3, 3)), min_size=1, max_size=30),
)
def test_roc_auc_equals_the_pair_count_definition(samples):
    """AUC = P(score_pos > score_neg) + 0.5 P(tie) over all positive-negative pairs."""
    labels = np.array([label for label, _ in samples])
    scores = np.array([score for _, score in samples], dtype=np.float64)
    positives = scores[labels == 1]
    negatives = scores[labels == 0]
    auc = roc_auc(labels, scores)
    if positives.size == 0 or negatives.size == 0:
        assert math.isnan(auc)
        return
    wins = (positives[:, None] > negatives[None, :]).sum()
    ties = (positives[:, None] == negatives[None, :]).sum()
    assert auc == pytest.approx((wins + 0.5 * ties) / (positives.size * negatives.size))
    assert roc_auc(labels, -scores) == pytest.approx(1 - auc)


def test_roc_auc_ovr_is_the_macro_average_of_one_vs_rest_aucs():
    labels = np.array([0, 1, 2, 2])
    proba = np.array(
        [
            [0.6, 0.3, 0.1],
            [0.2, 0.5, 0.3],
            [0.3, 0.2, 0.5],
            [0.1, 0.6, 0.3],
        ]
    )
    # Class 0: positive 0.6 beats negatives 0.2, 0.3, 0.1: 1.
    # Class 1: positive 0.5 beats 0.3 and 0.2, loses to 0.6: 2/3.
    # Class 2: positives 0.5, 0.3 vs negatives 0.1, 0.3: 0.5 wins both, 0.3 wins one
    #   and ties one: 3.5 / 4 = 0.875.
    assert roc_auc_ovr(labels, proba) == pytest.approx((1 + 2 / 3 + 0.875) / 3)


def test_roc_auc_ovr_averages_only_classes_present():
    # Class 1 never occurs; classes 0 and 2 are perfectly separated by their columns.
    labels = np.array([0, 2, 0, 2])
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.5, 0.4, 0.1], [0.2, 0.2, 0.6]])
    assert roc_auc_ovr(labels, proba) == 1.0
    assert math.isnan(roc_auc_ovr(np.array([1, 1]), proba[:2]))
