"""Which ready step starts next: pool limits, thread budgets and the `symbols` stage slot.

A ready step starts only when (1) its pool has a free slot in this run (the plan's limit,
enforced locally so limits hold even on an ephemeral instance), (2) its thread budget
fits in the machine-wide core ledger, (3) for a heavy step (pools `features` and
`training`), this run holds a slot of the `symbols` pool, and (4) Dagster's instance
pool admits it, which is what makes the limits hold across concurrent runs.

Dagster's own claim loop backs off up to 15 s between attempts on a blocked pool; here a
slot freed by a step of this run is handed to the next waiting step at once, and slots
freed by other runs are noticed within `CROSS_RUN_POLL_S`.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy
import sqlalchemy.exc
from dagster._core.execution.plan.active import ActiveExecution
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext
from dagster._core.execution.plan.step import ExecutionStep
from dagster._core.instance import DagsterInstance
from dagster._core.storage.tags import GLOBAL_CONCURRENCY_TAG, PRIORITY_TAG

from forex_assets.compute.core_ledger import CoreLedger
from forex_assets.compute.core_use import StepUse
from forex_assets.compute.plan import HEAVY_POOLS, STARVATION_S, Pool, ResourcePlan
from forex_assets.executor.waits import CORES, Block

THREADS_TAG = "forex_assets/threads"
SYMBOL_STAGE_KEY = "__symbol_heavy_stage__"
CROSS_RUN_POLL_S = 0.1
POOL_LIMITS_KV_KEY = "forex_assets/pool_limits_set_by_executor"
# Advisory lock id serializing pool claims on Postgres storage (any fixed 64-bit number).
CLAIM_LOCK = 0x666F726578


def step_pool(step: ExecutionStep) -> str | None:
    return step.pool or step.tags.get(GLOBAL_CONCURRENCY_TAG)


def requested_threads(step: ExecutionStep, plan: ResourcePlan) -> int:
    """Threads the step asked for via its `forex_assets/threads` tag, else its pool's share.

    The tag holds a whole number or "all"; a bad value is an error, not a silent default.
    """
    raw = step.tags.get(THREADS_TAG)
    if raw is None:
        return plan.threads_for(step_pool(step))
    if raw == "all":
        return plan.cores
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(
            f"step {step.key!r} has tag {THREADS_TAG}={raw!r}; it must be a whole number of "
            "threads of at least 1, or 'all'."
        )
    return plan.threads_for(step_pool(step), int(raw))


@contextmanager
def claims_serialized(instance: DagsterInstance) -> Iterator[None]:
    """Hold a Postgres advisory lock while claiming a pool slot.

    Dagster 1.13's SQL storage claims a slot with ``SELECT ... FOR UPDATE SKIP LOCKED`` and
    then an ``UPDATE`` by id alone; dagster-postgres runs both on an autocommit connection,
    so the row lock ends with the SELECT and two processes claiming at the same moment can
    both take the one free slot (seen: two steps of a pool of limit 1 running together).
    Serializing this project's claims closes that window. SQLite storage serializes every
    write already; other storages pass through.
    """
    engine = getattr(instance.event_log_storage, "_engine", None)  # dagster-postgres' engine
    if engine is None or engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as connection:
        connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": CLAIM_LOCK})
        try:
            yield
        finally:
            connection.execute(
                sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": CLAIM_LOCK}
            )


class FastConcurrencyContext(InstanceConcurrencyContext):
    """Dagster's instance pool claims without the growing back-off."""

    def claim(self, concurrency_key: str, step_key: str, step_priority: int = 0) -> bool:
        with claims_serialized(self._instance):
            claimed = super().claim(concurrency_key, step_key, step_priority)
        if not claimed and step_key in self._pending_timeouts:
            # Shorten the back-off Dagster just set, never extend a wait already pending:
            # a caller polling faster than CROSS_RUN_POLL_S must not postpone the retry.
            retry_at = time.time() + CROSS_RUN_POLL_S
            self._pending_timeouts[step_key] = min(self._pending_timeouts[step_key], retry_at)
        return claimed

    def free_step(self, step_key: str) -> None:
        super().free_step(step_key)
        for pending in self._pending_timeouts:  # a slot just opened: retry waiting steps now
            self._pending_timeouts[pending] = 0.0


