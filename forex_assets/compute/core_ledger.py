"""A machine-wide ledger of the cores that running steps hold.

Pool limits bound how many steps of a kind run, but steps of different pools and of
different runs (a backfill runs several symbols at once) share one machine. Every step
therefore reserves its thread budget here before it starts and returns it when it ends;
a reservation that would take the total past the usable cores waits. The ledger is a
small SQLite file that every process on the host opens (one `BEGIN IMMEDIATE`
transaction per reservation, so two processes can never both take the last core), and
reservations of processes that died are reaped, so a killed run cannot leak cores. A
holder is its pid and that process's start time, so a pid the kernel handed to an unrelated
process does not keep a dead holder's cores.

Steps that fan out also *lease* cores here, one task at a time (`lease`): a step's own
reservation is its floor, and idle cores beyond it are lent to its next task and come
back when the task ends. Steps that wait for cores come first: an executor records its
steps that could not start (`set_waiting`), and a lease never takes cores that waiting
steps need, so lease growth delays a waiting step by at most the tasks already running.
Every reservation and lease is also written to a history (pruned after `HISTORY_KEEP_S`),
from which a run's cores-held-over-time is drawn.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from forex_assets.processes import ProcessIdentity
from forex_assets.storage.sqlite import write_transaction

LEDGER_ENV = "FOREX_ASSETS_CORE_LEDGER"
BUSY_TIMEOUT_S = 30.0
# How long released reservations stay in the history (a run reads its own at its end).
HISTORY_KEEP_S = 7 * 24 * 3600.0
LEASE_MARK = "/lease/"


def lease_holder(step_holder: str, task: str) -> str:
    """The ledger name of a lease a step takes for one task: released with the step's run."""
    return f"{step_holder}{LEASE_MARK}{task}"


def default_ledger_path() -> Path:
    """One ledger per user and host: `$FOREX_ASSETS_CORE_LEDGER`, else in the temp dir."""
    if os.environ.get(LEDGER_ENV):
        return Path(os.environ[LEDGER_ENV])
    uid = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return Path(tempfile.gettempdir()) / f"forex_assets-{uid}" / "core_ledger.sqlite"


@dataclass(frozen=True)
class Holding:
    """One reservation: who holds how many cores since when."""

    holder: str
    owner: ProcessIdentity
    cores: int
    since: float


@dataclass(frozen=True)
class HeldSpan:
    """A reservation in the history: `end` is None while it is still held."""

    holder: str
    cores: int
    start: float
    end: float | None

    @property
    def is_lease(self) -> bool:
        return LEASE_MARK in self.holder

    @property
    def step_holder(self) -> str:
        """The step a lease was taken for (a step's own reservation names itself)."""
        return self.holder.partition(LEASE_MARK)[0]


