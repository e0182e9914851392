"""A paper broker that replays bars, with the fill rules of the backtest kernel.

Prices follow `forex_assets.strategies.backtest.kernel`: bars are mid prices, the ask is
mid + spread/2 and the bid mid - spread/2 (the bar's own spread, or the contract's
default where it is unknown), so a round trip pays the spread once.

* A market order submitted after bar i's close fills at bar i+1's open: a buy at the ask
  plus `slippage_pips`, a sell at the bid minus them.
* Stops and targets are checked on every bar of the position, the fill bar included,
  from the bar's exit-side extremes (bid for a long, ask for a short). The stop comes
  first when one bar reaches both (the order inside a bar is unknown; the loss is the
  safe guess); a bar that opens beyond a level fills at its open (gap).
* A close order fills at the next bar's exit-side open.
* Swaps are ignored unless `SwapRates` are given: then each position open across the
  17:00 New York rollover is charged (or paid) the rate per lot, three times on the
  rollover into Thursday (the weekend's value dates).

The order book lives in its own SQLite file, as a real broker's lives on its server, so
a trader that is killed and restarted finds its orders where the broker left them.
"""

from __future__ import annotations

import math
import os
import sqlite3
from dataclasses import astuple, dataclass, replace
from pathlib import Path

import numpy as np

from forex_assets.market.contract import Contract
from forex_assets.market.fx_calendar import weekday
from forex_assets.storage.sqlite import open_sqlite, write_transaction
from forex_assets.strategies.backtest.market import Market
from forex_assets.trading.broker import BrokerOrder, MarketOrder, OrderStatus

_SCHEMA = """
CREATE TABLE IF NOT EXISTS paper_orders (
    client_order_id TEXT PRIMARY KEY, book TEXT NOT NULL, symbol TEXT NOT NULL,
    side INTEGER NOT NULL, lots REAL, status TEXT NOT NULL,
    stop_distance REAL, take_distance REAL, stop_price REAL, take_price REAL,
    submitted_bar INTEGER NOT NULL, fill_price REAL, fill_us INTEGER,
    risk REAL, exit_price REAL, exit_us INTEGER, exit_reason TEXT, pnl REAL,
    swap REAL NOT NULL DEFAULT 0, close_requested INTEGER NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS paper_clock (book TEXT PRIMARY KEY, bar INTEGER NOT NULL);
"""
_THURSDAY = 3  # weekday of the FX day after the Wednesday rollover (Monday = 0)
# `BrokerOrder`'s fields in order, then the book's own.
_COLUMNS = (
    "client_order_id, symbol, side, lots, status, stop_distance, take_distance, stop_price, "
    "take_price, fill_price, fill_us, risk, exit_price, exit_us, exit_reason, pnl, message, "
    "swap, close_requested, submitted_bar"
)


@dataclass(frozen=True)
class SwapRates:
    """Account currency per lot per night held: negative is a charge."""

    long_per_lot: float
    short_per_lot: float


@dataclass(eq=False)  # compared and hashed by identity: one object per order
class _Position:
    order: BrokerOrder
    submitted_bar: int
    swap: float = 0.0
    close_requested: bool = False


