"""The shared risk state: accounts, days, trade intents and refusals in one SQLite file.

Several processes trading one account must never jointly breach a limit: two of them
each seeing "4 of 5 trades today" and both opening the fifth is exactly the failure a
prop firm punishes. So the check and the reservation of a trade happen in one write
transaction (`BEGIN IMMEDIATE` takes SQLite's write lock before the first read): the
state a decision reads cannot change until its reservation is committed, and the next
process reads it with the reservation counted. SQLite's locking is portable (not an
`fcntl`-only path) and crash-safe; see `forex_assets.storage.sqlite`.

A trade's life is a row in `intents`: ``reserved`` (counted against every limit as if
filled) -> ``filled`` -> ``closed``, or ``reserved`` -> ``cancelled``. The broker order
carries the intent id as its client order id, so after a crash between reserve and fill
`reconcile` asks the broker what became of each of the worker's open intents and
completes or cancels them: nothing is lost and nothing is counted twice, because every
transition is a guarded ``UPDATE ... WHERE state = <expected>``.

One SQLite file serves every process on a host; a `postgresql://` URL serves processes
on several hosts with the same transactions (see `forex_assets.storage.shared_database`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from forex_assets.market.fx_calendar import DEFAULT_CALENDAR, FxCalendar
from forex_assets.storage.shared_database import SharedDatabase, Transaction
from forex_assets.storage.sqlite import DEFAULT_BUSY_TIMEOUT_S
from forex_assets.trading.broker import Broker, BrokerOrder, OrderStatus
from forex_assets.trading.risk_rules import AccountState, OrderRequest, Refusal
from forex_assets.value_checks import is_whole

RESERVED, FILLED, CLOSED, CANCELLED = "reserved", "filled", "closed", "cancelled"
LIVE_STATES = (RESERVED, FILLED)  # count against open positions and open risk
COUNTED_STATES = (RESERVED, FILLED, CLOSED)  # count as trades of their day

_TEXT, _INT, _REAL = pl.String, pl.Int64, pl.Float64
# Column types of the tables as frames (an empty table still reads back typed).
INTENT_COLUMNS = {
    "intent_id": _TEXT, "account": _TEXT, "worker": _TEXT, "symbol": _TEXT, "source": _TEXT,
    "side": _INT, "lots": _REAL, "price": _REAL, "stop_price": _REAL, "take_price": _REAL,
    "risk": _REAL, "confidence": _REAL, "state": _TEXT, "day": _INT, "reserved_us": _INT,
    "filled_us": _INT, "fill_price": _REAL, "closed_us": _INT, "exit_price": _REAL,
    "pnl": _REAL, "exit_reason": _TEXT, "note": _TEXT,
}  # fmt: skip
REFUSAL_COLUMNS = {
    "refusal_id": _INT, "account": _TEXT, "worker": _TEXT, "symbol": _TEXT, "source": _TEXT,
    "side": _INT, "time_us": _INT, "day": _INT, "rule": _TEXT, "message": _TEXT,
    "numbers": _TEXT,
}  # fmt: skip
DAY_COLUMNS = {
    "account": _TEXT, "day": _INT, "start_equity": _REAL, "peak_equity": _REAL,
    "low_equity": _REAL, "end_equity": _REAL, "realized_pnl": _REAL,
}  # fmt: skip
_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    account TEXT PRIMARY KEY, initial_equity REAL NOT NULL, balance REAL NOT NULL,
    equity REAL NOT NULL, high_water REAL NOT NULL, loss_streak INTEGER NOT NULL,
    last_loss_us INTEGER, created_us INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS account_days (
    account TEXT NOT NULL, day INTEGER NOT NULL, start_equity REAL NOT NULL,
    peak_equity REAL NOT NULL, low_equity REAL NOT NULL, end_equity REAL NOT NULL,
    realized_pnl REAL NOT NULL, PRIMARY KEY (account, day)
);
CREATE TABLE IF NOT EXISTS intents (
    intent_id TEXT PRIMARY KEY, account TEXT NOT NULL, worker TEXT NOT NULL,
    symbol TEXT NOT NULL, source TEXT NOT NULL, side INTEGER NOT NULL, lots REAL NOT NULL,
    price REAL NOT NULL, stop_price REAL NOT NULL, take_price REAL, risk REAL NOT NULL,
    confidence REAL NOT NULL, state TEXT NOT NULL, day INTEGER NOT NULL,
    reserved_us INTEGER NOT NULL, filled_us INTEGER, fill_price REAL, closed_us INTEGER,
    exit_price REAL, pnl REAL, exit_reason TEXT, note TEXT
);
CREATE INDEX IF NOT EXISTS intents_by_account ON intents (account, state, day);
CREATE TABLE IF NOT EXISTS refusals (
    refusal_id INTEGER PRIMARY KEY AUTOINCREMENT, account TEXT NOT NULL,
    worker TEXT NOT NULL, symbol TEXT NOT NULL, source TEXT NOT NULL, side INTEGER NOT NULL,
    time_us INTEGER NOT NULL, day INTEGER NOT NULL, rule TEXT NOT NULL, message TEXT NOT NULL,
    numbers TEXT NOT NULL
);
"""


