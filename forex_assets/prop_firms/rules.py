"""A prop firm's challenge terms as data: what `check_rules` judges equity against.

Neutral to both the strategy search (which scores candidates by these rules) and the
trading side (whose risk limits start from them), so neither depends on the other.
Presets live one firm per module in `forex_assets.prop_firms.presets`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields

from forex_assets.value_checks import is_whole

# Limits compare with this slack: 0.05 x 100,000 and 100,000 x 1.1 are not exact in binary,
# yet a firm (and the risk rules) count losing exactly the limit as within it.
TOLERANCE = 1e-9
_FRACTIONS = ("daily_loss_limit", "max_total_loss", "profit_target")


class PropFirmConfigError(ValueError):
    """Prop-firm rules that cannot be checked; the message names the setting and value."""


@dataclass(frozen=True)
class PropFirmRules:
    """One firm's challenge terms; fractions are of equity (0.05 = 5%)."""

    name: str
    daily_loss_limit: float
    max_total_loss: float
    profit_target: float
    min_trading_days: int
    max_trades_per_day: int | None = None
    trailing_drawdown: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise PropFirmConfigError(
                f"name={self.name!r} must be a non-empty string: reports and logs name the "
                "rules by it."
            )
        for field in _FRACTIONS:
            value = getattr(self, field)
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not number or not 0 <= value < 1:
                raise PropFirmConfigError(
                    f"{self.name}: {field}={value!r} must be a fraction in [0, 1), e.g. 0.05 "
                    "for 5%: a negative limit is broken before the first trade and one of "
                    "100% or more can never bind."
                )
        value = self.min_trading_days
        if not is_whole(value) or value < 0:
            raise PropFirmConfigError(
                f"{self.name}: min_trading_days={value!r} must be a whole number of days >= 0."
            )
        value = self.max_trades_per_day
        if value is not None and (not is_whole(value) or value < 1):
            raise PropFirmConfigError(
                f"{self.name}: max_trades_per_day={value!r} must be a whole number >= 1, or "
                "None for no limit: a limit of 0 forbids trading."
            )
        if not isinstance(self.trailing_drawdown, bool):
            raise PropFirmConfigError(
                f"{self.name}: trailing_drawdown={self.trailing_drawdown!r} must be true or false."
            )


def did_you_mean(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def rules_from_mapping(mapping: Mapping[str, object]) -> PropFirmRules:
    """Rules from a configuration file's table; a misspelt key is an error, not ignored."""
    known = [f.name for f in fields(PropFirmRules)]
    unknown = sorted(set(mapping) - set(known))
    if unknown:
        hints = "".join(did_you_mean(str(key), known) for key in unknown)
        raise PropFirmConfigError(
            f"unknown prop-firm rule key(s) {unknown}.{hints} Known keys: {', '.join(known)}."
        )
    required = [f.name for f in fields(PropFirmRules) if f.default is MISSING]
    missing = [key for key in required if key not in mapping]
    if missing:
        raise PropFirmConfigError(
            f"prop-firm rules {dict(mapping)!r} lack required key(s) {missing}; every firm "
            "has a name, daily and total loss limits, a target (0 for none) and minimum days."
        )
    return PropFirmRules(**mapping)
