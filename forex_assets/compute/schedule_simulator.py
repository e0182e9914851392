"""Replay a recorded run on N cores under the budgeted executor's policy: makespan and utilization.

Nobody has a 252-core machine at hand to try a scheduling change on, and a 28-symbol
backfill takes hours; the simulator answers "how long, and how busy" from one recorded
run in milliseconds. It is an event-driven replay (a priority queue of step and task
ends, deterministic: ties break by run and by the recorded step order) of the rules the
executor applies, with the resource plan `plan_resources` derives for the simulated
machine:

Admission, both policies (`executor.scheduling.BudgetedActiveExecution`). Ready steps
are considered oldest first (by the time they became ready, then run, then recorded
order). A step starts when its pool has a free slot (pool limits hold across runs, as
the instance's pools make them), its threads (`plan.threads_for(pool)`) fit in the free
cores, and, for a heavy pool (features, training), its run holds one of the plan's
`symbols` slots, held from the run's first heavy step to its last. A step that has
waited more than `STARVATION_S` for cores stops every step of its run behind it.

Inside a step. Its own work (`serial_s`, single-threaded) comes first and holds the
step's threads; then its tasks, in `longest_first` order.
- STATIC (today's executor): each task gets `static_threads(step threads, tasks)`, and
  the step runs as many at once as fit in its threads.
- ELASTIC (the elastic worker pool): the step's threads are its floor; before each task
  starts, the cores it may use are the floor its running tasks leave plus the machine's
  free cores less what ready steps waiting for cores need (waiting steps come first; a
  step counts as waiting only when cores are all that stop it); the task gets
  `task_threads(those cores, its weight, the weight still to start)` and returns them
  when it ends; a task starts whenever at least one such core exists. Once a step has no
  task left to start, the cores still free after every step started what it could widen
  its running tasks that grow (`RecordedTask.grows`), a core at a time to the narrowest;
  a widened task finishes its remaining work at the new width.

Time model. A task of `cpu_s` single-threaded seconds takes
``cpu_s * ((1 - p) + p / threads)`` on `threads` threads (Amdahl), with `p` =
`PARALLEL_FRACTION`; a step's own work takes `serial_s` whatever its threads.

Backfill: `symbols` copies of the run, one run per symbol, at most `max_concurrent_runs`
at once (Dagster's queued run coordinator), each starting its steps `startup_s` after it
is dequeued and ending `teardown_s` after its last step, all sharing the machine.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

from forex_assets.compute.machine import MachineResources
from forex_assets.compute.plan import (
    HEAVY_POOLS,
    STARVATION_S,
    GiB,
    PlanSettings,
    Pool,
    ResourcePlan,
    plan_resources,
)
from forex_assets.compute.recorded_run import RecordedRun, RecordedStep
from forex_assets.compute.task_shapes import longest_first, static_threads, task_threads

# LightGBM's share of a split's work that spreads over threads. plan.py's measurement on
# 16 cores: ten folds took 105 s on 1 thread (10.5 s a fold) and 12.6 s as 4 processes x
# 4 threads, i.e. three rounds (4 + 4 + 2 folds) of 4.2 s: a fold on 4 threads runs in
# 0.4 of its 1-thread time, and (1 - p) + p / 4 = 0.4 gives p = 0.8 (2.5x on 4 threads,
# at most 5x on any number), which is the flattening that made the plan prefer
# processes to threads.
PARALLEL_FRACTION = 0.8
# Memory of a simulated machine when none is given: a typical server's 8 GiB per core.
MEMORY_PER_CORE = 8 * GiB
STATIC, ELASTIC = "static", "elastic"
_TIE_S = 1e-9


def task_seconds(cpu_s: float, threads: int, parallel_fraction: float = PARALLEL_FRACTION) -> float:
    """Wall seconds of `cpu_s` single-threaded seconds of work on `threads` threads."""
    return cpu_s * ((1.0 - parallel_fraction) + parallel_fraction / threads)


@dataclass(frozen=True)
class StepSpan:
    """One step of one run as simulated: when it ran and the core-seconds its work kept busy."""

    run: int
    key: str
    start_s: float
    end_s: float
    busy_core_s: float

    @property
    def effective_cores(self) -> float:
        """Cores the step's work kept busy on average over its span."""
        span = self.end_s - self.start_s
        return self.busy_core_s / span if span > 0 else 0.0