class LedgerStateError(RuntimeError):
    """A transition the intent's current state does not allow (e.g. filling a cancelled
    intent); the message says which state it was in."""


@dataclass(frozen=True)
class Reservation:
    """A reserved trade: send the broker an order with `intent_id` as its client id."""

    intent_id: str
    lots: float
    risk: float


@dataclass(frozen=True)
class ReconcileReport:
    filled: tuple[str, ...]
    closed: tuple[str, ...]
    cancelled: tuple[str, ...]
    pending: tuple[str, ...]


Decision = Callable[[AccountState], "tuple[float, float] | Refusal"]


class RiskLedger:
    """One handle per process; opens its connection lazily (and again after a fork)."""

    def __init__(
        self,
        location: str | Path,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
        calendar: FxCalendar = DEFAULT_CALENDAR,
    ):
        """`location`: a SQLite file (every process on a host), or a `postgresql://` URL
        (processes on several hosts). `calendar` decides where the daily-loss, daily-peak
        and trades-per-day rules start a new day: the same close the bars use."""
        self.database = SharedDatabase(location, _SCHEMA, busy_timeout_s)
        self.calendar = calendar

    def trading_day(self, time_us: int) -> int:
        return int(self.calendar.trading_day(np.array([time_us], dtype=np.int64))[0])

    def close(self) -> None:
        self.database.close()

    def transaction(self) -> AbstractContextManager[Transaction]:
        """A write transaction: see `forex_assets.storage.shared_database`."""
        return self.database.transaction()

    # -- accounts and marks ---------------------------------------------------------------

    def open_account(self, account: str, initial_equity: float, time_us: int) -> None:
        """Create the account unless it exists (a restarted worker keeps its state)."""
        if not (isinstance(initial_equity, int | float) and initial_equity > 0):
            raise ValueError(f"initial_equity={initial_equity!r} must be a positive amount.")
        with self.transaction() as db:
            db.execute(
                "INSERT INTO accounts VALUES (?, ?, ?, ?, ?, 0, NULL, ?) ON CONFLICT DO NOTHING",
                (account, initial_equity, initial_equity, initial_equity, initial_equity, time_us),
            )

    def delete_account(self, account: str) -> None:
        """Forget the account and everything recorded for it (a replay starting over)."""
        with self.transaction() as db:
            for table in ("accounts", "account_days", "intents", "refusals"):
                db.execute(f"DELETE FROM {table} WHERE account = ?", (account,))

    def mark(self, account: str, time_us: int, equity: float) -> None:
        """Record the account's marked equity (balance + open positions) at `time_us`."""
        with self.transaction() as db:
            self._write_mark(db, account, self.trading_day(time_us), equity)

    def mark_open_pnl(self, account: str, time_us: int, open_pnl: float) -> None:
        """Mark the equity as the booked balance plus `open_pnl`, read and written in one
        transaction, so a close another process books meanwhile cannot be missed."""
        with self.transaction() as db:
            balance = self._account_row(db, account)[1]
            self._write_mark(db, account, self.trading_day(time_us), balance + open_pnl)

    def _write_mark(self, db: Transaction, account: str, day: int, equity: float) -> None:
        self._day(db, account, day)
        db.execute(
            "UPDATE accounts SET equity = ?, high_water = CASE WHEN high_water > ? THEN high_water "
            "ELSE ? END WHERE account = ?",
            (equity, equity, equity, account),
        )
        db.execute(
            "UPDATE account_days SET "
            "peak_equity = CASE WHEN peak_equity > ? THEN peak_equity ELSE ? END, "
            "low_equity = CASE WHEN low_equity < ? THEN low_equity ELSE ? END, "
            "end_equity = ? WHERE account = ? AND day = ?",
            (equity, equity, equity, equity, equity, account, day),
        )

    def _account_row(self, db: Transaction, account: str) -> tuple:
        row = db.execute(
            "SELECT initial_equity, balance, equity, high_water, loss_streak, last_loss_us "
            "FROM accounts WHERE account = ?",
            (account,),
        ).fetchone()
        if row is None:
            raise LedgerStateError(
                f"account {account!r} does not exist in {self.database.location}; open it first with "
                "open_account(account, initial_equity, time_us)."
            )
        return row

    def _day(self, db: Transaction, account: str, day: int) -> tuple[float, float]:
        """(start, peak) equity of the account's FX day, starting the day if it is new."""
        row = db.execute(
            "SELECT start_equity, peak_equity FROM account_days WHERE account = ? AND day = ?",
            (account, day),
        ).fetchone()
        if row is not None:
            return row
        equity = self._account_row(db, account)[2]
        db.execute(
            "INSERT INTO account_days VALUES (?, ?, ?, ?, ?, ?, 0.0)",
            (account, day, equity, equity, equity, equity),
        )
        return equity, equity

    def state(self, db: Transaction, account: str, day: int) -> AccountState:
        initial, balance, equity, high_water, streak, last_loss = self._account_row(db, account)
        start, peak = self._day(db, account, day)
        live = ", ".join("?" * len(LIVE_STATES))
        counted = ", ".join("?" * len(COUNTED_STATES))
        positions, risk = db.execute(
            f"SELECT COUNT(*), COALESCE(SUM(risk), 0) FROM intents "
            f"WHERE account = ? AND state IN ({live})",
            (account, *LIVE_STATES),
        ).fetchone()
        (trades,) = db.execute(
            f"SELECT COUNT(*) FROM intents WHERE account = ? AND day = ? AND state IN ({counted})",
            (account, day, *COUNTED_STATES),
        ).fetchone()
        return AccountState(
            initial_equity=initial,
            balance=balance,
            equity=equity,
            high_water=high_water,
            day_start_equity=start,
            day_peak_equity=peak,
            trades_today=trades,
            open_positions=positions,
            open_risk=risk,
            loss_streak=streak,
            last_loss_us=last_loss,
        )

    def account_state(self, account: str, time_us: int) -> AccountState:
        with self.transaction() as db:
            return self.state(db, account, self.trading_day(time_us))

    # -- the trade life cycle -------------------------------------------------------------

    def reserve(
        self, account: str, worker: str, request: OrderRequest, decide: Decision
    ) -> Reservation | Refusal:
        """Check and reserve in one transaction: `decide` sees the state with every other
        process's reservations counted and returns (lots, risk) or a refusal, which is
        recorded instead."""
        day = self.trading_day(request.time_us)
        with self.transaction() as db:
            decision = decide(self.state(db, account, day))
            if isinstance(decision, Refusal):
                self._insert_refusal(db, account, worker, request, day, decision)
                return decision
            lots, risk = decision
            side = request.side
            stop = request.price - side * request.stop_distance
            take = (
                None
                if request.take_distance is None
                else request.price + side * request.take_distance
            )
            intent_id = uuid.uuid4().hex
            db.execute(
                "INSERT INTO intents (intent_id, account, worker, symbol, source, side, lots, "
                "price, stop_price, take_price, risk, confidence, state, day, reserved_us) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    intent_id,
                    account,
                    worker,
                    request.symbol,
                    request.source,
                    side,
                    lots,
                    request.price,
                    stop,
                    take,
                    risk,
                    request.confidence,
                    RESERVED,
                    day,
                    request.time_us,
                ),
            )
        return Reservation(intent_id, lots, risk)

    def refuse(self, account: str, worker: str, request: OrderRequest, refusal: Refusal) -> None:
        """Record a refusal decided before the account was consulted (bad input, market).
        A request too broken to have a time or a side is recorded at time and side 0."""
        day = self.trading_day(request.time_us) if is_whole(request.time_us) else 0
        with self.transaction() as db:
            self._insert_refusal(db, account, worker, request, day, refusal)

    @staticmethod
    def _insert_refusal(
        db: Transaction,
        account: str,
        worker: str,
        request: OrderRequest,
        day: int,
        refusal: Refusal,
    ) -> None:
        db.execute(
            "INSERT INTO refusals (account, worker, symbol, source, side, time_us, day, rule, "
            "message, numbers) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                account,
                worker,
                str(request.symbol),
                str(request.source),
                int(request.side) if is_whole(request.side) else 0,
                int(request.time_us) if is_whole(request.time_us) else 0,
                day,
                refusal.rule,
                refusal.message,
                json.dumps(refusal.numbers, default=float),
            ),
        )

    def _transition(
        self, db: Transaction, intent_id: str, expected: str, assignments: str, values: tuple
    ) -> None:
        updated = db.execute(
            f"UPDATE intents SET {assignments} WHERE intent_id = ? AND state = ?",
            (*values, intent_id, expected),
        ).rowcount
        if updated != 1:
            row = db.execute(
                "SELECT state FROM intents WHERE intent_id = ?", (intent_id,)
            ).fetchone()
            found = "no such intent" if row is None else f"it is {row[0]}"
            raise LedgerStateError(
                f"intent {intent_id} cannot move from {expected}: {found}. Each broker event "
                "is applied once; reconcile() after a restart instead of replaying events."
            )

    def fill(self, order: BrokerOrder) -> None:
        """Book the broker's fill of a reserved order: its price, its stop and target as
        placed, and its risk at the stop from the fill."""
        with self.transaction() as db:
            self._transition(
                db,
                order.client_order_id,
                RESERVED,
                "state = ?, fill_price = ?, filled_us = ?, risk = ?, stop_price = ?, "
                "take_price = ?",
                (
                    FILLED,
                    order.fill_price,
                    order.fill_us,
                    order.risk,
                    order.stop_price,
                    order.take_price,
                ),
            )

    def move_stop(self, order: BrokerOrder) -> None:
        """A moved stop (trailing) changes what the position can still lose."""
        with self.transaction() as db:
            self._transition(
                db,
                order.client_order_id,
                FILLED,
                "state = ?, stop_price = ?, risk = ?",
                (FILLED, order.stop_price, order.risk),
            )

    def close_position(self, order: BrokerOrder) -> None:
        """Book a closed position: balance, the day's realized P&L and the loss streak."""
        if order.pnl is None or order.exit_us is None:
            raise LedgerStateError(
                f"order {order.client_order_id} is {order.status}, not closed: no P&L to book."
            )
        pnl, time_us = order.pnl, order.exit_us
        with self.transaction() as db:
            row = db.execute(
                "SELECT account FROM intents WHERE intent_id = ?", (order.client_order_id,)
            ).fetchone()
            self._transition(
                db,
                order.client_order_id,
                FILLED,
                "state = ?, exit_price = ?, pnl = ?, closed_us = ?, exit_reason = ?, risk = 0",
                (CLOSED, order.exit_price, pnl, time_us, order.exit_reason),
            )
            account, day = row[0], self.trading_day(time_us)
            self._day(db, account, day)
            db.execute(
                "UPDATE account_days SET realized_pnl = realized_pnl + ? "
                "WHERE account = ? AND day = ?",
                (pnl, account, day),
            )
            if pnl < 0:
                db.execute(
                    "UPDATE accounts SET balance = balance + ?, loss_streak = loss_streak + 1, "
                    "last_loss_us = ? WHERE account = ?",
                    (pnl, time_us, account),
                )
            else:
                db.execute(
                    "UPDATE accounts SET balance = balance + ?, loss_streak = 0 WHERE account = ?",
                    (pnl, account),
                )

    def cancel(self, intent_id: str, reason: str) -> None:
        """Release a reservation that will never fill (broker rejected, never sent)."""
        with self.transaction() as db:
            self._transition(
                db, intent_id, RESERVED, "state = ?, risk = 0, note = ?", (CANCELLED, reason)
            )

    def live_intents(self, account: str, worker: str) -> pl.DataFrame:
        return self._frame(
            "SELECT * FROM intents WHERE account = ? AND worker = ? AND state IN (?, ?) "
            "ORDER BY reserved_us, intent_id",
            (account, worker, *LIVE_STATES),
            INTENT_COLUMNS,
        )

    def reconcile(self, account: str, worker: str, broker: Broker) -> ReconcileReport:
        """After a restart: settle this worker's reserved and filled intents with what the
        broker says happened to their orders (the broker is the truth about fills)."""
        filled, closed, cancelled, pending = [], [], [], []
        for intent in self.live_intents(account, worker).iter_rows(named=True):
            intent_id = intent["intent_id"]
            order = broker.order(intent_id)
            if intent["state"] == RESERVED:
                if order is None or order.status == OrderStatus.REJECTED:
                    why = "never reached the broker" if order is None else "broker rejected it"
                    self.cancel(intent_id, f"reconciled after restart: {why}")
                    cancelled.append(intent_id)
                    continue
                if order.status == OrderStatus.PENDING:
                    pending.append(intent_id)
                    continue
                self.fill(order)
                filled.append(intent_id)
            if order is not None and order.status == OrderStatus.CLOSED:
                self.close_position(order)
                closed.append(intent_id)
        return ReconcileReport(tuple(filled), tuple(closed), tuple(cancelled), tuple(pending))

    # -- reading --------------------------------------------------------------------------

    def _frame(self, sql: str, parameters: tuple, schema: dict[str, type]) -> pl.DataFrame:
        return pl.DataFrame(self.database.query(sql, parameters), schema=schema, orient="row")

    def intents(self, account: str) -> pl.DataFrame:
        return self._frame(
            "SELECT * FROM intents WHERE account = ? ORDER BY reserved_us, intent_id",
            (account,),
            INTENT_COLUMNS,
        )

    def refusals(self, account: str) -> pl.DataFrame:
        return self._frame(
            "SELECT * FROM refusals WHERE account = ? ORDER BY refusal_id",
            (account,),
            REFUSAL_COLUMNS,
        )

    def days(self, account: str) -> pl.DataFrame:
        return self._frame(
            "SELECT * FROM account_days WHERE account = ? ORDER BY day", (account,), DAY_COLUMNS
        )
