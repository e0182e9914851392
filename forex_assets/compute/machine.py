"""What this process may really use: cores and memory from affinity and cgroup limits.

`os.cpu_count()` reports the host's CPUs, not this process's share: a container limited
to 4 CPUs on a 252-core host sees 252, and a plan built on that number oversubscribes
the container 63 times. The usable core count is the smallest of the CPU affinity mask
and the cgroup CPU quota (cgroup v2 `cpu.max`, v1 `cpu.cfs_quota_us`/`cfs_period_us`),
taken over the whole cgroup ancestry. Memory is the smallest cgroup memory limit on the
way up, else the machine's physical memory.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")
# cgroup v1 reports "no limit" as a huge page-aligned number rather than a word.
UNLIMITED_THRESHOLD = 2**60


@dataclass(frozen=True)
class MachineResources:
    """Usable cores and memory, with where each figure came from."""

    cores: int
    memory_bytes: int
    sources: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.cores < 1:
            raise ValueError(f"cores={self.cores} must be at least 1")
        if self.memory_bytes < 1:
            raise ValueError(f"memory_bytes={self.memory_bytes} must be positive")


def detect_machine(
    cgroup_root: Path = CGROUP_ROOT, proc_self_cgroup: Path = PROC_SELF_CGROUP
) -> MachineResources:
    """Usable cores and memory of the calling process."""
    affinity = _affinity_cores()
    membership = _read_text(proc_self_cgroup) or ""
    quota = cgroup_cpu_quota(membership, cgroup_root)
    cores = affinity if quota is None else max(1, min(affinity, math.floor(quota)))
    limit = cgroup_memory_limit(membership, cgroup_root)
    physical = _physical_memory()
    memory = physical if limit is None else min(limit, physical)
    sources = {
        "affinity_cores": str(affinity),
        "cgroup_cpu_quota": "none" if quota is None else f"{quota:g}",
        "cgroup_memory_limit": "none" if limit is None else str(limit),
        "physical_memory": str(physical),
        "os_cpu_count": str(os.cpu_count()),
    }
    return MachineResources(cores, memory, sources)


def _affinity_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    if hasattr(os, "process_cpu_count"):  # Python 3.13+, Windows and macOS
        return os.process_cpu_count() or 1
    return os.cpu_count() or 1


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30  # unknown platform: assume a modest workstation, never a server


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _cgroup_dirs(membership: str, cgroup_root: Path, controller: str) -> Iterator[Path]:
    """The process's cgroup directory for `controller` and its ancestors, innermost first.

    Inside a container the recorded path may not exist under the mount (the container sees
    its own cgroup as the root), so the mount root itself is always tried last.
    """
    for line in membership.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":  # cgroup v2 unified hierarchy
            base = cgroup_root
        elif controller in controllers.split(","):
            base = cgroup_root / controllers
            if not base.exists():
                base = cgroup_root / controller
        else:
            continue
        current = base / path.lstrip("/")
        while True:
            if current.is_dir():
                yield current
            if current == base:
                break
            current = current.parent
        return
    if cgroup_root.is_dir():
        yield cgroup_root


def cgroup_cpu_quota(membership: str, cgroup_root: Path) -> float | None:
    """Smallest CPU quota (in cores) on the cgroup path, or None if unlimited."""
    quotas = []
    for directory in _cgroup_dirs(membership, cgroup_root, "cpu"):
        v2 = _read_text(directory / "cpu.max")
        if v2:
            limit, _, period = v2.partition(" ")
            if limit != "max" and period:
                quotas.append(int(limit) / int(period))
            continue
        quota, period = (
            _read_text(directory / "cpu.cfs_quota_us"),
            _read_text(directory / "cpu.cfs_period_us"),
        )
        if quota and period and int(quota) > 0 and int(period) > 0:
            quotas.append(int(quota) / int(period))
    return min(quotas) if quotas else None


def cgroup_memory_limit(membership: str, cgroup_root: Path) -> int | None:
    """Smallest memory limit in bytes on the cgroup path, or None if unlimited."""
    limits = []
    for directory in _cgroup_dirs(membership, cgroup_root, "memory"):
        for name in ("memory.max", "memory.limit_in_bytes"):
            raw = _read_text(directory / name)
            if raw and raw != "max" and raw.isdigit() and int(raw) < UNLIMITED_THRESHOLD:
                limits.append(int(raw))
    return min(limits) if limits else None