@dataclass(frozen=True)
class SimResult:
    """Makespan and how busy the machine was.

    `utilization` is busy core-seconds (each piece of work at its width: a task's
    threads, a step's threads while its own work runs) over cores x makespan. It credits
    every thread a task holds, also those Amdahl's serial share leaves idle;
    `cpu_utilization` (the recorded single-threaded seconds over cores x makespan) does
    not, and so says how much of the machine did useful work. `cores_busy` and
    `cores_held` are step functions: (time, value from then on); held cores are what the
    ledger holds (floors and leases), busy ones what work uses.
    """

    policy: str
    cores: int
    symbols: int
    makespan_s: float
    utilization: float
    cpu_utilization: float
    busy_core_s: float
    cores_busy: tuple[tuple[float, int], ...]
    cores_held: tuple[tuple[float, int], ...]
    steps: tuple[StepSpan, ...]
    plan: ResourcePlan


@dataclass(eq=False)
class _Task:
    """A running task: single-threaded seconds of work left as of `since`, at `threads`."""

    step: _Step
    threads: int
    grows: bool
    started: float
    remaining_s: float
    since: float
    end_s: float = 0.0
    version: int = 0  # bumped when it widens: its earlier end event is stale


@dataclass(eq=False)
class _Step:
    """The simulation's state of one step of one run."""

    run: int
    index: int
    spec: RecordedStep
    threads: int
    deps_left: int
    done: bool = False
    ready_at: float = -1.0
    waiting_since: float | None = None
    start_s: float = 0.0
    order: list[int] = field(default_factory=list)
    next_task: int = 0
    tasks_running: int = 0
    in_use: int = 0  # threads of its running tasks
    running_tasks: list[_Task] = field(default_factory=list)
    remaining_weight: float = 0.0
    tasks_phase: bool = False
    busy_core_s: float = 0.0

    @property
    def held(self) -> int:
        """Cores the ledger holds for it: its floor, or more while leased tasks run."""
        return max(self.threads, self.in_use)

    @property
    def sort_key(self) -> tuple[float, int, int]:
        return (self.ready_at, self.run, self.index)


@dataclass(eq=False)
class _Run:
    index: int
    steps: list[_Step]
    heavy_left: int
    steps_left: int
    holds_symbol: bool = False


