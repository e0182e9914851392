"""forex_assets: FX research assets on Dagster. `code_location` is the code location.

The root stays inert: importing `forex_assets` (or any core under it, in a worker) loads
neither Dagster nor the Definitions. `code_location` (the `defs` of
`forex_assets.definitions`) is built on first access, which is how Dagster's
`-m forex_assets` finds it (autodiscovery reads the module's members), so a bad setting
fails the code location, not every CLI subcommand or core import. (`forex_assets.defs` is
the package of Dagster wiring the Definitions are assembled from.)
"""

from __future__ import annotations

from typing import Any

CODE_LOCATION = "code_location"
__all__ = [CODE_LOCATION]


def __getattr__(name: str) -> Any:
    if name == CODE_LOCATION:
        from forex_assets.definitions import defs

        return defs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), CODE_LOCATION})
