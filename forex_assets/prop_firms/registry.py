"""The prop-firm presets, collected from `forex_assets.prop_firms.presets` by module.

A new firm is one new module there (see `forex_assets.plugins`).
"""

from __future__ import annotations

from forex_assets.plugins import collect
from forex_assets.prop_firms import presets
from forex_assets.prop_firms.rules import PropFirmConfigError, PropFirmRules, did_you_mean


def discover() -> dict[str, PropFirmRules]:
    """Every preset of every module in `presets`, by name."""
    found = collect(presets, "PRESETS", PropFirmRules, many=True, error=PropFirmConfigError)
    return {registered.item.name: registered.item for registered in found}


PRESETS: dict[str, PropFirmRules] = discover()


def preset(name: str) -> PropFirmRules:
    """The preset called `name` (see `PRESETS`)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise PropFirmConfigError(
            f"no prop-firm preset named {name!r}.{did_you_mean(name, list(PRESETS))} "
            f"Presets: {', '.join(PRESETS)}; or build PropFirmRules with your firm's terms."
        ) from None