class _Simulation:
    def __init__(
        self,
        recorded: RecordedRun,
        plan: ResourcePlan,
        symbols: int,
        elastic: bool,
        max_concurrent_runs: int,
        parallel_fraction: float,
        starvation_s: float,
    ):
        self.recorded = recorded
        self.plan = plan
        self.cores = plan.cores
        self.elastic = elastic
        self.max_concurrent_runs = max_concurrent_runs
        self.p = parallel_fraction
        self.starvation_s = starvation_s
        self.pool_limits = {
            pool: limit for pool, limit in plan.pool_limits.items() if pool != Pool.SYMBOLS
        }
        self.symbols_limit = plan.pool_limits[Pool.SYMBOLS]
        self.index = {step.key: i for i, step in enumerate(recorded.steps)}
        self.dependents: dict[str, list[str]] = {step.key: [] for step in recorded.steps}
        for step in recorded.steps:
            for dep in step.deps:
                self.dependents[dep].append(step.key)
        self.queued = list(range(symbols))
        self.runs: list[_Run] = []
        self.active_runs = 0
        self.ready: list[_Step] = []
        self.running: list[_Step] = []  # admission order
        self.in_flight = {pool: 0 for pool in self.pool_limits}
        self.symbols_held = 0
        self.held = 0
        self.busy = 0
        self.now = 0.0
        self.events: list[tuple[float, int, str, object]] = []
        self.sequence = itertools.count()
        self.busy_timeline: list[tuple[float, int]] = [(0.0, 0)]
        self.held_timeline: list[tuple[float, int]] = [(0.0, 0)]
        self.spans: list[StepSpan] = []

    # -- events -----------------------------------------------------------------------

    def _at(self, time: float, kind: str, payload: object) -> None:
        heapq.heappush(self.events, (time, next(self.sequence), kind, payload))

    def _due(self) -> Iterator[tuple[str, object]]:
        """Every event at the earliest pending time, in the order they were scheduled."""
        self.now = self.events[0][0]
        while self.events and self.events[0][0] <= self.now + _TIE_S:
            _, _, kind, payload = heapq.heappop(self.events)
            yield kind, payload

    def _drop_stale_ends(self) -> bool:
        """Discard the end events of tasks that widened since (a later one replaced each),
        so that none moves the clock; True while events remain."""
        while self.events and self.events[0][2] == "task_done":
            task, version = self.events[0][3]
            if version == task.version:
                break
            heapq.heappop(self.events)
        return bool(self.events)

    def run(self) -> None:
        self._dequeue_runs()
        while self._drop_stale_ends():
            for kind, payload in list(self._due()):
                if kind == "run_ready":
                    self._run_ready(payload)
                elif kind == "run_done":
                    self._run_done()
                elif kind == "own_work_done":
                    self._own_work_done(payload)
                else:
                    task, version = payload
                    if version == task.version:  # else it widened and ends later
                        self._task_done(task)
            self._schedule()
        unfinished = [s.spec.key for run in self.runs for s in run.steps if not s.done]
        if unfinished or self.queued:  # every step eventually fits: a bug in this replay
            raise RuntimeError(
                f"the simulation ended with steps {unfinished[:5]} unfinished and "
                f"{len(self.queued)} runs queued on {self.cores} cores: a deadlock in the "
                "replayed policy"
            )

    def _account(self, held: int = 0, busy: int = 0) -> None:
        self.held += held
        self.busy += busy
        for timeline, value in ((self.held_timeline, self.held), (self.busy_timeline, self.busy)):
            if timeline[-1][0] >= self.now - _TIE_S:
                timeline.pop()
            if not timeline or timeline[-1][1] != value:
                timeline.append((self.now, value))

    # -- runs -------------------------------------------------------------------------

    def _dequeue_runs(self) -> None:
        while self.queued and self.active_runs < self.max_concurrent_runs:
            index = self.queued.pop(0)
            steps = [
                _Step(index, i, spec, self.plan.threads_for(spec.pool), len(spec.deps))
                for i, spec in enumerate(self.recorded.steps)
            ]
            heavy = sum(step.spec.pool in HEAVY_POOLS for step in steps)
            self.runs.append(_Run(index, steps, heavy, len(steps)))
            self.active_runs += 1
            self._at(self.now + self.recorded.startup_s, "run_ready", self.runs[-1])

    def _run_ready(self, run: _Run) -> None:
        for step in run.steps:
            if step.deps_left == 0:
                self._make_ready(step)

    def _make_ready(self, step: _Step) -> None:
        step.ready_at = self.now
        self.ready.append(step)

    # -- admission --------------------------------------------------------------------

    def _schedule(self) -> None:
        reserve = self._admit()
        for step in list(self.running):
            if step.tasks_phase:
                self._start_tasks(step, reserve)
        if self.elastic:  # what no step could start a task with widens the running ones
            for step in list(self.running):
                if step.tasks_phase and step.next_task == len(step.spec.tasks):
                    self._grow_tasks(step, reserve)

    def _admit(self) -> int:
        """Start every ready step that may start now; return the cores that ready steps
        waiting only for cores need (what leases must leave free).

        Admission counts only running steps against pool and `symbols` limits, as the
        executor does; a step waiting for cores counts towards the reserve only while
        the slots it would take are not all spoken for by running or other waiting steps.
        """
        free = self.cores - self.held
        reserve = 0
        pool_room = {p: limit - self.in_flight[p] for p, limit in self.pool_limits.items()}
        symbol_room = self.symbols_limit - self.symbols_held
        waiting_pool_room = dict(pool_room)
        waiting_symbol_room = symbol_room
        claimed: set[int] = set()  # runs a waiting heavy step would claim a symbols slot for
        starved: set[int] = set()  # runs with a step waiting past STARVATION_S
        for step in sorted(self.ready, key=lambda s: s.sort_key):
            run = self.runs[step.run]
            pool = step.spec.pool
            heavy = pool in HEAVY_POOLS
            if run.index in starved or pool_room.get(pool, 1) < 1:
                continue
            if step.threads > free:
                if step.waiting_since is None:
                    step.waiting_since = self.now
                slot = not heavy or run.holds_symbol or run.index in claimed
                if waiting_pool_room.get(pool, 1) > 0 and (slot or waiting_symbol_room > 0):
                    reserve += step.threads
                    if pool in waiting_pool_room:
                        waiting_pool_room[pool] -= 1
                    if not slot:
                        claimed.add(run.index)
                        waiting_symbol_room -= 1
                if self.now - step.waiting_since > self.starvation_s:
                    starved.add(run.index)
                continue
            step.waiting_since = None
            if heavy and not run.holds_symbol:
                if symbol_room < 1:
                    continue
                run.holds_symbol = True
                symbol_room -= 1
                waiting_symbol_room -= 1
                self.symbols_held += 1
            if pool in pool_room:
                pool_room[pool] -= 1
                waiting_pool_room[pool] -= 1
                self.in_flight[pool] += 1
            free -= step.threads
            self._start(step)
        return reserve

    def _start(self, step: _Step) -> None:
        self.ready.remove(step)
        self.running.append(step)
        step.start_s = self.now
        weights = [task.weight for task in step.spec.tasks]
        step.order = longest_first(weights)
        step.remaining_weight = sum(weights)
        self._account(held=step.threads, busy=step.threads)
        step.busy_core_s += step.threads * step.spec.serial_s
        self._at(self.now + step.spec.serial_s, "own_work_done", step)

    # -- inside a step ----------------------------------------------------------------

    def _own_work_done(self, step: _Step) -> None:
        self._account(busy=-step.threads)
        if step.spec.tasks:
            step.tasks_phase = True
        else:
            self._finish(step)

    def _start_tasks(self, step: _Step, reserve: int) -> None:
        tasks = step.spec.tasks
        static_width = static_threads(step.threads, len(tasks))
        while step.next_task < len(tasks):
            if self.elastic:
                floor_left = step.threads - min(step.threads, step.in_use)
                available = floor_left + max(0, self.cores - self.held - reserve)
                if available < 1:
                    return
            elif step.in_use + static_width > step.threads:
                return
            task = tasks[step.order[step.next_task]]
            threads = (
                task_threads(available, task.weight, step.remaining_weight)
                if self.elastic
                else static_width
            )
            step.next_task += 1
            step.remaining_weight -= task.weight
            held_before = step.held
            step.in_use += threads
            step.tasks_running += 1
            self._account(held=step.held - held_before, busy=threads)
            running = _Task(step, threads, task.grows, self.now, task.cpu_s, self.now)
            step.running_tasks.append(running)
            self._schedule_end(running)

    def _schedule_end(self, task: _Task) -> None:
        seconds = task_seconds(task.remaining_s, task.threads, self.p)
        task.step.busy_core_s += task.threads * seconds
        task.end_s = self.now + seconds
        self._at(task.end_s, "task_done", (task, task.version))

    def _grow_tasks(self, step: _Step, reserve: int) -> None:
        while True:
            growable = [t for t in step.running_tasks if t.grows and t.threads < self.cores]
            floor_left = step.threads - min(step.threads, step.in_use)
            if not growable or floor_left + max(0, self.cores - self.held - reserve) < 1:
                return
            task = min(growable, key=lambda t: (t.threads, -t.started))
            # the work done so far at the old width, and the projection it no longer needs
            done = (self.now - task.since) / task_seconds(1.0, task.threads, self.p)
            step.busy_core_s -= task.threads * (task.end_s - self.now)
            task.remaining_s = max(0.0, task.remaining_s - done)
            task.since = self.now
            task.version += 1
            held_before = step.held
            step.in_use += 1
            task.threads += 1
            self._account(held=step.held - held_before, busy=1)
            self._schedule_end(task)

    def _task_done(self, task: _Task) -> None:
        step = task.step
        step.running_tasks.remove(task)
        held_before = step.held
        step.in_use -= task.threads
        step.tasks_running -= 1
        self._account(held=step.held - held_before, busy=-task.threads)
        if step.tasks_running == 0 and step.next_task == len(step.spec.tasks):
            self._finish(step)

    def _finish(self, step: _Step) -> None:
        run = self.runs[step.run]
        self.running.remove(step)
        self._account(held=-step.held)
        pool = step.spec.pool
        if pool in self.in_flight:
            self.in_flight[pool] -= 1
        if pool in HEAVY_POOLS:
            run.heavy_left -= 1
            if run.heavy_left == 0 and run.holds_symbol:
                run.holds_symbol = False
                self.symbols_held -= 1
        step.done = True
        self.spans.append(
            StepSpan(run.index, step.spec.key, step.start_s, self.now, step.busy_core_s)
        )
        for key in self.dependents[step.spec.key]:
            dependent = run.steps[self.index[key]]
            dependent.deps_left -= 1
            if dependent.deps_left == 0:
                self._make_ready(dependent)
        run.steps_left -= 1
        if run.steps_left == 0:
            self._at(self.now + self.recorded.teardown_s, "run_done", run)

    def _run_done(self) -> None:
        self.active_runs -= 1
        self._dequeue_runs()


