"""A strategy's exit rules and sizing, one object or one row of a batch's rule table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from forex_assets.strategies.backtest.errors import BacktestInputError
from forex_assets.value_checks import is_finite_number, is_number, is_whole

RULE_COLUMNS = ("stop_atr", "take_atr", "max_hold_bars", "trail_atr")


def rule_problem(rules: np.ndarray) -> tuple[int, int, str] | None:
    """(row, column, why) of the first invalid entry of an (n, 4) `RULE_COLUMNS` array."""
    finite = np.isfinite(rules)
    hold = rules[:, 2]
    bad = (
        (~(finite[:, 0] & (rules[:, 0] > 0)), "must be a positive, finite multiple of the ATR"),
        (~(finite[:, 1] & (rules[:, 1] > 0)), "must be a positive, finite multiple of the ATR"),
        (~(finite[:, 2] & (hold >= 1) & (hold == np.floor(hold))), "must be a whole number >= 1"),
        (~(finite[:, 3] & (rules[:, 3] >= 0)), "must be >= 0 and finite (0: no trailing stop)"),
    )
    for column, (mask, why) in enumerate(bad):
        if mask.any():
            return int(np.argmax(mask)), column, why
    return None


def check_account(risk_fraction: float, initial_equity: float, where: str) -> None:
    if not (is_number(risk_fraction) and 0 < risk_fraction <= 0.1):
        raise BacktestInputError(
            f"{where}risk_fraction={risk_fraction!r} must be in (0, 0.1]: it is the share of "
            "equity lost when a stop is hit, e.g. 0.01 for 1%."
        )
    if not is_finite_number(initial_equity):
        raise BacktestInputError(f"{where}initial_equity={initial_equity!r} must be finite.")
    if initial_equity <= 0:
        raise BacktestInputError(f"{where}initial_equity={initial_equity!r} must be positive.")


@dataclass(frozen=True)
class TradeRules:
    """Exit rules and sizing of one strategy; ATR multiples use the signal bar's ATR."""

    stop_atr: float
    take_atr: float
    max_hold_bars: int
    trail_atr: float = 0.0
    risk_fraction: float = 0.01
    initial_equity: float = 100_000.0

    def __post_init__(self) -> None:
        for name in RULE_COLUMNS:
            value = getattr(self, name)
            if not is_number(value):
                raise BacktestInputError(f"TradeRules.{name}={value!r} must be a number.")
        if not is_whole(self.max_hold_bars):
            raise BacktestInputError(
                f"TradeRules.max_hold_bars={self.max_hold_bars!r} must be an int (bars)."
            )
        problem = rule_problem(self.as_row()[None, :])
        if problem is not None:
            name = RULE_COLUMNS[problem[1]]
            raise BacktestInputError(f"TradeRules.{name}={getattr(self, name)!r} {problem[2]}.")
        check_account(self.risk_fraction, self.initial_equity, "TradeRules.")

    @classmethod
    def from_row(cls, row: Sequence[float] | np.ndarray, **account: float) -> TradeRules:
        """The rules of one `RULE_COLUMNS` row (a batch's table, `genes.trade_rules`);
        `account` sets `risk_fraction` and `initial_equity`."""
        values = np.asarray(row, dtype=np.float64)
        if values.shape != (len(RULE_COLUMNS),):
            raise BacktestInputError(
                f"a rule row has shape {values.shape}; pass {len(RULE_COLUMNS)} values, "
                f"columns {RULE_COLUMNS}."
            )
        named = dict(zip(RULE_COLUMNS, values.tolist(), strict=True))
        hold = named["max_hold_bars"]
        if math.isfinite(hold) and hold == math.floor(hold):
            named["max_hold_bars"] = int(hold)
        return cls(**named, **account)

    def as_row(self) -> np.ndarray:
        """The exit rules as one row of `backtest_batch`'s `rules` array."""
        return np.array([getattr(self, name) for name in RULE_COLUMNS], dtype=np.float64)