class PaperBroker:
    """Replays `market` for one symbol; `book` names the order book inside the file (one
    per account), `times_us` are the bars' open times (int64 UTC microseconds)."""

    def __init__(
        self,
        path: Path,
        book: str,
        symbol: str,
        market: Market,
        times_us: np.ndarray,
        contract: Contract,
        slippage_pips: float = 0.0,
        swaps: SwapRates | None = None,
    ):
        if len(times_us) != len(market):
            raise ValueError(
                f"times_us has {len(times_us)} entries for {len(market)} bars; pass one open "
                "time per bar."
            )
        if not (math.isfinite(slippage_pips) and slippage_pips >= 0):
            raise ValueError(f"slippage_pips={slippage_pips!r} must be a number >= 0.")
        self.path, self.book, self.symbol = Path(path), book, symbol
        self.market, self.times_us, self.contract = market, np.asarray(times_us), contract
        self.slippage = slippage_pips * contract.pip_size
        self.swaps = swaps
        default = contract.default_spread
        self._half_spread = np.where(np.isnan(market.spread), default, market.spread) / 2.0
        self._connection: sqlite3.Connection | None = None
        self._pid = -1
        self._live: dict[str, _Position] = {}
        self.bar = self._load()

    # -- persistence ----------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        if self._connection is None or self._pid != os.getpid():
            self._connection = open_sqlite(self.path, _SCHEMA)
            self._pid = os.getpid()
        return self._connection

    def _load(self) -> int:
        db = self._db()
        row = db.execute("SELECT bar FROM paper_clock WHERE book = ?", (self.book,)).fetchone()
        for values in db.execute(
            f"SELECT {_COLUMNS} FROM paper_orders WHERE book = ? AND status IN (?, ?)",
            (self.book, OrderStatus.PENDING, OrderStatus.OPEN),
        ):
            order, swap, close_requested, submitted_bar = _order(values)
            self._live[order.client_order_id] = _Position(
                order, submitted_bar, swap, bool(close_requested)
            )
        return -1 if row is None else int(row[0])

    def _save(self, db: sqlite3.Connection, position: _Position) -> None:
        o = position.order
        db.execute(
            f"INSERT OR REPLACE INTO paper_orders (book, {_COLUMNS}) VALUES "
            f"(?, {', '.join('?' * (_COLUMNS.count(',') + 1))})",
            (
                self.book,
                *(str(v) if isinstance(v, OrderStatus) else v for v in astuple(o)),
                position.swap,
                int(position.close_requested),
                position.submitted_bar,
            ),
        )

    def reset(self) -> None:
        """Empty the book (a replay starting over)."""
        with write_transaction(self._db()) as db:
            db.execute("DELETE FROM paper_orders WHERE book = ?", (self.book,))
            db.execute("DELETE FROM paper_clock WHERE book = ?", (self.book,))
        self._live.clear()
        self.bar = -1

    # -- the Broker protocol --------------------------------------------------------------

    def order(self, client_order_id: str) -> BrokerOrder | None:
        if client_order_id in self._live:
            return self._live[client_order_id].order
        values = (
            self._db()
            .execute(
                f"SELECT {_COLUMNS} FROM paper_orders WHERE client_order_id = ? AND book = ?",
                (client_order_id, self.book),
            )
            .fetchone()
        )
        return None if values is None else _order(values)[0]

    def submit(self, order: MarketOrder) -> BrokerOrder:
        known = self.order(order.client_order_id)
        if known is not None:
            return known
        problem = self._problem(order)
        status = OrderStatus.REJECTED if problem else OrderStatus.PENDING
        state = BrokerOrder(
            order.client_order_id,
            order.symbol,
            order.side,
            order.lots,
            status,
            order.stop_distance,
            order.take_distance,
            message=problem,
        )
        position = _Position(state, self.bar)
        with write_transaction(self._db()) as db:
            self._save(db, position)
        if not problem:
            self._live[order.client_order_id] = position
        return state

    def _problem(self, order: MarketOrder) -> str:
        if order.symbol != self.symbol:
            return f"this book trades {self.symbol}, not {order.symbol}."
        if order.side not in (1, -1):
            return f"side={order.side!r} must be +1 (buy) or -1 (sell)."
        steps = order.lots / self.contract.lot_step
        if not (order.lots >= self.contract.min_lot and abs(steps - round(steps)) < 1e-6):
            return (
                f"lots={order.lots!r} must be at least {self.contract.min_lot} and a multiple "
                f"of the lot step {self.contract.lot_step}."
            )
        if not (math.isfinite(order.stop_distance) and order.stop_distance > 0):
            return f"stop_distance={order.stop_distance!r} must be a positive price distance."
        take = order.take_distance
        if take is not None and not (math.isfinite(take) and take > 0):
            return f"take_distance={take!r} must be a positive price distance or None."
        if self.bar < 0 or self.bar + 1 >= len(self.market):
            return "no next bar to fill at: the replay has not started or has ended."
        return ""

    def modify_stop(self, client_order_id: str, stop_price: float) -> BrokerOrder:
        position = self._open(client_order_id)
        position.order = replace(position.order, stop_price=stop_price)
        if position.order.fill_price is not None:
            position.order = replace(position.order, risk=self._risk(position.order))
        with write_transaction(self._db()) as db:
            self._save(db, position)
        return position.order

    def close(self, client_order_id: str, reason: str = "close") -> BrokerOrder:
        position = self._open(client_order_id)
        position.close_requested = True
        position.order = replace(position.order, exit_reason=reason)
        with write_transaction(self._db()) as db:
            self._save(db, position)
        return position.order

    def _open(self, client_order_id: str) -> _Position:
        position = self._live.get(client_order_id)
        if position is None or position.order.status != OrderStatus.OPEN:
            state = "unknown" if position is None else position.order.status
            raise ValueError(
                f"order {client_order_id} is {state}, not open; only open positions can be "
                "modified or closed."
            )
        return position

    # -- the replay -----------------------------------------------------------------------

    def _risk(self, order: BrokerOrder) -> float:
        assert order.fill_price is not None and order.stop_price is not None
        distance = (order.fill_price - order.stop_price) * order.side
        return self.contract.risk_at_stop(order.lots, distance, order.fill_price)

    def _pnl(self, order: BrokerOrder, exit_price: float, swap: float) -> float:
        assert order.fill_price is not None
        gross = self.contract.pnl(order.side, order.fill_price, exit_price, order.lots)
        return gross - self.contract.commission_per_lot * order.lots + swap

    def advance(self, bar: int) -> list[BrokerOrder]:
        """Play bar `bar` (the next one): fills at its open, then stops and targets on its
        range. Returns the orders whose state changed, in the order they changed."""
        if bar != self.bar + 1:
            raise ValueError(f"bar {bar} is not the next bar after {self.bar}; replay in order.")
        m, half, t = self.market, self._half_spread[bar], int(self.times_us[bar])
        changed: list[_Position] = []
        charged: list[_Position] = []  # swap booked: saved, though not a state change
        if self.swaps is not None and bar > 0 and m.day[bar] != m.day[bar - 1]:
            nights = 3 if weekday(m.day[bar]) == _THURSDAY else 1
            for position in self._live.values():
                if position.order.status == OrderStatus.OPEN:
                    rate = (
                        self.swaps.long_per_lot
                        if position.order.side > 0
                        else self.swaps.short_per_lot
                    )
                    position.swap += nights * rate * position.order.lots
                    charged.append(position)
        for position in list(self._live.values()):
            order = position.order
            if order.status == OrderStatus.PENDING:
                fill = m.open[bar] + order.side * (half + self.slippage)
                take = order.take_distance
                order = replace(
                    order,
                    status=OrderStatus.OPEN,
                    fill_price=fill,
                    fill_us=t,
                    stop_price=fill - order.side * order.stop_distance,
                    take_price=None if take is None else fill + order.side * take,
                )
                position.order = replace(order, risk=self._risk(order))
                changed.append(position)
            elif position.close_requested:
                exit_price = m.open[bar] - order.side * half
                self._exit(position, exit_price, t, order.exit_reason or "close")
                changed.append(position)
                continue
            exit_at = self._level_exit(position.order, bar, half)
            if exit_at is not None:
                self._exit(position, exit_at[0], t, exit_at[1])
                if position not in changed:
                    changed.append(position)
        with write_transaction(self._db()) as db:
            for position in dict.fromkeys([*charged, *changed]):
                self._save(db, position)
            db.execute("INSERT OR REPLACE INTO paper_clock VALUES (?, ?)", (self.book, bar))
        self.bar = bar
        for position in changed:
            if position.order.status == OrderStatus.CLOSED:
                del self._live[position.order.client_order_id]
        return [p.order for p in changed]

    def _level_exit(self, order: BrokerOrder, bar: int, half: float) -> tuple[float, str] | None:
        m, side = self.market, order.side
        assert order.stop_price is not None
        # Exit-side prices: the bid for a long, the ask for a short.
        opened = m.open[bar] - side * half
        worst = (m.low[bar] if side > 0 else m.high[bar]) - side * half
        best = (m.high[bar] if side > 0 else m.low[bar]) - side * half
        if (worst - order.stop_price) * side <= 0:
            gapped = (opened - order.stop_price) * side <= 0
            assert order.fill_price is not None
            moved = order.stop_price != order.fill_price - side * order.stop_distance
            return (opened if gapped else order.stop_price), "trail" if moved else "stop"
        if order.take_price is not None and (best - order.take_price) * side >= 0:
            gapped = (opened - order.take_price) * side >= 0
            return (opened if gapped else order.take_price), "take"
        return None

    def _exit(self, position: _Position, price: float, time_us: int, reason: str) -> None:
        position.order = replace(
            position.order,
            status=OrderStatus.CLOSED,
            exit_price=price,
            exit_us=time_us,
            exit_reason=reason,
            pnl=self._pnl(position.order, price, position.swap),
        )

    def open_pnl(self, bar: int) -> float:
        """Open positions marked at bar `bar`'s exit-side close, net of their commission
        and swaps so far (their liquidation value)."""
        half = self._half_spread[bar]
        return sum(
            self._pnl(p.order, self.market.close[bar] - p.order.side * half, p.swap)
            for p in self._live.values()
            if p.order.status == OrderStatus.OPEN
        )


def _order(values: tuple) -> tuple[BrokerOrder, float, int, int]:
    """A stored row (`_COLUMNS`) as (order, swap, close_requested, submitted_bar)."""
    *fields, swap, close_requested, submitted_bar = values
    fields[4] = OrderStatus(fields[4])
    return BrokerOrder(*fields), swap, close_requested, submitted_bar