def makespan_bound_s(
    run: RecordedRun, cores: int, symbols: int = 1, parallel_fraction: float = PARALLEL_FRACTION
) -> float:
    """A makespan no schedule can beat, whatever its policy and limits.

    Each step takes at least its own work plus its longest task on unlimited threads
    (``cpu_s * (1 - p)``), so it starts no earlier than `earliest[step]` after the runs
    start; every core-second of work of the steps that cannot start before a time t is
    still to do at t, at best on every core; the last run's tear-down follows its last
    step. For one symbol this is the run's critical path (its longest task bounding
    training); for a backfill it says, e.g., that the training of 28 symbols cannot
    start before their feature chains end, however wide the machine.
    """
    earliest: dict[str, float] = {}
    finish: dict[str, float] = {}
    for step in run.steps:
        longest = max((task.cpu_s for task in step.tasks), default=0.0)
        earliest[step.key] = max((finish[dep] for dep in step.deps), default=run.startup_s)
        finish[step.key] = earliest[step.key] + step.serial_s + longest * (1 - parallel_fraction)
    work_after = [
        (start, symbols * sum(s.cpu_s for s in run.steps if earliest[s.key] >= start) / cores)
        for start in sorted(set(earliest.values()))
    ]
    last_step = max(max(finish.values()), *(start + work for start, work in work_after))
    return last_step + run.teardown_s


