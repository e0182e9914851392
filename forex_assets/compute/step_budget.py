"""What a running step may use: its floor, the machine's cores, and where to lease more.

The budgeted executor admits a step with its static share of threads (its floor) and
tells the step, through the environment its worker runs it in, the machine's usable
cores, the core ledger and the step's name in it, and whether the step may grow
(`elastic`). A step that fans out reads this with `StepBudget.current()` and hands it
to its `ElasticPool`, which leases idle cores per task. Outside the executor (a test, a
notebook, `materialize`) there is no ledger: the step's floor is the whole usable
machine and nothing is leased.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from forex_assets.compute.core_ledger import LEDGER_ENV, CoreLedger
from forex_assets.compute.thread_budget import step_threads

STEP_HOLDER_ENV = "FOREX_ASSETS_STEP_HOLDER"
USABLE_CORES_ENV = "FOREX_ASSETS_USABLE_CORES"
ELASTIC_ENV = "FOREX_ASSETS_ELASTIC"


@dataclass(frozen=True)
class StepBudget:
    floor: int  # the threads the step holds for its whole run
    capacity: int  # the machine's usable cores: no step's tasks exceed them together
    elastic: bool  # whether the step may lease idle cores beyond its floor
    ledger_path: Path | None = None  # None: no ledger (not run by the budgeted executor)
    holder: str | None = None  # the step's reservation in the ledger

    def __post_init__(self) -> None:
        if not 1 <= self.floor <= self.capacity:
            raise ValueError(
                f"floor={self.floor}, capacity={self.capacity}: a step's floor must be at "
                "least one thread and within the machine's usable cores"
            )
        if (self.ledger_path is None) != (self.holder is None):
            raise ValueError(
                f"ledger_path={self.ledger_path}, holder={self.holder!r}: a step leases "
                "from a ledger under its own name, so give both or neither"
            )

    @property
    def reach(self) -> int:
        """The most cores the step can come to use at once: layouts that fix a number of
        parallel tasks up front (strategy islands) size themselves from this."""
        return self.capacity if self.elastic and self.ledger_path is not None else self.floor

    def ledger(self) -> CoreLedger | None:
        if self.ledger_path is None:
            return None
        return CoreLedger(self.ledger_path, self.capacity)

    def environment(self) -> dict[str, str]:
        """The variables the executor sets for the step (read back by `current`)."""
        environment = {USABLE_CORES_ENV: str(self.capacity), ELASTIC_ENV: str(int(self.elastic))}
        if self.ledger_path is not None and self.holder is not None:
            environment[LEDGER_ENV] = str(self.ledger_path)
            environment[STEP_HOLDER_ENV] = self.holder
        return environment

    @classmethod
    def current(cls, environ: Mapping[str, str] | None = None) -> StepBudget:
        """The budget of the step running in this process."""
        environ = os.environ if environ is None else environ
        floor = step_threads()
        capacity = _positive(environ.get(USABLE_CORES_ENV, ""), USABLE_CORES_ENV)
        if capacity is None:
            return cls(floor=floor, capacity=floor, elastic=True)
        holder = environ.get(STEP_HOLDER_ENV) or None
        ledger = environ.get(LEDGER_ENV) if holder else None
        return cls(
            floor=min(floor, capacity),
            capacity=capacity,
            elastic=environ.get(ELASTIC_ENV, "1") != "0",
            ledger_path=Path(ledger) if ledger else None,
            holder=holder if ledger else None,
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
