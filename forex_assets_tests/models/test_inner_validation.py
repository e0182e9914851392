"""The early-stopping slice: the latest share of a split's training rows, purged like CPCV.

Rows are 5-minute bars (t0 in epoch microseconds) whose labels end a few bars later
(t1 = t0 + horizon bars), so which inner rows reach into the slice is plain arithmetic.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forex_assets.models.inner_validation import inner_validation_split

STEP_US = 300_000_000  # 5 minutes


def bar_times(rows: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    t0 = np.arange(rows, dtype=np.int64) * STEP_US + 1_700_000_000_000_000
    return t0, t0 + horizon * STEP_US


def test_slice_is_the_latest_share_and_inner_rows_reaching_it_are_purged():
    t0, t1 = bar_times(100, horizon=3)
    train = np.arange(100, dtype=np.int64)
    inner, validation = inner_validation_split(train, t0, t1, share=0.2)
    np.testing.assert_array_equal(validation, np.arange(80, 100))
    # Row i's label ends at bar i + 3, so rows 77, 78, 79 reach bar 80 (the slice's start).
    np.testing.assert_array_equal(inner, np.arange(0, 77))


def test_a_label_ending_exactly_at_the_slice_start_is_purged():
    """t1 == first t0 of the slice shares that bar's information: purged (closed interval)."""
    t0, t1 = bar_times(20, horizon=0)
    t1 = t1.copy()
    t1[15] = t0[16]  # ends exactly when the slice starts
    t1[14] = t0[16] - 1  # ends just before
    inner, validation = inner_validation_split(np.arange(20), t0, t1, share=0.2)
    np.testing.assert_array_equal(validation, np.arange(16, 20))
    assert 14 in inner
    assert 15 not in inner


def test_slice_of_a_split_with_gaps_is_taken_by_position_among_its_training_rows():
    """CPCV training rows skip the test groups: the slice is the last rows of `train`."""
    t0, t1 = bar_times(200, horizon=2)
    train = np.concatenate([np.arange(0, 50), np.arange(100, 150)]).astype(np.int64)
    inner, validation = inner_validation_split(train, t0, t1, share=0.1)
    np.testing.assert_array_equal(validation, np.arange(140, 150))
    np.testing.assert_array_equal(inner, np.concatenate([np.arange(0, 50), np.arange(100, 138)]))
    assert not np.isin(inner, np.arange(50, 100)).any()


@settings(max_examples=200, deadline=None)
@given(
    rows=st.integers(min_value=10, max_value=400),
    share=st.floats(min_value=0.01, max_value=0.49),
    horizon=st.integers(min_value=0, max_value=5),
    keep=st.floats(min_value=0.3, max_value=1.0),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_slice_and_purge_invariants(rows, share, horizon, keep, seed):
    rng = np.random.default_rng(seed)
    t0, _ = bar_times(rows, 0)
    # Uneven horizons, as volatility-scaled barriers give.
    t1 = t0 + rng.integers(0, horizon + 1, rows) * STEP_US
    train = np.flatnonzero(rng.random(rows) < keep).astype(np.int64)
    count = max(1, round(share * train.size))
    candidates = train[:-count]
    if train.size - count < 2 or not (t1[candidates] < t0[train[-count]]).any():
        with pytest.raises(ValueError):
            inner_validation_split(train, t0, t1, share)
        return
    inner, validation = inner_validation_split(train, t0, t1, share)
    np.testing.assert_array_equal(validation, train[-count:])
    # Inner rows are the earlier training rows whose labels end before the slice starts.
    assert np.isin(inner, candidates).all()
    assert (t1[inner] < t0[validation[0]]).all()
    purged = np.setdiff1d(candidates, inner)
    assert (t1[purged] >= t0[validation[0]]).all()
    assert np.all(np.diff(inner) > 0)
    assert np.intersect1d(inner, validation).size == 0
    # Labels last at most `horizon` bars, so only rows of the last `horizon` bars go.
    assert (purged >= validation[0] - horizon).all()


@pytest.mark.parametrize("share", [0.0, 0.5, -0.1, 0.7, 1.0])
def test_share_outside_open_interval_is_refused_naming_it(share):
    t0, t1 = bar_times(100, 1)
    with pytest.raises(ValueError, match=rf"share={share!r} must be in \(0, 0\.5\)"):
        inner_validation_split(np.arange(100), t0, t1, share)


@pytest.mark.parametrize(("rows", "share", "held_out"), [(2, 0.4, 1), (1, 0.3, 1), (0, 0.1, 1)])
def test_too_few_rows_are_refused_naming_the_counts(rows, share, held_out):
    t0, t1 = bar_times(10, 0)
    with pytest.raises(
        ValueError, match=rf"a split with {rows} training rows cannot hold out {held_out}"
    ):
        inner_validation_split(np.arange(rows, dtype=np.int64), t0, t1, share)


def test_everything_purged_is_refused():
    """Labels longer than the data: every inner row reaches into the slice."""
    t0, _ = bar_times(50, 0)
    t1 = t0 + 100 * STEP_US
    with pytest.raises(
        ValueError, match=rf"all 40 inner-training rows have labels ending .* \(t0={t0[40]}\)"
    ):
        inner_validation_split(np.arange(50), t0, t1, 0.2)
