"""Worker processes for a step's tasks that grow into idle cores and give them back.

A step that fans out (CPCV split tasks, strategy islands) runs its tasks here. The step
holds its floor for its whole run; before each task starts, the pool looks at what is
free right then: the floor its running tasks leave, plus (for an elastic step under the
budgeted executor) the idle cores of the machine that no waiting step needs, leased from
the core ledger for that task alone and returned when it ends. The task's width comes
from `task_shapes.task_threads` (the free cores shared by the work left), so 16 tasks on
16 free cores run 16 x 1 and the last two run 2 x 8. The heaviest task starts first.
Once nothing is left to start, the cores that come free widen the running tasks that
can grow (`Task.grows`: their loops poll `task_grants.granted_threads()`), a core at a
time to the narrowest, leased like a task's own, so the last tasks of a fan-out do not
run alone on one core each while the rest of the machine idles.
With `elastic` off (the static plan, `execution: config: {elastic: false}`) every task
gets the floor split evenly over all tasks, as the plan always did, and none grows.

Workers are started lazily (`spawn`, never `fork`: forking a process whose OpenMP runtime
has started threads can deadlock the child), at most one per usable core, without the
parent's main module where no task is defined in it (a spawned child otherwise runs it
again: under `dagster job execute` that is the whole Dagster CLI, two seconds a worker),
each with a one-thread environment for the libraries that fix their pools at import (polars) and
the machine's cores as numba's ceiling; each task then gets its width with
`apply_budget`, which is what `step_threads()` and `lightgbm_threads()` read inside it.
"""

from __future__ import annotations

import functools
import itertools
import os
import sys
import time
import types
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Any, Generic, TypeVar

from forex_assets.compute.core_ledger import lease_holder
from forex_assets.compute.step_budget import CoreLeases, StepBudget
from forex_assets.compute.task_grants import GrantBoard, following_grant
from forex_assets.compute.task_shapes import longest_first, static_threads, task_threads
from forex_assets.compute.thread_budget import apply_budget, environment_for_children
from forex_assets.processes import exit_with_parent

R = TypeVar("R")
# The metadata key under which a fanned-out step lists its `TaskRecord`s (as JSON).
TASKS_METADATA = "tasks"
# How often a pool that could not start its next task looks at the ledger again.
LEASE_POLL_S = 0.1
# How often a pool with nothing left to start looks for cores to widen its running tasks
# with (its own tasks' ends wake it at once; this is for cores other steps give back).
GROWTH_POLL_S = 0.5


@dataclass(frozen=True)
class Task(Generic[R]):
    """One unit of a step's work: a picklable call (a module-level function or a
    `functools.partial` of one) that reads its width with `step_threads()`."""

    name: str
    call: Callable[[], R]
    weight: float = 1.0  # relative size; sets start order and share of the free cores
    # whether the call polls `granted_threads()` and widens itself while it runs
    grows: bool = False


@dataclass(frozen=True)
class TaskRecord:
    """How a task ran, for the step's metadata and the scheduling simulator."""

    task: str
    threads: int
    leased: int  # of `threads`, how many were leased beyond the step's floor
    start_s: float  # seconds since the epoch: comparable across the pools of one step
    seconds: float
    cpu_s: float  # CPU time of the task's process while it ran the task (all threads)
    grown_to: int = 0  # the most threads it was granted while it ran (0: never widened)
    grows: bool = False  # whether it can widen (`Task.grows`; only an elastic step lets it)

    def as_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "threads": self.threads,
            "grown_to": self.grown_to,
            "grows": self.grows,
            "leased": self.leased,
            "start_s": round(self.start_s, 3),
            "seconds": round(self.seconds, 3),
            "cpu_s": round(self.cpu_s, 3),
        }


def task_shape_summary(records: Sequence[TaskRecord]) -> str:
    """One line for the UI: how wide the tasks ran and how many leased idle cores."""
    if not records:
        return "no tasks"
    widths = Counter(r.threads for r in records)
    shapes = ", ".join(f"{n} task(s) x {t} thread(s)" for t, n in sorted(widths.items()))
    leased = sum(1 for r in records if r.leased)
    return f"{shapes}; {leased} of {len(records)} task(s) ran on leased idle cores"


def _initialize_worker() -> None:
    exit_with_parent()
    # polars sizes its pool once, at import, from the one-thread environment the worker
    # started with: import it now, before a wider task's budget reaches the environment,
    # so a later narrower task cannot find a wider polars pool.
    import polars  # noqa: F401


