"""Position sizing: how many lots risk the intended share of equity at the stop.

The base risk is `risk_fraction` of equity. It shrinks with the model's confidence (a
trade the model is unsure of risks less) and with the loss room already used (an account
near its daily or total limit trades smaller, so one more loss cannot end it), and the
lots that lose that amount at the stop are rounded *down* to the broker's lot step: the
realised risk never exceeds the aim. What a 1.0 price move is worth per lot comes from
the contract (`forex_assets.market.contract`, shared with the backtest kernel): the
contract size for USD-quoted pairs and metals, divided by the price for USD-base pairs
such as USDJPY, whose P&L is in yen.
"""

from __future__ import annotations

from dataclasses import dataclass

from forex_assets.market.contract import LOT_ROUNDING_SLACK, Contract
from forex_assets.trading.risk_limits import RiskConfigError
from forex_assets.value_checks import is_finite_number


@dataclass(frozen=True)
class SizingPolicy:
    """`risk_fraction` of equity lost at the stop, scaled by confidence and room.

    * confidence scaling: the risk is multiplied by the order's confidence in [0, 1]
      (0.5 = no opinion, so a neutral model halves the size); orders below
      `min_confidence` are refused.
    * drawdown scaling: multiplied by ``1 - drawdown used`` (see `risk_rules.drawdown_used`).
    * `max_lot` caps one order whatever the arithmetic says.
    """

    risk_fraction: float = 0.01
    min_confidence: float = 0.0
    scale_by_confidence: bool = True
    scale_by_drawdown: bool = True
    max_lot: float = 50.0

    def __post_init__(self) -> None:
        if not (is_finite_number(self.risk_fraction) and 0 < self.risk_fraction <= 0.1):
            raise RiskConfigError(
                f"SizingPolicy.risk_fraction={self.risk_fraction!r} must be in (0, 0.1]: the "
                "share of equity lost when the stop is hit, e.g. 0.01 for 1%."
            )
        if not (is_finite_number(self.min_confidence) and 0 <= self.min_confidence < 1):
            raise RiskConfigError(
                f"SizingPolicy.min_confidence={self.min_confidence!r} must be in [0, 1)."
            )
        if not (is_finite_number(self.max_lot) and self.max_lot > 0):
            raise RiskConfigError(f"SizingPolicy.max_lot={self.max_lot!r} must be positive.")


@dataclass(frozen=True)
class PositionSize:
    lots: float
    risk: float  # account currency lost at the stop, commission included
    target_risk: float  # what the policy aimed at before rounding


def size_position(
    policy: SizingPolicy,
    contract: Contract,
    equity: float,
    price: float,
    stop_distance: float,
    confidence: float,
    drawdown_used: float,
) -> PositionSize | str:
    """Lots for one order, or why none can be placed (the caller turns it into a refusal)."""
    scale = 1.0
    if policy.scale_by_confidence:
        scale *= confidence
    if policy.scale_by_drawdown:
        scale *= 1.0 - drawdown_used
    target = policy.risk_fraction * equity * scale
    per_lot = contract.risk_at_stop(1.0, stop_distance, price)
    lots = contract.lots_rounded_down(min(target / per_lot, policy.max_lot))
    if lots < contract.min_lot - LOT_ROUNDING_SLACK:
        return (
            f"risking {target:,.2f} ({policy.risk_fraction:.2%} of equity {equity:,.2f} x "
            f"scale {scale:.3f}) at a stop {stop_distance:.5g} away buys {target / per_lot:.4f} "
            f"lots, below the minimum lot {contract.min_lot}."
        )
    return PositionSize(lots, contract.risk_at_stop(lots, stop_distance, price), target)
