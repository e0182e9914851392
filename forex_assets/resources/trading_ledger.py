"""Where the shared risk ledger and the paper broker's book live (one folder, SQLite files)."""

from pathlib import Path

import dagster as dg


class TradingLedgerResource(dg.ConfigurableResource):
    directory: str

    def path(self) -> Path:
        directory = Path(self.directory)
        directory.mkdir(parents=True, exist_ok=True)
        return directory
