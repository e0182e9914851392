"""Worker pools inside a step, sized from the step's own budget so nesting composes.

A step that fans out (CPCV splits, CMA-ES islands) must not size its pool from the
machine: the executor may run several such steps at once, each with a share of the
cores. `budgeted_process_pool` gives a step ``step_threads() // threads_per_task``
workers, each started (with `spawn`, never `fork`: forking a process whose OpenMP runtime
has started threads can deadlock the child) with a budget of `threads_per_task` threads,
so the whole tree of processes and threads stays inside the step's share.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from multiprocessing.context import SpawnContext, SpawnProcess

from forex_assets.compute.thread_budget import apply_budget, environment_for_children, step_threads
from forex_assets.processes import exit_with_parent


def nested_workers(threads_per_task: int = 1, tasks: int | None = None) -> int:
    """How many tasks of `threads_per_task` threads fit in this step's budget at once."""
    if threads_per_task < 1:
        raise ValueError(f"threads_per_task={threads_per_task} must be at least 1")
    workers = max(1, step_threads() // threads_per_task)
    return workers if tasks is None else max(1, min(workers, tasks))


def _initialize_worker(threads: int) -> None:
    exit_with_parent()
    apply_budget(threads)


class _BudgetedSpawnProcess(SpawnProcess):
    """A spawned worker that starts with its budget in its environment.

    The initializer comes too late for polars, which fixes its pool size when it loads:
    unpickling the initializer imports this package, and with it polars.
    """

    def __init__(self, *args, threads: int, **kwargs):
        super().__init__(*args, **kwargs)
        self._threads = threads

    def start(self) -> None:
        with environment_for_children(self._threads):
            super().start()


def _budgeted_spawn_context(threads: int) -> SpawnContext:
    context = SpawnContext()
    context.Process = functools.partial(_BudgetedSpawnProcess, threads=threads)
    return context


@contextmanager
def budgeted_process_pool(
    threads_per_task: int = 1, tasks: int | None = None
) -> Iterator[ProcessPoolExecutor]:
    """A process pool whose workers together use at most this step's threads."""
    workers = nested_workers(threads_per_task, tasks)
    threads = max(1, min(threads_per_task, step_threads()))
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=_budgeted_spawn_context(threads),
        initializer=_initialize_worker,
        initargs=(threads,),
    )
    try:
        yield pool
    except BaseException:
        # An interrupted (SIGTERM, Ctrl-C) or failed step must not wait for the tasks it
        # will never collect, which plain `with pool` does.
        for process in list(pool._processes.values()):
            process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


@contextmanager
def budgeted_thread_pool(tasks: int | None = None) -> Iterator[ThreadPoolExecutor]:
    """Threads for kernels that release the GIL (numba nogil, TA-Lib), one per budget core."""
    with ThreadPoolExecutor(max_workers=nested_workers(1, tasks)) as pool:
        yield pool
