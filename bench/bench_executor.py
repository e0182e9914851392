"""budgeted_executor vs Dagster's multiprocess executor: step overhead, oversubscription.

Per-step overhead: a job of `NOOP_STEPS` independent no-op ops, run with
``dagster.execute_job(reconstructable(job), instance=<persistent temp instance>)`` under
Dagster's multiprocess executor (``spawn``, and ``forkserver`` preloading the job module;
``max_concurrent: 2`` both) and under ``budgeted_executor`` (``cores: 2``), with the
in-process executor as the floor. Overhead per step is the run's wall time / steps.

Oversubscription: a job of `LGBM_STEPS` independent LightGBM ops (pool ``training``)
under the multiprocess executor (``spawn``, ``max_concurrent`` = usable cores, so every
process's LightGBM takes every core) and under ours (``cores`` = usable cores), once with
``num_threads`` from `lightgbm_threads()` and once on LightGBM's OpenMP default. While a
run executes, a thread of this process samples every thread of its process tree each
`RUNNABLE_SAMPLE_S` and counts those in state R (running or waiting for a CPU); effective
cores are the tree's CPU time (this process and its reaped children, less the sampler's
own time) over the wall time.

On a machine with at least 16 usable cores the LightGBM folds also run under ours against
a hand-budgeted pool of 4 spawned processes x 4 threads; on a smaller one the row says it
was skipped.

Before any number is reported, every run must have succeeded with every op starting and
succeeding exactly once (STEP_START and STEP_SUCCESS events in the run's event log, so a
retried or re-executed step fails the check too), and under ours every LightGBM
step must have trained with the thread budget the executor gave it (the executor's
STEP_WORKER_STARTING metadata, the op's output metadata: ``num_threads`` passed, OpenMP
pool size, the budget in its environment), else `BenchCheckError`.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import re
import resource
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
from dagster import DagsterEventType, DagsterInstance

from bench import executor_jobs as jobs
from bench.harness import BenchConfig, BenchResult, BenchRow, Measurement, check
from bench.process_tree import RUNNABLE_SAMPLE_S, TreeSampler
from forex_assets.compute.core_ledger import LEDGER_ENV
from forex_assets.compute.overrides import resolve_plan
from forex_assets.compute.plan import PlanSettings
from forex_assets.compute.thread_budget import lightgbm_threads

DESCRIPTION = (
    "budgeted_executor vs Dagster's multiprocess executor: per-step overhead (50 no-op steps) "
    "and CPU oversubscription (parallel LightGBM steps)"
)
# One run of the spawn baseline takes minutes on a small machine: one timed run each.
DEFAULT_CONFIG = {"repeats": 1}

NOOP_CONCURRENCY = 2
OVERHEAD_TARGET = 5.0  # stock per-step overhead / ours
RUNNABLE_LIMIT = 1.25  # x usable cores
EFFECTIVE_TARGET = 0.85  # x usable cores
# Every run logs to the console at WARNING, not DEBUG: thousands of lines otherwise.
QUIET_CONSOLE = {"console": {"config": {"log_level": "WARNING"}}}
BIG_MACHINE_CORES = 16
HAND_PROCESSES = 4
HAND_THREADS = 4


def usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# --------------------------------------------------------------------------- sampling


def tree_cpu_seconds() -> float:
    """CPU time of this process plus its terminated and reaped children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@dataclass(frozen=True)
class TreeStats:
    samples: int
    peak: int
    p95: float
    mean: float
    over_limit: float  # share of samples above the runnable limit
    peak_without_helpers: int
    cpu_s: float
    effective_cores: float
    sampler_cpu_s: float


def _p95(values: list[int]) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))])


# --------------------------------------------------------------------------- runs


@dataclass
class RunOutcome:
    label: str
    run_id: str
    wall_s: float
    successes: Counter[str]
    outputs: dict[str, dict[str, Any]]  # step key -> output metadata values
    worker_threads: dict[str, int]  # step key -> threads the budgeted executor gave it
    new_workers_ready_s: list[float]  # ours: when each new worker got its first step
    finished_message: str = ""
    stats: TreeStats | None = None

    def per_step_s(self, steps: int) -> float:
        return self.wall_s / steps