def _run_task(call: Callable[[], R], threads: int, board: str, slot: int) -> tuple[R, float]:
    apply_budget(threads)
    cpu = time.process_time()
    with following_grant(board, slot):
        return call(), time.process_time() - cpu


def _defined_in_main(call: Callable) -> bool:
    target = call.func if isinstance(call, functools.partial) else call
    return getattr(target, "__module__", None) == "__main__"


@contextmanager
def _main_module_hidden() -> Iterator[None]:
    """Within the block, a process spawned now does not re-run this one's main module:
    multiprocessing tells the child to import `sys.modules["__main__"]` by its name or
    path, and a bare module has neither."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


class _SpawnWithEnvironment(SpawnProcess):
    """A spawned worker whose environment is set before it starts (polars fixes its
    pool at import, which happens while the worker unpickles its first call), and that
    skips the parent's main module unless a task needs it (`needs_main()`)."""

    def __init__(self, *args, capacity: int, needs_main: Callable[[], bool], **kwargs):
        super().__init__(*args, **kwargs)
        self._capacity = capacity
        self._needs_main = needs_main

    def start(self) -> None:
        needs_main = self.__dict__.pop("_needs_main")()  # the process object is pickled
        with ExitStack() as stack:
            stack.enter_context(
                environment_for_children(1, overrides={"NUMBA_NUM_THREADS": str(self._capacity)})
            )
            if not needs_main:
                stack.enter_context(_main_module_hidden())
            super().start()


@dataclass
class _Running:
    index: int
    threads: int
    from_floor: int
    lease: str | None
    leased: int
    start: float
    slot: int
    grows: bool
    growth: list[str] = field(default_factory=list)  # lease holders of its widening
    grown_to: int = 0


