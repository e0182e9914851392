"""Run start duty: make sure the run's symbol is a partition of the `symbols` set.

A run for a configured symbol registers that symbol first, so that `dagster job execute
... --tags '{"dagster/partition": "EURUSD"}'` works on a fresh instance; a run for a
symbol nobody configured or added fails before any step starts, saying how to add it, and
so does a run for a partition that is not a symbol's canonical spelling (`eurusd`,
`../../EURUSD`, `USDUSD`, added through the UI or the API), saying which name to use.
"""

import dagster as dg

from forex_assets.partitions import (
    SYMBOLS_PARTITION_SET,
    partition_key_problem,
    register_symbols,
)


class UnknownSymbolPartitionError(dg.DagsterInvariantViolationError):
    """A run names a symbol that is neither configured nor added as a partition, or a
    partition that is not a symbol's canonical spelling."""


def ensure_symbol_partition(instance: dg.DagsterInstance, symbol: str) -> None:
    """Fail the run before its first step unless `symbol` is a canonical, known symbol."""
    problem = partition_key_problem(symbol)
    if problem is not None:
        raise UnknownSymbolPartitionError(problem)
    if instance.has_dynamic_partition(SYMBOLS_PARTITION_SET, symbol):
        return
    # Here, not at the top: the executor's workers import this module and never get here,
    # and the settings pull in the feature configuration (TA-Lib, pandas: seconds).
    from forex_assets import settings

    configured = settings.configured_symbols()
    if symbol not in configured:
        raise UnknownSymbolPartitionError(
            f"partition {symbol!r} is not in the '{SYMBOLS_PARTITION_SET}' partition set and not "
            f"among the configured symbols {configured}. Add it in the UI (Add partition), with "
            f"`python -m forex_assets symbols add {symbol}`, or list it in "
            f"{settings.ENV_SYMBOLS}."
        )
    register_symbols(instance, [symbol])
