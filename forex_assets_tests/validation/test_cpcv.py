"""Combinatorial purged CV: hand-counted cases, properties against brute-force interval checks,
and the configurations it must refuse."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forex_assets.validation.cpcv import (
    CpcvConfigError,
    CpcvPlan,
    CpcvSettings,
    combinatorial_purged_cv,
    fold_membership,
    path_table,
    plan_from_membership,
    split_table,
)

MINUTE_US = 60_000_000


def minute_rows(n_rows: int, span: int) -> tuple[np.ndarray, np.ndarray]:
    """One row a minute; each label ends at the t0 of the row `span` rows later (capped)."""
    t0 = np.arange(n_rows, dtype=np.int64) * MINUTE_US
    return t0, t0[np.minimum(np.arange(n_rows) + span, n_rows - 1)]


def plan_for(n_rows: int, span: int = 0, **overrides: object) -> CpcvPlan:
    return combinatorial_purged_cv(*minute_rows(n_rows, span), CpcvSettings(**overrides))


# --- known small cases -----------------------------------------------------------------


def test_six_groups_two_tested_give_fifteen_splits_and_five_paths():
    plan = plan_for(600)
    assert len(plan.splits) == 15
    assert plan.n_paths == 5
    assert plan.paths.shape == (5, 6)
    assert [s.test_groups for s in plan.splits[:3]] == [(0, 1), (0, 2), (0, 3)]


def test_one_test_group_gives_one_path_through_every_split():
    plan = plan_for(500, n_groups=5, test_groups=1)
    assert len(plan.splits) == 5
    assert plan.n_paths == 1
    assert plan.paths.tolist() == [[0, 1, 2, 3, 4]]


def test_path_table_for_four_groups_two_tested():
    # splits in combinations order: 0 (0,1), 1 (0,2), 2 (0,3), 3 (1,2), 4 (1,3), 5 (2,3)
    plan = plan_for(400, n_groups=4, test_groups=2)
    expected = [[0, 0, 1, 2], [1, 3, 3, 4], [2, 4, 5, 5]]
    assert plan.paths.tolist() == expected
    table = path_table(plan)
    assert table.columns == ["path", "group", "split"]
    assert table.rows() == [(p, g, expected[p][g]) for p in range(3) for g in range(4)]


def test_groups_follow_array_split_sizes():
    plan = plan_for(303, n_groups=4, test_groups=1)
    assert plan.group_bounds == ((0, 76), (76, 152), (152, 228), (228, 303))
    parts = np.array_split(np.arange(303), 4)
    expected = np.concatenate([np.full(len(part), g) for g, part in enumerate(parts)])
    assert np.array_equal(plan.group_of_row, expected)


def test_purge_and_embargo_counted_by_hand():
    # 100 rows, labels 3 rows long, 4 groups of 25, embargo ceil(0.05 x 100) = 5 rows.
    # Testing group 1 (rows 25-49, interval [t0 25, t0 52]) purges rows 22-24, whose labels
    # reach row 25, and rows 50-52, known before row 49's label ends; the embargo zone
    # 50-54 then only adds rows 53 and 54.
    plan = plan_for(100, span=3, n_groups=4, test_groups=1, embargo_share=0.05, min_group_rows=1)
    split = plan.splits[1]
    assert split.test.tolist() == list(range(25, 50))
    assert (split.purged, split.embargoed) == (6, 2)
    assert split.train.tolist() == list(range(22)) + list(range(55, 100))
    roles = fold_membership(plan)["split_01"].to_list()
    assert roles[20:57] == [0, 0] + [-1] * 3 + [1] * 25 + [-1] * 3 + [-2] * 2 + [0, 0]
    # The last group has no rows after it to embargo.
    assert (plan.splits[3].purged, plan.splits[3].embargoed) == (3, 0)
    assert split_table(plan).row(1, named=True) == {
        "split": 1,
        "test_groups": "1",
        "train_rows": 67,
        "test_rows": 25,
        "purged": 6,
        "embargoed": 2,
    }


def test_split_table_names_test_groups():
    table = split_table(plan_for(600))
    assert table.columns == [
        "split",
        "test_groups",
        "train_rows",
        "test_rows",
        "purged",
        "embargoed",
    ]
    assert table["test_groups"].to_list()[:2] == ["0,1", "0,2"]
    assert table["split"].to_list() == list(range(15))


def test_embargo_rounds_a_decimal_share_to_the_rows_it_means():
    # 0.07 x 100 is 7.000000000000001 in floats; the embargo is still 7 rows.
    plan = plan_for(100, n_groups=2, test_groups=1, embargo_share=0.07, min_group_rows=1)
    assert plan.splits[0].embargoed == 7
    longer = plan_for(101, n_groups=2, test_groups=1, embargo_share=0.07, min_group_rows=1)
    assert longer.splits[0].embargoed == 8


def test_plan_arrays_are_read_only():
    plan = plan_for(600)
    with pytest.raises(ValueError, match="read-only"):
        plan.splits[0].train[0] = 5
    with pytest.raises(ValueError, match="read-only"):
        plan.paths[0, 0] = 5


def test_fold_membership_columns_and_types():
    membership = fold_membership(plan_for(600, span=5))
    assert membership.height == 600
    assert membership.columns == ["group"] + [f"split_{i:02d}" for i in range(15)]
    assert membership.schema["group"] == pl.Int16
    assert all(membership.schema[f"split_{i:02d}"] == pl.Int8 for i in range(15))


# --- properties ------------------------------------------------------------------------


@st.composite
def cases(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, CpcvSettings]:
    n_groups = draw(st.integers(3, 8))
    test_groups = draw(st.integers(1, n_groups - 1))
    # Groups of at least 45 rows outlast a 20-row purge on each side plus a <= 20-row embargo.
    n_rows = n_groups * draw(st.integers(45, 80)) + draw(st.integers(0, n_groups - 1))
    steps = draw(st.lists(st.integers(1, 5), min_size=n_rows, max_size=n_rows))
    t0 = np.cumsum(np.array(steps, dtype=np.int64)) * MINUTE_US
    ahead = np.array(draw(st.lists(st.integers(0, 20), min_size=n_rows, max_size=n_rows)))
    t1 = t0[np.minimum(np.arange(n_rows) + ahead, n_rows - 1)]
    share = draw(st.sampled_from([0.0, 0.001, 0.01, 0.02, 0.03]))
    return t0, t1, CpcvSettings(n_groups, test_groups, share, min_group_rows=1)


@settings(max_examples=60, deadline=None)
@given(cases())
def test_splits_are_purged_embargoed_and_paths_complete(
    case: tuple[np.ndarray, np.ndarray, CpcvSettings],
):
    t0, t1, cfg = case
    n_rows = t0.size
    plan = combinatorial_purged_cv(t0, t1, cfg)
    embargo = math.ceil(round(cfg.embargo_share * n_rows, 9))
    groups = np.array_split(np.arange(n_rows), cfg.n_groups)
    membership = fold_membership(plan)

    assert len(plan.splits) == math.comb(cfg.n_groups, cfg.test_groups)
    assert plan.n_paths * cfg.n_groups == cfg.test_groups * len(plan.splits)
    for split in plan.splits:
        assert split.train.dtype == np.int64 and split.test.dtype == np.int64
        assert np.all(np.diff(split.train) > 0) and np.all(np.diff(split.test) > 0)
        assert np.array_equal(split.test, np.concatenate([groups[g] for g in split.test_groups]))
        assert np.intersect1d(split.train, split.test).size == 0
        assert split.train.size + split.test.size + split.purged + split.embargoed == n_rows

        lo = np.array([t0[groups[g]].min() for g in split.test_groups])
        hi = np.array([t1[groups[g]].max() for g in split.test_groups])
        overlapping = ((t0[:, None] <= hi) & (t1[:, None] >= lo)).any(axis=1)
        in_zone = np.zeros(n_rows, dtype=bool)
        for g in split.test_groups:
            in_zone[groups[g][-1] + 1 : groups[g][-1] + 1 + embargo] = True
        tested = np.zeros(n_rows, dtype=bool)
        tested[split.test] = True

        assert not overlapping[split.train].any()
        assert not in_zone[split.train].any()
        assert split.purged == int((overlapping & ~tested).sum())
        assert split.embargoed == int((in_zone & ~overlapping & ~tested).sum())

        role = membership[f"split_{split.index:02d}"].to_numpy()
        assert np.array_equal(np.flatnonzero(role == 1), split.test)
        assert np.array_equal(np.flatnonzero(role == 0), split.train)
        assert np.array_equal(np.flatnonzero(role == -1), np.flatnonzero(overlapping & ~tested))
        assert np.array_equal(np.flatnonzero(role == -2), split.embargoed_rows)

    for path in plan.paths:
        tested_on_path = np.concatenate(
            [np.intersect1d(plan.splits[s].test, groups[g]) for g, s in enumerate(path)]
        )
        assert np.array_equal(tested_on_path, np.arange(n_rows))
    # Each split serves exactly its k groups, once each, across the paths.
    for split in plan.splits:
        assert sorted(np.argwhere(plan.paths == split.index)[:, 1]) == list(split.test_groups)

    again = combinatorial_purged_cv(t0.copy(), t1.copy(), cfg)
    assert np.array_equal(again.paths, plan.paths)
    assert np.array_equal(again.group_of_row, plan.group_of_row)
    for a, b in zip(again.splits, plan.splits, strict=True):
        assert np.array_equal(a.train, b.train) and np.array_equal(a.test, b.test)
        assert (a.purged, a.embargoed) == (b.purged, b.embargoed)


# --- refusals --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"n_groups": 4, "test_groups": 4}, r"test_groups=4 must be in \[1, n_groups - 1\]"),
        ({"n_groups": 4, "test_groups": 5}, r"test_groups=5 must be in \[1, n_groups - 1\]"),
        ({"test_groups": 0}, r"test_groups=0 must be in"),
        ({"n_groups": 1, "test_groups": 1}, r"n_groups=1 must be >= 2"),
        ({"n_groups": True}, r"n_groups=True \(bool\) must be an int"),
        ({"n_groups": 6.0}, r"n_groups=6.0 \(float\) must be an int"),
        ({"test_groups": "2"}, r"test_groups='2' \(str\) must be an int"),
        ({"embargo_share": 0.6}, r"embargo_share=0.6 must be a number in \[0, 0.5\)"),
        ({"embargo_share": -0.01}, r"embargo_share=-0.01 must be"),
        ({"n_groups": 30, "test_groups": 15}, r"C\(30, 15\) = 155117520 splits.*max_splits=1000"),
    ],
)
def test_settings_that_cannot_split_are_refused(overrides: dict[str, object], match: str):
    with pytest.raises(CpcvConfigError, match=match):
        CpcvSettings(**overrides)


def test_max_splits_can_be_raised_for_cheap_fits():
    assert CpcvSettings(n_groups=10, test_groups=5, max_splits=252).max_splits == 252


def test_too_few_rows_suggest_fewer_groups():
    match = r"200 rows .* n_groups=6 .*300 rows needed.*use n_groups=4 or fewer"
    with pytest.raises(CpcvConfigError, match=match):
        plan_for(200)


def test_decreasing_t0_names_the_row():
    t0, t1 = minute_rows(600, 0)
    t0[37] = t0[36] - 1
    with pytest.raises(CpcvConfigError, match="t0 decreases at row 37"):
        combinatorial_purged_cv(t0, np.maximum(t0, t1))


def test_label_ending_before_it_starts_names_the_row():
    t0, t1 = minute_rows(600, 2)
    t1[123] = t0[123] - 1
    with pytest.raises(CpcvConfigError, match="t1 < t0 at row 123"):
        combinatorial_purged_cv(t0, t1)


def test_times_must_be_integer_arrays_of_one_length():
    t0, t1 = minute_rows(600, 0)
    with pytest.raises(CpcvConfigError, match="dtype float64"):
        combinatorial_purged_cv(t0.astype(np.float64), t1)
    with pytest.raises(CpcvConfigError, match="t0 has 600 rows but t1 has 599"):
        combinatorial_purged_cv(t0, t1[:-1])


def test_labels_longer_than_a_group_are_refused():
    # Groups of 50 rows, labels 80 rows long: a training group between two test groups
    # would be purged away entirely.
    with pytest.raises(CpcvConfigError, match=r"median of 80 rows .* the 50 rows of the smallest"):
        plan_for(300, span=80)


def test_embargo_longer_than_a_group_is_refused():
    with pytest.raises(CpcvConfigError, match=r"embargoes 120 rows .* holds 100 rows"):
        plan_for(600, embargo_share=0.2)


def test_split_without_training_rows_is_refused():
    # One label spans the whole data: testing its group purges every other row.
    t0, t1 = minute_rows(300, 0)
    t1[0] = t0[-1]
    with pytest.raises(CpcvConfigError, match=r"split 0 \(test groups \(0,\)\) has no training"):
        combinatorial_purged_cv(t0, t1, CpcvSettings(n_groups=3, test_groups=1))


def test_plan_from_membership_round_trips():
    rows = 600
    t0 = np.arange(rows, dtype=np.int64) * 300_000_000
    t1 = t0 + 5 * 300_000_000
    plan = combinatorial_purged_cv(t0, t1, CpcvSettings(n_groups=5, test_groups=2))
    rebuilt = plan_from_membership(fold_membership(plan))
    assert rebuilt.group_bounds == plan.group_bounds
    assert np.array_equal(rebuilt.paths, plan.paths)
    for ours, theirs in zip(rebuilt.splits, plan.splits, strict=True):
        assert ours.test_groups == theirs.test_groups
        assert np.array_equal(ours.train, theirs.train)
        assert np.array_equal(ours.test, theirs.test)
        assert (ours.purged, ours.embargoed) == (theirs.purged, theirs.embargoed)


def test_plan_from_membership_needs_a_membership_frame():
    with pytest.raises(CpcvConfigError, match="lack `group` and `split_\\*`"):
        plan_from_membership(pl.DataFrame({"time": [1, 2]}))
