"""The project's executor: Dagster pools plus a per-step CPU budget, in warm workers."""

from forex_assets.executor.budgeted import budgeted_executor
from forex_assets.executor.symbols import UnknownSymbolPartitionError, ensure_symbol_partition

__all__ = ["UnknownSymbolPartitionError", "budgeted_executor", "ensure_symbol_partition"]
