"""Where the shared risk ledger and the paper broker's book live."""

from pathlib import Path

import dagster as dg


class TradingLedgerResource(dg.ConfigurableResource):
    """`directory` holds the paper broker's book and, unless `risk_ledger` names another
    place (a SQLite path, or a `postgresql://` URL for traders on several hosts), the
    risk ledger."""

    directory: str
    risk_ledger: str = ""

    def path(self) -> Path:
        directory = Path(self.directory)
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    def ledger_location(self) -> str:
        return self.risk_ledger or str(self.path() / "risk_ledger.sqlite")
