"""FundedNext Stellar two-step, both phases."""

from forex_assets.prop_firms.rules import PropFirmRules

PRESETS = (
    PropFirmRules("fundednext_stellar_2step", 0.05, 0.10, 0.08, 5),
    PropFirmRules("fundednext_stellar_2step_phase2", 0.05, 0.10, 0.05, 5),
)
