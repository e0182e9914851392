"""The risk manager: every order passes here before it may reach a broker.

It turns a signal's `OrderRequest` into either a `Reservation` (lots sized, risk counted
in the shared ledger) or a `Refusal` recorded in the ledger with the rule and numbers.
Bad input is a refusal too, never an exception escaping into the trading loop: an order
with no stop distance, a broker contract with a negative lot step or an unknown symbol
is refused under `invalid_order`, with the message naming the field, so one bad signal
source cannot stop the others.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from numbers import Integral

from forex_assets.market.contract import Contract, ContractError
from forex_assets.market.instruments import UnknownSymbolError, instrument_for
from forex_assets.trading.risk_ledger import Reservation, RiskLedger
from forex_assets.trading.risk_limits import NewsCalendar, RiskLimits
from forex_assets.trading.risk_rules import (
    AccountState,
    OrderRequest,
    Refusal,
    check_account_gates,
    check_loss_limits,
    check_market,
    drawdown_used,
)
from forex_assets.trading.sizing import SizingPolicy, size_position


@dataclass(frozen=True)
class RiskManager:
    """Limits, sizing and broker contract terms (per symbol: lot_step, min_lot,
    commission_per_lot, ... as `Contract` fields) over one shared ledger."""

    ledger: RiskLedger
    limits: RiskLimits = field(default_factory=RiskLimits)
    sizing: SizingPolicy = field(default_factory=SizingPolicy)
    contract_terms: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    news: NewsCalendar = field(default_factory=NewsCalendar)

    def contract(self, symbol: str) -> Contract:
        return Contract.for_symbol(symbol, **self.contract_terms.get(symbol, {}))

    def request(self, account: str, worker: str, request: OrderRequest) -> Reservation | Refusal:
        """Size, check and reserve `request` atomically, or say why not."""
        if not isinstance(request.symbol, str):
            problem = f"symbol={request.symbol!r} must be a string such as 'EURUSD'."
            return self._refuse(account, worker, request, Refusal("invalid_order", problem))
        try:
            # One spelling everywhere: the news check, the ledger and the contract.
            request = replace(request, symbol=instrument_for(request.symbol).symbol)
            contract = self.contract(request.symbol)
        except (UnknownSymbolError, ContractError) as error:
            return self._refuse(account, worker, request, Refusal("invalid_order", str(error)))
        problem = _request_problem(request)
        if problem is not None:
            return self._refuse(account, worker, request, Refusal("invalid_order", problem))
        # Plain Python numbers from here on (numpy integers cannot be bound to SQL).
        request = replace(request, time_us=int(request.time_us), side=int(request.side))
        if math.isnan(request.spread):
            request = replace(request, spread=contract.default_spread_pips * contract.pip_size)
        market = check_market(self.limits, request, contract.pip_size, self.news)
        if market is not None:
            return self._refuse(account, worker, request, market)

        def decide(state: AccountState) -> tuple[float, float] | Refusal:
            gate = check_account_gates(self.limits, state, request)
            if gate is not None:
                return gate
            if request.confidence < self.sizing.min_confidence:
                return Refusal(
                    "position_size",
                    f"confidence {request.confidence:.3f} is below the minimum "
                    f"{self.sizing.min_confidence:.3f}.",
                    {"confidence": request.confidence, "limit": self.sizing.min_confidence},
                )
            used = drawdown_used(self.limits, state)
            size = size_position(
                self.sizing,
                contract,
                state.equity,
                request.price,
                request.stop_distance,
                request.confidence,
                used,
            )
            if isinstance(size, str):
                return Refusal("position_size", size, {"drawdown_used": used})
            return check_loss_limits(self.limits, state, size.risk) or (size.lots, size.risk)

        return self.ledger.reserve(account, worker, request, decide)

    def _refuse(
        self, account: str, worker: str, request: OrderRequest, refusal: Refusal
    ) -> Refusal:
        self.ledger.refuse(account, worker, request, refusal)
        return refusal


def _request_problem(request: OrderRequest) -> str | None:
    """Why the request cannot be sized or placed, naming the field, or None."""

    def number(value: object) -> bool:
        return (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        )

    if not isinstance(request.time_us, Integral) or isinstance(request.time_us, bool):
        return f"time_us={request.time_us!r} must be a whole number of UTC microseconds."
    if isinstance(request.side, bool) or request.side not in (1, -1):
        return f"side={request.side!r} must be +1 (buy) or -1 (sell)."
    if not (number(request.price) and request.price > 0):
        return f"price={request.price!r} must be a positive, finite price."
    if not (number(request.stop_distance) and request.stop_distance > 0):
        return (
            f"stop_distance={request.stop_distance!r} must be a positive distance in price "
            "units: without a stop the loss of the trade is unbounded and no size is safe."
        )
    if request.take_distance is not None and not (
        number(request.take_distance) and request.take_distance > 0
    ):
        return f"take_distance={request.take_distance!r} must be positive, or None for no target."
    if not (number(request.confidence) and 0 <= request.confidence <= 1):
        return f"confidence={request.confidence!r} must be in [0, 1] (0.5: no opinion)."
    if not (math.isnan(request.spread) or (number(request.spread) and request.spread >= 0)):
        return f"spread={request.spread!r} must be >= 0 in price units (NaN: unknown)."
    if not (number(request.expected_slippage) and request.expected_slippage >= 0):
        return f"expected_slippage={request.expected_slippage!r} must be >= 0 in price units."
    return None
