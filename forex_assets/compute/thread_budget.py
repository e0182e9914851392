"""Giving a process its thread budget, before and after its libraries start threads.

Most numeric libraries size their thread pools once, when they first start them, from
environment variables: OpenMP and the BLAS libraries (`OMP_NUM_THREADS`, ...), polars
(`POLARS_MAX_THREADS`, fixed at import), numba (`NUMBA_NUM_THREADS`, a ceiling for
`set_num_threads`). Processes that run budgeted steps are therefore started with the
budget in their environment (`budget_environment`), and `apply_budget` additionally
narrows the pools of libraries that are already loaded (threadpoolctl for OpenMP/BLAS,
`torch.set_num_threads`, `numba.set_num_threads`). Step code reads its budget with
`step_threads()` and passes it on where a library takes it as a parameter (LightGBM's
`num_threads`).

OpenMP threads spin while they wait for work. With exact budgets that is fastest, but
only for a bounded time (`SPIN_BEFORE_SLEEP`): a worker's OpenMP pool outlives the task
that sized it, and an unbounded spin (what `OMP_WAIT_POLICY=ACTIVE` alone means to GNU
OpenMP) keeps a core busy for nothing after a two-thread task while the worker runs a
one-thread one, or waits for its next task. Where a budget cannot be guaranteed (a step
run in-process next to other work) the environment asks for passive waiting, which turns
an accidental oversubscription into a mild slowdown instead of a collapse.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

STEP_THREADS_ENV = "FOREX_ASSETS_STEP_THREADS"
BLAS_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
LIBRARY_THREAD_VARIABLES = ("POLARS_MAX_THREADS", "NUMBA_NUM_THREADS", "RAYON_NUM_THREADS")
# How long an idle OpenMP thread spins before it sleeps, in GNU OpenMP's spins (its own
# default when no wait policy is set: well under a millisecond, as fast as spinning for
# good within a task) and LLVM OpenMP's milliseconds; passive waiting does not spin.
SPIN_BEFORE_SLEEP = {"GOMP_SPINCOUNT": "300000", "KMP_BLOCKTIME": "1"}
NO_SPIN = {"GOMP_SPINCOUNT": "0", "KMP_BLOCKTIME": "0"}


def budget_environment(
    threads: int, blas_cap: int | None = None, exact: bool = True
) -> dict[str, str]:
    """Variables that give a process `threads` threads in every library it may load."""
    blas = str(max(1, min(threads, blas_cap or threads)))
    environment = {name: blas for name in BLAS_THREAD_VARIABLES}
    environment.update({name: str(threads) for name in LIBRARY_THREAD_VARIABLES})
    environment[STEP_THREADS_ENV] = str(threads)
    environment["OMP_WAIT_POLICY"] = "ACTIVE" if exact else "PASSIVE"
    environment.update(SPIN_BEFORE_SLEEP if exact else NO_SPIN)
    return environment


_environment_lock = threading.Lock()


@contextmanager
def environment_for_children(
    threads: int, blas_cap: int | None = None, overrides: Mapping[str, str] | None = None
) -> Iterator[None]:
    """Within this block, processes started (spawned) by this one inherit the budget.

    A spawned child copies its parent's environment at start; that is the only way to
    reach libraries that read their thread count once, at import, before any of our code
    runs in the child (polars imports with this package). The lock keeps two threads from
    interleaving their changes; the parent's own environment is restored afterwards.
    `overrides` replace single variables (a pool whose tasks widen later raises numba's
    ceiling).
    """
    budget = {**budget_environment(threads, blas_cap), **(overrides or {})}
    with _environment_lock, environment_set(budget):
        yield


@contextmanager
def environment_set(variables: Mapping[str, str]) -> Iterator[None]:
    """`variables` in this process's environment within the block; afterwards each is
    back to what it was (unset where it was unset)."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def apply_budget(
    threads: int, blas_cap: int | None = None, exact: bool = True
) -> dict[str, int | None]:
    """Give the current process `threads` threads; returns what each library now reports.

    Libraries not loaded yet pick the budget up from the environment when they load.
    """
    environment = budget_environment(threads, blas_cap, exact)
    if "numba" in sys.modules:
        # NUMBA_NUM_THREADS is numba's ceiling, read at import; numba reads it again at
        # every compile and fails once its threads run if it changed, so leave it be.
        environment.pop("NUMBA_NUM_THREADS")
    os.environ.update(environment)
    blas = max(1, min(threads, blas_cap or threads))
    from threadpoolctl import threadpool_limits

    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        torch.set_num_threads(threads)
    if "numba" in sys.modules:
        numba = sys.modules["numba"]
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    # Last: torch.set_num_threads and numba's OpenMP threading layer both call
    # omp_set_num_threads, which would lift the OpenMP pools past `blas_cap` again.
    threadpool_limits(limits=blas)
    return library_threads()


def step_threads(environ: Mapping[str, str] | None = None) -> int:
    """This step's thread budget (the whole usable machine outside a budgeted executor),
    from this process's environment or `environ`."""
    raw = (os.environ if environ is None else environ).get(STEP_THREADS_ENV, "")
    if raw.isdecimal() and int(raw) > 0:  # not isdigit(): int("²") raises
        return int(raw)
    from forex_assets.compute.machine import detect_machine

    return detect_machine().cores


def lightgbm_threads() -> dict[str, int]:
    """LightGBM parameters that keep its OpenMP pool inside the step's budget."""
    return {"num_threads": step_threads()}


def library_threads() -> dict[str, int | None]:
    """Thread counts the loaded libraries report right now (None: library not loaded)."""
    from threadpoolctl import threadpool_info

    report: dict[str, int | None] = {
        "openmp": None,
        "blas": None,
        "torch": None,
        "polars": None,
        "numba": None,
    }
    for pool in threadpool_info():
        key = "openmp" if pool["user_api"] == "openmp" else "blas"
        report[key] = max(report[key] or 0, pool["num_threads"])
    if "torch" in sys.modules:
        report["torch"] = sys.modules["torch"].get_num_threads()
    if "polars" in sys.modules:
        report["polars"] = sys.modules["polars"].thread_pool_size()
    if "numba" in sys.modules:
        report["numba"] = sys.modules["numba"].get_num_threads()
    return report