def _value(entry: Any) -> Any:
    return getattr(entry, "value", entry)


def execute(
    label: str,
    job: dg.JobDefinition,
    instance: DagsterInstance,
    run_config: dict[str, Any],
    expected_steps: list[str],
    sample: bool = False,
) -> RunOutcome:
    """Run `job` once out of process, check every step succeeded once, collect its events."""
    recon = dg.reconstructable(job)
    run_config = {**run_config, "loggers": QUIET_CONSOLE}
    gc.collect()
    with ExitStack() as stack:
        sampler = stack.enter_context(TreeSampler()) if sample else None
        cpu_before = tree_cpu_seconds()
        started = time.perf_counter()
        result = dg.execute_job(recon, instance=instance, run_config=run_config)
        wall = time.perf_counter() - started
        cpu = tree_cpu_seconds() - cpu_before
    with result:
        run_id = result.run_id
        check(result.success, f"{label}: run {run_id} did not succeed")
    run = instance.get_run_by_id(run_id)
    check(
        run is not None and run.status == dg.DagsterRunStatus.SUCCESS,
        f"{label}: run {run_id} has status {run.status if run else None}",
    )
    successes: Counter[str] = Counter()
    starts: Counter[str] = Counter()
    outputs: dict[str, dict[str, Any]] = {}
    worker_threads: dict[str, int] = {}
    new_workers: list[float] = []
    run_started = None
    finished = ""
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None:
            continue
        kind = event.event_type
        if kind == DagsterEventType.RUN_START:
            run_started = record.timestamp
        elif kind == DagsterEventType.STEP_START:
            starts[event.step_key] += 1
        elif kind == DagsterEventType.STEP_SUCCESS:
            successes[event.step_key] += 1
        elif kind == DagsterEventType.STEP_OUTPUT:
            metadata = event.step_output_data.metadata
            outputs[event.step_key] = {k: _value(v) for k, v in metadata.items()}
        elif kind == DagsterEventType.STEP_WORKER_STARTING and event.step_key:
            metadata = event.engine_event_data.metadata
            if "threads" in metadata:
                worker_threads[event.step_key] = int(_value(metadata["threads"]))
            if "warm worker" in metadata and not _value(metadata["warm worker"]):
                new_workers.append(record.timestamp - (run_started or record.timestamp))
        elif kind == DagsterEventType.ENGINE_EVENT and (event.message or "").startswith(
            "Budgeted executor finished"
        ):
            finished = event.message or ""
    for kind_name, counts in (("STEP_START", starts), ("STEP_SUCCESS", successes)):
        off = {k: n for k, n in counts.items() if n != 1}
        missing = sorted(set(expected_steps) - set(counts))
        extra = sorted(set(counts) - set(expected_steps))
        check(
            not off and not missing and not extra,
            f"{label}: every op must start and succeed exactly once; {kind_name} counts off "
            f"for {off}, missing {missing}, unexpected {extra}",
        )
    stats = None
    if sampler is not None:
        check(bool(sampler.samples), f"{label}: the process-tree sampler took no samples")
        cpu -= sampler.own_cpu_s
        limit = RUNNABLE_LIMIT * usable_cores()
        stats = TreeStats(
            samples=len(sampler.samples),
            peak=max(sampler.samples),
            p95=_p95(sampler.samples),
            mean=sum(sampler.samples) / len(sampler.samples),
            over_limit=sum(c > limit for c in sampler.samples) / len(sampler.samples),
            peak_without_helpers=max(sampler.without_helpers),
            cpu_s=cpu,
            effective_cores=cpu / wall,
            sampler_cpu_s=sampler.own_cpu_s,
        )
    return RunOutcome(
        label, run_id, wall, successes, outputs, worker_threads, new_workers, finished, stats
    )


def best_of(runs: list[RunOutcome]) -> RunOutcome:
    return min(runs, key=lambda r: r.wall_s)