class ElasticPool:
    """Runs a step's tasks within its floor plus the cores it may lease; see the module."""

    def __init__(self, budget: StepBudget | None = None, max_threads: int | None = None):
        self.budget = budget or StepBudget.current()
        self.max_threads = max(1, min(max_threads or self.budget.capacity, self.budget.capacity))
        self._leases: CoreLeases | None = self.budget.leases()
        context = SpawnContext()
        context.Process = functools.partial(
            _SpawnWithEnvironment,
            capacity=self.budget.capacity,
            needs_main=lambda: self._needs_main,
        )
        self._needs_main = False
        self._executor = ProcessPoolExecutor(
            max_workers=self.budget.capacity, mp_context=context, initializer=_initialize_worker
        )
        self._lease_numbers = itertools.count()
        self._epoch = time.time() - time.monotonic()  # monotonic -> epoch seconds
        self._running: dict[Future, _Running] = {}
        self._board = GrantBoard(self.budget.capacity)
        self.records: list[TaskRecord] = []

    def __enter__(self) -> ElasticPool:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        try:
            if kind is None:
                self._executor.shutdown(wait=True)
                return
            # An interrupted (SIGTERM, Ctrl-C) or failed step must not wait for tasks it
            # will never collect, which a plain shutdown does.
            for process in list(self._executor._processes.values()):
                process.terminate()
            self._executor.shutdown(wait=True, cancel_futures=True)
            for running in self._running.values():
                self._return(running)
            self._running.clear()
        finally:
            self._board.close()

    def _return(self, running: _Running) -> None:
        """Give back what a task held beyond the floor: its start lease and its widening."""
        if self._leases is None:
            return
        for holder in [running.lease, *running.growth]:
            if holder:
                self._leases.release(holder)

    @contextmanager
    def held_threads(self, max_threads: int | None = None) -> Iterator[int]:
        """Threads for work the step does itself, in this process, while no task runs (a
        model type's one-off preparation before its tasks): the floor plus, for an elastic
        step, the idle cores it can lease now, up to `max_threads`; the lease is returned
        when the block ends."""
        if self._running:
            raise RuntimeError(
                f"held_threads() with {len(self._running)} task(s) running: the floor is "
                "theirs; call it between batches, when the pool is idle"
            )
        ceiling = min(self.max_threads, max_threads or self.max_threads)
        floor = min(self.budget.floor, ceiling)
        lease = None
        leased = 0
        if self._leases is not None and self.budget.holder is not None:
            lease = lease_holder(self.budget.holder, f"{os.getpid()}-{next(self._lease_numbers)}")
            leased = self._leases.lease(lease, lambda leasable: min(leasable, ceiling - floor))
        try:
            yield floor + leased
        finally:
            if leased and self._leases is not None and lease is not None:
                self._leases.release(lease)

    def _threads(self, free: int, weight: float, remaining: float, tasks: int, ceiling: int) -> int:
        if self.budget.elastic:
            return min(ceiling, task_threads(free, weight, remaining))
        return min(ceiling, static_threads(self.budget.floor, tasks))

    def _start(self, index: int, task: Task, remaining: float, tasks: int, ceiling: int) -> bool:
        """Start `task` if cores are free for it now; False leaves it waiting."""
        floor_free = self.budget.floor - sum(r.from_floor for r in self._running.values())
        chosen = {"threads": 0}

        def want(leasable: int) -> int:
            free = floor_free + leasable
            if free < 1:
                return 0
            chosen["threads"] = self._threads(free, task.weight, remaining, tasks, ceiling)
            return max(0, chosen["threads"] - floor_free)

        lease = None
        if self._leases is not None and self.budget.holder is not None:
            lease = lease_holder(self.budget.holder, f"{os.getpid()}-{next(self._lease_numbers)}")
            leased = self._leases.lease(lease, want)
        else:
            leased = want(0)
        threads = chosen["threads"]
        if threads < 1 or (not self.budget.elastic and threads > floor_free):
            return False
        slot = min(set(range(self._board.slots)) - {r.slot for r in self._running.values()})
        self._board.grant(slot, threads)
        future = self._executor.submit(_run_task, task.call, threads, self._board.path, slot)
        self._running[future] = _Running(
            index,
            threads,
            threads - leased,
            lease if leased else None,
            leased,
            time.monotonic(),
            slot,
            task.grows,
        )
        return True

    def _widths(self) -> dict[Future, int]:
        return {f: r.grown_to or r.threads for f, r in self._running.items()}

    def _grow(self, ceiling: int) -> bool:
        """With nothing left to start: widen the running tasks that can grow into the floor
        the finished ones left and the idle cores the ledger lends, a core at a time to the
        narrowest, so they share what is free. True while some task could still grow (worth
        looking again once cores come free)."""
        if not self.budget.elastic:  # the static plan: every width fixed at the start
            return False
        while True:
            widths = self._widths()
            growable = [f for f, r in self._running.items() if r.grows and widths[f] < ceiling]
            if not growable:
                return False
            # the narrowest first; of equals, the one started last has the most work left
            future = min(growable, key=lambda f: (widths[f], -self._running[f].start))
            running = self._running[future]
            floor_free = self.budget.floor - sum(r.from_floor for r in self._running.values())
            if floor_free > 0:
                running.from_floor += 1
            elif self._leases is not None and self.budget.holder is not None:
                holder = lease_holder(
                    self.budget.holder, f"{os.getpid()}-{next(self._lease_numbers)}"
                )
                if not self._leases.lease(holder, lambda leasable: min(leasable, 1)):
                    return True
                running.growth.append(holder)
            else:
                return True
            running.grown_to = widths[future] + 1
            self._board.grant(running.slot, running.grown_to)

    def run(
        self, tasks: Sequence[Task[R]], max_threads: int | None = None
    ) -> Iterator[tuple[int, R]]:
        """(index into `tasks`, result) of each task as it finishes; heaviest first.

        `max_threads` narrows this batch's tasks below the pool's own ceiling (a batch of
        single-threaded fits after a batch of wide ones reuses the same warm workers)."""
        ceiling = min(self.max_threads, max_threads or self.max_threads)
        pending = longest_first([task.weight for task in tasks])
        self._needs_main = self._needs_main or any(_defined_in_main(t.call) for t in tasks)
        while pending or self._running:
            while pending:
                remaining = sum(tasks[i].weight for i in pending)
                if not self._start(pending[0], tasks[pending[0]], remaining, len(tasks), ceiling):
                    break
                pending.pop(0)
            may_grow = not pending and self._grow(ceiling)
            done, _ = wait(
                list(self._running),
                timeout=LEASE_POLL_S if pending else GROWTH_POLL_S if may_grow else None,
                return_when=FIRST_COMPLETED,
            )
            for future in done:
                running = self._running.pop(future)
                self._return(running)
                result, cpu = future.result()
                now = time.monotonic()
                self.records.append(
                    TaskRecord(
                        tasks[running.index].name,
                        running.threads,
                        running.leased,
                        self._epoch + running.start,
                        now - running.start,
                        cpu,
                        running.grown_to,
                        running.grows,
                    )
                )
                yield running.index, result

    def map(self, tasks: Sequence[Task[R]], max_threads: int | None = None) -> list[R]:
        """Every task's result, in the order of `tasks` (`max_threads` as in `run`)."""
        results = dict(self.run(tasks, max_threads))
        return [results[i] for i in range(len(tasks))]
