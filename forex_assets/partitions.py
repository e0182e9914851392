"""The `symbols` partition set: the static list from settings plus symbols users add.

Dagster keeps dynamic partitions in the instance, so a fresh instance knows none. The
configured symbols are registered wherever a run can start before anything asks for them:
by the project's executor at run start, by the registry sensor for the UI, and by the CLI.
"""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

from forex_assets.market.instruments import instrument_for

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