def repeat(config: BenchConfig, once: Any) -> tuple[RunOutcome, Measurement, int]:
    """`config.repeats` runs of `once()`; the fastest, its measurement, and the step count."""
    runs = [once() for _ in range(max(1, config.repeats))]
    best = best_of(runs)
    steps = sum(best.successes.values())
    return best, Measurement(best.wall_s, steps, tuple(r.wall_s for r in runs)), steps


def _workers(outcome: RunOutcome) -> str:
    match = re.search(r"(\d+) worker processes started, (\d+) recycled", outcome.finished_message)
    started = f"{match.group(1)} workers started" if match else "workers: not reported"
    ready = ", ".join(f"{t:.1f}" for t in sorted(outcome.new_workers_ready_s))
    return f"{started}, ready {ready} s after run start" if ready else started


# --------------------------------------------------------------------------- configs


def multiprocess_config(max_concurrent: int, start_method: str) -> dict[str, Any]:
    method: dict[str, Any] = {start_method: {}}
    if start_method == "forkserver":
        method = {"forkserver": {"preload_modules": [jobs.__name__]}}
    return {"execution": {"config": {"max_concurrent": max_concurrent, "start_method": method}}}


def budgeted_config(cores: int) -> dict[str, Any]:
    return {"execution": {"config": {"cores": cores}}}


@contextmanager
def isolated_environment(tmp: Path) -> Iterator[None]:
    """A private core ledger, so other runs on this host neither block nor skew ours."""
    saved = os.environ.get(LEDGER_ENV)
    os.environ[LEDGER_ENV] = str(tmp / "core_ledger.sqlite")
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(LEDGER_ENV, None)
        else:
            os.environ[LEDGER_ENV] = saved


def temp_instance(directory: Path) -> Any:
    """A persistent (SQLite) Dagster instance in `directory`, as a context manager."""
    directory.mkdir(parents=True, exist_ok=True)
    return dg.instance_for_test(temp_dir=str(directory), set_dagster_home=False)


# --------------------------------------------------------------------------- checks


def check_budgets(outcome: RunOutcome, budget: int, passed_num_threads: bool) -> None:
    """Every LightGBM step under ours trained with exactly the budget it was given."""
    for step, seen in sorted(outcome.outputs.items()):
        where = f"{outcome.label}: step {step}"
        given = outcome.worker_threads.get(step)
        check(given == budget, f"{where}: the executor gave {given} threads, the plan {budget}")
        check(
            seen["step_budget"] == budget,
            f"{where}: FOREX_ASSETS_STEP_THREADS={seen['step_budget']} in the worker, not {budget}",
        )
        if passed_num_threads:
            check(
                seen["num_threads"] == budget,
                f"{where}: LightGBM got num_threads={seen['num_threads']}, budget {budget}",
            )
        check(
            seen["openmp_threads"] == budget,
            f"{where}: the OpenMP pool has {seen['openmp_threads']} threads, budget {budget}",
        )
        check(seen["trees"] == jobs.LGBM_ROUNDS, f"{where}: {seen['trees']} trees trained")
    check(
        len(outcome.outputs) == jobs.LGBM_STEPS,
        f"{outcome.label}: {len(outcome.outputs)} LightGBM outputs, {jobs.LGBM_STEPS} steps",
    )


def check_stock_lightgbm(outcome: RunOutcome, cores: int) -> int:
    """The stock run's LightGBM steps used their OpenMP default; returns that thread count."""
    seen = {s["openmp_threads"] for s in outcome.outputs.values()}
    check(
        len(outcome.outputs) == jobs.LGBM_STEPS and len(seen) == 1,
        f"{outcome.label}: OpenMP pool sizes {seen} over {len(outcome.outputs)} outputs",
    )
    threads = seen.pop()
    if "OMP_NUM_THREADS" not in os.environ:
        check(
            threads == cores,
            f"{outcome.label}: LightGBM's OpenMP default is {threads} threads, not all {cores} "
            "cores; the oversubscription baseline would not be one",
        )
    return threads


