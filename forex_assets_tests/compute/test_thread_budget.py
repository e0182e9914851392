"""Thread budgets reach every numeric library, in a fresh process as the executor starts them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from forex_assets.compute.machine import detect_machine
from forex_assets.compute.thread_budget import (
    BLAS_THREAD_VARIABLES,
    LIBRARY_THREAD_VARIABLES,
    STEP_THREADS_ENV,
    budget_environment,
    lightgbm_threads,
    step_threads,
)

REPO = Path(__file__).resolve().parents[2]
THREAD_VARIABLES = (*BLAS_THREAD_VARIABLES, *LIBRARY_THREAD_VARIABLES, STEP_THREADS_ENV)


def run_budgeted(script: str, environment: dict[str, str]) -> dict:
    """Run `script` in a fresh interpreter whose environment carries `environment`."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    env.pop("OMP_WAIT_POLICY", None)
    env.update(environment)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


READ_BACK = """
    import json, os
    from threadpoolctl import threadpool_info
    from forex_assets.compute.thread_budget import (
        apply_budget, library_threads, lightgbm_threads, step_threads,
    )

    def pools():
        return [(p["user_api"], p["internal_api"], p["num_threads"]) for p in threadpool_info()]
"""

FULL_STACK = (
    READ_BACK
    + """
    import numpy, polars, torch, numba, lightgbm
    reported = apply_budget({threads}{extra})

    # LightGBM trains inside the budget with the parameters the step passes on
    rng = numpy.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    y = (x[:, 0] + 0.1 * rng.normal(size=300) > 0).astype(int)
    params = {{"objective": "binary", "verbose": -1, "num_leaves": 4, **lightgbm_threads()}}
    booster = lightgbm.train(params, lightgbm.Dataset(x, label=y), num_boost_round=5)
    accuracy = float(((booster.predict(x) > 0.5) == y).mean())

    print(json.dumps({{
        "reported": reported,
        "after_training": library_threads(),
        "pools": pools(),
        "torch": torch.get_num_threads(),
        "polars": polars.thread_pool_size(),
        "numba": numba.get_num_threads(),
        "step_threads": step_threads(),
        "lightgbm": lightgbm_threads(),
        "booster_threads": booster.params.get("num_threads"),
        "accuracy": accuracy,
        "trees": booster.num_trees(),
        "env": {{k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "POLARS_MAX_THREADS",
                                              "OMP_WAIT_POLICY", "FOREX_ASSETS_STEP_THREADS")}},
    }}))
"""
)


def test_budget_of_three_reaches_every_library():
    out = run_budgeted(FULL_STACK.format(threads=3, extra=""), budget_environment(3))
    assert out["torch"] == 3
    assert out["polars"] == 3
    assert out["numba"] == 3
    assert out["step_threads"] == 3
    assert out["lightgbm"] == {"num_threads": 3}
    assert out["reported"] == {"openmp": 3, "blas": 3, "torch": 3, "polars": 3, "numba": 3}
    apis = {api for _, api, _ in out["pools"]}
    assert "openblas" in apis or "mkl" in apis, out["pools"]  # numpy's BLAS is loaded
    assert "openmp" in apis, out["pools"]  # LightGBM and torch use OpenMP
    for user_api, internal_api, threads in out["pools"]:
        assert threads == 3, (user_api, internal_api, threads)
    # training does not widen the pools
    assert out["after_training"] == out["reported"]
    assert out["booster_threads"] == 3
    assert out["trees"] == 5
    assert out["accuracy"] > 0.8
    assert out["env"] == {
        "OMP_NUM_THREADS": "3",
        "POLARS_MAX_THREADS": "3",
        "OMP_WAIT_POLICY": "ACTIVE",
        "FOREX_ASSETS_STEP_THREADS": "3",
    }


def test_budget_in_the_environment_reaches_libraries_loaded_afterwards():
    """The worker path: budget in the environment, apply_budget first, libraries load later."""
    script = (
        READ_BACK
        + """
    before = apply_budget(1)
    import numpy, polars, torch, numba, lightgbm
    print(json.dumps({"before": before, "after": library_threads(), "pools": pools(),
                      "step": step_threads()}))
    """
    )
    out = run_budgeted(script, budget_environment(1))
    assert out["after"] == {"openmp": 1, "blas": 1, "torch": 1, "polars": 1, "numba": 1}
    assert all(threads == 1 for _, _, threads in out["pools"]), out["pools"]
    assert out["step"] == 1


