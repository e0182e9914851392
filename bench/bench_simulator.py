"""The elastic policy vs the static plan, replayed by the scheduling simulator on big machines.

Replays the recorded 2-core `symbol_pipeline` run (`RECORDED_RUN`; see its `source` for
where each figure came from) at 2, 16, 64, 252 and 1024 cores, for one symbol and for a
28-symbol backfill, under today's static plan (the anchor) and the elastic policy
(ours), with `plan_resources` for each machine (8 GiB per core) and the run queue's
symbols + 1 concurrent runs. Every "seconds" figure is a simulated makespan, not a timing.

Before any figure is reported: the static replay on the recorded 2 cores must land
within `REPLAY_TOLERANCE` of the run's measured makespan, no simulated schedule may
hold more cores than the machine has or beat `makespan_bound_s`, else `BenchCheckError`.

The `symbols` limit rows replay the backfill with one more concurrent run than the plan's
`symbols` limit (derived from `HEAVY_STAGE_WIDTH`, which this bench re-measures on the
recorded run with `heavy_stage_width`), under the plan's training threads and under
`SMALL_TRAINING_FLOOR` (the elastic policy widens training steps itself, so their floor
need not be the static plan's sqrt(cores)), next to the same static anchor.
"""

from __future__ import annotations

from pathlib import Path

from bench.harness import BenchConfig, BenchResult, BenchRow, Measurement, check
from forex_assets.compute.plan import HEAVY_STAGE_WIDTH, PlanSettings, Pool
from forex_assets.compute.recorded_run import RecordedRun
from forex_assets.compute.schedule_simulator import (
    heavy_stage_width,
    simulate,
    simulated_plan,
)
from forex_assets.compute.simulation_report import Comparison, compare, replay_error

DESCRIPTION = (
    "scheduling simulator: elastic policy vs static plan replayed at 2-1024 cores, one symbol "
    "and a 28-symbol backfill"
)
DEFAULT_CONFIG = {"repeats": 1}

RECORDED_RUN = Path(__file__).resolve().parent / "data" / "symbol_pipeline_2cores.json"
SMALL_TRAINING_FLOOR = 2
CORES = (2, 16, 64, 252, 1024)
SYMBOLS = (1, 28)
REPLAY_TOLERANCE = 0.15
UTILIZATION_TARGET = 0.85
TARGET_CORES = (16, 64, 252)
BACKFILL = 28


def _check(run: RecordedRun, comparisons: list[Comparison]) -> list[str]:
    simulated, error = replay_error(run)
    check(
        abs(error) <= REPLAY_TOLERANCE,
        f"static replay on {run.measured_cores} cores: {simulated:.1f} s vs "
        f"{run.measured_makespan_s:.1f} s measured ({error:+.1%}), beyond "
        f"{REPLAY_TOLERANCE:.0%}",
    )
    for c in comparisons:
        for result in (c.static, c.elastic):
            check(
                max(held for _, held in result.cores_held) <= c.cores,
                f"{result.policy} on {c.cores} cores held more cores than the machine has",
            )
            check(
                result.makespan_s >= c.bound_s - 1e-6,
                f"{result.policy} on {c.cores} cores, {c.symbols} symbols: "
                f"{result.makespan_s:.1f} s beats the bound {c.bound_s:.1f} s",
            )
    return [
        f"static replay on the recorded {run.measured_cores} cores: {simulated:.1f} s vs "
        f"{run.measured_makespan_s:.1f} s measured ({error:+.1%}, tolerance "
        f"{REPLAY_TOLERANCE:.0%})",
        "no simulated schedule holds more cores than the machine or beats makespan_bound_s",
    ]


def _row(name: str, c: Comparison, run_steps: int) -> BenchRow:
    """Seconds are makespans; the rate is steps finished per simulated second."""
    return BenchRow(
        f"{name}: util {c.static.utilization:.0%} -> {c.elastic.utilization:.0%} "
        f"(cpu {c.static.cpu_utilization:.0%} -> {c.elastic.cpu_utilization:.0%}, "
        f"bound {c.bound_s:.1f} s = cpu {c.bound_cpu_utilization:.0%})",
        Measurement(c.elastic.makespan_s, c.symbols * run_steps),
        Measurement(c.static.makespan_s, c.symbols * run_steps),
        anchor_does="static plan: fixed step threads, tasks split evenly",
    )


def run(config: BenchConfig) -> BenchResult:
    recorded = RecordedRun.load(RECORDED_RUN)
    comparisons = compare(recorded, CORES, SYMBOLS)
    result = BenchResult(
        "simulator",
        "elastic policy (ours) vs static plan (anchor), simulated makespan",
        unit="steps",
        checks=_check(recorded, comparisons),
    )
    for c in comparisons:
        result.rows.append(_row(f"{c.symbols} symbol(s), {c.cores} cores", c, len(recorded.steps)))
    width = heavy_stage_width(recorded)
    for cores in TARGET_CORES:
        limit = min(BACKFILL, simulated_plan(cores).pool_limits[Pool.SYMBOLS])
        runs = min(BACKFILL, limit + 1)
        today = next(c for c in comparisons if (c.cores, c.symbols) == (cores, BACKFILL))
        for floor in (None, SMALL_TRAINING_FLOOR):
            elastic = simulate(
                recorded,
                cores,
                symbols=BACKFILL,
                max_concurrent_runs=runs,
                settings=PlanSettings(training_threads=floor),
            )
            proposed = Comparison(
                cores, BACKFILL, today.static, elastic, today.bound_s, today.cpu_s
            )
            threads = f", training floor {floor}" if floor else ""
            result.rows.append(
                _row(
                    f"{BACKFILL} symbols, {cores} cores, symbols={limit}, {runs} runs{threads}",
                    proposed,
                    len(recorded.steps),
                )
            )
    met = {
        cores: c.elastic.utilization
        for c in comparisons
        for cores in TARGET_CORES
        if (c.cores, c.symbols) == (cores, BACKFILL)
    }
    result.notes += [
        "seconds are simulated makespans (deterministic), not timings; util = busy "
        "core-seconds (every thread a task holds) / (cores x makespan); cpu = the recorded "
        "single-threaded work / (cores x makespan), which does not credit threads Amdahl "
        "leaves idle (parallel fraction 0.8)",
        f"target: a {BACKFILL}-symbol backfill at >= {UTILIZATION_TARGET:.0%} util on "
        + ", ".join(
            f"{cores} cores {'met' if u >= UTILIZATION_TARGET else 'NOT met'} ({u:.0%})"
            for cores, u in met.items()
        )
        + " with the plan's queued runs (symbols + 1)",
        f"the plan's symbols limit: ceil(cores / {HEAVY_STAGE_WIDTH}) + 1 (HEAVY_STAGE_WIDTH; "
        f"this recorded run measures {width:.1f}: the cores a symbol's heavy stage keeps busy "
        "on average, its CPU seconds over its span, tasks one thread each); the rows naming "
        "their runs run one more concurrent run than slots (or a training floor of "
        f"{SMALL_TRAINING_FLOOR} threads where they say so)",
        f"recorded run: {recorded.source}",
    ]
    return result
