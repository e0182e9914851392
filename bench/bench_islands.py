"""CMA-ES islands: evaluations per second with one island vs as many as the step's budget runs.

Ours: `island_search` with N islands, N = `StepBudget.current().reach` (every worker the budget
allows), each island in its own task of the budgeted pool per epoch. Anchor: the same
search with one island, which runs in this process (a pool of one worker would only add
its start). Every island runs the same generations, so N islands do N times the work;
parallel efficiency = (evaluations/s with N) / (N x evaluations/s with 1).

The objective costs about 1 ms per candidate (a sine over a 100k series on top of an
ellipsoid), the order of a backtest on a short slice. Every timed run is checked: all its
generations and evaluations done (no island may stop early) and its best fitness
improved tenfold. Two more rows show what the design costs: islands with cma's default
populations times 1, 2, 1, 2 (an epoch waits for its slowest island), and the N islands
in epochs of `migration_interval` generations against the same islands in one epoch (no
migration: no round trips to the main process, no catching up in a worker that picks up
an island another worker advanced). Each N-island search also pays its pool's start,
timed alone in the notes.
"""

from __future__ import annotations

import functools
import os
import time

import numpy as np

from bench.harness import BenchConfig, BenchResult, BenchRow, Measurement, check
from forex_assets.compute.elastic_pool import ElasticPool, Task
from forex_assets.compute.step_budget import StepBudget
from forex_assets.strategies.islands.search import island_search
from forex_assets.strategies.islands.settings import IslandSettings

DESCRIPTION = "CMA-ES islands: evaluations/s with N islands in the budgeted pool vs 1 island"
# Each search runs for several seconds; every timed run is also the checked one.
DEFAULT_CONFIG = {"repeats": 1}
DIM = 20
POPSIZE = 12  # cma's default for 20 dimensions
# Ill-conditioned enough that no island (population 12 or 24) converges, and stops, before.
GENERATIONS = 500
INTERVAL = 10
CAPACITY_CANDIDATES = 2000
_SERIES = np.random.default_rng(7).standard_normal(100_000)
_AXES = 10.0 ** (6 * np.arange(DIM) / (DIM - 1))


def costly_ellipsoid(X: np.ndarray) -> np.ndarray:
    """An ellipsoid at 0.3 (condition 1e6) plus a negligible term that costs ~1 ms."""
    return np.array(
        [((x - 0.3) ** 2) @ _AXES + 1e-12 * float(np.sin(_SERIES * x[0]).sum()) for x in X]
    )


def _timed_search(sizes: tuple[int, ...], config: BenchConfig, interval: int) -> Measurement:
    """Best of `config.repeats` searches, each checked to have done all its work."""
    settings = IslandSettings(
        islands=len(sizes),
        population_sizes=sizes,
        lower=np.full(DIM, -1.0),
        upper=np.full(DIM, 1.0),
        migration_interval=interval,
        max_generations=GENERATIONS,
        restarts="none",
    )
    expected = GENERATIONS * sum(sizes)
    samples = []
    for _ in range(max(1, config.repeats)):
        started = time.perf_counter()
        result = island_search(costly_ellipsoid, DIM, settings)
        samples.append(time.perf_counter() - started)
        check(
            result.evaluations == expected and result.generations == GENERATIONS,
            f"{len(sizes)} islands evaluated {result.evaluations} candidates in "
            f"{result.generations} generations, expected {expected} in {GENERATIONS}",
        )
        first = min(h.best_f for h in result.history if h.generation == 1)
        check(
            result.best_f < first / 10,
            f"{len(sizes)} islands: best fitness {result.best_f:.3g}, first {first:.3g}",
        )
    return Measurement(min(samples), expected, tuple(samples))


def _evaluate_candidates(count: int) -> float:
    """Seconds to evaluate `count` candidates (runs in pool workers too)."""
    X = np.full((count, DIM), 0.5)
    started = time.perf_counter()
    costly_ellipsoid(X)
    return time.perf_counter() - started


def _pool_costs(workers: int) -> tuple[float, float]:
    """The pool's start, and how many workers' worth of speed this machine gives it.

    N copies of the same work in the started pool against one copy in this process: on a
    machine shared with other work, the ceiling for the parallel efficiency of the islands.
    """
    alone = _evaluate_candidates(CAPACITY_CANDIDATES)
    started = time.perf_counter()
    with ElasticPool(max_threads=1) as pool:
        pool.map([Task(f"start {i}", os.getpid) for i in range(workers)])
        start = time.perf_counter() - started
        started = time.perf_counter()
        work = functools.partial(_evaluate_candidates, CAPACITY_CANDIDATES)
        pool.map([Task(f"evaluate {i}", work) for i in range(workers)])
        together = time.perf_counter() - started
    return start, workers * alone / together


def _versus_one(
    name: str, sizes: tuple[int, ...], one: Measurement, config: BenchConfig, result: BenchResult
) -> Measurement:
    """Time the N-island search, add its row against one island and its efficiency note."""
    ours = _timed_search(sizes, config, INTERVAL)
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
    n = StepBudget.current().reach
    batch = np.random.default_rng(1).uniform(-1.0, 1.0, (POPSIZE, DIM))
    started = time.perf_counter()
    costly_ellipsoid(batch)
    per_candidate = (time.perf_counter() - started) / POPSIZE
    one = _timed_search((POPSIZE,), config, INTERVAL)
    if n < 2:
        result.rows.append(
            BenchRow.skip("N islands in the budgeted pool", f"the step budget allows {n} worker")
        )
    else:
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
        result.rows.append(
            BenchRow(
                f"{n} islands, epochs of {INTERVAL} generations (migration)",
                equal,
                _timed_search((POPSIZE,) * n, config, GENERATIONS),
                f"{n} islands, one epoch of {GENERATIONS} generations (no migration)",
            )
        )
        start, capacity = _pool_costs(n)
        result.notes.append(
            f"starting a pool of {n} spawned workers, timed alone: {start:.1f} s (each worker "
            "imports the package); every N-island search pays it once, the 1-island anchor "
            "runs in this process"
        )
        result.notes.append(
            f"this machine gave {n} pool workers {capacity:.2f} workers' worth of speed "
            f"({n} x {CAPACITY_CANDIDATES} candidates in the started pool vs once in this "
            f"process): the ceiling for the efficiencies above is {capacity / n:.0%}"
        )
    result.checks.append(
        "every timed run did all its generations and evaluations (no island stopped early) "
        "and improved its best fitness at least tenfold"
    )
    result.notes.append(
        f"{GENERATIONS} generations per island, migration every {INTERVAL}, {DIM} dimensions, "
        f"bounds [-1, 1]; objective {per_candidate * 1e3:.2f} ms per candidate; "
        f"N = StepBudget.current().reach = {n} on this machine"
    )
    return result
