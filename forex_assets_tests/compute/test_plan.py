"""The resource plan: shares of the usable cores and memory for every pool."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forex_assets.compute.machine import MachineResources
from forex_assets.compute.plan import (
    HEAVY_STAGE_WIDTH,
    MEMORY_HEADROOM,
    POOLS,
    STEP_MEMORY_BYTES,
    PlanSettings,
    ResourcePlan,
    default_training_threads,
    plan_resources,
)

MiB = 2**20
GiB = 2**30
TiB = 2**40
CORES = [1, 2, 4, 16, 64, 252, 1024]
MEMORIES = [2 * GiB, 8 * GiB, 512 * GiB, 4 * TiB]
THREADED_POOLS = {"tf_loads": "tf_loads", "features": "features", "training": "training"}
SETTING_NAMES = [f.name for f in dataclasses.fields(PlanSettings)]


def machine(cores: int, memory: int = 512 * GiB, **sources: str) -> MachineResources:
    return MachineResources(cores, memory, dict(sources))


def memory_bound(memory: int, pool: str) -> int:
    """Steps of `pool` that fit in the headroom share, in exact integer arithmetic."""
    assert MEMORY_HEADROOM == 0.8
    return max(1, (memory * 4) // (5 * STEP_MEMORY_BYTES[pool]))


def assert_invariants(
    plan: ResourcePlan, machine_cores: int, explicit: PlanSettings | None = None
) -> None:
    explicit = explicit or PlanSettings()
    assert 1 <= plan.cores <= machine_cores
    assert set(plan.pool_limits) == set(POOLS)
    for pool, limit in plan.pool_limits.items():
        assert 1 <= limit <= plan.cores, (pool, limit, plan.cores)
    assert set(plan.step_threads) == set(THREADED_POOLS)
    for pool, threads in plan.step_threads.items():
        assert 1 <= threads <= plan.cores, (pool, threads)
    assert 1 <= plan.blas_threads_cap <= plan.cores
    for pool in THREADED_POOLS:
        if getattr(explicit, pool) is None:  # a derived limit never oversubscribes
            assert plan.pool_limits[pool] * plan.step_threads[pool] <= plan.cores, (
                pool,
                plan.pool_limits,
                plan.step_threads,
            )
    for figure in ["cores", "memory", *POOLS, "training_threads", "feature_threads"]:
        assert plan.reasons.get(figure, "").strip(), f"no reason for {figure}"
    for name in ("tf_loads_threads", "blas_threads"):
        assert plan.reasons.get(name, "").strip(), f"no reason for {name}"
    for _, value, why in plan.as_rows():
        assert value.strip()
        assert why.strip()


# ---------------------------------------------------------------- invariants, every combination


@pytest.mark.parametrize(("cores", "memory"), list(itertools.product(CORES, MEMORIES)))
def test_invariants_for_every_machine(cores, memory):
    plan = plan_resources(machine(cores, memory))
    assert plan.cores == cores
    assert plan.memory_bytes == memory
    assert_invariants(plan, cores)
    # default derivations
    assert plan.step_threads["tf_loads"] == 1
    assert plan.step_threads["features"] == 1
    assert plan.step_threads["training"] == max(1, min(cores, round(math.sqrt(cores))))
    assert plan.blas_threads_cap == cores
    assert plan.pool_limits["tf_loads"] == min(cores, memory_bound(memory, "tf_loads"))
    assert plan.pool_limits["features"] == min(cores, memory_bound(memory, "features"))
    assert plan.pool_limits["training"] == min(
        cores // plan.step_threads["training"], memory_bound(memory, "training")
    )
    to_fill = 1 if cores <= HEAVY_STAGE_WIDTH else math.ceil(cores / HEAVY_STAGE_WIDTH) + 1
    assert plan.pool_limits["symbols"] == min(to_fill, memory_bound(memory, "symbols"))


@pytest.mark.parametrize(
    ("cores", "threads"),
    [(1, 1), (2, 1), (3, 2), (4, 2), (9, 3), (16, 4), (64, 8), (252, 16), (1024, 32)],
)
def test_training_threads_are_the_rounded_square_root(cores, threads):
    assert default_training_threads(cores) == threads
    plan = plan_resources(machine(cores, 4 * TiB))
    assert plan.step_threads["training"] == threads
    assert plan.pool_limits["training"] == cores // threads
    assert f"sqrt({cores} cores)" in plan.reasons["training_threads"]


def test_sixteen_cores_is_four_by_four():
    plan = plan_resources(machine(16, 64 * GiB))
    assert plan.step_threads["training"] == 4
    assert plan.pool_limits["training"] == 4
    assert plan.pool_limits["features"] == 16
    assert plan.pool_limits["tf_loads"] == 16


@pytest.mark.parametrize("cores", range(1, 7))
def test_one_symbol_fills_a_machine_no_wider_than_its_heavy_stage(cores):
    plan = plan_resources(machine(cores, 4 * TiB))
    assert plan.pool_limits["symbols"] == 1
    assert "no wider than one symbol's heavy stage" in plan.reasons["symbols"]


@pytest.mark.parametrize(("cores", "symbols"), [(7, 3), (16, 4), (64, 11), (252, 41), (1024, 161)])
def test_symbols_grow_on_big_machines(cores, symbols):
    plan = plan_resources(machine(cores, 4 * TiB))
    assert plan.pool_limits["symbols"] == symbols
    assert f"ceil({cores} cores / {HEAVY_STAGE_WIDTH} cores" in plan.reasons["symbols"]


def test_symbols_grow_monotonically_with_cores():
    previous = 0
    for cores in range(1, 2049, 7):
        symbols = plan_resources(machine(cores, 8 * TiB)).pool_limits["symbols"]
        assert symbols >= previous
        previous = symbols
    assert previous == math.ceil(2045 / HEAVY_STAGE_WIDTH) + 1


@pytest.mark.parametrize(
    ("memory", "symbols"),
    [(2 * GiB, 1), (8 * GiB, 1), (10 * GiB, 2), (20 * GiB, 4), (64 * GiB, 12), (512 * GiB, 41)],
)
def test_symbols_bounded_by_memory(memory, symbols):
    """At 252 cores the core bound is 41 symbols; each symbol needs 4 GiB / 0.8 of memory."""
    plan = plan_resources(machine(252, memory))
    assert plan.pool_limits["symbols"] == symbols
    assert plan.pool_limits["symbols"] == max(1, min(41, memory // (5 * GiB)))


@pytest.mark.parametrize("cores", [16, 64, 252, 1024])
def test_small_memory_reduces_limits(cores):
    small = plan_resources(machine(cores, 2 * GiB))
    large = plan_resources(machine(cores, 4 * TiB))
    # 2 GiB * 0.8 = 1.6 GiB: 3 half-GiB resampling steps, no 2 GiB step fits (but 1 always runs)
    assert small.pool_limits["tf_loads"] == 3
    assert small.pool_limits["features"] == 1
    assert small.pool_limits["training"] == 1
    assert small.pool_limits["symbols"] == 1
    for pool in ("tf_loads", "features"):
        assert small.pool_limits[pool] < large.pool_limits[pool]
    assert "memory for" in small.reasons["features"]


def test_eight_gib_bounds_features_and_training():
    plan = plan_resources(machine(64, 8 * GiB))
    assert plan.pool_limits["features"] == 3  # 6.4 GiB / 2 GiB
    assert plan.pool_limits["training"] == 3
    assert plan.pool_limits["tf_loads"] == 12  # 6.4 GiB / 0.5 GiB


def test_tiny_memory_still_runs_one_step():
    plan = plan_resources(machine(8, 256 * MiB))
    assert all(limit == 1 for limit in plan.pool_limits.values())


# ---------------------------------------------------------------- explicit settings


def test_explicit_settings_win_within_the_cores():
    plan = plan_resources(
        machine(64, 4 * TiB),
        PlanSettings(tf_loads=5, features=6, symbols=3, training=2, training_threads=7),
    )
    assert plan.pool_limits == {"tf_loads": 5, "features": 6, "symbols": 3, "training": 2}
    assert plan.step_threads["training"] == 7
    assert plan.reasons["tf_loads"] == "set to 5"
    assert plan.reasons["training_threads"] == "set to 7"
    assert "clamped" not in plan.reasons["features"]


def test_explicit_settings_win_over_memory_bounds():
    plan = plan_resources(machine(16, 2 * GiB), PlanSettings(features=8, symbols=2))
    assert plan.pool_limits["features"] == 8
    assert plan.pool_limits["symbols"] == 2


@pytest.mark.parametrize("name", [n for n in SETTING_NAMES if n != "cores"])
def test_explicit_settings_are_clamped_to_the_cores(name):
    plan = plan_resources(machine(4, 4 * TiB), PlanSettings(**{name: 1000}))
    value = {
        **plan.pool_limits,
        "training_threads": plan.step_threads["training"],
        "feature_threads": plan.step_threads["features"],
        "blas_threads": plan.blas_threads_cap,
    }[name]
    assert value == 4
    assert "clamped" in plan.reasons[name]
    assert "1000" in plan.reasons[name]
    assert_invariants(plan, 4, PlanSettings(**{name: 1000}))


@pytest.mark.parametrize("name", SETTING_NAMES)
@pytest.mark.parametrize("bad", [0, -5])
def test_explicit_settings_below_one_become_one(name, bad):
    plan = plan_resources(machine(8, 4 * TiB), PlanSettings(**{name: bad}))
    assert "clamped to 1" in plan.reasons[name]
    assert_invariants(plan, 8, PlanSettings(**{name: bad}))


def test_cores_setting_is_clamped_to_the_machine_and_drives_everything():
    plan = plan_resources(machine(8, 4 * TiB), PlanSettings(cores=64))
    assert plan.cores == 8
    assert "clamped to 8" in plan.reasons["cores"]

    plan = plan_resources(machine(64, 4 * TiB), PlanSettings(cores=16))
    assert plan.cores == 16
    assert plan.reasons["cores"] == "set to 16"
    assert plan.step_threads["training"] == 4
    assert plan.pool_limits["training"] == 4
    assert plan.pool_limits["features"] == 16
    assert plan.blas_threads_cap == 16
    assert_invariants(plan, 64, PlanSettings(cores=16))


def test_explicit_pool_limits_are_clamped_to_the_chosen_cores():
    plan = plan_resources(machine(64, 4 * TiB), PlanSettings(cores=4, features=32, symbols=9))
    assert plan.pool_limits["features"] == 4
    assert plan.pool_limits["symbols"] == 4
    assert "clamped to 4" in plan.reasons["features"]


def test_explicit_thread_settings_shape_derived_limits():
    plan = plan_resources(
        machine(64, 4 * TiB), PlanSettings(training_threads=16, feature_threads=2)
    )
    assert plan.step_threads == {"tf_loads": 1, "features": 2, "training": 16}
    assert plan.pool_limits["training"] == 4
    assert plan.pool_limits["features"] == 32
    assert plan.pool_limits["symbols"] == 11  # training dominates: feature threads do not count


def test_explicit_blas_cap():
    plan = plan_resources(machine(16, 64 * GiB), PlanSettings(blas_threads=2))
    assert plan.blas_threads_cap == 2
    assert plan.reasons["blas_threads"] == "set to 2"


# ---------------------------------------------------------------- merged_over


def test_merged_over_prefers_self_and_falls_back_to_base():
    run_config = PlanSettings(symbols=2, training_threads=None, features=0)
    environment = PlanSettings(symbols=9, training_threads=3, tf_loads=5)
    merged = run_config.merged_over(environment)
    assert merged == PlanSettings(symbols=2, training_threads=3, tf_loads=5, features=0)
    assert environment.merged_over(run_config) == PlanSettings(
        symbols=9, training_threads=3, tf_loads=5, features=0
    )
    assert PlanSettings().merged_over(environment) == environment
    assert environment.merged_over(PlanSettings()) == environment


@given(
    st.builds(PlanSettings, **{n: st.none() | st.integers(-3, 300) for n in SETTING_NAMES}),
    st.builds(PlanSettings, **{n: st.none() | st.integers(-3, 300) for n in SETTING_NAMES}),
)
def test_merged_over_field_by_field(top, base):
    merged = top.merged_over(base)
    for name in SETTING_NAMES:
        mine = getattr(top, name)
        assert getattr(merged, name) == (mine if mine is not None else getattr(base, name))


# ---------------------------------------------------------------- reasons and rendering


def test_core_reason_names_the_source():
    plain = plan_resources(
        machine(8, 4 * TiB, affinity_cores="8", cgroup_cpu_quota="none", os_cpu_count="252")
    )
    assert "affinity" in plain.reasons["cores"].lower()
    assert "252" in plain.reasons["cores"]
    quota = plan_resources(
        machine(4, 4 * TiB, affinity_cores="252", cgroup_cpu_quota="4.5", os_cpu_count="252")
    )
    assert "quota 4.5" in quota.reasons["cores"]


def test_memory_reason_names_the_source():
    limited = plan_resources(machine(8, 4 * GiB, cgroup_memory_limit=str(4 * GiB)))
    assert limited.reasons["memory"] == "cgroup memory limit"
    physical = plan_resources(machine(8, 4 * GiB, cgroup_memory_limit="none"))
    assert physical.reasons["memory"] == "physical memory"


def test_as_markdown_lists_every_pool_and_figure():
    plan = plan_resources(machine(252, 512 * GiB))
    markdown = plan.as_markdown()
    lines = markdown.splitlines()
    assert lines[0] == "| figure | value | why |"
    assert len(lines) == 2 + len(plan.as_rows())
    for pool in POOLS:
        assert f"| pool {pool} | {plan.pool_limits[pool]} |" in markdown
    for pool, threads in plan.step_threads.items():
        assert f"| threads per {pool} step | {threads} |" in markdown
    assert "| usable cores | 252 |" in markdown
    assert "| usable memory | 512.0 GiB |" in markdown
    assert f"| BLAS/OpenMP threads cap | {plan.blas_threads_cap} |" in markdown


# ---------------------------------------------------------------- threads_for


def test_threads_for_pool_shares_and_requests():
    plan = plan_resources(machine(16, 64 * GiB))
    assert plan.threads_for("training") == 4
    assert plan.threads_for("features") == 1
    assert plan.threads_for("symbols") == 1  # no thread share of its own
    assert plan.threads_for(None) == 1
    assert plan.threads_for("unknown") == 1
    assert plan.threads_for("training", 8) == 8
    assert plan.threads_for(None, 16) == 16
    assert plan.threads_for("training", 17) == 16
    assert plan.threads_for("training", 10_000) == 16
    assert plan.threads_for("training", 0) == 1
    assert plan.threads_for("training", -4) == 1


@given(st.integers(1, 2048), st.none() | st.integers(-(10**6), 10**6))
def test_threads_for_never_leaves_the_cores(cores, requested):
    plan = plan_resources(machine(cores, 4 * TiB))
    for pool in (*POOLS, None):
        assert 1 <= plan.threads_for(pool, requested) <= cores


# ---------------------------------------------------------------- property test

optional_setting = st.none() | st.integers(min_value=-10, max_value=5000)


@settings(max_examples=300, deadline=None)
@given(
    cores=st.integers(1, 2048),
    memory=st.integers(256 * MiB, 8 * TiB),
    explicit=st.none()
    | st.builds(PlanSettings, **{name: optional_setting for name in SETTING_NAMES}),
)
def test_plan_invariants_hold_for_any_machine_and_settings(cores, memory, explicit):
    plan = plan_resources(machine(cores, memory), explicit or PlanSettings())
    assert_invariants(plan, cores, explicit or PlanSettings())
    if explicit is None or explicit.cores is None:
        assert plan.cores == cores
    assert 1 <= plan.threads_for("training", 10**9) <= plan.cores