# --------------------------------------------------------------------------- sections


def _mean_train_s(outcome: RunOutcome) -> float:
    return sum(s["train_s"] for s in outcome.outputs.values()) / max(1, len(outcome.outputs))


def bench_overhead(
    config: BenchConfig, stock: DagsterInstance, ours: DagsterInstance, result: BenchResult
) -> None:
    steps = [op.name for op in jobs.NOOP_OPS]
    n = len(steps)

    def timed(label: str, job: dg.JobDefinition, instance: DagsterInstance, cfg: dict) -> Any:
        return repeat(config, lambda: execute(label, job, instance, cfg, steps))

    floor, floor_m, _ = timed("no-op in_process", jobs.noop_in_process, ours, {})
    mine, mine_m, _ = timed(
        "no-op budgeted", jobs.noop_budgeted, ours, budgeted_config(NOOP_CONCURRENCY)
    )
    fork, fork_m, _ = timed(
        "no-op multiprocess forkserver",
        jobs.noop_multiprocess,
        stock,
        multiprocess_config(NOOP_CONCURRENCY, "forkserver"),
    )
    spawn, spawn_m, _ = timed(
        "no-op multiprocess spawn",
        jobs.noop_multiprocess,
        stock,
        multiprocess_config(NOOP_CONCURRENCY, "spawn"),
    )
    for outcome in (floor, mine, fork, spawn):
        result.checks.append(
            f"{outcome.label}: run succeeded, each of the {n} ops started and succeeded "
            "exactly once"
        )
    check(
        set(mine.worker_threads.values()) == {1},
        f"no-op budgeted: steps ran with {set(mine.worker_threads.values())} threads, not 1",
    )

    ours_step = mine.per_step_s(n)
    for outcome, measured, does in (
        (spawn, spawn_m, f"multiprocess_executor, spawn, max_concurrent {NOOP_CONCURRENCY}"),
        (
            fork,
            fork_m,
            f"multiprocess_executor, forkserver preloading {jobs.__name__}, "
            f"max_concurrent {NOOP_CONCURRENCY}",
        ),
        (floor, floor_m, "in_process_executor (floor: one process, no isolation)"),
    ):
        stock_step = outcome.per_step_s(n)
        result.rows.append(
            BenchRow(
                f"{n} no-op steps: ours vs {outcome.label.removeprefix('no-op ')}",
                mine_m,
                measured,
                f"{does}; per step {stock_step * 1e3:.0f} ms vs ours {ours_step * 1e3:.0f} ms",
            )
        )
    for outcome in (spawn, fork):
        ratio = outcome.per_step_s(n) / ours_step
        verdict = "meets" if ratio >= OVERHEAD_TARGET else "MISSES"
        result.notes.append(
            f"per-step overhead, {outcome.label.removeprefix('no-op ')}: "
            f"{outcome.per_step_s(n) * 1e3:.0f} ms/step vs ours {ours_step * 1e3:.0f} ms/step = "
            f"{ratio:.2f}x; {verdict} the >= {OVERHEAD_TARGET:g}x target"
        )
    result.notes += [
        f"per-step overhead, in_process floor: {floor.per_step_s(n) * 1e3:.0f} ms/step; ours is "
        f"{(ours_step - floor.per_step_s(n)) * 1e3:.0f} ms/step above it. Ours ran with "
        f"cores: {NOOP_CONCURRENCY} ({_workers(mine)}); its fixed cost is the workers "
        "loading the code (in parallel) once per run.",
        "forkserver: multiprocessing starts one forkserver per process, importing the preloaded "
        "module, on the first forkserver run; that start is inside the timed run here, as it "
        "is for every run of a deployment whose run worker is a fresh process.",
    ]


