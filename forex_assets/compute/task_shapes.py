"""How many threads the next task of an elastic step gets: the free cores shared by the work left.

A step that fans out (CPCV split tasks, strategy islands) picks each task's width when
the task starts, from the cores it can use right then and the work still to start: 16
tasks on 16 free cores run 16 x 1, the last 2 tasks on 16 free cores run 2 x 8. A task
that is known to be larger (the final refit trains on every row, ~1.5x a split) gets a
proportionally wider share, and starts first, because the longest task bounds the step.
This module is the policy only (plain numbers), shared by the elastic pool that runs
the tasks and by the scheduling simulator that replays runs under it.
"""

from __future__ import annotations

from collections.abc import Sequence


def task_threads(free_cores: int, weight: float, remaining_weight: float) -> int:
    """Threads for a task of `weight` when `free_cores` are free and `remaining_weight`
    (this task included) is still to start: its share of the free cores, at least one,
    never more than are free."""
    if free_cores < 1:
        raise ValueError(
            f"free_cores={free_cores}: a task cannot start without a free core; wait for one"
        )
    # remaining_weight is often a running difference of float weights: allow rounding
    if weight <= 0 or remaining_weight < weight * (1 - 1e-9):
        raise ValueError(
            f"weight={weight}, remaining_weight={remaining_weight}: a task's weight must be "
            "positive and part of the weight still to start"
        )
    share = min(1.0, weight / remaining_weight)
    return max(1, min(free_cores, int(free_cores * share)))


def static_threads(budget: int, tasks: int) -> int:
    """The static plan's width: the step's fixed budget split evenly over all its tasks."""
    return max(1, budget // max(1, tasks))


def longest_first(weights: Sequence[float]) -> list[int]:
    """Task indices in start order: heaviest first, ties in their given order."""
    return sorted(range(len(weights)), key=lambda i: -weights[i])