class SymbolStage:
    """This run's slot in the `symbols` pool, held from its first heavy step to its last."""

    def __init__(
        self, instance: DagsterInstance, run_id: str, heavy_steps: set[str], local_limit: int
    ):
        self._instance = instance
        self._storage = instance.event_log_storage
        self._shared = self._storage.supports_global_concurrency_limits
        self._run_id = run_id
        self._remaining = set(heavy_steps)
        self._local_limit = local_limit
        self.held = False

    def admit(self) -> bool:
        if self.held:
            return True
        if self._local_limit < 1:
            return False
        if self._shared:
            with claims_serialized(self._instance):
                status = self._storage.claim_concurrency_slot(
                    Pool.SYMBOLS, self._run_id, SYMBOL_STAGE_KEY, 0
                )
            if not status.is_claimed:
                return False
        self.held = True
        return True

    def step_finished(self, step_key: str) -> None:
        self._remaining.discard(step_key)
        if self.held and not self._remaining:
            self.release()

    def release(self) -> None:
        if self._shared:
            # Also withdraws a pending claim, so a finished run never blocks the queue.
            self._storage.free_concurrency_slot_for_step(self._run_id, SYMBOL_STAGE_KEY)
        self.held = False


class BudgetedActiveExecution(ActiveExecution):
    """Dagster's plan state machine with budget-aware admission of ready steps."""

    def __init__(
        self,
        *args,
        plan: ResourcePlan,
        ledger: CoreLedger,
        run_id: str,
        symbol_stage: SymbolStage,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self._budget_plan = plan
        self._ledger = ledger
        self._waiting: dict[str, int] = {}
        self._launched: dict[str, float] = {}
        self.step_use: dict[str, StepUse] = {}
        self._run_id = run_id
        self._symbol_stage = symbol_stage
        self.threads_by_step: dict[str, int] = {}
        self._waiting_for_cores: dict[str, float] = {}
        self._freed = True
        # Ready steps that could not start at the last admission, and what stopped them
        # (another run's pool slot or cores; this run's own pool limits are not listed).
        self.blocked: dict[str, Block] = {}

    def ledger_holder(self, step_key: str) -> str:
        return f"{self._run_id}:{step_key}"

    def get_steps_to_execute(self, limit: int | None = None) -> Sequence[ExecutionStep]:
        self._update()
        self.blocked = {}
        if not self._executable:
            return []
        steps = sorted((self.get_step_by_key(k) for k in self._executable), key=self._sort_key_fn)
        in_flight = Counter(step_pool(self.get_step_by_key(k)) for k in self._in_flight)
        free_cores = self._ledger.capacity - self._ledger.held()
        batch: list[ExecutionStep] = []
        for step in steps:
            if limit is not None and len(batch) >= limit:
                break
            pool = step_pool(step)
            if (
                pool in self._budget_plan.pool_limits
                and in_flight[pool] >= self._budget_plan.pool_limits[pool]
            ):
                continue
            threads = requested_threads(step, self._budget_plan)
            if threads > free_cores:
                self.blocked[step.key] = Block(CORES, None, threads)
                since = self._waiting_for_cores.setdefault(step.key, time.monotonic())
                if time.monotonic() - since > STARVATION_S:
                    break  # reserve the cores for this step: start nothing behind it
                continue
            self._waiting_for_cores.pop(step.key, None)
            if pool in HEAVY_POOLS and not self._symbol_stage.admit():
                self.blocked[step.key] = Block("pool", Pool.SYMBOLS, threads)
                continue
            if not self._ledger.try_acquire(self.ledger_holder(step.key), threads):
                self.blocked[step.key] = Block(CORES, None, threads)
                free_cores = 0  # another run took the cores since we looked
                continue
            if pool and self._instance_concurrency_context:
                priority = _priority(step)
                if not self._instance_concurrency_context.claim(pool, step.key, priority):
                    self._ledger.release(self.ledger_holder(step.key))
                    self.blocked[step.key] = Block("pool", pool, threads)
                    continue
            free_cores -= threads
            in_flight[pool] += 1
            self.threads_by_step[step.key] = threads
            batch.append(step)
        for step in batch:
            self._in_flight.add(step.key)
            self._executable.remove(step.key)
            self._prep_for_dynamic_outputs(step)
            self._launched[step.key] = time.monotonic()
        self._publish_waiting()
        return batch

    def _publish_waiting(self) -> None:
        """Tell the ledger which steps wait for cores: leases leave those cores to them."""
        waiting = {
            self.ledger_holder(key): block.threads
            for key, block in self.blocked.items()
            if block.kind == CORES
        }
        if waiting != self._waiting:
            self._ledger.set_waiting(f"{self._run_id}:", waiting)
            self._waiting = waiting

    @property
    def plan(self) -> ResourcePlan:
        return self._budget_plan

    @property
    def ledger(self) -> CoreLedger:
        return self._ledger

    def record_use(self, step_key: str, cpu_s: float) -> None:
        """A step finished in its worker: keep its wall and CPU seconds for the run's report."""
        launched = self._launched.pop(step_key, None)
        if launched is not None:
            self.step_use[step_key] = StepUse(
                step_key,
                self.threads_by_step.get(step_key, 0),
                time.monotonic() - launched,
                cpu_s,
            )

    @property
    def ready_steps(self) -> set[str]:
        """Steps whose inputs are ready that have not started."""
        return set(self._executable)

    def waiting_for_resources(self) -> bool:
        """Ready steps exist but none could start: poll again soon."""
        return bool(self._executable)

    def take_freed(self) -> bool:
        """Whether a step of this run released resources since the last call."""
        freed, self._freed = self._freed, False
        return freed

    def in_flight(self, step_key: str) -> bool:
        """Launched and not yet succeeded, failed or retried."""
        return step_key in self._in_flight

    def release_step(self, step_key: str) -> None:
        self._freed = True
        self._ledger.release(self.ledger_holder(step_key))
        self.threads_by_step.pop(step_key, None)
        self._symbol_stage.step_finished(step_key)


def _priority(step: ExecutionStep) -> int:
    try:
        return int(step.tags.get(PRIORITY_TAG, 0))
    except ValueError:
        return 0


def sync_instance_pool_limits(
    instance: DagsterInstance, plan: ResourcePlan, log: Callable[[str], None]
) -> dict[str, int]:
    """Write the plan's pool limits into the instance so they hold across runs.

    A limit somebody set by hand (UI, `dagster instance concurrency set`) differs from the
    one this executor last wrote; that limit is the user's decision and wins, also for this
    run's local admission. Returns the limits in force.
    """
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        log(
            "instance storage does not enforce pools (ephemeral instance): limits hold within this run only"
        )
        return dict(plan.pool_limits)
    current = {pool.name: pool for pool in storage.get_pool_limits()}
    recorded_raw = instance.run_storage.get_cursor_values({POOL_LIMITS_KV_KEY}).get(
        POOL_LIMITS_KV_KEY
    )
    recorded: dict[str, int] = json.loads(recorded_raw) if recorded_raw else {}
    in_force: dict[str, int] = {}
    for pool, limit in plan.pool_limits.items():
        existing = current.get(pool)
        user_set = (
            existing is not None
            and not existing.from_default
            and existing.limit != recorded.get(pool)
        )
        if user_set:
            in_force[pool] = existing.limit
            log(
                f"pool {pool}: keeping the limit {existing.limit} set on the instance (plan: {limit})"
            )
            continue
        if existing is None or existing.from_default or existing.limit != limit:
            _retry_write(lambda pool=pool, limit=limit: storage.set_concurrency_slots(pool, limit))
        recorded[pool] = limit
        in_force[pool] = limit
    _retry_write(
        lambda: instance.run_storage.set_cursor_values({POOL_LIMITS_KV_KEY: json.dumps(recorded)})
    )
    return in_force


def _retry_write(write: Callable[[], object], attempts: int = 8) -> None:
    """Runs starting together race to create the same pool rows (a unique-key conflict on
    SQLite, a lock timeout elsewhere); the loser retries and then finds the row in place."""
    for attempt in range(attempts):
        try:
            write()
            return
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
