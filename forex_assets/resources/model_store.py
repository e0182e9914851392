"""Where trained model files live: `<root>/<symbol>/<run id>/<split>/...`."""

from pathlib import Path

import dagster as dg


class ModelStoreResource(dg.ConfigurableResource):
    root: str

    def run_directory(self, symbol: str, run_id: str) -> Path:
        directory = Path(self.root) / symbol / run_id
        directory.mkdir(parents=True, exist_ok=True)
        return directory
