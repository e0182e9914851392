"""CMA-ES islands: evaluations per second with one island vs as many as the step's budget runs.

Ours: `island_search` with N islands, N = `nested_workers()` (every worker the budget
allows), each island in its own task of the budgeted pool per epoch. Anchor: the same
search with one island, which runs in this process (a pool of one worker would only add
its start). Every island runs the same generations, so N islands do N times the work;
parallel efficiency = (evaluations/s with N) / (N x evaluations/s with 1).

The objective costs about 1.5 ms per candidate (a sine over a 100k series on top of an
ellipsoid), the order of a backtest on a short slice. Before timing, every run must have
done all its generations and evaluations and improved its best fitness tenfold. Two more
rows show what the design costs: islands with cma's default populations times 1, 2, 1, 2
(an epoch waits for its slowest island), and the N islands in epochs of
`migration_interval` generations against the same islands in one epoch (no migration,
so no round trips to the main process and no replays in workers that pick up an island
another worker advanced).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import numpy as np

from bench.harness import (
    BenchConfig,
    BenchResult,
    BenchRow,
    Measurement,
    check,
    measure,
    warm_and_check,
)
from forex_assets.compute.worker_pool import budgeted_process_pool, nested_workers
from forex_assets.strategies.islands import IslandSettings, SearchResult, island_search

DESCRIPTION = "CMA-ES islands: evaluations/s with N islands in the budgeted pool vs 1 island"
# Each search runs for seconds and spawns its pool: one timed run after the checked one.
DEFAULT_CONFIG = {"repeats": 1}
DIM = 10
POPSIZE = 10  # cma's default for 10 dimensions
GENERATIONS = 200
INTERVAL = 10
_SERIES = np.random.default_rng(7).standard_normal(100_000)
_AXES = 10.0 ** (6 * np.arange(DIM) / (DIM - 1))


def costly_ellipsoid(X: np.ndarray) -> np.ndarray:
    """An ellipsoid at 0.3 plus a negligible term that costs ~1.5 ms per candidate.

    Ill-conditioned (1e6) so that no island converges, and stops, within the generations.
    """
    return np.array(
        [((x - 0.3) ** 2) @ _AXES + 1e-12 * float(np.sin(_SERIES * x[0]).sum()) for x in X]
    )


def _search(sizes: tuple[int, ...], interval: int = INTERVAL) -> SearchResult:
    settings = IslandSettings(
        islands=len(sizes),
        population_sizes=sizes,
        lower=np.full(DIM, -1.0),
        upper=np.full(DIM, 1.0),
        migration_interval=interval,
        max_generations=GENERATIONS,
        restarts="none",  # the same work in every run: no island may stop early
    )
    return island_search(costly_ellipsoid, DIM, settings)


def _checked(
    sizes: tuple[int, ...], config: BenchConfig, interval: int = INTERVAL
) -> tuple[Callable[[], SearchResult], int]:
    """The search as a timed call, after checking that its warm-up run did all its work."""

    def call() -> SearchResult:
        return _search(sizes, interval)

    result = warm_and_check(call, config)
    check(
        result.generations == GENERATIONS and len(result.history) == GENERATIONS * len(sizes),
        f"{len(sizes)} islands ran {len(result.history)} island generations, expected "
        f"{GENERATIONS * len(sizes)}",
    )
    check(
        result.evaluations == GENERATIONS * sum(sizes),
        f"{len(sizes)} islands evaluated {result.evaluations} candidates, expected "
        f"{GENERATIONS * sum(sizes)}",
    )
    first = min(h["best_f"] for h in result.history if h["generation"] == 1)
    check(result.best_f < first / 10, f"best fitness {result.best_f:.3g} vs first {first:.3g}")
    return call, result.evaluations


def _pool_start_seconds(workers: int) -> float:
    """Starting and stopping a budgeted pool of `workers` spawned processes."""
    started = time.perf_counter()
    with budgeted_process_pool(threads_per_task=1, tasks=workers) as pool:
        for future in [pool.submit(os.getpid) for _ in range(workers)]:
            future.result()
    return time.perf_counter() - started


def _versus_one(
    name: str, sizes: tuple[int, ...], one: Measurement, config: BenchConfig, result: BenchResult
) -> Measurement:
    """Time the N-island search, add its row against one island and its efficiency note."""
    call, evaluations = _checked(sizes, config)
    ours = measure(call, evaluations, config, warmed=True)
    result.rows.append(BenchRow(name, ours, one, "1 island"))
    efficiency = ours.rows_per_s / (len(sizes) * one.rows_per_s)
    result.notes.append(
        f"{name}: parallel efficiency {efficiency:.0%} "
        f"({ours.rows_per_s:,.0f} evaluations/s vs {len(sizes)} x {one.rows_per_s:,.0f})"
    )
    return ours


def run(config: BenchConfig) -> BenchResult:
    result = BenchResult(
        name="islands", title=f"CMA-ES islands, {DIM} dimensions", unit="evaluations"
    )
    n = nested_workers()
    batch = np.random.default_rng(1).uniform(-1.0, 1.0, (POPSIZE, DIM))
    per_candidate = measure(lambda: costly_ellipsoid(batch), POPSIZE, config).seconds / POPSIZE
    one_call, one_evaluations = _checked((POPSIZE,), config)
    one = measure(one_call, one_evaluations, config, warmed=True)
    result.checks.append(
        "every run did all its generations (no restarts) and evaluations, and improved its "
        "best fitness at least tenfold"
    )
    if n < 2:
        result.rows.append(
            BenchRow.skip("N islands in the budgeted pool", f"the step budget allows {n} worker")
        )
    else:
        pool_start = _pool_start_seconds(n)
        equal = _versus_one(
            f"{n} islands, populations {POPSIZE} each", (POPSIZE,) * n, one, config, result
        )
        _versus_one(
            f"{n} islands, default populations {POPSIZE} x 1, 2, 1, 2, ...",
            tuple(POPSIZE * (1 + i % 2) for i in range(n)),
            one,
            config,
            result,
        )
        result.notes.append(
            f"starting and stopping a pool of {n} spawned workers, timed alone: "
            f"{pool_start:.1f} s (each worker imports the package); every N-island search "
            "pays it once, the 1-island anchor runs in this process"
        )
        call, evaluations = _checked((POPSIZE,) * n, config, interval=GENERATIONS)
        result.rows.append(
            BenchRow(
                f"{n} islands, epochs of {INTERVAL} generations (migration)",
                equal,
                measure(call, evaluations, config, warmed=True),
                f"{n} islands, one epoch of {GENERATIONS} generations (no migration)",
            )
        )
    result.notes.append(
        f"{GENERATIONS} generations per island, migration every {INTERVAL}, {DIM} dimensions, "
        f"bounds [-1, 1]; objective {per_candidate * 1e3:.2f} ms per candidate; "
        f"N = nested_workers() = {n} on this machine"
    )
    return result
