"""Prop-firm rules on hand-built day sequences whose verdict can be read off the numbers.

Accounts start at 100,000. `account` chains days the way a backtest does (each day starts
at the previous day's end) and numbers them from FX trading day 100, so day 102 is the
third day; the intraday worst is the lower of start and end unless a test gives a low.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forex_assets.prop_firms.challenge import RuleBreach, RuleReport, check_rules, check_rules_batch
from forex_assets.prop_firms.registry import PRESETS, preset
from forex_assets.prop_firms.rules import PropFirmConfigError, PropFirmRules, rules_from_mapping
from forex_assets.strategies.challenge_score import prop_firm_score

INITIAL = 100_000.0
FIRST_DAY = 100
FTMO = PropFirmRules("ftmo_challenge", 0.05, 0.10, 0.10, 4)


def account(
    ends: list[float],
    lows: dict[int, float] | None = None,
    trades: list[int] | None = None,
) -> dict[str, np.ndarray]:
    """Per-day arrays for end-of-day equities `ends`; `lows` maps a day index to its low."""
    end = np.asarray(ends, dtype=np.float64)
    start = np.concatenate(([INITIAL], end[:-1]))
    low = np.minimum(start, end)
    for index, value in (lows or {}).items():
        low[index] = value
    return {
        "days": np.arange(FIRST_DAY, FIRST_DAY + end.size, dtype=np.int64),
        "start_equity": start,
        "min_equity": low,
        "end_equity": end,
        "trades_opened": np.asarray(trades or [1] * end.size, dtype=np.int64),
    }


def check(rules: PropFirmRules = FTMO, **arrays: np.ndarray) -> RuleReport:
    return check_rules(**arrays, rules=rules, initial_equity=INITIAL)


def test_steady_gains_pass_on_the_day_the_target_is_reached():
    report = check(**account([101_000, 103_000, 106_000, 110_500, 111_000]))
    assert report.passed
    assert report.breach is None
    assert report.target_reached_day == 103
    assert report.days_checked == 4
    assert report.trading_days == 4
    assert report.final_return == pytest.approx(0.105)
    assert report.describe() == "passed on day 103"


def test_daily_loss_breach_on_day_three_names_the_day_and_numbers():
    # Day 3 starts at 102,000 and dips to 95,778 (6.1%) before closing at the target.
    arrays = account([101_000, 102_000, 111_000, 112_000], lows={2: 95_778})
    report = check(**arrays)
    assert not report.passed
    assert report.breach == RuleBreach("daily_loss_limit", 102, pytest.approx(0.061), 0.05)
    assert report.target_reached_day is None
    assert report.days_checked == 3
    assert report.worst_daily_loss == pytest.approx(0.061)
    assert report.describe() == (
        "failed: daily_loss_limit on day 102: lost 6.1% of day-start equity (limit 5.0%)"
    )


def test_losing_exactly_the_limit_is_not_a_breach():
    report = check(**account([95_000, 90_250, 90_000]))
    assert report.breach is None
    assert report.worst_daily_loss == pytest.approx(0.05)
    assert report.max_total_drawdown == pytest.approx(0.10)


def test_total_loss_breach_from_small_daily_losses():
    report = check(**account([97_000, 94_000, 91_000, 89_500, 95_000]))
    assert report.breach == RuleBreach("max_total_loss", 103, pytest.approx(0.105), 0.10)
    assert report.worst_daily_loss < 0.05
    assert report.max_total_drawdown == pytest.approx(0.105)
    assert report.final_return == pytest.approx(-0.105)
    assert report.describe() == (
        "failed: max_total_loss on day 103: lost 10.5% of the initial balance (limit 10.0%)"
    )


def test_trailing_drawdown_follows_the_highest_end_of_day_equity():
    arrays = account([108_000, 112_000, 108_000, 104_000, 101_000])
    static = check(**arrays)
    assert static.breach is None
    assert static.max_total_drawdown == 0.0
    trailing = check(dataclasses.replace(FTMO, trailing_drawdown=True), **arrays)
    assert trailing.breach == RuleBreach("max_total_loss", 104, pytest.approx(0.11), 0.10)
    assert trailing.describe() == (
        "failed: max_total_loss on day 104: fell below the high-water mark by 11.0% of the "
        "initial balance (limit 10.0%)"
    )


def test_trailing_high_water_mark_is_the_previous_days_end_not_the_same_day():
    # Day 2 dips to 104,500 and closes at 115,000: the dip is 4.5% below day 1's close of
    # 109,000, the mark at the time; from the day's own close it would be 10.5%.
    rules = dataclasses.replace(FTMO, trailing_drawdown=True, profit_target=0.2)
    report = check(rules, **account([109_000, 115_000], lows={1: 104_500}))
    assert report.breach is None
    assert report.max_total_drawdown == pytest.approx(0.045)


def test_target_with_too_few_trading_days_passes_once_the_days_are_met():
    ends = [105_000, 111_000, 111_000, 111_000]
    early = check(**account(ends, trades=[1, 1, 0, 0]))
    assert not early.passed
    assert early.target_reached_day is None
    assert early.trading_days == 2
    assert early.describe() == "not passed: 2 trading days of 4"

    later = check(**account([*ends, 111_500, 112_000], trades=[1, 1, 0, 0, 1, 1]))
    assert later.passed
    assert later.target_reached_day == 105
    assert later.trading_days == 4


def test_pass_waits_for_equity_back_at_target_when_the_days_are_met():
    # Target hit on day 2; the 4th trading day (day 103) closes below it; day 104 is back.
    report = check(**account([105_000, 111_000, 110_000, 109_000, 110_200], trades=[1] * 5))
    assert report.target_reached_day == 104
    assert report.passed


def test_max_trades_per_day_breach():
    rules = dataclasses.replace(FTMO, max_trades_per_day=5)
    report = check(rules, **account([100_500, 101_000, 102_000], trades=[3, 7, 5]))
    assert report.breach == RuleBreach("max_trades_per_day", 101, 7.0, 5.0)
    assert report.describe() == "failed: max_trades_per_day on day 101: opened 7 trades (limit 5)"
    assert check(**account([100_500, 101_000], trades=[3, 7])).breach is None


def test_a_loss_after_the_pass_does_not_fail_the_challenge():
    report = check(**account([102_000, 105_000, 108_000, 110_000, 80_000]))
    assert report.passed
    assert report.breach is None
    assert report.days_checked == 4
    assert report.final_return == pytest.approx(0.10)
    assert report.max_total_drawdown == 0.0


def test_a_breach_on_the_day_the_target_is_reached_fails():
    report = check(**account([102_000, 105_000, 108_000, 110_500], lows={3: 102_000}))
    assert not report.passed
    assert report.breach is not None
    assert report.breach.rule == "daily_loss_limit"
    assert report.breach.day == 103


def test_one_day_breaking_two_rules_names_the_daily_loss_first():
    report = check(**account([96_000, 89_000]))
    assert report.breach is not None
    assert report.breach.rule == "daily_loss_limit"
    assert report.breach.day == 101


def test_target_not_reached_describes_progress():
    report = check(**account([101_000, 102_500, 103_200]))
    assert not report.passed
    assert report.breach is None
    assert report.describe() == "not passed: target not reached (+3.2% of 10%)"


def test_funded_account_checks_every_day_and_passes_without_a_breach():
    funded = preset("funded_account")
    report = check(funded, **account([101_000, 99_000, 100_000, 99_500, 100_800]))
    assert report.passed
    assert report.target_reached_day is None
    assert report.days_checked == 5
    assert report.describe() == "passed: no rule breached in 5 days"
    assert not check(funded, **account([101_000, 99_000, 93_000])).passed
    short = check(dataclasses.replace(funded, min_trading_days=4), **account([101_000, 102_000]))
    assert short.describe() == "not passed: 2 trading days of 4"


def test_worst_equity_is_bounded_by_the_days_start_and_end():
    # A low above the close (a low sampled from bars that missed the close) counts as the close.
    report = check(**account([94_000], lows={0: 99_000}))
    assert report.breach == RuleBreach("daily_loss_limit", 100, pytest.approx(0.06), 0.05)


def test_batch_matches_one_path_at_a_time():
    paths = [
        account([101_000, 103_000, 106_000, 110_500]),
        account([101_000, 102_000, 111_000, 112_000], lows={2: 95_778}),
        account([101_000, 102_500, 103_000, 103_200]),
    ]
    stacked = {
        name: np.stack([p[name] for p in paths])
        for name in ("start_equity", "min_equity", "end_equity", "trades_opened")
    }
    reports = check_rules_batch(paths[0]["days"], **stacked, rules=FTMO, initial_equity=INITIAL)
    assert reports == [check(**p) for p in paths]
    with pytest.raises(ValueError, match=r"shape \(paths, 3 days\)"):
        check_rules_batch(paths[0]["days"][:3], **stacked, rules=FTMO, initial_equity=INITIAL)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"days": np.array([100, 102, 101])}, "strictly increasing"),
        ({"end_equity": np.array([1.0, np.nan, 1.0])}, "end_equity has NaN"),
        ({"trades_opened": np.array([1, -1, 0])}, "trades_opened must be >= 0"),
        ({"trades_opened": np.array([1.0, 0.0, 0.0])}, "trades_opened must be integers"),
        ({"min_equity": np.array([1.0, 1.0])}, "one length"),
    ],
)
def test_inputs_the_rules_cannot_apply_to_are_rejected(change, message):
    arrays = account([101_000, 102_000, 103_000]) | change
    with pytest.raises(ValueError, match=message):
        check(**arrays)


def test_a_blown_account_is_a_breach_not_an_error():
    arrays = account([101_000, 102_000, 103_000]) | {
        "start_equity": np.array([100_000.0, 0.0, 0.0]),
        "min_equity": np.array([100_000.0, -5.0, 0.0]),
        "end_equity": np.array([0.0, 0.0, 0.0]),
    }
    report = check(**arrays)
    assert not report.passed
    assert report.breach is not None and report.breach.day == arrays["days"][0]


def test_no_days_or_a_bad_initial_balance_is_rejected():
    empty = {name: a[:0] for name, a in account([101_000]).items()}
    with pytest.raises(ValueError, match="no days to check"):
        check(**empty)
    with pytest.raises(ValueError, match="initial_equity=0"):
        check_rules(**account([101_000]), rules=FTMO, initial_equity=0)


def test_presets_by_name_and_a_typo_is_answered_with_a_suggestion():
    assert preset("ftmo_challenge") == FTMO
    assert preset("ftmo_verification").profit_target == 0.05
    assert all(name == rules.name for name, rules in PRESETS.items())
    with pytest.raises(PropFirmConfigError) as error:
        preset("ftmo_chalenge")
    assert "Did you mean 'ftmo_challenge'?" in str(error.value)
    assert "funded_account" in str(error.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("daily_loss_limit", -0.05),
        ("max_total_loss", 1.0),
        ("profit_target", math.nan),
        ("daily_loss_limit", "0.05"),
        ("max_total_loss", True),
        ("min_trading_days", -1),
        ("min_trading_days", 2.5),
        ("max_trades_per_day", 0),
        ("trailing_drawdown", "yes"),
        ("name", ""),
    ],
)
def test_invalid_rules_fail_naming_the_field_and_value(field, value):
    with pytest.raises(PropFirmConfigError, match=f"{field}={value!r}"):
        dataclasses.replace(FTMO, **{field: value})


def test_a_preset_with_a_negative_limit_fails_with_a_clear_message():
    terms = dataclasses.asdict(preset("ftmo_challenge")) | {"daily_loss_limit": -0.05}
    with pytest.raises(PropFirmConfigError) as error:
        rules_from_mapping(terms)
    assert str(error.value) == (
        "ftmo_challenge: daily_loss_limit=-0.05 must be a fraction in [0, 1), e.g. 0.05 for "
        "5%: a negative limit is broken before the first trade and one of 100% or more can "
        "never bind."
    )


def test_rules_from_mapping_builds_rules_and_rejects_unknown_or_missing_keys():
    terms = {
        "name": "my_firm",
        "daily_loss_limit": 0.04,
        "max_total_loss": 0.08,
        "profit_target": 0,
        "min_trading_days": 3,
        "trailing_drawdown": True,
    }
    rules = rules_from_mapping(terms)
    assert rules == PropFirmRules("my_firm", 0.04, 0.08, 0, 3, trailing_drawdown=True)
    with pytest.raises(PropFirmConfigError, match=r"'daily_los_limit'.*Did you mean 'daily_loss"):
        rules_from_mapping(terms | {"daily_los_limit": 0.05})
    partial = {k: v for k, v in terms.items() if k != "min_trading_days"}
    with pytest.raises(PropFirmConfigError, match=r"lack required key\(s\) \['min_trading_days'\]"):
        rules_from_mapping(partial)


@st.composite
def equity_days(draw: st.DrawFn) -> tuple[dict[str, np.ndarray], PropFirmRules]:
    n = draw(st.integers(1, 25))
    equity = st.floats(1.0, 300_000.0)
    days = sorted(draw(st.sets(st.integers(0, 10_000), min_size=n, max_size=n)))
    arrays = {
        "days": np.asarray(days, dtype=np.int64),
        "start_equity": np.asarray(draw(st.lists(equity, min_size=n, max_size=n))),
        "min_equity": np.asarray(draw(st.lists(st.floats(-1e5, 3e5), min_size=n, max_size=n))),
        "end_equity": np.asarray(draw(st.lists(equity, min_size=n, max_size=n))),
        "trades_opened": np.asarray(draw(st.lists(st.integers(0, 12), min_size=n, max_size=n))),
    }
    fraction = st.floats(0.0, 0.99)
    rules = PropFirmRules(
        "random",
        draw(fraction),
        draw(fraction),
        draw(fraction),
        draw(st.integers(0, 10)),
        draw(st.none() | st.integers(1, 10)),
        draw(st.booleans()),
    )
    return arrays, rules


@settings(max_examples=300, deadline=None)
@given(equity_days(), st.floats(1.0, 300_000.0), st.floats(allow_nan=True))
def test_check_rules_never_raises_on_valid_days_and_breach_day_is_a_day(case, initial, sharpe):
    arrays, rules = case
    report = check_rules(**arrays, rules=rules, initial_equity=initial)
    checked = arrays["days"][: report.days_checked]
    if report.breach is not None:
        assert report.breach.day == checked[-1]
        assert not report.passed
    if report.target_reached_day is not None:
        assert report.target_reached_day == checked[-1]
        assert report.passed
    assert isinstance(report.describe(), str)
    assert math.isfinite(prop_firm_score(report, sharpe, 10))
