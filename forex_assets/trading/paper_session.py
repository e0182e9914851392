"""Paper trading: replay bars through signal sources, the risk manager and a paper broker.

Each source (the blended model, each portfolio strategy) holds at most one position. At
every bar's close a flat source with a signal asks the risk manager for a trade; the
order it gets reserved goes to the broker, which fills it at the next bar's open. One
account and one ledger serve every source, so the account's limits bind them jointly.

A refused signal is not asked again until it changes (a refusal is not news every bar),
and positions leave by the broker's stop or target, by a close order after
`max_hold_bars` bars or on an opposite signal, with a trailing stop moved after each
bar as in the backtest kernel.

The session is restartable: `run` reconciles the ledger with the broker and resumes from
the broker's clock, so a worker killed at any point and started again ends consistent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from forex_assets.strategies.backtest.market import Market
from forex_assets.trading.broker import Broker, BrokerOrder, MarketOrder, OrderStatus
from forex_assets.trading.risk_ledger import FILLED, RESERVED, ReconcileReport, Reservation
from forex_assets.trading.risk_manager import RiskManager
from forex_assets.trading.risk_rules import OrderRequest


@dataclass(frozen=True)
class SignalSource:
    """One signal history (int8 per bar in {-1, 0, +1}, known at the bar's close) and the
    exits its trades use, in ATR multiples of the signal bar."""

    name: str
    signal: np.ndarray
    stop_atr: float
    take_atr: float
    max_hold_bars: int
    trail_atr: float = 0.0


@dataclass
class _Position:
    source: SignalSource
    intent_id: str
    state: str  # the ledger state: reserved or filled
    signal_bar: int
    side: int
    entry_bar: int = -1
    best_close: float = np.nan
    stop: float = np.nan


@dataclass(frozen=True)
class SessionSummary:
    bars: int
    reservations: int
    refusals: int
    reconciled: ReconcileReport
    open_at_end: int


class PaperSession:
    """Trades `sources` on `market` for one account; `edge` is the model's P(up) - P(down)
    per bar (0 where it has none), from which every order's confidence comes:
    ``0.5 + 0.5 x side x edge``."""

    def __init__(
        self,
        account: str,
        worker: str,
        symbol: str,
        market: Market,
        times_us: np.ndarray,
        sources: Sequence[SignalSource],
        edge: np.ndarray,
        manager: RiskManager,
        broker: Broker,
    ):
        names = [s.name for s in sources]
        if len(set(names)) != len(names):
            raise ValueError(f"signal source names {names} repeat; each source needs its own.")
        for source in sources:
            if source.signal.shape != (len(market),):
                raise ValueError(
                    f"source {source.name!r} has {source.signal.shape} signals for "
                    f"{len(market)} bars; pass one signal per bar."
                )
        if edge.shape != (len(market),):
            raise ValueError(f"edge has shape {edge.shape}; pass one value per bar.")
        self.account, self.worker, self.symbol = account, worker, symbol
        self.market, self.times_us = market, np.asarray(times_us, dtype=np.int64)
        self.sources = {s.name: s for s in sources}
        self.edge = np.nan_to_num(np.asarray(edge, dtype=np.float64))
        self.manager, self.broker, self.ledger = manager, broker, manager.ledger
        self._positions: dict[str, _Position] = {}
        self._refused: dict[str, int] = {}

    def run(self, initial_equity: float, end_bar: int | None = None) -> SessionSummary:
        """Trade from where the broker's clock stands up to `end_bar` (exclusive)."""
        end = len(self.market) if end_bar is None else end_bar
        self.ledger.open_account(self.account, initial_equity, int(self.times_us[0]))
        reconciled = self.ledger.reconcile(self.account, self.worker, self.broker)
        self._restore_positions()
        self._restore_refusals()
        counts = {"reserved": 0, "refused": 0, "none": 0}
        first = self.broker.bar + 1
        if 0 < first < len(self.market):
            # Resumed: the last bar played may have stopped before its decisions. Deciding
            # again is idempotent: restored positions and refusals are not asked again.
            self._decide(first - 1, counts)
        for bar in range(first, end):
            events = self.broker.advance(bar)
            for order in events:
                self._apply(order, bar)
            self._mark(bar, bool(events))
            if bar + 1 < len(self.market):
                self._decide(bar, counts)
        return SessionSummary(
            max(0, self.broker.bar + 1 - first),
            counts["reserved"],
            counts["refused"],
            reconciled,
            len(self._positions),
        )

    def _decide(self, bar: int, counts: dict[str, int]) -> None:
        """After bar `bar`'s close: exits first, then entries."""
        self._manage_exits(bar)
        for source in self.sources.values():
            counts[self._enter(source, bar)] += 1

    def _restore_refusals(self) -> None:
        """Signals refused before a restart, still unchanged, stay refused."""
        self._refused.clear()
        refusals = self.ledger.refusals(self.account).filter(pl.col("worker") == self.worker)
        latest = refusals.group_by("source").agg(pl.all().sort_by("refusal_id").last())
        for source_name, side, time_us in latest.select("source", "side", "time_us").iter_rows():
            source = self.sources.get(source_name)
            if source is None:
                continue
            bar = int(np.searchsorted(self.times_us, time_us)) - 1
            if bar >= 0 and (source.signal[bar : self.broker.bar + 1] == side).all():
                self._refused[source_name] = side

    def _restore_positions(self) -> None:
        """Positions of this worker's live intents (after a restart)."""
        self._positions.clear()
        for intent in self.ledger.live_intents(self.account, self.worker).iter_rows(named=True):
            source = self.sources.get(intent["source"])
            if source is None:
                continue
            signal_bar = int(np.searchsorted(self.times_us, intent["reserved_us"])) - 1
            position = _Position(
                source, intent["intent_id"], intent["state"], signal_bar, intent["side"]
            )
            order = self.broker.order(intent["intent_id"])
            if order is not None and order.status == OrderStatus.OPEN:
                self._opened(position, order)
            self._positions[source.name] = position

    def _opened(self, position: _Position, order: BrokerOrder) -> None:
        assert order.fill_us is not None
        position.state = FILLED
        position.entry_bar = int(np.searchsorted(self.times_us, order.fill_us))
        position.stop = order.stop_price
        closes = self.market.close[position.entry_bar : self.broker.bar + 1]
        pick = np.max if position.side > 0 else np.min
        position.best_close = float(pick(closes)) if closes.size else np.nan

    def _apply(self, order: BrokerOrder, bar: int) -> None:
        """Book one broker event in the ledger."""
        position = next(
            (p for p in self._positions.values() if p.intent_id == order.client_order_id), None
        )
        if position is None:
            return
        if position.state == RESERVED and order.fill_price is not None:
            self.ledger.fill(order)
            self._opened(position, order)
        if order.status == OrderStatus.CLOSED:
            self.ledger.close_position(order)
            del self._positions[position.source.name]

    def _mark(self, bar: int, changed: bool) -> None:
        """Mark equity when it can have moved: positions open, fills or closes, a new day."""
        new_day = bar == 0 or self.market.day[bar] != self.market.day[bar - 1]
        if not (self._positions or changed or new_day):
            return
        self.ledger.mark_open_pnl(self.account, int(self.times_us[bar]), self.broker.open_pnl(bar))

    def _manage_exits(self, bar: int) -> None:
        """After bar `bar`'s close: close orders for max hold and opposite signals, trailing
        stops moved."""
        for position in list(self._positions.values()):
            if position.state != FILLED:
                continue
            source, side = position.source, position.side
            held = bar - position.entry_bar + 1
            if held >= source.max_hold_bars or source.signal[bar] == -side:
                reason = "max_hold" if held >= source.max_hold_bars else "opposite"
                self.broker.close(position.intent_id, reason)
                continue
            close = self.market.close[bar]
            if np.isnan(position.best_close) or (close - position.best_close) * side > 0:
                position.best_close = close
            if source.trail_atr > 0:
                distance = source.trail_atr * self.market.atr[position.signal_bar]
                trail = position.best_close - side * distance
                if (trail - position.stop) * side > 0:
                    self.ledger.move_stop(self.broker.modify_stop(position.intent_id, trail))
                    position.stop = trail

    def _enter(self, source: SignalSource, bar: int) -> str:
        """Ask for a trade if `source` is flat with a fresh signal; what happened."""
        side = int(source.signal[bar])
        if side == 0:
            self._refused.pop(source.name, None)
            return "none"
        atr = self.market.atr[bar]
        if source.name in self._positions or self._refused.get(source.name) == side:
            return "none"
        if not (np.isfinite(atr) and atr > 0):
            return "none"
        request = OrderRequest(
            symbol=self.symbol,
            side=side,
            time_us=int(self.times_us[bar + 1]),
            price=float(self.market.close[bar]),
            stop_distance=float(source.stop_atr * atr),
            take_distance=float(source.take_atr * atr),
            spread=float(self.market.spread[bar]),
            confidence=float(np.clip(0.5 + 0.5 * side * self.edge[bar], 0.0, 1.0)),
            source=source.name,
        )
        outcome = self.manager.request(self.account, self.worker, request)
        if not isinstance(outcome, Reservation):
            self._refused[source.name] = side
            return "refused"
        order = self.broker.submit(
            MarketOrder(
                outcome.intent_id,
                self.symbol,
                side,
                outcome.lots,
                request.stop_distance,
                request.take_distance,
            )
        )
        if order.status == OrderStatus.REJECTED:
            self.ledger.cancel(outcome.intent_id, f"broker rejected: {order.message}")
            self._refused[source.name] = side
            return "refused"
        self._positions[source.name] = _Position(source, outcome.intent_id, RESERVED, bar, side)
        return "reserved"
