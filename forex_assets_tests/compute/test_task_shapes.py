"""The elastic policy's widths: the free cores shared by the work left, never zero or more."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forex_assets.compute.task_shapes import longest_first, static_threads, task_threads


@pytest.mark.parametrize(
    ("free", "weight", "remaining", "expected"),
    [(16, 1, 16, 1), (16, 1, 2, 8), (16, 1.5, 17.5, 1), (2, 1, 1, 2), (1, 1, 40, 1), (5, 2, 4, 2)],
)
def test_widths(free, weight, remaining, expected):
    assert task_threads(free, weight, remaining) == expected


def test_sixteen_tasks_on_sixteen_cores_run_one_thread_each_and_the_last_two_eight():
    widths, free = [], 16
    for left in range(16, 0, -1):
        widths.append(task_threads(free, 1, left))
        free -= widths[-1]
    assert widths == [1] * 16
    assert [task_threads(16, 1, 2), task_threads(8, 1, 1)] == [8, 8]


@given(st.integers(1, 1024), st.floats(0.01, 10), st.floats(0, 1000))
def test_a_width_is_at_least_one_and_never_more_than_is_free(free, weight, extra):
    threads = task_threads(free, weight, weight + extra)
    assert 1 <= threads <= free


@pytest.mark.parametrize(("free", "weight", "remaining"), [(0, 1, 1), (4, 0, 1), (4, 2, 1)])
def test_impossible_requests_are_refused(free, weight, remaining):
    with pytest.raises(ValueError, match=r"free_cores|weight"):
        task_threads(free, weight, remaining)


@pytest.mark.parametrize(
    ("budget", "tasks", "expected"), [(2, 16, 1), (16, 4, 4), (16, 3, 5), (16, 1, 16), (4, 0, 4)]
)
def test_static_widths_split_the_budget_evenly(budget, tasks, expected):
    assert static_threads(budget, tasks) == expected


def test_heaviest_first_keeps_ties_in_order():
    assert longest_first([1, 1.5, 1, 1.5]) == [1, 3, 0, 2]


def test_a_remaining_weight_a_rounding_below_the_weight_is_the_last_task():
    assert task_threads(4, 12.434, 12.433999999999973) == 4
