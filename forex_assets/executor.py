"""The project's default executor.

Today it is Dagster's multiprocess executor plus one duty done at run start: a run for a
configured symbol registers that symbol as a `symbols` partition first, so that
`dagster job execute ... --tags '{"dagster/partition": "EURUSD"}'` works on a fresh
instance; a run for a symbol nobody configured or added fails before any step starts,
saying how to add it.
"""

from collections.abc import Iterator

import dagster as dg
from dagster._core.execution.context.system import PlanOrchestrationContext
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._core.executor.base import Executor
from dagster._core.storage.tags import PARTITION_NAME_TAG

from forex_assets import settings
from forex_assets.partitions import SYMBOLS_PARTITION_SET, register_symbols


class UnknownSymbolPartitionError(dg.DagsterInvariantViolationError):
    """A run names a symbol that is neither configured nor added as a partition."""


def ensure_symbol_partition(instance: dg.DagsterInstance, symbol: str) -> None:
    if instance.has_dynamic_partition(SYMBOLS_PARTITION_SET, symbol):
        return
    configured = settings.configured_symbols()
    if symbol not in configured:
        raise UnknownSymbolPartitionError(
            f"partition {symbol!r} is not in the '{SYMBOLS_PARTITION_SET}' partition set and not "
            f"among the configured symbols {configured}. Add it in the UI (Add partition), with "
            f"`python -m forex_assets symbols add {symbol}`, or list it in "
            f"{settings.ENV_SYMBOLS}."
        )
    register_symbols(instance, [symbol])


class SymbolRegisteringExecutor(Executor):
    """Registers the run's symbol partition, then delegates to the wrapped executor."""

    def __init__(self, inner: Executor):
        self._inner = inner

    @property
    def retries(self):
        return self._inner.retries

    @property
    def step_dependency_config(self):
        return self._inner.step_dependency_config

    def execute(
        self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan
    ) -> Iterator[dg.DagsterEvent]:
        symbol = plan_context.dagster_run.tags.get(PARTITION_NAME_TAG)
        if symbol:
            ensure_symbol_partition(plan_context.instance, symbol)
        yield from self._inner.execute(plan_context, execution_plan)


@dg.executor(
    name="forex_executor",
    config_schema=dg.multiprocess_executor.config_schema,
    requirements=dg.multiple_process_executor_requirements(),
)
def forex_executor(init_context: dg.InitExecutorContext) -> Executor:
    return SymbolRegisteringExecutor(dg.multiprocess_executor.executor_creation_fn(init_context))
