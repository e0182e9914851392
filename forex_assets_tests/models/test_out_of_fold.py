"""Assembling CPCV backtest paths from per-split out-of-fold probabilities.

The plan is a real `combinatorial_purged_cv` (N=4 groups, k=2 test groups: 6 splits,
3 paths). The split results are fakes whose probabilities say where they came from:
column 0 holds split index / 100 and column 1 the row index, so every cell of a path
shows which split filled it and whether the rows lined up.
"""

from __future__ import annotations

import numpy as np
import pytest

from forex_assets.models.out_of_fold import path_probabilities
from forex_assets.models.training import SplitResult
from forex_assets.validation.cpcv import CpcvPlan, CpcvSettings, combinatorial_purged_cv

ROWS = 402  # not a multiple of 4: the first groups are one row longer
STEP_US = 300_000_000
MODEL = "lightgbm"


def make_plan() -> CpcvPlan:
    t0 = 1_704_672_000_000_000 + np.arange(ROWS, dtype=np.int64) * STEP_US
    return combinatorial_purged_cv(
        t0, t0 + 3 * STEP_US, CpcvSettings(n_groups=4, test_groups=2, embargo_share=0.01)
    )


def fake_result(index: int, test: np.ndarray) -> SplitResult:
    proba = np.zeros((test.size, 3), dtype=np.float32)
    proba[:, 0] = index / 100
    proba[:, 1] = test
    proba[:, 2] = 1.0
    return SplitResult(
        index=index,
        test=test,
        proba={MODEL: proba, "mlp": proba * 2},
        best_iteration={},
        validation_loss={},
        importance={},
        files={},
        devices={},
        train_rows=0,
        seconds=0.0,
    )


PLAN = make_plan()
RESULTS = [fake_result(split.index, split.test) for split in PLAN.splits]


def test_every_path_group_holds_the_split_the_path_table_names():
    out = path_probabilities(PLAN.paths, PLAN.group_bounds, RESULTS, MODEL)
    assert PLAN.paths.shape == (3, 4)
    assert out.shape == (3, ROWS, 3)
    assert out.dtype == np.float32
    for path in range(PLAN.n_paths):
        for group, (start, stop) in enumerate(PLAN.group_bounds):
            split = int(PLAN.paths[path, group])
            assert group in PLAN.splits[split].test_groups
            np.testing.assert_array_equal(out[path, start:stop, 0], np.float32(split / 100))
            # Rows land where they belong, not merely somewhere in the group.
            np.testing.assert_array_equal(out[path, start:stop, 1], np.arange(start, stop))


def test_every_row_of_every_path_is_filled():
    out = path_probabilities(PLAN.paths, PLAN.group_bounds, RESULTS, MODEL)
    assert not np.isnan(out).any()
    # Each row is predicted by a different split on each path (paths are distinct histories).
    for start, _ in PLAN.group_bounds:
        assert np.unique(out[:, start, 0]).size == PLAN.n_paths


def test_the_model_argument_picks_that_models_probabilities():
    lightgbm = path_probabilities(PLAN.paths, PLAN.group_bounds, RESULTS, MODEL)
    mlp = path_probabilities(PLAN.paths, PLAN.group_bounds, RESULTS, "mlp")
    np.testing.assert_array_equal(mlp, lightgbm * 2)


def test_a_result_whose_test_rows_lie_after_the_group_is_refused():
    """Split 0 tests groups (0, 1); a result testing group 3 instead cannot fill group 0."""
    last_start, last_stop = PLAN.group_bounds[3]
    results = list(RESULTS)
    results[0] = fake_result(0, np.arange(last_start, last_stop))
    with pytest.raises(ValueError, match="split 0 did not test group 0"):
        path_probabilities(PLAN.paths, PLAN.group_bounds, results, MODEL)


def test_results_out_of_split_order_are_refused():
    shuffled = [RESULTS[1], RESULTS[0], *RESULTS[2:]]
    with pytest.raises(ValueError, match="did not test group"):
        path_probabilities(PLAN.paths, PLAN.group_bounds, shuffled, MODEL)


def test_a_result_with_a_gap_inside_the_group_is_refused():
    results = list(RESULTS)
    test = RESULTS[0].test
    results[0] = fake_result(0, np.delete(test, 10))
    with pytest.raises(ValueError, match="split 0 did not test group 0"):
        path_probabilities(PLAN.paths, PLAN.group_bounds, results, MODEL)


@pytest.mark.parametrize(
    "test_rows",
    ["before the group", "missing the group's last row", "empty"],
)
def test_a_result_ending_before_the_groups_last_row_is_refused(test_rows):
    """Split 5 tests groups (2, 3); the last path takes both from it."""
    test = {
        "before the group": np.arange(0, 50),
        "missing the group's last row": PLAN.splits[5].test[:-1],
        "empty": np.zeros(0, dtype=np.int64),
    }[test_rows]
    results = list(RESULTS)
    results[5] = fake_result(5, test)
    with pytest.raises(ValueError, match="split 5 did not test group"):
        path_probabilities(PLAN.paths, PLAN.group_bounds, results, MODEL)
