"""The search's challenge score: tiers first (pass > not passed > breach), then quality."""

import math

import pytest

from forex_assets.strategies.challenge_score import prop_firm_score
from forex_assets_tests.prop_firms.test_challenge import account, check

PASSED = check(**account([102_000, 105_000, 108_000, 110_000, 111_000, 112_000]))
PASSED_LATER = check(**account([101_000, 102_000, 104_000, 106_000, 108_000, 110_000]))
NOT_PASSED = check(**account([101_000, 102_000, 103_000, 104_000, 105_000, 106_000]))
FAILED_LATE = check(**account([101_000, 102_000, 103_000, 104_000, 105_000, 99_000]))
FAILED_EARLY = check(**account([94_000, 95_000, 96_000, 97_000, 98_000, 99_000]))


def test_score_ranks_pass_above_not_passed_above_breach_whatever_the_sharpe():
    assert PASSED.passed and PASSED_LATER.passed and not NOT_PASSED.passed
    assert FAILED_LATE.breach is not None and FAILED_EARLY.breach is not None
    assert prop_firm_score(PASSED, sharpe=-50, trades=0) > prop_firm_score(
        NOT_PASSED, sharpe=50, trades=100
    )
    assert prop_firm_score(NOT_PASSED, sharpe=-50, trades=0) > prop_firm_score(
        FAILED_LATE, sharpe=50, trades=100
    )
    assert prop_firm_score(PASSED, 1.0, 50) > prop_firm_score(PASSED_LATER, 1.0, 50)
    assert prop_firm_score(FAILED_LATE, 1.0, 50) > prop_firm_score(FAILED_EARLY, 1.0, 50)


def test_score_rises_with_sharpe_and_trades_and_stays_finite():
    scores = [prop_firm_score(NOT_PASSED, s, 50) for s in (-math.inf, -1.0, 0.0, 2.0, math.inf)]
    assert scores == sorted(scores) and len(set(scores)) == len(scores)
    assert all(math.isfinite(s) for s in scores)
    assert prop_firm_score(NOT_PASSED, math.nan, 50) == scores[0]
    by_trades = [prop_firm_score(NOT_PASSED, 1.0, n) for n in (0, 5, 19, 20, 500)]
    assert by_trades[:4] == sorted(by_trades[:4]) and by_trades[3] == by_trades[4]
    with pytest.raises(ValueError, match="trades=-1"):
        prop_firm_score(NOT_PASSED, 1.0, -1)