def bench_handoff(
    config: BenchConfig, stock: DagsterInstance, ours: DagsterInstance, result: BenchResult
) -> None:
    """Steps queued on a pool of limit 1: how fast a freed slot reaches the next step."""
    steps = [op.name for op in jobs.HANDOFF_OPS]
    for instance in (stock, ours):
        instance.event_log_storage.set_concurrency_slots(jobs.HANDOFF_POOL, 1)
    mine, mine_m, n = repeat(
        config,
        lambda: execute(
            "handoff budgeted",
            jobs.handoff_budgeted,
            ours,
            budgeted_config(NOOP_CONCURRENCY),
            steps,
        ),
    )
    fork, fork_m, _ = repeat(
        config,
        lambda: execute(
            "handoff multiprocess forkserver",
            jobs.handoff_multiprocess,
            stock,
            multiprocess_config(NOOP_CONCURRENCY, "forkserver"),
            steps,
        ),
    )
    work = n * jobs.HANDOFF_SECONDS
    result.rows.append(
        BenchRow(
            f"{n} x {jobs.HANDOFF_SECONDS} s steps in a pool of limit 1: ours vs multiprocess forkserver",
            mine_m,
            fork_m,
            f"multiprocess_executor, forkserver, pool limit 1 on the instance; {work:.1f} s of work",
        )
    )
    result.checks.append(
        f"pool hand-off: both runs succeeded, each of the {n} ops ran exactly once"
    )
    result.notes.append(
        f"pool hand-off: {work:.1f} s of work took {mine.wall_s:.1f} s under ours and "
        f"{fork.wall_s:.1f} s under the stock executor, whose blocked steps re-poll with a "
        "growing back-off (up to 15 s)"
    )


def _stats_note(outcome: RunOutcome, cores: int, extra: str = "") -> str:
    stats = outcome.stats
    assert stats is not None
    limit = RUNNABLE_LIMIT * cores
    target = EFFECTIVE_TARGET * cores
    return (
        f"{outcome.label}: wall {outcome.wall_s:.1f} s; runnable threads peak {stats.peak} "
        f"({'within' if stats.peak <= limit else 'EXCEEDS'} {RUNNABLE_LIMIT:g} x {cores} = "
        f"{limit:g}; {stats.peak_without_helpers} without Dagster's compute-log helpers), "
        f"p95 {stats.p95:.0f}, mean {stats.mean:.2f}, {stats.over_limit:.0%} of "
        f"{stats.samples} samples above {limit:g}; "
        f"effective cores {stats.effective_cores:.2f} = {stats.cpu_s:.1f} CPU s / wall "
        f"({'meets' if stats.effective_cores >= target else 'BELOW'} {EFFECTIVE_TARGET:.0%} x "
        f"{cores} = {target:.2f}); mean LightGBM training {_mean_train_s(outcome):.2f} s/model"
        + (f"; {extra}" if extra else "")
    )


