"""The broker interface: what the trading loop needs from any broker, paper or live.

Orders carry the ledger's intent id as their client order id, and `submit` is idempotent
on it, so a trader that restarts can ask the broker what happened to each intent
(`order`) instead of guessing, and resubmitting never doubles a position. A live broker
adapter implements this protocol; the paper broker (`paper_broker.PaperBroker`) is the
only implementation shipped, since a faked live broker would only hide the work left.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class OrderStatus(StrEnum):
    PENDING = "pending"  # accepted, not filled yet (a market order fills at the next bar)
    OPEN = "open"  # filled, position open
    CLOSED = "closed"  # position closed (stop, target or close order)
    REJECTED = "rejected"  # never filled; the message says why


@dataclass(frozen=True)
class MarketOrder:
    """A market order with its protective stop and optional target, as distances from the
    fill price (price units): the loss at the stop is then exactly what sizing assumed,
    wherever the order fills."""

    client_order_id: str
    symbol: str
    side: int  # +1 buy, -1 sell
    lots: float
    stop_distance: float
    take_distance: float | None = None


@dataclass(frozen=True)
class BrokerOrder:
    """The broker's view of one order and the position it opened."""

    client_order_id: str
    symbol: str
    side: int
    lots: float
    status: OrderStatus
    stop_distance: float
    take_distance: float | None
    stop_price: float | None = None  # set at the fill
    take_price: float | None = None
    fill_price: float | None = None
    fill_us: int | None = None
    risk: float | None = None  # loss at the stop from the fill, commission included
    exit_price: float | None = None
    exit_us: int | None = None
    exit_reason: str | None = None
    pnl: float | None = None  # account currency, costs and swaps included
    message: str = ""


class Broker(Protocol):
    """What `paper_session.PaperSession` and `RiskLedger.reconcile` call, and nothing more:
    a new broker is one module implementing these members (see CONTRIBUTING.md)."""

    @property
    def bar(self) -> int:
        """The last bar the broker has played (-1 before the first): where a restarted
        session resumes."""
        ...

    def advance(self, bar: int) -> list[BrokerOrder]:
        """Play bar `bar`, the one after `bar`'s current value: fills, stops and targets.
        Returns the orders whose state changed, in the order they changed."""
        ...

    def open_pnl(self, bar: int) -> float:
        """The open positions marked at bar `bar`'s exit-side close, in the account
        currency, net of their costs so far (what closing them there would realize)."""
        ...

    def submit(self, order: MarketOrder) -> BrokerOrder:
        """Place `order` (idempotent on its client order id); returns its state."""
        ...

    def order(self, client_order_id: str) -> BrokerOrder | None:
        """The order with this client id, or None if the broker never received it."""
        ...

    def modify_stop(self, client_order_id: str, stop_price: float) -> BrokerOrder:
        """Move an open position's stop."""
        ...

    def close(self, client_order_id: str, reason: str = "close") -> BrokerOrder:
        """Close an open position at market; `reason` is kept as the order's exit reason
        (an order comment at a live broker)."""
        ...
