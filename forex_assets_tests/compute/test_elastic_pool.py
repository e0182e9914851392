"""The elastic pool: tasks within the step's floor plus leased idle cores, never beyond.

Each test builds the pool from an explicit `StepBudget` over a real core ledger in a temp
dir; the tasks run in real spawned workers and report the width they were given.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numba
import pytest

from forex_assets.compute.core_ledger import CoreLedger
from forex_assets.compute.elastic_pool import ElasticPool, Task, task_shape_summary
from forex_assets.compute.step_budget import StepBudget
from forex_assets.compute.thread_budget import STEP_THREADS_ENV, budget_environment
from forex_assets.processes import process_alive

REPO = Path(__file__).resolve().parents[2]


def _report(delay: float = 0.0) -> dict:
    """Runs in a pool worker: the width it was given, as its libraries see it."""
    import polars
    from threadpoolctl import threadpool_info

    from forex_assets.compute.thread_budget import step_threads

    time.sleep(delay)
    return {
        "pid": os.getpid(),
        "step_threads": step_threads(),
        "polars": polars.thread_pool_size(),
        "openmp": sorted(
            {p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp"}
        ),
    }


def _fail() -> None:
    raise RuntimeError("task failed on purpose")


def tasks(count: int, delay: float = 0.3) -> list[Task]:
    return [Task(f"t{i}", lambda_free(delay)) for i in range(count)]


def lambda_free(delay: float):
    import functools

    return functools.partial(_report, delay)


@pytest.fixture
def ledger(tmp_path) -> CoreLedger:
    return CoreLedger(tmp_path / "ledger.sqlite", 4)


def budget(ledger: CoreLedger, floor: int, elastic: bool = True) -> StepBudget:
    return StepBudget(floor, ledger.capacity, elastic, ledger.path, "run:step")


def overlapping_threads(records) -> int:
    """The most threads the pool's tasks had at once."""
    starts = sorted(r.start_s for r in records)
    return max(
        sum(r.threads for r in records if r.start_s <= at < r.start_s + r.seconds) for at in starts
    )


def test_an_elastic_step_grows_into_idle_cores_and_gives_them_back(ledger):
    assert ledger.try_acquire("run:step", 1)  # the step's floor
    assert ledger.try_acquire("other:step", 1)  # another run holds one core
    with ElasticPool(budget(ledger, floor=1)) as pool:
        reports = pool.map(tasks(6))
        records = pool.records
    assert len(records) == 6
    assert max(r.leased for r in records) >= 1, "never leased the 2 idle cores"
    # floor 1 + the 2 idle cores: never more, with the other run's core counted
    assert overlapping_threads(records) <= 3
    assert all(r["step_threads"] == rec.threads for r, rec in zip(reports, records, strict=False))
    assert ledger.held() == 2  # every lease came back; the floor and the other run remain
    assert [h.holder for h in ledger.holdings()] == ["run:step", "other:step"]
    history = ledger.history("run:step/lease/")
    assert history and all(span.end is not None for span in history)


def test_task_widths_share_the_free_cores_among_the_tasks_left(ledger):
    assert ledger.try_acquire("run:step", 1)
    with ElasticPool(budget(ledger, floor=1)) as pool:
        reports = pool.map(tasks(2, delay=0.5))
    # 4 free cores, 2 tasks: 2 x 2, not 1 + 3 and not 4 + 1 queued
    assert sorted(r["step_threads"] for r in reports) == [2, 2]
    assert all(r["openmp"] in ([], [2]) for r in reports), reports
    assert all(r["polars"] == 1 for r in reports)  # fixed at import: one thread per worker
    assert "2 task(s) x 2 thread(s)" in task_shape_summary(pool.records)


def test_leases_never_take_the_cores_a_waiting_step_needs(ledger):
    assert ledger.try_acquire("run:step", 1)
    ledger.set_waiting("run2:", {"run2:big": 3})  # 3 free, all needed by the waiting step
    with ElasticPool(budget(ledger, floor=1)) as pool:
        pool.map(tasks(3, delay=0.1))
    assert [r.leased for r in pool.records] == [0, 0, 0]
    assert [r.threads for r in pool.records] == [1, 1, 1]
    assert ledger.try_acquire("run2:big", 3)  # admitted as soon as it asks again
    assert ledger.waiting() == {}