class CoreLedger:
    """Reserve and release cores, atomically across processes on this host."""

    def __init__(self, path: Path, capacity: int):
        if capacity < 1:
            raise ValueError(f"capacity={capacity} must be at least one core")
        self.path = Path(path)
        self.capacity = capacity
        self._owner = ProcessIdentity.current()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._transaction() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS holdings (holder TEXT PRIMARY KEY, host TEXT NOT NULL, "
                "pid INTEGER NOT NULL, cores INTEGER NOT NULL, since REAL NOT NULL, started INTEGER)"
            )
            columns = {row[1] for row in db.execute("PRAGMA table_info(holdings)")}
            if "started" not in columns:  # a ledger written before holders had start times
                db.execute("ALTER TABLE holdings ADD COLUMN started INTEGER")
            db.execute(
                "CREATE TABLE IF NOT EXISTS waiting (holder TEXT PRIMARY KEY, host TEXT NOT NULL, "
                "pid INTEGER NOT NULL, started INTEGER, cores INTEGER NOT NULL, since REAL NOT NULL)"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS history (holder TEXT NOT NULL, cores INTEGER NOT NULL, "
                "start REAL NOT NULL, end REAL)"
            )
            db.execute("CREATE INDEX IF NOT EXISTS history_holder ON history (holder)")
            db.execute("DELETE FROM history WHERE end < ?", (time.time() - HISTORY_KEEP_S,))

    @property
    def owner(self) -> ProcessIdentity:
        """This process, as the rows it writes name it (re-read after a fork)."""
        if self._owner.pid != os.getpid():
            self._owner = ProcessIdentity.current()
        return self._owner

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            with write_transaction(connection) as db:
                yield db
        finally:
            connection.close()

    def _reap(self, db: sqlite3.Connection) -> None:
        host = self.owner.host
        for table in ("holdings", "waiting"):
            rows = db.execute(
                f"SELECT DISTINCT pid, started FROM {table} WHERE host = ?", (host,)
            ).fetchall()
            dead = [
                (host, pid, started)
                for pid, started in rows
                if ProcessIdentity(host, pid, started).alive() is False
            ]
            if table == "holdings":
                for row in dead:
                    holders = db.execute(
                        "SELECT holder FROM holdings WHERE host = ? AND pid = ? AND started IS ?",
                        row,
                    ).fetchall()
                    self._end_history(db, [h for (h,) in holders])
            db.executemany(f"DELETE FROM {table} WHERE host = ? AND pid = ? AND started IS ?", dead)

    @staticmethod
    def _end_history(db: sqlite3.Connection, holders: list[str]) -> None:
        db.executemany(
            "UPDATE history SET end = ? WHERE holder = ? AND end IS NULL",
            [(time.time(), holder) for holder in holders],
        )

    @staticmethod
    def _held(db: sqlite3.Connection) -> int:
        return int(db.execute("SELECT COALESCE(SUM(cores), 0) FROM holdings").fetchone()[0])

    def _insert(self, db: sqlite3.Connection, holder: str, cores: int) -> None:
        now = time.time()
        db.execute(
            "INSERT INTO holdings (holder, host, pid, cores, since, started) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (holder, self.owner.host, self.owner.pid, cores, now, self.owner.started),
        )
        db.execute(
            "INSERT INTO history (holder, cores, start, end) VALUES (?, ?, ?, NULL)",
            (holder, cores, now),
        )

    def try_acquire(self, holder: str, cores: int) -> bool:
        """Reserve `cores` for `holder` if they fit; never blocks on a full machine.

        A holder that was waiting stops waiting once it holds its cores.
        """
        if cores < 1:
            raise ValueError(f"cores={cores} must be at least 1")
        with self._transaction() as db:
            self._reap(db)
            if db.execute("SELECT 1 FROM holdings WHERE holder = ?", (holder,)).fetchone():
                return True
            if self._held(db) + cores > self.capacity:
                return False
            self._insert(db, holder, cores)
            db.execute("DELETE FROM waiting WHERE holder = ?", (holder,))
            return True

    def lease(self, holder: str, want: Callable[[int], int]) -> int:
        """Lend `holder` the cores `want(leasable)` asks for, in one transaction.

        `leasable` is the free cores minus those that waiting steps need (they come
        first); `want` returns how many of them to take, 0 for none. Returns the cores
        leased (0: nothing recorded). Release a lease with `release(holder)`.
        """
        with self._transaction() as db:
            self._reap(db)
            if db.execute("SELECT 1 FROM holdings WHERE holder = ?", (holder,)).fetchone():
                raise ValueError(
                    f"lease holder {holder!r} already holds cores; name each task's lease "
                    "uniquely (lease_holder(step, task)) and release it when the task ends"
                )
            waiting = db.execute("SELECT COALESCE(SUM(cores), 0) FROM waiting").fetchone()[0]
            leasable = max(0, self.capacity - self._held(db) - int(waiting))
            cores = int(want(leasable))
            if cores < 0 or cores > leasable:
                raise ValueError(
                    f"want({leasable}) returned {cores}; it must take between 0 and the "
                    f"{leasable} leasable cores"
                )
            if cores:
                self._insert(db, holder, cores)
            return cores

    def set_waiting(self, prefix: str, needs: Mapping[str, int]) -> None:
        """Record which of the holders under `prefix` (one run's steps) wait for how many
        cores now, replacing what was recorded for that prefix before."""
        outside = [h for h in needs if not h.startswith(prefix)]
        if outside:
            raise ValueError(f"waiting holders {outside} do not start with prefix {prefix!r}")
        with self._transaction() as db:
            db.execute("DELETE FROM waiting WHERE substr(holder, 1, ?) = ?", (len(prefix), prefix))
            now = time.time()
            db.executemany(
                "INSERT INTO waiting (holder, host, pid, started, cores, since) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (holder, self.owner.host, self.owner.pid, self.owner.started, cores, now)
                    for holder, cores in needs.items()
                ],
            )

    def waiting(self) -> dict[str, int]:
        """Holders waiting for cores (dead waiters reaped first), and how many each needs."""
        with self._transaction() as db:
            self._reap(db)
            return dict(db.execute("SELECT holder, cores FROM waiting ORDER BY since").fetchall())

    def release(self, holder: str) -> None:
        with self._transaction() as db:
            self._end_history(db, [holder])
            db.execute("DELETE FROM holdings WHERE holder = ?", (holder,))

    def release_all(self, prefix: str) -> None:
        """Release every reservation, lease and wait whose holder starts with `prefix`
        (one run's steps)."""
        with self._transaction() as db:
            holders = db.execute(
                "SELECT holder FROM holdings WHERE substr(holder, 1, ?) = ?", (len(prefix), prefix)
            ).fetchall()
            self._end_history(db, [h for (h,) in holders])
            for table in ("holdings", "waiting"):
                db.execute(
                    f"DELETE FROM {table} WHERE substr(holder, 1, ?) = ?", (len(prefix), prefix)
                )

    def held(self) -> int:
        with self._transaction() as db:
            self._reap(db)
            return self._held(db)

    def history(self, prefix: str) -> list[HeldSpan]:
        """Every reservation and lease of holders under `prefix`, in the order they began."""
        with self._transaction() as db:
            self._reap(db)
            rows = db.execute(
                "SELECT holder, cores, start, end FROM history "
                "WHERE substr(holder, 1, ?) = ? ORDER BY start, rowid",
                (len(prefix), prefix),
            ).fetchall()
        return [HeldSpan(*row) for row in rows]

    def holdings(self) -> list[Holding]:
        """Every live reservation (dead holders reaped first), oldest first."""
        with self._transaction() as db:
            self._reap(db)
            rows = db.execute(
                "SELECT holder, host, pid, started, cores, since FROM holdings ORDER BY since"
            ).fetchall()
        return [
            Holding(holder, ProcessIdentity(host, pid, started), cores, since)
            for holder, host, pid, started, cores, since in rows
        ]
