"""How much of the machine a run used: cores held over time and effective cores per step.

Budgets that never oversubscribe are only half the promise; the other half is that no
core idles while work waits. A run therefore reports, at its end, what it held (from the
core ledger's history: each step's own reservation and the leases its tasks took) and
what it used (CPU seconds per step, measured by the worker over the step's process and
its task processes), so a user sees in the run's log whether the machine was busy.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from forex_assets.compute.core_ledger import HeldSpan


@dataclass(frozen=True)
class StepUse:
    step: str
    threads: int  # the step's floor (its admission)
    seconds: float  # wall, from launch to its worker's report
    cpu_s: float  # CPU seconds of the step's process and its tasks' processes

    @property
    def effective_cores(self) -> float:
        return self.cpu_s / self.seconds if self.seconds > 0 else 0.0


def held_over_time(
    spans: Sequence[HeldSpan], start: float, end: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(seconds since `start`, cores held by steps, cores held by leases), a step function
    that changes at each time given (a span still open ends at `end`)."""
    changes: list[tuple[float, int, int]] = []
    for span in spans:
        until = end if span.end is None else min(span.end, end)
        begin = max(span.start, start)
        if until <= begin:
            continue
        lease, step = (span.cores, 0) if span.is_lease else (0, span.cores)
        changes += [(begin, step, lease), (until, -step, -lease)]
    changes.sort(key=lambda change: change[0])
    times, steps, leases = [0.0], [0], [0]
    for when, step, lease in changes:
        times.append(when - start)
        steps.append(steps[-1] + step)
        leases.append(leases[-1] + lease)
    return np.array(times), np.array(steps), np.array(leases)


def peak_cores(spans: Sequence[HeldSpan], step_holder: str) -> int:
    """The most cores one step held at once, its reservation and its leases together."""
    mine = [s for s in spans if s.step_holder == step_holder]
    if not mine:
        return 0
    end = max(s.end or s.start for s in mine) + 1.0
    _, steps, leases = held_over_time(mine, min(s.start for s in mine), end)
    return int((steps + leases).max())


def held_core_seconds(spans: Sequence[HeldSpan], start: float, end: float) -> float:
    times, steps, leases = held_over_time(spans, start, end)
    widths = np.diff(np.append(times, end - start))
    return float(((steps + leases) * widths).sum())


def core_use_png(
    spans: Sequence[HeldSpan], capacity: int, start: float, end: float, title: str
) -> bytes:
    """Cores held over the run (steps' own reservations and leases stacked) against the
    usable cores, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")  # no display in an orchestrator
    import matplotlib.pyplot as plt

    times, steps, leases = held_over_time(spans, start, end)
    times = np.append(times, end - start)
    steps, leases = np.append(steps, steps[-1]), np.append(leases, leases[-1])
    figure, axes = plt.subplots(figsize=(8, 3.2), dpi=90)
    try:
        axes.fill_between(times, 0, steps, step="post", label="held by steps", alpha=0.7)
        axes.fill_between(
            times, steps, steps + leases, step="post", label="leased by tasks", alpha=0.7
        )
        axes.axhline(capacity, color="black", linewidth=0.8, linestyle="--", label="usable")
        axes.set_xlabel("seconds since the run started")
        axes.set_ylabel("cores")
        axes.set_ylim(0, capacity * 1.15)
        axes.set_title(title)
        axes.legend(loc="lower right", fontsize=8)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", bbox_inches="tight")
        return buffer.getvalue()
    finally:
        plt.close(figure)
