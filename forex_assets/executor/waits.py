"""Say what a ready step waits for, and who holds it; free holders that are dead.

A step that cannot start because another run holds its pool slot, the `symbols` stage or
the machine's cores used to wait in silence, for as long as the holder held it, also
when the holder was a killed run. Now the wait is reported when it begins and then every
`WAIT_REPORT_S`, naming each holder (run id, step, orchestrator pid, alive or dead); at
each report dead holders are reaped (`reap_dead_runs`), so the wait ends by itself.
Waits inside one run (its own steps fill a pool or the cores) are the plan at work and
are not reported.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from dagster import DagsterInstance

from forex_assets.compute.core_ledger import CoreLedger
from forex_assets.instance.orchestrators import WAIT_REPORT_S, holder_state, reap_dead_runs

CORES = "cores"
# Engine events about waits start with this, so a reader (the CLI's progress) can pick them.
WAIT_PREFIX = "waiting: "


@dataclass(frozen=True)
class Block:
    """What a ready step could not get: a pool's slot (`pool` named) or cores."""

    kind: str  # "pool" or CORES
    pool: str | None
    threads: int

    def what(self) -> str:
        if self.kind == CORES:
            return f"{self.threads} core(s)"
        return f"a slot of pool {self.pool!r}"


class WaitReporter:
    """Turns the executor's blocked steps into messages; reaps dead holders as it reports."""

    def __init__(
        self,
        instance: DagsterInstance,
        ledger: CoreLedger,
        run_id: str,
        report_every_s: float = WAIT_REPORT_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._instance = instance
        self._ledger = ledger
        self._run_id = run_id
        self._every = report_every_s
        self._clock = clock
        self._announced: dict[str, Block] = {}
        self._last_report = clock()

    def observe(self, blocked: dict[str, Block], ready: set[str]) -> list[str]:
        """Messages to log for the steps blocked now (empty when nothing new or due).

        `ready` is every step still waiting to start: a step that went unexamined at the
        last admission (it queued behind a starved one) keeps its announced wait.
        """
        for step in set(self._announced) - ready:
            del self._announced[step]
        if not blocked:
            return []
        new = {s: b for s, b in blocked.items() if self._announced.get(s) != b}
        due = self._clock() - self._last_report >= self._every
        if not new and not due:
            return []
        report = blocked if due else new
        self._announced.update(new)
        if due:
            self._last_report = self._clock()
        # Dead holders of cores are reaped by the ledger itself; pool slots need this.
        if due or any(b.kind != CORES for b in new.values()):
            freed: list[str] = []
            if reap_dead_runs(self._instance, self._ledger, freed.append, [self._run_id]):
                return freed  # what blocked these steps may be gone: admit before reporting
        by_block: dict[Block, list[str]] = defaultdict(list)
        for step, block in report.items():
            by_block[block].append(step)
        messages = []
        for block, steps in sorted(by_block.items(), key=lambda item: sorted(item[1])):
            holders = self._holders(block)
            if holders is None:
                continue  # only this run's own steps hold it: the plan at work
            names = ", ".join(repr(s) for s in sorted(steps))
            verb = "waits" if len(steps) == 1 else "wait"
            noun = "step" if len(steps) == 1 else "steps"
            messages.append(f"{noun} {names} {verb} for {block.what()}: {holders}")
        return messages

    def _holders(self, block: Block) -> str | None:
        if block.kind == CORES:
            return self._core_holders()
        return self._pool_holders(block.pool or "")

    def _pool_holders(self, pool: str) -> str | None:
        storage = self._instance.event_log_storage
        if not storage.supports_global_concurrency_limits:
            return None
        info = storage.get_concurrency_info(pool)
        steps: dict[str, list[str]] = defaultdict(list)
        for slot in info.claimed_slots:
            steps[slot.run_id].append(slot.step_key)
        if not steps:
            return f"pool {pool!r} (limit {info.limit}) has no claimed slot; retrying"
        if set(steps) == {self._run_id}:
            return None
        parts = []
        for run_id, keys in sorted(steps.items()):
            state = holder_state(self._instance, run_id)
            parts.append(f"{state.describe()} holds it for step(s) {', '.join(sorted(keys))}")
        return f"pool {pool!r} has limit {info.limit}; " + "; ".join(parts)

    def _core_holders(self) -> str | None:
        holdings = self._ledger.holdings()
        if all(h.holder.startswith(f"{self._run_id}:") for h in holdings):
            return None
        free = self._ledger.capacity - sum(h.cores for h in holdings)
        parts = [
            f"{h.holder.partition(':')[0]} step {h.holder.partition(':')[2] or '?'} holds "
            f"{h.cores} ({h.owner.describe()})"
            for h in holdings
        ]
        return f"{free} of {self._ledger.capacity} free; " + "; ".join(parts)
