"""Where trained model files live: `<root>/<symbol>/<run id>/<split>/...` (the layout and
its orphans are `forex_assets.storage.model_store`'s, the final model's loader
`forex_assets.models.final_model`'s)."""

from pathlib import Path

import dagster as dg

from forex_assets.models.final_model import FinalModel, load_final_model
from forex_assets.storage.model_store import run_directory


class ModelStoreResource(dg.ConfigurableResource):
    root: str

    def run_directory(self, symbol: str, run_id: str) -> Path:
        return run_directory(Path(self.root), symbol, run_id)

    def load(self, symbol: str, run_id: str) -> FinalModel:
        """The final model that run `run_id` stored for `symbol`, ready to score rows."""
        return load_final_model(Path(self.root), symbol, run_id)