def bench_oversubscription(
    config: BenchConfig,
    cores: int,
    stock: DagsterInstance,
    ours: DagsterInstance,
    result: BenchResult,
) -> None:
    budget_steps = [op.name for op in jobs.LGBM_BUDGET_OPS]
    default_steps = [op.name for op in jobs.LGBM_DEFAULT_OPS]
    plan, _ = resolve_plan(PlanSettings(cores=cores))
    budget = plan.threads_for(jobs.LGBM_POOL)

    # Outside the budgeted executor the helper hands every step the whole machine.
    outside = lightgbm_threads()["num_threads"]
    check(
        outside == cores,
        f"lightgbm_threads() outside the executor says {outside}, usable cores {cores}",
    )

    def sampled(label: str, job: dg.JobDefinition, instance: DagsterInstance, cfg, steps):
        return repeat(config, lambda: execute(label, job, instance, cfg, steps, sample=True))

    spawn, spawn_m, n = sampled(
        "LightGBM multiprocess spawn (default threads)",
        jobs.lgbm_default_multiprocess,
        stock,
        multiprocess_config(cores, "spawn"),
        default_steps,
    )
    stock_threads = check_stock_lightgbm(spawn, cores)
    mine_budget, budget_m, _ = sampled(
        "LightGBM budgeted (num_threads=lightgbm_threads())",
        jobs.lgbm_budget_budgeted,
        ours,
        budgeted_config(cores),
        budget_steps,
    )
    check_budgets(mine_budget, budget, passed_num_threads=True)
    mine_default, default_m, _ = sampled(
        "LightGBM budgeted (default threads)",
        jobs.lgbm_default_budgeted,
        ours,
        budgeted_config(cores),
        default_steps,
    )
    check_budgets(mine_default, budget, passed_num_threads=False)
    result.checks += [
        f"{spawn.label}: run succeeded, each of the {n} ops started and succeeded exactly once; "
        "every step's "
        f"LightGBM used {stock_threads} OpenMP threads (all {cores} cores)",
        f"{mine_budget.label}: run succeeded, each op started and succeeded once; every step "
        f"was given {budget} "
        f"thread(s) by the executor and trained with num_threads={budget}, an OpenMP pool of "
        f"{budget} and FOREX_ASSETS_STEP_THREADS={budget}",
        f"{mine_default.label}: run succeeded, each op started and succeeded once; without "
        "num_threads every step's "
        f"LightGBM still used the {budget}-thread budget (OpenMP pool {budget})",
        f"lightgbm_threads() outside the executor returns all {cores} cores, so under the stock "
        "executor the num_threads variant equals the default one (not run separately)",
    ]
    anchor_does = (
        f"multiprocess_executor, spawn, max_concurrent {cores}, LightGBM default threads "
        f"({stock_threads} per process)"
    )
    result.rows += [
        BenchRow(
            f"{n} LightGBM steps, num_threads=lightgbm_threads(): ours vs multiprocess spawn",
            budget_m,
            spawn_m,
            anchor_does,
        ),
        BenchRow(
            f"{n} LightGBM steps, default threads: ours vs multiprocess spawn",
            default_m,
            spawn_m,
            anchor_does,
        ),
    ]
    result.notes += [
        _stats_note(spawn, cores, f"{cores} processes x {stock_threads} OpenMP threads"),
        _stats_note(
            mine_budget,
            cores,
            f"training pool {plan.pool_limits['training']} x {budget} thread(s); "
            f"{_workers(mine_budget)}",
        ),
        _stats_note(mine_default, cores, _workers(mine_default)),
    ]
    stats = spawn.stats
    assert stats is not None
    result.notes.append(
        f"sampler: every {RUNNABLE_SAMPLE_S * 1e3:.0f} ms it reads /proc/<pid>/task/<tid>/stat "
        "of every thread of this process's tree (state R = running or waiting for a CPU; the "
        "sampler's own thread excluded; 'compute-log helpers' = the `tail -F` and Python "
        "watch_orphans.py processes that Dagster's LocalComputeLogManager starts for each "
        "step's stdout and stderr, under either executor); it used "
        f"{stats.sampler_cpu_s:.2f} CPU s in the spawn run, subtracted from the CPU time. "
        "CPU time = getrusage(SELF + CHILDREN) deltas (all step and worker processes are "
        "direct children, reaped by the end of the run); "
        "OpenMP threads that spin while waiting count as busy, so effective cores measure "
        "occupied CPUs, not useful work: compare wall time and seconds per model too."
    )