def test_the_static_plan_splits_the_floor_evenly_and_leases_nothing(ledger):
    assert ledger.try_acquire("run:step", 2)
    with ElasticPool(budget(ledger, floor=2, elastic=False)) as pool:
        reports = pool.map(tasks(4, delay=0.1))
    assert [r["step_threads"] for r in reports] == [1, 1, 1, 1]
    assert all(r.leased == 0 for r in pool.records)
    assert overlapping_threads(pool.records) <= 2


def test_the_steps_own_work_between_batches_leases_idle_cores_and_returns_them(ledger):
    assert ledger.try_acquire("run:step", 1)  # the step's floor
    assert ledger.try_acquire("other:step", 1)  # another run holds one core
    with ElasticPool(budget(ledger, floor=1)) as pool:
        with pool.held_threads() as threads:
            assert threads == 3  # the floor and the 2 idle cores
            assert ledger.held() == 4
        assert ledger.held() == 2  # the lease came back
        with pool.held_threads(max_threads=2) as threads:
            assert threads == 2
    with (
        ElasticPool(budget(ledger, floor=1, elastic=False)) as pool,
        pool.held_threads() as threads,
    ):
        assert threads == 1  # the static plan: the floor alone
        assert ledger.held() == 2


def _widening(seconds: float) -> tuple[int, int]:
    """Runs in a pool worker: (start width, widest grant seen) over `seconds` of polling."""
    from forex_assets.compute.task_grants import granted_threads
    from forex_assets.compute.thread_budget import step_threads

    start = widest = step_threads()
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        widest = granted_threads(widest)
        time.sleep(0.01)
    return start, widest


def peak_held(ledger: CoreLedger, prefix: str = "") -> int:
    """The most cores the ledger's history shows held at once."""
    spans = ledger.history(prefix)
    return max(
        sum(s.cores for s in spans if s.start <= at.start and (s.end is None or at.start < s.end))
        for at in spans
    )


def test_the_last_running_tasks_widen_into_the_cores_the_finished_ones_gave_back(ledger):
    import functools

    assert ledger.try_acquire("run:step", 1)  # the step's floor
    long = Task("long", functools.partial(_widening, 4.0), weight=1.0, grows=True)
    short = [Task(f"short{i}", functools.partial(_report, 0.3)) for i in range(3)]
    with ElasticPool(budget(ledger, floor=1)) as pool:
        (start, widest), *_ = pool.map([long, *short])
    [record] = [r for r in pool.records if r.task == "long"]
    assert start == 1  # 4 tasks on 4 free cores: one each
    assert widest == 4 == record.grown_to  # then every core the short ones gave back
    assert peak_held(ledger) <= ledger.capacity
    assert ledger.held() == 1  # every lease came back: the floor remains


def test_a_task_that_does_not_grow_keeps_its_width_and_the_static_plan_grows_none(ledger):
    import functools

    assert ledger.try_acquire("run:step", 2)
    fixed = Task("fixed", functools.partial(_widening, 2.5))
    with ElasticPool(budget(ledger, floor=2)) as pool:
        (_, widest), *_ = pool.map([fixed, *tasks(3)])
    assert widest == 1 and pool.records[-1].grown_to == 0  # 4 x 1, then still 1
    static = Task("static", functools.partial(_widening, 2.5), grows=True)
    with ElasticPool(budget(ledger, floor=2, elastic=False)) as pool:
        (_, widest), _ = pool.map([static, *tasks(1)])
    assert widest == 1 and all(r.grown_to == 0 for r in pool.records)  # 2 x 1 of the floor


def test_outside_the_executor_the_floor_is_the_step_budget(monkeypatch):
    for name, value in budget_environment(2).items():
        monkeypatch.setenv(name, value)
    current = StepBudget.current()
    assert (current.floor, current.capacity, current.ledger_path) == (2, 2, None)
    with ElasticPool() as pool:
        reports = pool.map(tasks(3, delay=0.2))
    assert overlapping_threads(pool.records) <= 2
    assert {r["pid"] for r in reports}.isdisjoint({os.getpid()})
    assert os.environ[STEP_THREADS_ENV] == "2"  # the parent keeps its own budget


def test_a_failed_task_fails_the_step_and_returns_its_leases(ledger):
    assert ledger.try_acquire("run:step", 1)
    with pytest.raises(RuntimeError, match="on purpose"), ElasticPool(budget(ledger, 1)) as pool:
        pool.map([Task("slow", lambda_free(2.0)), Task("bad", _fail, weight=0.5)])
    assert ledger.held() == 1


