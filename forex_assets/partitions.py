"""The `symbols` partition set: the static list from settings plus symbols users add.

Dagster keeps dynamic partitions in the instance, so a fresh instance knows none. The
configured symbols are registered wherever a run can start before anything asks for them:
by the project's executor at run start, by the registry sensor for the UI, and by the CLI.
"""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

from forex_assets.market.instruments import UnknownSymbolError, instrument_for

SYMBOLS_PARTITION_SET = "symbols"
symbol_partitions = dg.DynamicPartitionsDefinition(name=SYMBOLS_PARTITION_SET)


def register_symbols(instance: dg.DagsterInstance, symbols: Iterable[str]) -> list[str]:
    """Add the symbols the instance does not know yet; returns the ones added."""
    known = set(instance.get_dynamic_partitions(SYMBOLS_PARTITION_SET))
    new = [instrument_for(s).symbol for s in symbols]
    new = [s for s in dict.fromkeys(new) if s not in known]
    if new:
        instance.add_dynamic_partitions(SYMBOLS_PARTITION_SET, new)
    return new


def partition_key_problem(key: str) -> str | None:
    """Why the partition `key` cannot name a symbol's data, or None for a canonical symbol.

    The UI and the API add partition keys as typed: `eurusd`, ` EURUSD` or `../../EURUSD`
    would each become a second copy of EURUSD's assets (and a path outside the store), so
    only the canonical spelling `instrument_for` returns is accepted as a run's partition.
    """
    try:
        canonical = instrument_for(key).symbol
    except UnknownSymbolError as error:
        return (
            f"partition {key!r} of the '{SYMBOLS_PARTITION_SET}' partition set is not a symbol: "
            f"{error} Delete it with `dagster.DagsterInstance.get().delete_dynamic_partition("
            f"{SYMBOLS_PARTITION_SET!r}, {key!r})`."
        )
    if canonical != key:
        return (
            f"partition {key!r} of the '{SYMBOLS_PARTITION_SET}' partition set is not the "
            f"canonical spelling of {canonical}; run partition {canonical!r} instead (add it "
            f"with `python -m forex_assets symbols add {canonical}`) and delete {key!r} with "
            f"`dagster.DagsterInstance.get().delete_dynamic_partition("
            f"{SYMBOLS_PARTITION_SET!r}, {key!r})`."
        )
    return None