def bench_big_machine(
    config: BenchConfig, cores: int, ours: DagsterInstance, result: BenchResult
) -> None:
    name = (
        f"{jobs.LGBM_STEPS} LightGBM folds on >= {BIG_MACHINE_CORES} cores: ours vs "
        f"{HAND_PROCESSES} processes x {HAND_THREADS} threads"
    )
    if cores < BIG_MACHINE_CORES:
        result.rows.append(
            BenchRow.skip(
                name,
                f"skipped: only {cores} usable cores (needs >= {BIG_MACHINE_CORES}); "
                "no numbers are reported for it",
            )
        )
        return
    steps = [op.name for op in jobs.LGBM_BUDGET_OPS]
    plan, _ = resolve_plan(PlanSettings(cores=cores))
    budget = plan.threads_for(jobs.LGBM_POOL)
    mine, mine_m, n = repeat(
        config,
        lambda: execute(
            "LightGBM folds budgeted (all cores)",
            jobs.lgbm_budget_budgeted,
            ours,
            budgeted_config(cores),
            steps,
        ),
    )
    check_budgets(mine, budget, passed_num_threads=True)

    def hand() -> list[dict[str, Any]]:
        context = multiprocessing.get_context("spawn")
        with context.Pool(HAND_PROCESSES) as pool:
            return pool.starmap(
                jobs.train_fold, [(seed, HAND_THREADS) for seed in range(jobs.LGBM_STEPS)]
            )

    walls = []
    for _ in range(max(1, config.repeats)):
        gc.collect()
        started = time.perf_counter()
        folds = hand()
        walls.append(time.perf_counter() - started)
        check(
            len(folds) == jobs.LGBM_STEPS
            and all(f["num_threads"] == HAND_THREADS for f in folds)
            and all(f["trees"] == jobs.LGBM_ROUNDS for f in folds),
            f"hand-budgeted pool: folds {folds}",
        )
    result.checks += [
        f"{mine.label}: run succeeded, each of the {n} ops started and succeeded once, each "
        f"with its {budget}-thread budget",
        f"hand-budgeted pool: {jobs.LGBM_STEPS} folds trained, each with num_threads="
        f"{HAND_THREADS}",
    ]
    result.rows.append(
        BenchRow(
            name,
            mine_m,
            Measurement(min(walls), jobs.LGBM_STEPS, tuple(walls)),
            f"multiprocessing spawn Pool({HAND_PROCESSES}) mapping train_fold(num_threads="
            f"{HAND_THREADS}); ours: training pool {plan.pool_limits['training']} x {budget} "
            "threads",
        )
    )


# --------------------------------------------------------------------------- entry point


def run(config: BenchConfig) -> BenchResult:
    cores = usable_cores()
    result = BenchResult(
        name="executor",
        title=(
            f"budgeted_executor vs multiprocess executor: {jobs.NOOP_STEPS} no-op steps, "
            f"{jobs.LGBM_STEPS} LightGBM steps ({jobs.LGBM_ROWS:,} x {jobs.LGBM_FEATURES}, "
            f"{jobs.LGBM_ROUNDS} rounds)"
        ),
        unit="steps",
    )
    load_before = os.getloadavg()
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench_executor_")))
        stack.enter_context(isolated_environment(tmp))
        # Separate instances: ours writes its pool limits into its instance, stock runs get
        # Dagster's defaults (no pool limits).
        stock = stack.enter_context(temp_instance(tmp / "stock"))
        ours = stack.enter_context(temp_instance(tmp / "ours"))
        # Warm-up: load Dagster, the job module and both instances' storage in this process,
        # so that no timed run pays it. Every timed run still starts its executor cold (new
        # step processes, forkserver or warm workers), as each run of a deployment does.
        noop_steps = [op.name for op in jobs.NOOP_OPS]
        for _ in range(config.warmup):
            for instance in (ours, stock):
                execute("warm-up in_process", jobs.noop_in_process, instance, {}, noop_steps)

        bench_overhead(config, stock, ours, result)
        bench_handoff(config, stock, ours, result)
        bench_oversubscription(config, cores, stock, ours, result)
        bench_big_machine(config, cores, ours, result)
    load_after = os.getloadavg()
    result.notes += [
        "wall time = dagster.execute_job(reconstructable(job), instance=<temp SQLite "
        "instance>, run_config=...) from call to return: plan, executor start, every step, "
        "event-log writes (console logger at WARNING in every run). Steps/s counts the job's "
        "ops; speedup = anchor wall / ours wall (for the no-op job also = stock per-step "
        "overhead / ours).",
        f"job module {jobs.__name__} imports forex_assets (the budgeted jobs need it), as every "
        "job of this project's code location does: each stock step process imports it again, "
        "the warm workers once.",
        f"host load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after: "
        "other processes on the host compete for the same cores and inflate every figure.",
    ]
    return result
