"""Run start on a real instance: a partition key that is not a symbol's canonical
spelling fails the run before any step, naming the canonical partition."""

import dagster as dg
import pytest
from dagster._core.storage.tags import PARTITION_NAME_TAG

from forex_assets.executor import budgeted_executor
from forex_assets.partitions import SYMBOLS_PARTITION_SET, symbol_partitions


@dg.op
def touch() -> None:
    """Never reached: the run must fail before its first step."""


@dg.job(executor_def=budgeted_executor, partitions_def=symbol_partitions)
def symbol_job():
    touch()


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("eurusd", "is not the canonical spelling of EURUSD; run partition 'EURUSD' instead"),
        ("../../EURUSD", "is not the canonical spelling of EURUSD; run partition 'EURUSD'"),
        ("USDUSD", "is not a symbol: symbol='USDUSD' quotes USD against itself"),
    ],
)
def test_non_canonical_partition_fails_the_run_before_any_step(instance, key, reason):
    instance.add_dynamic_partitions(SYMBOLS_PARTITION_SET, [key])  # as the UI or API would
    with dg.execute_job(
        dg.reconstructable(symbol_job),
        instance=instance,
        tags={PARTITION_NAME_TAG: key},
        raise_on_error=False,
    ) as result:
        assert not result.success
        events = result.all_events
        assert not [e for e in events if e.event_type == dg.DagsterEventType.STEP_START]
        failure = next(e for e in events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
    error = failure.event_specific_data.error
    assert error.cls_name == "UnknownSymbolPartitionError"
    assert error.message.startswith(
        f"forex_assets.executor.symbols.UnknownSymbolPartitionError: partition {key!r} of the "
        f"'symbols' partition set {reason}"
    )
