"""The prop-firm presets, collected from `forex_assets.prop_firms.presets` by module.

Discovered rather than listed, so a new firm is one new module and nothing else changes;
two modules claiming one preset name is an error, not a silent override.
"""

from __future__ import annotations

import importlib
import pkgutil

from forex_assets.prop_firms import presets
from forex_assets.prop_firms.rules import PropFirmConfigError, PropFirmRules, did_you_mean


def _discover() -> dict[str, PropFirmRules]:
    found: dict[str, PropFirmRules] = {}
    owner: dict[str, str] = {}
    for module_info in sorted(pkgutil.iter_modules(presets.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{presets.__name__}.{module_info.name}")
        rules = getattr(module, "PRESETS", None)
        if not isinstance(rules, tuple) or not all(isinstance(r, PropFirmRules) for r in rules):
            raise PropFirmConfigError(
                f"{module.__name__} defines PRESETS={rules!r}; a preset module must define "
                "PRESETS as a tuple of PropFirmRules."
            )
        for rule in rules:
            if rule.name in found:
                raise PropFirmConfigError(
                    f"preset {rule.name!r} is defined by both {owner[rule.name]} and "
                    f"{module.__name__}; give one of them another name."
                )
            found[rule.name], owner[rule.name] = rule, module.__name__
    return found


PRESETS: dict[str, PropFirmRules] = _discover()


def preset(name: str) -> PropFirmRules:
    """The preset called `name` (see `PRESETS`)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise PropFirmConfigError(
            f"no prop-firm preset named {name!r}.{did_you_mean(name, list(PRESETS))} "
            f"Presets: {', '.join(PRESETS)}; or build PropFirmRules with your firm's terms."
        ) from None
