"""A funded account after a passed challenge: no target, the usual limits."""

from forex_assets.prop_firms.rules import PropFirmRules

PRESETS = (PropFirmRules("funded_account", 0.05, 0.10, 0.0, 0),)
