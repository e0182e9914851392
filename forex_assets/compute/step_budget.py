"""What a running step may use: its floor, the machine's cores, and where to lease more.

The budgeted executor admits a step with its static share of threads (its floor) and
tells the step, through the environment its worker runs it in, the machine's usable
cores, the core ledger and the step's name in it, and whether the step may grow
(`elastic`). A step that fans out reads this with `StepBudget.current()` and hands it
to its `ElasticPool`, which leases idle cores per task. On the Ray executor the leases
are Ray placement groups instead (`compute.ray_leases`): there Ray's scheduler accounts
for the cluster's CPUs, and the step's Ray job reserved its floor. Outside an executor (a
test, a notebook, `materialize`) there is nothing to lease from: the step's floor is the
whole usable machine.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from forex_assets.compute.core_ledger import LEDGER_ENV, CoreLedger
from forex_assets.compute.thread_budget import step_threads

STEP_HOLDER_ENV = "FOREX_ASSETS_STEP_HOLDER"
USABLE_CORES_ENV = "FOREX_ASSETS_USABLE_CORES"
ELASTIC_ENV = "FOREX_ASSETS_ELASTIC"
# Set (to "1") by the Ray executor: the step leases Ray CPUs, not cores of a host ledger.
RAY_LEASES_ENV = "FOREX_ASSETS_RAY_LEASES"


class CoreLeases(Protocol):
    """Where a step's pool leases cores for one task at a time (`CoreLedger.lease`)."""

    def lease(self, holder: str, want: Callable[[int], int]) -> int: ...

    def release(self, holder: str) -> None: ...


@dataclass(frozen=True)
class StepBudget:
    floor: int  # the threads the step holds for its whole run
    capacity: int  # the machine's usable cores: no step's tasks exceed them together
    elastic: bool  # whether the step may lease idle cores beyond its floor
    ledger_path: Path | None = None  # None: no ledger (not run by the budgeted executor)
    holder: str | None = None  # the step's reservation in the ledger, or its Ray name
    ray_leases: bool = False  # lease Ray CPUs (the Ray executor) instead of a ledger's

    def __post_init__(self) -> None:
        if not 1 <= self.floor <= self.capacity:
            raise ValueError(
                f"floor={self.floor}, capacity={self.capacity}: a step's floor must be at "
                "least one thread and within the machine's usable cores"
            )
        if self.ray_leases and (self.ledger_path is not None or self.holder is None):
            raise ValueError(
                f"ray_leases=True, ledger_path={self.ledger_path}, holder={self.holder!r}: a "
                "step on Ray leases Ray CPUs under its own name, not from a ledger; give a "
                "holder and no ledger_path"
            )
        if not self.ray_leases and (self.ledger_path is None) != (self.holder is None):
            raise ValueError(
                f"ledger_path={self.ledger_path}, holder={self.holder!r}: a step leases "
                "from a ledger under its own name, so give both or neither"
            )

    @property
    def can_lease(self) -> bool:
        return self.elastic and self.holder is not None

    @property
    def reach(self) -> int:
        """The most cores the step can come to use at once: layouts that fix a number of
        parallel tasks up front (strategy islands) size themselves from this."""
        return self.capacity if self.can_lease else self.floor

    def leases(self) -> CoreLeases | None:
        """Where this step leases idle cores; None where it may not grow."""
        if not self.can_lease:
            return None
        if self.ray_leases:
            from forex_assets.compute.ray_leases import RayCoreLeases  # imports Ray

            return RayCoreLeases()
        assert self.ledger_path is not None
        return CoreLedger(self.ledger_path, self.capacity)

    def environment(self) -> dict[str, str]:
        """The variables the executor sets for the step (read back by `current`)."""
        environment = {USABLE_CORES_ENV: str(self.capacity), ELASTIC_ENV: str(int(self.elastic))}
        if self.holder is not None:
            environment[STEP_HOLDER_ENV] = self.holder
        if self.ledger_path is not None:
            environment[LEDGER_ENV] = str(self.ledger_path)
        if self.ray_leases:
            environment[RAY_LEASES_ENV] = "1"
        return environment

    @classmethod
    def current(cls, environ: Mapping[str, str] | None = None) -> StepBudget:
        """The budget of the step running in this process."""
        environ = os.environ if environ is None else environ
        floor = step_threads(environ)
        capacity = _positive(environ.get(USABLE_CORES_ENV, ""), USABLE_CORES_ENV)
        if capacity is None:
            return cls(floor=floor, capacity=floor, elastic=True)
        holder = environ.get(STEP_HOLDER_ENV) or None
        ray_leases = holder is not None and environ.get(RAY_LEASES_ENV) == "1"
        ledger = environ.get(LEDGER_ENV) if holder and not ray_leases else None
        return cls(
            floor=min(floor, capacity),
            capacity=capacity,
            elastic=environ.get(ELASTIC_ENV, "1") != "0",
            ledger_path=Path(ledger) if ledger else None,
            holder=holder if ledger or ray_leases else None,
            ray_leases=ray_leases,
        )


def _positive(raw: str, name: str) -> int | None:
    if not raw:
        return None
    if not raw.isdecimal() or int(raw) < 1:
        raise ValueError(
            f"{name}={raw!r} must be a whole number of cores of at least 1 (the budgeted "
            "executor sets it for each step; unset it to run outside the executor)"
        )
    return int(raw)
