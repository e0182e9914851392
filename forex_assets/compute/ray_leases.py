"""Leases of Ray CPUs for a step's tasks, on the Ray executor.

On Ray a step is a Ray job whose entrypoint reserves the step's floor, and Ray's
scheduler, not a host's core ledger, accounts for the cluster's CPUs. So the lease an
elastic step takes for one task is a Ray placement group of one bundle of that many
CPUs, pinned to the step's node (the task's threads run in the step's own worker
processes there): Ray reserves exactly what the step leases, and places no other job
on those CPUs until the task ends and the group is removed. A placement group belongs
to the job that created it, so Ray frees the leases of a step that was killed.

Waiting steps come first here too: a Ray job that is still pending (submitted, not
started: a step waiting for CPUs) is an actor, its job supervisor, pending creation for
the CPUs the step asked for, and a lease never takes the CPUs pending actors need. A group Ray cannot place at once (another node's free CPUs were counted, or
a job started in between) is removed again and nothing is leased.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

# How long a lease waits for Ray to place its group before giving up for now.
PLACE_TIMEOUT_S = 2.0
# How long the pending actors' CPUs are reused before asking Ray again (the pool polls often).
PENDING_REFRESH_S = 1.0


class RayCoreLeases:
    """`CoreLeases` over Ray placement groups; the step process must be a Ray driver
    (a Ray job's entrypoint, where the job supervisor set RAY_ADDRESS)."""

    def __init__(self) -> None:
        import ray

        if not ray.is_initialized():
            ray.init(logging_level="warning", log_to_driver=False)
        self._ray = ray
        node_id = ray.get_runtime_context().get_node_id()
        (node,) = [n for n in ray.nodes() if n["NodeID"] == node_id]
        self._node_resource = f"node:{node['NodeManagerAddress']}"
        self._node_cpus = int(node["Resources"].get("CPU", 0))
        self._groups: dict[str, Any] = {}
        self._pending: tuple[float, float] = (0.0, -math.inf)  # (CPUs, when read)

    def _pending_cpus(self) -> float:
        cpus, read = self._pending
        if time.monotonic() - read < PENDING_REFRESH_S:
            return cpus
        from ray.util.state import list_actors

        pending = list_actors(
            filters=[("state", "=", "PENDING_CREATION")],
            detail=True,
            raise_on_missing_output=False,
        )
        cpus = sum(float((actor.required_resources or {}).get("CPU", 0)) for actor in pending)
        self._pending = (cpus, time.monotonic())
        return cpus

    def lease(self, holder: str, want: Callable[[int], int]) -> int:
        """Reserve the CPUs `want(leasable)` asks for as a placement group named `holder`."""
        if holder in self._groups:
            raise ValueError(
                f"lease holder {holder!r} already holds CPUs; name each task's lease uniquely "
                "and release it when the task ends"
            )
        free = self._ray.available_resources().get("CPU", 0.0) - self._pending_cpus()
        leasable = max(0, min(self._node_cpus, math.floor(free + 1e-9)))
        cores = int(want(leasable))
        if cores < 0 or cores > leasable:
            raise ValueError(
                f"want({leasable}) returned {cores}; it must take between 0 and the "
                f"{leasable} leasable CPUs"
            )
        if not cores:
            return 0
        from ray.util.placement_group import placement_group, remove_placement_group

        group = placement_group(
            [{"CPU": cores, self._node_resource: 0.001}], strategy="STRICT_PACK", name=holder
        )
        if not group.wait(timeout_seconds=PLACE_TIMEOUT_S):
            remove_placement_group(group)
            return 0
        self._groups[holder] = group
        return cores

    def release(self, holder: str) -> None:
        group = self._groups.pop(holder, None)
        if group is not None:
            from ray.util.placement_group import remove_placement_group

            remove_placement_group(group)
