"""The stacking blender and its time-ordered use on one path.

Model A is informative (its probabilities lean towards the true class), model B is pure
noise. Rows are 5-minute bars whose labels end 3 bars later, cut into 4 groups of 500, so
the last 3 rows of each group have labels that reach into the next group.
"""

from __future__ import annotations

import functools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from forex_assets.models.stacking import blend, fit_blender, time_ordered_stack

ROWS = 2000
HORIZON = 3
STEP_US = 300_000_000
BOUNDS = ((0, 500), (500, 1000), (1000, 1500), (1500, 2000))


def softmax(scores: np.ndarray) -> np.ndarray:
    exp = np.exp(scores - scores.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def log_loss(proba: np.ndarray, classes: np.ndarray) -> float:
    return float(-np.mean(np.log(proba[np.arange(classes.size), classes])))


def problem(rows: int = ROWS, seed: int = 0):
    rng = np.random.default_rng(seed)
    classes = rng.integers(0, 3, rows)
    informative = softmax(1.5 * np.eye(3)[classes] + rng.normal(0, 1.0, (rows, 3)))
    noise = rng.dirichlet(np.ones(3), rows)
    t0 = 1_704_672_000_000_000 + np.arange(rows, dtype=np.int64) * STEP_US
    return (
        [informative.astype(np.float32), noise.astype(np.float32)],
        classes,
        t0,
        t0 + HORIZON * STEP_US,
    )


PROBABILITIES, CLASSES, T0, T1 = problem()


def stack(classes: np.ndarray = CLASSES, probabilities=PROBABILITIES, bounds=BOUNDS):
    return time_ordered_stack(probabilities, classes, T0, T1, bounds)


@functools.cache
def baseline() -> np.ndarray:
    """The unperturbed path's blend (computed once; each stack fits three blenders)."""
    out = stack()
    out.setflags(write=False)
    return out


# --- fit_blender ----------------------------------------------------------------------


def test_blender_weights_the_informative_model_over_the_noise():
    weights = fit_blender(PROBABILITIES, CLASSES)
    assert weights.shape == (2 * 3 + 1, 3)  # log-probabilities of both models + intercept
    on_informative = np.linalg.norm(weights[0:3])
    on_noise = np.linalg.norm(weights[3:6])
    assert on_informative > 5 * on_noise
    blended = blend(PROBABILITIES, weights)
    np.testing.assert_allclose(blended.sum(axis=1), 1.0, atol=1e-12)
    informative_loss = log_loss(PROBABILITIES[0], CLASSES)
    noise_loss = log_loss(PROBABILITIES[1], CLASSES)
    assert log_loss(blended, CLASSES) < noise_loss
    assert log_loss(blended, CLASSES) <= informative_loss + 0.01


def test_blender_generalizes_to_rows_it_did_not_see():
    weights = fit_blender([p[:1000] for p in PROBABILITIES], CLASSES[:1000])
    blended = blend([p[1000:] for p in PROBABILITIES], weights)
    assert log_loss(blended, CLASSES[1000:]) < log_loss(PROBABILITIES[1][1000:], CLASSES[1000:])
    assert log_loss(blended, CLASSES[1000:]) < log_loss(
        np.mean([p[1000:] for p in PROBABILITIES], axis=0), CLASSES[1000:]
    )


# --- time_ordered_stack ---------------------------------------------------------------


def test_first_group_is_the_average_of_the_models():
    out = baseline()
    start, stop = BOUNDS[0]
    np.testing.assert_array_equal(
        out[start:stop], np.mean([p[start:stop] for p in PROBABILITIES], axis=0)
    )


def test_later_groups_are_blended_distributions():
    out = baseline()
    assert out.shape == (ROWS, 3)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)
    average = np.mean(PROBABILITIES, axis=0)
    for start, stop in BOUNDS[1:]:
        assert not np.allclose(out[start:stop], average[start:stop], atol=1e-3)
        # Blending from history beats the plain average on the group it was not fitted on.
        assert log_loss(out[start:stop], CLASSES[start:stop]) < log_loss(
            average[start:stop], CLASSES[start:stop]
        )


def test_a_group_with_under_100_rows_of_history_gets_the_average():
    bounds = ((0, 60), (60, 1000), (1000, 2000))
    out = stack(bounds=bounds)
    average = np.mean(PROBABILITIES, axis=0)
    # Group 1's history is the 57 rows of group 0 whose labels end before it starts.
    np.testing.assert_array_equal(out[:1000], average[:1000])
    assert not np.allclose(out[1000:], average[1000:], atol=1e-3)


@settings(max_examples=8, deadline=None)
@given(
    group=st.integers(min_value=1, max_value=3),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_no_look_ahead_changing_later_labels_and_probabilities_leaves_earlier_groups(group, seed):
    rng = np.random.default_rng(seed)
    start = BOUNDS[group][0]
    classes = CLASSES.copy()
    classes[start:] = rng.integers(0, 3, ROWS - start)
    probabilities = [p.copy() for p in PROBABILITIES]
    for p in probabilities:
        p[start:] = rng.dirichlet(np.ones(3), ROWS - start)
    before, after = baseline(), stack(classes, probabilities)
    np.testing.assert_array_equal(after[:start], before[:start])


def test_changing_later_labels_does_change_later_groups():
    """The no-look-ahead property is not vacuous: the later groups do see their past."""
    classes = CLASSES.copy()
    start = BOUNDS[1][0]
    classes[start:1500] = (classes[start:1500] + 1) % 3
    before, after = baseline(), stack(classes)
    np.testing.assert_array_equal(after[:1000], before[:1000])
    assert not np.array_equal(after[1500:], before[1500:])


def test_rows_whose_labels_reach_into_a_group_are_left_out_of_its_blender():
    """Group 2 starts at row 1000; rows 997..999 have labels ending at or after its start."""
    start = BOUNDS[2][0]
    reaching = np.arange(start - HORIZON, start)
    assert (T1[reaching] >= T0[start]).all()
    classes = CLASSES.copy()
    classes[reaching] = (classes[reaching] + 1) % 3
    before, after = baseline(), stack(classes)
    np.testing.assert_array_equal(after[:1500], before[:1500])
    # They are history for group 3, whose start they precede by far.
    assert not np.array_equal(after[1500:], before[1500:])


def test_rows_whose_labels_end_before_a_group_are_in_its_blender():
    start = BOUNDS[2][0]
    ended = np.arange(start - HORIZON - 3, start - HORIZON)
    assert (T1[ended] < T0[start]).all()
    classes = CLASSES.copy()
    classes[ended] = (classes[ended] + 1) % 3
    before, after = baseline(), stack(classes)
    np.testing.assert_array_equal(after[:start], before[:start])
    assert not np.array_equal(after[start:1500], before[start:1500])
