"""forex_assets: FX research assets on Dagster. `defs` is the code location."""

from forex_assets.definitions import defs

__all__ = ["defs"]
