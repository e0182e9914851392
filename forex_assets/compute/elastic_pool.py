"""Worker processes for a step's tasks that grow into idle cores and give them back.

A step that fans out (CPCV split tasks, strategy islands) runs its tasks here. The step
holds its floor for its whole run; before each task starts, the pool looks at what is
free right then: the floor its running tasks leave, plus (for an elastic step under the
budgeted executor) the idle cores of the machine that no waiting step needs, leased from
the core ledger for that task alone and returned when it ends. The task's width comes
from `task_shapes.task_threads` (the free cores shared by the work left), so 16 tasks on
16 free cores run 16 x 1 and the last two run 2 x 8. The heaviest task starts first.
With `elastic` off (the static plan, `execution: config: {elastic: false}`) every task
gets the floor split evenly over all tasks, as the plan always did.

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
from dataclasses import dataclass
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Any, Generic, TypeVar

from forex_assets.compute.core_ledger import lease_holder
from forex_assets.compute.step_budget import CoreLeases, StepBudget
from forex_assets.compute.task_shapes import longest_first, static_threads, task_threads
from forex_assets.compute.thread_budget import apply_budget, environment_for_children
from forex_assets.processes import exit_with_parent

R = TypeVar("R")
# The metadata key under which a fanned-out step lists its `TaskRecord`s (as JSON).
TASKS_METADATA = "tasks"
# How often a pool that could not start its next task looks at the ledger again.
LEASE_POLL_S = 0.1


@dataclass(frozen=True)
class Task(Generic[R]):
    """One unit of a step's work: a picklable call (a module-level function or a
    `functools.partial` of one) that reads its width with `step_threads()`."""

    name: str
    call: Callable[[], R]
    weight: float = 1.0  # relative size; sets start order and share of the free cores


@dataclass(frozen=True)
class TaskRecord:
    """How a task ran, for the step's metadata and the scheduling simulator."""

    task: str
    threads: int
    leased: int  # of `threads`, how many were leased beyond the step's floor
    start_s: float  # seconds since the epoch: comparable across the pools of one step
    seconds: float
    cpu_s: float  # CPU time of the task's process while it ran the task (all threads)

    def as_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "threads": self.threads,
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


def _run_task(call: Callable[[], R], threads: int) -> tuple[R, float]:
    apply_budget(threads)
    cpu = time.process_time()
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
        self.records: list[TaskRecord] = []

    def __enter__(self) -> ElasticPool:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if kind is None:
            self._executor.shutdown(wait=True)
            return
        # An interrupted (SIGTERM, Ctrl-C) or failed step must not wait for tasks it will
        # never collect, which a plain shutdown does.
        for process in list(self._executor._processes.values()):
            process.terminate()
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._return_leases()

    def _return_leases(self) -> None:
        for running in self._running.values():
            if running.lease and self._leases is not None:
                self._leases.release(running.lease)
        self._running.clear()

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
        future = self._executor.submit(_run_task, task.call, threads)
        self._running[future] = _Running(
            index, threads, threads - leased, lease if leased else None, leased, time.monotonic()
        )
        return True

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
            done, _ = wait(
                list(self._running),
                timeout=LEASE_POLL_S if pending else None,
                return_when=FIRST_COMPLETED,
            )
            for future in done:
                running = self._running.pop(future)
                if running.lease and self._leases is not None:
                    self._leases.release(running.lease)
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
                    )
                )
                yield running.index, result

    def map(self, tasks: Sequence[Task[R]], max_threads: int | None = None) -> list[R]:
        """Every task's result, in the order of `tasks` (`max_threads` as in `run`)."""
        results = dict(self.run(tasks, max_threads))
        return [results[i] for i in range(len(tasks))]
