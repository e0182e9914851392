"""Pools inside a step: sized from the step's budget, each worker started with its share."""

from __future__ import annotations

import os
import time

import pytest

from forex_assets.compute.thread_budget import STEP_THREADS_ENV, budget_environment
from forex_assets.compute.worker_pool import (
    budgeted_process_pool,
    budgeted_thread_pool,
    nested_workers,
)


def _report_budget(delay: float = 0.0) -> dict:
    """Runs in a pool worker: the budget it sees, from the environment and its libraries."""
    import numpy  # noqa: F401  (loads the BLAS pool whose size the budget must set)
    import polars
    from threadpoolctl import threadpool_info

    from forex_assets.compute.thread_budget import step_threads

    time.sleep(delay)
    return {
        "pid": os.getpid(),
        "env": os.environ.get(STEP_THREADS_ENV),
        "step_threads": step_threads(),
        "polars": polars.thread_pool_size(),
        "pools": sorted({(p["internal_api"], p["num_threads"]) for p in threadpool_info()}),
        "omp_env": os.environ.get("OMP_NUM_THREADS"),
        "polars_env": os.environ.get("POLARS_MAX_THREADS"),
    }


@pytest.fixture
def step_budget(monkeypatch):
    """Make this process look like a budgeted step of `threads` threads."""

    def set_budget(threads: int) -> None:
        for name, value in budget_environment(threads).items():
            monkeypatch.setenv(name, value)

    return set_budget


# ---------------------------------------------------------------- nested_workers


@pytest.mark.parametrize(
    ("threads", "per_task", "tasks", "expected"),
    [
        (8, 1, None, 8),
        (8, 2, None, 4),
        (8, 3, None, 2),
        (8, 4, None, 2),
        (8, 8, None, 1),
        (8, 9, None, 1),  # a task wider than the budget still runs, alone
        (8, 64, None, 1),
        (8, 2, 3, 3),  # fewer tasks than slots
        (8, 2, 4, 4),
        (8, 2, 100, 4),
        (8, 1, 1, 1),
        (8, 1, 0, 1),
        (1, 1, None, 1),
        (252, 16, None, 15),
        (252, 16, 10, 10),
    ],
)
def test_nested_workers(monkeypatch, threads, per_task, tasks, expected):
    monkeypatch.setenv(STEP_THREADS_ENV, str(threads))
    assert nested_workers(per_task, tasks) == expected


def test_nested_workers_defaults_to_one_thread_per_task(monkeypatch):
    monkeypatch.setenv(STEP_THREADS_ENV, "6")
    assert nested_workers() == 6


@pytest.mark.parametrize("per_task", [0, -1, -8])
def test_nested_workers_rejects_tasks_without_threads(monkeypatch, per_task):
    monkeypatch.setenv(STEP_THREADS_ENV, "8")
    with pytest.raises(ValueError, match=rf"threads_per_task={per_task} must be at least 1"):
        nested_workers(per_task)
    with pytest.raises(ValueError, match="threads_per_task"), budgeted_process_pool(per_task):
        pass


def test_nested_workers_outside_a_step_uses_the_machine(monkeypatch):
    from forex_assets.compute.machine import detect_machine

    monkeypatch.delenv(STEP_THREADS_ENV, raising=False)
    assert nested_workers(1) == detect_machine().cores


# ---------------------------------------------------------------- process pools


def run_pool(threads_per_task: int, tasks: int | None, submissions: int):
    with budgeted_process_pool(threads_per_task, tasks) as pool:
        max_workers = pool._max_workers
        reports = list(pool.map(_report_budget, [0.2] * submissions))
    return max_workers, reports


def test_process_pool_workers_get_their_share(step_budget):
    step_budget(4)  # this step holds 4 threads; its tasks take 2 each
    max_workers, reports = run_pool(threads_per_task=2, tasks=None, submissions=4)
    assert max_workers == 2
    assert len({r["pid"] for r in reports}) <= 2
    assert os.getpid() not in {r["pid"] for r in reports}
    for report in reports:
        assert report["env"] == "2"
        assert report["step_threads"] == 2
        assert report["omp_env"] == "2"
        assert report["polars_env"] == "2"
        assert report["polars"] == 2, report
        assert report["pools"], "no BLAS/OpenMP pool loaded in the worker"
        assert all(threads == 2 for _, threads in report["pools"]), report["pools"]
    # the parent keeps its own budget
    assert os.environ[STEP_THREADS_ENV] == "4"
    assert os.environ["POLARS_MAX_THREADS"] == "4"


def test_process_pool_single_thread_tasks_capped_by_tasks(step_budget):
    step_budget(6)
    max_workers, reports = run_pool(threads_per_task=1, tasks=2, submissions=3)
    assert max_workers == 2
    assert len({r["pid"] for r in reports}) <= 2
    for report in reports:
        assert report["env"] == "1"
        assert report["step_threads"] == 1
        assert report["polars"] == 1, report  # polars is loaded before the initializer runs
        assert all(threads == 1 for _, threads in report["pools"]), report["pools"]


def test_process_pool_task_wider_than_the_budget_gets_the_budget(monkeypatch):
    monkeypatch.setenv(STEP_THREADS_ENV, "1")
    with budgeted_process_pool(threads_per_task=4) as pool:
        assert pool._max_workers == 1
        report = pool.submit(_report_budget).result(timeout=120)
    assert report["env"] == "1"
    assert report["polars"] == 1


# ---------------------------------------------------------------- thread pools


@pytest.mark.parametrize(("threads", "tasks", "expected"), [(8, None, 8), (8, 3, 3), (1, 5, 1)])
def test_thread_pool_size(monkeypatch, threads, tasks, expected):
    monkeypatch.setenv(STEP_THREADS_ENV, str(threads))
    with budgeted_thread_pool(tasks) as pool:
        assert pool._max_workers == expected
        assert list(pool.map(lambda x: x * 2, range(5))) == [0, 2, 4, 6, 8]


# ---------------------------------------------------------------- stopping


def _alive(pid: int) -> bool:
    from forex_assets.processes import process_alive

    return process_alive(pid)


def _wait_until_gone(pids: list[int], timeout_s: float = 10) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while (left := [p for p in pids if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def test_an_interrupted_step_stops_its_pool_instead_of_waiting_for_it(step_budget):
    step_budget(2)
    with pytest.raises(KeyboardInterrupt), budgeted_process_pool() as pool:
        pids = list(pool.map(_report_budget, [0.2, 0.2]))
        pids = sorted({r["pid"] for r in pids})
        pool.submit(time.sleep, 600)  # a task nobody will collect
        raise KeyboardInterrupt  # what SIGINT or SIGTERM raises in the step
    assert _wait_until_gone(pids) == []


_ORPHANED_POOL = """
import os, sys, time
from forex_assets.compute.worker_pool import budgeted_process_pool
with budgeted_process_pool() as pool:
    pids = {pool.submit(os.getpid).result() for _ in range(8)}
    pool.submit(time.sleep, 600)
    print(" ".join(map(str, sorted(pids))), flush=True)
    time.sleep(600)
"""


def test_pool_workers_exit_when_their_step_is_killed(step_budget):
    import signal
    import subprocess
    import sys

    step_budget(2)
    step = subprocess.Popen(
        [sys.executable, "-c", _ORPHANED_POOL], stdout=subprocess.PIPE, text=True
    )
    pids = [int(p) for p in step.stdout.readline().split()]
    assert pids and all(_alive(p) for p in pids)
    step.send_signal(signal.SIGKILL)
    step.wait()
    assert _wait_until_gone(pids) == []  # none finishes its task or idles on forever