def test_blas_cap_caps_blas_and_openmp_but_not_polars_and_waits_passively():
    """Every BLAS and OpenMP pool stays at the cap, although numba (loaded by the package,
    OpenMP threading layer) gets the full budget and calls omp_set_num_threads for it."""
    script = (
        READ_BACK
        + """
    import numpy, polars, numba, lightgbm
    reported = apply_budget(3, blas_cap=1, exact=False)
    print(json.dumps({"reported": reported, "pools": pools(), "polars": polars.thread_pool_size(),
                      "numba": numba.get_num_threads(), "step": step_threads(),
                      "lightgbm": lightgbm_threads(),
                      "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                              "OPENBLAS_NUM_THREADS", "POLARS_MAX_THREADS", "OMP_WAIT_POLICY")}}))
    """
    )
    out = run_budgeted(script, budget_environment(3, blas_cap=1))
    assert out["pools"], "no BLAS or OpenMP pool loaded"
    for user_api, internal_api, threads in out["pools"]:
        assert threads == 1, (user_api, internal_api, threads)
    assert out["reported"]["openmp"] == 1
    assert out["reported"]["blas"] == 1
    assert out["polars"] == 3
    assert out["numba"] == 3
    assert out["step"] == 3
    assert out["lightgbm"] == {"num_threads": 3}
    assert out["env"] == {
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "POLARS_MAX_THREADS": "3",
        "OMP_WAIT_POLICY": "PASSIVE",
    }


# ---------------------------------------------------------------- budget_environment


@pytest.mark.parametrize("threads", [1, 2, 3, 8, 252])
def test_budget_environment_sets_every_variable(threads):
    environment = budget_environment(threads)
    for name in BLAS_THREAD_VARIABLES:
        assert environment[name] == str(threads)
    for name in LIBRARY_THREAD_VARIABLES:
        assert environment[name] == str(threads)
    assert environment[STEP_THREADS_ENV] == str(threads)
    assert environment["OMP_WAIT_POLICY"] == "ACTIVE"
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        assert name in environment
    assert "POLARS_MAX_THREADS" in environment and "NUMBA_NUM_THREADS" in environment


@pytest.mark.parametrize(
    ("threads", "cap", "blas"),
    [(8, 2, "2"), (8, 8, "8"), (8, 20, "8"), (2, None, "2"), (4, 0, "4")],
)
def test_budget_environment_blas_cap(threads, cap, blas):
    environment = budget_environment(threads, blas_cap=cap)
    assert {environment[name] for name in BLAS_THREAD_VARIABLES} == {blas}
    assert environment["POLARS_MAX_THREADS"] == str(threads)
    assert environment["NUMBA_NUM_THREADS"] == str(threads)
    assert environment[STEP_THREADS_ENV] == str(threads)


def test_inexact_budget_waits_passively():
    assert budget_environment(4, exact=False)["OMP_WAIT_POLICY"] == "PASSIVE"
    assert budget_environment(4, exact=True)["OMP_WAIT_POLICY"] == "ACTIVE"


IDLE_AFTER_WIDE_WORK = (
    READ_BACK
    + """
    import time
    import numpy, lightgbm
    x = numpy.random.default_rng(0).normal(size=(20000, 50))
    lightgbm.Dataset(x, numpy.arange(20000) % 3, params={"num_threads": 2, "verbose": -1}).construct()
    cpu = time.process_time()
    time.sleep(1.0)
    print(json.dumps({"idle_cpu_s": time.process_time() - cpu}))
"""
)


def test_an_exact_budgets_openmp_threads_stop_spinning_once_their_work_is_done():
    """A pool worker keeps the OpenMP threads of a two-thread task while it runs a narrower
    one or waits for the next: those threads must sleep, not hold a core."""
    out = run_budgeted(IDLE_AFTER_WIDE_WORK, budget_environment(1))
    assert out["idle_cpu_s"] < 0.3, out


# ---------------------------------------------------------------- step_threads


@pytest.mark.parametrize("raw", ["1", "5", "64"])
def test_step_threads_reads_the_budget(monkeypatch, raw):
    monkeypatch.setenv(STEP_THREADS_ENV, raw)
    assert step_threads() == int(raw)
    assert lightgbm_threads() == {"num_threads": int(raw)}


@pytest.mark.parametrize("raw", ["", "0", "-2", "two", "2.5", " ", "²", "①"])
def test_step_threads_without_a_valid_budget_is_the_whole_machine(monkeypatch, raw):
    monkeypatch.setenv(STEP_THREADS_ENV, raw)
    assert step_threads() == detect_machine().cores
    assert lightgbm_threads() == {"num_threads": detect_machine().cores}


def test_step_threads_unset_is_the_whole_machine(monkeypatch):
    monkeypatch.delenv(STEP_THREADS_ENV, raising=False)
    assert step_threads() == detect_machine().cores
