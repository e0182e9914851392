"""The5ers Hyper Growth: tighter limits, no minimum days."""

from forex_assets.prop_firms.rules import PropFirmRules

PRESETS = (PropFirmRules("the5ers_hyper_growth", 0.03, 0.06, 0.10, 0),)
