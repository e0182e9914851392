"""FTMO two-step challenge and verification."""

from forex_assets.prop_firms.rules import PropFirmRules

PRESETS = (
    PropFirmRules("ftmo_challenge", 0.05, 0.10, 0.10, 4),
    PropFirmRules("ftmo_verification", 0.05, 0.10, 0.05, 4),
)