def test_step_budget_refuses_a_floor_beyond_the_machine(tmp_path):
    with pytest.raises(ValueError, match="floor=5, capacity=4"):
        StepBudget(5, 4, True)
    with pytest.raises(ValueError, match="give both or neither"):
        StepBudget(1, 4, True, tmp_path / "ledger.sqlite", None)


_KILLED_STEP = """
import functools, os, sys, time
from pathlib import Path
from forex_assets.compute.elastic_pool import ElasticPool, Task
from forex_assets.compute.step_budget import StepBudget
budget = StepBudget(1, 4, True, Path(sys.argv[1]), "run:step")
with ElasticPool(budget) as pool:
    for index, _ in pool.run([Task(f"t{i}", functools.partial(time.sleep, 600)) for i in range(3)]):
        pass
"""


def test_a_killed_steps_leases_and_workers_are_reaped(ledger, tmp_path):
    assert ledger.try_acquire("run:step", 1)  # the floor, as the orchestrator holds it
    log = (tmp_path / "step.log").open("w")
    step = subprocess.Popen(
        [sys.executable, "-c", _KILLED_STEP, str(ledger.path)], cwd=REPO, stdout=log, stderr=log
    )
    deadline = time.monotonic() + 60
    while ledger.held() < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    leases = [h for h in ledger.holdings() if "/lease/" in h.holder]
    assert sum(h.cores for h in leases) == 3, ledger.holdings()
    workers = [int(p) for p in subprocess.check_output(["pgrep", "-P", str(step.pid)]).split()]
    step.send_signal(signal.SIGKILL)
    step.wait(timeout=30)
    assert ledger.held() == 1  # the dead step's leases are reaped at the next look
    deadline = time.monotonic() + 15
    while any(process_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(process_alive(p) for p in workers)


def test_a_narrower_batch_reuses_the_warm_workers_of_a_wide_one(ledger):
    assert ledger.try_acquire("run:step", 2)
    assert ledger.try_acquire("other:step", 2)  # nothing to lease: the floor's 2 cores
    with ElasticPool(budget(ledger, floor=2)) as pool:
        wide = pool.map(tasks(1))
        narrow = pool.map(tasks(2), max_threads=1)
        again = pool.map(tasks(1))
    assert [r["step_threads"] for r in wide + narrow + again] == [2, 1, 1, 2]
    assert [r.threads for r in pool.records] == [2, 1, 1, 2]
    # The wide batch's worker, idle when the narrow one starts, takes its first task.
    assert wide[0]["pid"] in {r["pid"] for r in narrow}


def _numba_kernel_after_budget(threads: int) -> int:
    """A task compiling a numba function after its budget narrowed numba's pool."""
    import numpy as np

    @numba.njit(parallel=True)
    def total(values):
        out = 0.0
        for i in numba.prange(values.size):
            out += values[i]
        return out

    total(np.ones(10))
    return numba.get_num_threads()


def test_tasks_compile_numba_kernels_under_a_narrower_width_than_the_ceiling(ledger):
    import functools

    assert ledger.try_acquire("run:step", 1)
    with ElasticPool(budget(ledger, floor=1), max_threads=1) as pool:
        widths = pool.map(
            [Task(f"n{i}", functools.partial(_numba_kernel_after_budget, 1)) for i in range(2)]
        )
    assert widths == [1, 1]


def _main_module_was_rerun() -> bool:
    """Runs in a pool worker: whether the parent's main script ran again in it (the
    worker's own main is the `-c` stub that starts it, which has no file)."""
    return getattr(sys.modules.get("__mp_main__"), "__file__", None) is not None


_SCRIPT_WITH_OWN_TASK = """
import sys
from forex_assets.compute.elastic_pool import ElasticPool, Task
from forex_assets_tests.compute.test_elastic_pool import _main_module_was_rerun

def in_this_script() -> int:
    return 7

if __name__ == "__main__":
    with ElasticPool() as pool:
        print("package task, main re-run:", pool.map([Task("probe", _main_module_was_rerun)]))
    with ElasticPool() as pool:
        print("script task:", pool.map([Task("own", in_this_script)]))
"""


def test_workers_skip_the_parents_main_script_unless_a_task_lives_there(tmp_path):
    script = tmp_path / "launcher.py"  # as `dagster job execute` is a script that starts steps
    script.write_text(_SCRIPT_WITH_OWN_TASK)
    ran = subprocess.run(
        [sys.executable, str(script)], cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert "package task, main re-run: [False]" in ran.stdout
    assert "script task: [7]" in ran.stdout
