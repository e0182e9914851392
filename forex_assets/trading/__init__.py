"""Risk manager, position sizing, shared risk ledger, brokers and paper trading (Dagster-free)."""
