"""Static plan vs elastic policy on a grid of machines and backfills, as rows and a table.

Shared by `python -m forex_assets simulate` and `bench/bench_simulator.py`, so both
print the same figures for the same recorded run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from forex_assets.compute.recorded_run import RecordedRun
from forex_assets.compute.schedule_simulator import (
    SimResult,
    makespan_bound_s,
    simulate,
)


@dataclass(frozen=True)
class Comparison:
    """One machine and backfill size under both policies, and the makespan no policy beats."""

    cores: int
    symbols: int
    static: SimResult
    elastic: SimResult
    bound_s: float
    cpu_s: float  # the backfill's single-threaded work

    @property
    def bound_cpu_utilization(self) -> float:
        """The most of the machine any schedule could keep doing useful work."""
        return self.cpu_s / (self.cores * self.bound_s) if self.bound_s > 0 else 0.0

    @property
    def speedup(self) -> float:
        """Static makespan over elastic makespan."""
        return self.static.makespan_s / self.elastic.makespan_s if self.elastic.makespan_s else 1.0


def compare(
    run: RecordedRun,
    cores: Sequence[int],
    symbols: Sequence[int],
    max_concurrent_runs: int | None = None,
) -> list[Comparison]:
    """Both policies for every (cores, symbols) pair, cores first."""
    return [
        Comparison(
            n,
            s,
            simulate(run, n, symbols=s, elastic=False, max_concurrent_runs=max_concurrent_runs),
            simulate(run, n, symbols=s, elastic=True, max_concurrent_runs=max_concurrent_runs),
            makespan_bound_s(run, n, s),
            s * run.cpu_s,
        )
        for s in symbols
        for n in cores
    ]


def replay_error(run: RecordedRun) -> tuple[float, float]:
    """(simulated static makespan on the recorded cores, its error relative to the measured
    one): how far to trust the replay, when the run was recorded under the static plan."""
    simulated = simulate(run, run.measured_cores, elastic=False).makespan_s
    measured = run.measured_makespan_s
    return simulated, (simulated - measured) / measured if measured > 0 else 0.0


HEADER = (
    "cores",
    "symbols",
    "symbols slots",
    "static makespan (s)",
    "static util",
    "static cpu",
    "elastic makespan (s)",
    "elastic util",
    "elastic cpu",
    "speed-up",
    "bound (s)",
    "bound cpu",
)


def table_rows(comparisons: Sequence[Comparison]) -> list[tuple[str, ...]]:
    return [
        (
            str(c.cores),
            str(c.symbols),
            str(c.static.plan.pool_limits["symbols"]),
            f"{c.static.makespan_s:.1f}",
            f"{c.static.utilization:.0%}",
            f"{c.static.cpu_utilization:.0%}",
            f"{c.elastic.makespan_s:.1f}",
            f"{c.elastic.utilization:.0%}",
            f"{c.elastic.cpu_utilization:.0%}",
            f"{c.speedup:.2f}x",
            f"{c.bound_s:.1f}",
            f"{c.bound_cpu_utilization:.0%}",
        )
        for c in comparisons
    ]


def markdown_table(comparisons: Sequence[Comparison]) -> str:
    """A Markdown table: util = busy core-seconds (every thread a task holds) over cores x
    makespan; cpu = the recorded single-threaded work over cores x makespan; bound = the
    makespan no schedule beats (`makespan_bound_s`) and the cpu figure it would give."""
    rows = [HEADER, *table_rows(comparisons)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|"
    return "\n".join([line(HEADER), rule, *(line(row) for row in rows[1:])])