def heavy_stage_width(run: RecordedRun) -> float:
    """Cores one symbol keeps busy on average while it holds its `symbols` slot.

    On a machine to itself with one thread per task (what it gets once slots are
    plentiful enough to keep the machine busy): the CPU seconds of the steps that run
    within the slot's span, over that span (first heavy step's start to the last heavy
    step's end, each step lasting its own work plus its longest task). The slots it takes
    to fill a machine follow: cores / this width.
    """
    heavy = [step.key for step in run.steps if step.pool in HEAVY_POOLS]
    if not heavy:
        raise ValueError(
            f"run of {run.job!r} has no step in the heavy pools {sorted(HEAVY_POOLS)}: it never "
            "holds a symbols slot, so it has no heavy stage to measure"
        )
    start: dict[str, float] = {}
    end: dict[str, float] = {}
    for step in run.steps:
        start[step.key] = max((end[dep] for dep in step.deps), default=0.0)
        longest = max((task.cpu_s for task in step.tasks), default=0.0)
        end[step.key] = start[step.key] + step.serial_s + longest
    first, last = min(start[k] for k in heavy), max(end[k] for k in heavy)
    inside = sum(s.cpu_s for s in run.steps if start[s.key] >= first and end[s.key] <= last)
    return inside / (last - first) if last > first else 0.0


def simulated_plan(
    cores: int, memory_bytes: int | None = None, settings: PlanSettings | None = None
) -> ResourcePlan:
    """The plan `plan_resources` derives for a machine of `cores` (and `MEMORY_PER_CORE`
    per core unless `memory_bytes` says otherwise)."""
    memory = memory_bytes if memory_bytes is not None else cores * MEMORY_PER_CORE
    return plan_resources(MachineResources(cores, memory), settings or PlanSettings())


def simulate(
    run: RecordedRun,
    cores: int,
    *,
    symbols: int = 1,
    elastic: bool = True,
    max_concurrent_runs: int | None = None,
    memory_bytes: int | None = None,
    settings: PlanSettings | None = None,
    parallel_fraction: float = PARALLEL_FRACTION,
    starvation_s: float = STARVATION_S,
) -> SimResult:
    """Replay `run` for `symbols` symbols on a machine of `cores` under the static or the
    elastic policy; `settings` overrides plan figures (e.g. `PlanSettings(symbols=4)`);
    runs start `max_concurrent_runs` at a time, by default the plan's `queued_runs` (what
    the run queue does unless dagster.yaml fixes a number)."""
    plan = simulated_plan(cores, memory_bytes, settings)
    if max_concurrent_runs is None:
        max_concurrent_runs = plan.queued_runs
    if cores < 1 or symbols < 1 or max_concurrent_runs < 1:
        raise ValueError(
            f"cores={cores}, symbols={symbols}, max_concurrent_runs={max_concurrent_runs}: "
            "each must be at least 1"
        )
    if not 0.0 <= parallel_fraction <= 1.0:
        raise ValueError(
            f"parallel_fraction={parallel_fraction} is a share of a task's work: between 0 and 1"
        )
    simulation = _Simulation(
        run, plan, symbols, elastic, max_concurrent_runs, parallel_fraction, starvation_s
    )
    simulation.run()
    makespan = simulation.now
    busy_core_s = sum(span.busy_core_s for span in simulation.spans)
    capacity = cores * makespan
    return SimResult(
        policy=ELASTIC if elastic else STATIC,
        cores=cores,
        symbols=symbols,
        makespan_s=makespan,
        utilization=busy_core_s / capacity if capacity > 0 else 0.0,
        cpu_utilization=symbols * run.cpu_s / capacity if capacity > 0 else 0.0,
        busy_core_s=busy_core_s,
        cores_busy=tuple(simulation.busy_timeline),
        cores_held=tuple(simulation.held_timeline),
        steps=tuple(sorted(simulation.spans, key=lambda s: (s.run, s.start_s, s.key))),
        plan=plan,
    )
