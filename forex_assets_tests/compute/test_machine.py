"""Usable cores and memory from affinity and cgroup limits, on fake cgroup trees."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from forex_assets.compute.machine import (
    UNLIMITED_THRESHOLD,
    MachineResources,
    cgroup_cpu_quota,
    cgroup_memory_limit,
    detect_machine,
)

GiB = 2**30
V1_UNLIMITED = "9223372036854771712"  # what cgroup v1 writes for "no limit"


def affinity() -> int:
    return len(os.sched_getaffinity(0))


def physical() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def machine_from(tmp_path: Path, membership: str) -> MachineResources:
    proc = tmp_path / "proc_self_cgroup"
    proc.write_text(membership)
    return detect_machine(cgroup_root=tmp_path / "cgroup", proc_self_cgroup=proc)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    directory = tmp_path / "cgroup"
    directory.mkdir()
    return directory


# ---------------------------------------------------------------- cgroup v2


def test_v2_quota_taken_from_the_limited_ancestor(root):
    write(root, "a/cpu.max", "200000 100000")
    write(root, "a/b/cpu.max", "max 100000")
    assert cgroup_cpu_quota("0::/a/b", root) == 2.0


def test_v2_quota_at_the_leaf_with_unlimited_parent(root):
    write(root, "a/cpu.max", "max 100000")
    write(root, "a/b/cpu.max", "300000 100000")
    assert cgroup_cpu_quota("0::/a/b", root) == 3.0


def test_v2_unlimited_everywhere_is_none(root):
    write(root, "a/cpu.max", "max 100000")
    write(root, "a/b/cpu.max", "max 100000")
    write(root, "a/b/memory.max", "max")
    write(root, "a/memory.max", "max")
    assert cgroup_cpu_quota("0::/a/b", root) is None
    assert cgroup_memory_limit("0::/a/b", root) is None


def test_v2_no_files_at_all_is_none(root):
    (root / "a" / "b").mkdir(parents=True)
    assert cgroup_cpu_quota("0::/a/b", root) is None
    assert cgroup_memory_limit("0::/a/b", root) is None


@pytest.mark.parametrize(
    ("outer", "inner", "expected"),
    [
        ("400000 100000", "200000 100000", 2.0),  # inner smaller
        ("200000 100000", "400000 100000", 2.0),  # outer smaller: the inner cannot exceed it
        ("150000 100000", "max 100000", 1.5),
        ("100000 50000", "300000 100000", 2.0),  # different periods
    ],
)
def test_v2_nested_quotas_the_smallest_wins(root, outer, inner, expected):
    write(root, "a/cpu.max", outer)
    write(root, "a/b/c/cpu.max", inner)
    assert cgroup_cpu_quota("0::/a/b/c", root) == pytest.approx(expected)


def test_v2_memory_limit_number_and_max(root):
    write(root, "a/memory.max", str(3 * GiB))
    write(root, "a/b/memory.max", "max")
    assert cgroup_memory_limit("0::/a/b", root) == 3 * GiB


@pytest.mark.parametrize(
    ("outer", "inner", "expected"),
    [(2 * GiB, GiB, GiB), (GiB, 2 * GiB, GiB), (5 * GiB, 5 * GiB, 5 * GiB)],
)
def test_v2_nested_memory_limits_the_smallest_wins(root, outer, inner, expected):
    write(root, "a/memory.max", str(outer))
    write(root, "a/b/memory.max", str(inner))
    assert cgroup_memory_limit("0::/a/b", root) == expected


def test_v2_memory_limit_ignores_garbage_and_huge_values(root):
    write(root, "a/memory.max", "lots")
    write(root, "a/b/memory.max", str(UNLIMITED_THRESHOLD + 1))
    assert cgroup_memory_limit("0::/a/b", root) is None


def test_v2_detect_machine_uses_quota_and_memory_limit(tmp_path, root):
    write(root, "a/cpu.max", "100000 100000")
    write(root, "a/b/cpu.max", "max 100000")
    write(root, "a/b/memory.max", str(GiB))
    machine = machine_from(tmp_path, "0::/a/b\n")
    assert machine.cores == 1
    assert machine.memory_bytes == min(GiB, physical())
    assert machine.sources["cgroup_cpu_quota"] == "1"
    assert machine.sources["cgroup_memory_limit"] == str(GiB)
    assert machine.sources["affinity_cores"] == str(affinity())
    assert machine.sources["os_cpu_count"] == str(os.cpu_count())


# ---------------------------------------------------------------- cgroup v1

V1_MEMBERSHIP = "12:pids:/x\n4:memory:/x\n2:cpuset:/x\n1:cpu,cpuacct:/x\n"


def test_v1_cfs_quota_and_period(root):
    write(root, "cpu,cpuacct/x/cpu.cfs_quota_us", "250000")
    write(root, "cpu,cpuacct/x/cpu.cfs_period_us", "100000")
    assert cgroup_cpu_quota(V1_MEMBERSHIP, root) == 2.5


def test_v1_quota_minus_one_is_unlimited(root):
    write(root, "cpu,cpuacct/x/cpu.cfs_quota_us", "-1")
    write(root, "cpu,cpuacct/x/cpu.cfs_period_us", "100000")
    write(root, "cpu,cpuacct/cpu.cfs_quota_us", "-1")
    write(root, "cpu,cpuacct/cpu.cfs_period_us", "100000")
    assert cgroup_cpu_quota(V1_MEMBERSHIP, root) is None


def test_v1_unlimited_leaf_under_limited_parent(root):
    write(root, "cpu,cpuacct/x/y/cpu.cfs_quota_us", "-1")
    write(root, "cpu,cpuacct/x/y/cpu.cfs_period_us", "100000")
    write(root, "cpu,cpuacct/x/cpu.cfs_quota_us", "300000")
    write(root, "cpu,cpuacct/x/cpu.cfs_period_us", "100000")
    assert cgroup_cpu_quota("1:cpu,cpuacct:/x/y\n", root) == 3.0


def test_v1_nested_quotas_the_smallest_wins(root):
    write(root, "cpu,cpuacct/x/y/cpu.cfs_quota_us", "800000")
    write(root, "cpu,cpuacct/x/y/cpu.cfs_period_us", "100000")
    write(root, "cpu,cpuacct/x/cpu.cfs_quota_us", "50000")
    write(root, "cpu,cpuacct/x/cpu.cfs_period_us", "10000")
    assert cgroup_cpu_quota("1:cpu,cpuacct:/x/y\n", root) == 5.0


def test_v1_controller_mounted_under_its_own_name(root):
    """`cpu,cpuacct` recorded, but the hierarchy is mounted (or linked) as `cpu`."""
    write(root, "cpu/x/cpu.cfs_quota_us", "200000")
    write(root, "cpu/x/cpu.cfs_period_us", "100000")
    assert cgroup_cpu_quota(V1_MEMBERSHIP, root) == 2.0


def test_v1_memory_limit_in_bytes(root):
    write(root, "memory/x/memory.limit_in_bytes", str(4 * GiB))
    write(root, "memory/memory.limit_in_bytes", V1_UNLIMITED)
    assert cgroup_memory_limit(V1_MEMBERSHIP, root) == 4 * GiB


def test_v1_huge_memory_limit_is_unlimited(root):
    write(root, "memory/x/memory.limit_in_bytes", V1_UNLIMITED)
    write(root, "memory/memory.limit_in_bytes", V1_UNLIMITED)
    assert int(V1_UNLIMITED) >= UNLIMITED_THRESHOLD
    assert cgroup_memory_limit(V1_MEMBERSHIP, root) is None


def test_v1_reads_the_memory_hierarchy_not_the_cpu_one(root):
    write(root, "cpu,cpuacct/x/memory.limit_in_bytes", str(GiB))  # wrong hierarchy: ignored
    write(root, "memory/x/memory.limit_in_bytes", str(6 * GiB))
    assert cgroup_memory_limit(V1_MEMBERSHIP, root) == 6 * GiB


def test_v1_nested_memory_limits_the_smallest_wins(root):
    write(root, "memory/x/y/memory.limit_in_bytes", str(8 * GiB))
    write(root, "memory/x/memory.limit_in_bytes", str(2 * GiB))
    assert cgroup_memory_limit("4:memory:/x/y\n", root) == 2 * GiB


def test_v1_detect_machine(tmp_path, root):
    write(root, "cpu,cpuacct/x/cpu.cfs_quota_us", "100000")
    write(root, "cpu,cpuacct/x/cpu.cfs_period_us", "100000")
    write(root, "memory/x/memory.limit_in_bytes", str(GiB // 2))
    machine = machine_from(tmp_path, V1_MEMBERSHIP)
    assert machine.cores == 1
    assert machine.memory_bytes == min(GiB // 2, physical())
    assert machine.sources["cgroup_memory_limit"] == str(GiB // 2)


def test_v1_detect_machine_unlimited_falls_back_to_affinity_and_physical(tmp_path, root):
    write(root, "cpu,cpuacct/x/cpu.cfs_quota_us", "-1")
    write(root, "cpu,cpuacct/x/cpu.cfs_period_us", "100000")
    write(root, "memory/x/memory.limit_in_bytes", V1_UNLIMITED)
    machine = machine_from(tmp_path, V1_MEMBERSHIP)
    assert machine.cores == affinity()
    assert machine.memory_bytes == physical()
    assert machine.sources["cgroup_cpu_quota"] == "none"
    assert machine.sources["cgroup_memory_limit"] == "none"


# ---------------------------------------------------------------- containers


def test_v2_container_path_missing_falls_back_to_mount_root(root):
    write(root, "cpu.max", "300000 100000")
    write(root, "memory.max", str(GiB))
    membership = "0::/system.slice/docker-0123abcd.scope\n"
    assert not (root / "system.slice").exists()
    assert cgroup_cpu_quota(membership, root) == 3.0
    assert cgroup_memory_limit(membership, root) == GiB


def test_v1_container_path_missing_falls_back_to_mount_root(root):
    write(root, "cpu,cpuacct/cpu.cfs_quota_us", "150000")
    write(root, "cpu,cpuacct/cpu.cfs_period_us", "100000")
    write(root, "memory/memory.limit_in_bytes", str(2 * GiB))
    membership = "4:memory:/docker/0123abcd\n1:cpu,cpuacct:/docker/0123abcd\n"
    assert cgroup_cpu_quota(membership, root) == 1.5
    assert cgroup_memory_limit(membership, root) == 2 * GiB


def test_container_detect_machine(tmp_path, root):
    write(root, "cpu.max", "100000 100000")
    write(root, "memory.max", str(GiB))
    machine = machine_from(tmp_path, "0::/kubepods/burstable/pod1234/abcd\n")
    assert machine.cores == 1
    assert machine.memory_bytes == min(GiB, physical())


def test_no_proc_self_cgroup_reads_the_mount_root(tmp_path, root):
    write(root, "cpu.max", "100000 100000")
    machine = detect_machine(cgroup_root=root, proc_self_cgroup=tmp_path / "missing")
    assert machine.cores == 1


def test_no_cgroup_mount_at_all(tmp_path):
    machine = detect_machine(cgroup_root=tmp_path / "nothing", proc_self_cgroup=tmp_path / "none")
    assert machine.cores == affinity()
    assert machine.memory_bytes == physical()


def test_malformed_membership_lines_are_skipped(root):
    write(root, "a/cpu.max", "200000 100000")
    assert cgroup_cpu_quota("garbage\n\n0::/a\n", root) == 2.0


# ---------------------------------------------------------------- fractional quotas


@pytest.mark.parametrize(
    "cpu_max",
    ["150000 100000", "50000 100000", "1000 100000", "100000 100000", "199999 100000"],
)
def test_fractional_quota_is_floored_never_below_one(tmp_path, root, cpu_max):
    write(root, "cpu.max", cpu_max)
    limit, period = map(int, cpu_max.split())
    machine = machine_from(tmp_path, "0::/\n")
    assert machine.cores == max(1, min(affinity(), math.floor(limit / period)))
    assert machine.cores == 1  # all of these are below 2 cores


@pytest.mark.parametrize("quota_cores", [2.5, 4, 64, 252])
def test_quota_above_affinity_is_bounded_by_affinity(tmp_path, root, quota_cores):
    write(root, "cpu.max", f"{int(quota_cores * 100000)} 100000")
    machine = machine_from(tmp_path, "0::/\n")
    assert machine.cores == max(1, min(affinity(), math.floor(quota_cores)))
    assert machine.cores <= affinity()
    assert machine.sources["cgroup_cpu_quota"] == f"{quota_cores:g}"


def test_memory_limit_above_physical_memory_is_bounded(tmp_path, root):
    write(root, "memory.max", str(physical() * 4))
    machine = machine_from(tmp_path, "0::/\n")
    assert machine.memory_bytes == physical()


# ---------------------------------------------------------------- the real machine


def test_detect_machine_on_this_machine():
    machine = detect_machine()
    assert machine.memory_bytes > 0
    assert "os_cpu_count" in machine.sources
    assert machine.sources["os_cpu_count"] == str(os.cpu_count())
    assert machine.sources["affinity_cores"] == str(affinity())
    assert 1 <= machine.cores <= affinity()
    if machine.sources["cgroup_cpu_quota"] == "none":
        assert machine.cores == affinity()
    else:
        quota = float(machine.sources["cgroup_cpu_quota"])
        assert machine.cores == max(1, min(affinity(), math.floor(quota)))
    assert machine.memory_bytes <= physical()


def test_machine_resources_validation():
    with pytest.raises(ValueError, match="cores=0"):
        MachineResources(cores=0, memory_bytes=GiB)
    with pytest.raises(ValueError, match="memory_bytes=0"):
        MachineResources(cores=1, memory_bytes=0)
