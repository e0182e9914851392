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
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from forex_assets.processes import ProcessIdentity
from forex_assets.storage.sqlite import write_transaction

LEDGER_ENV = "FOREX_ASSETS_CORE_LEDGER"
BUSY_TIMEOUT_S = 30.0


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
        rows = db.execute(
            "SELECT DISTINCT pid, started FROM holdings WHERE host = ?", (self.owner.host,)
        ).fetchall()
        dead = [
            (pid, started)
            for pid, started in rows
            if ProcessIdentity(self.owner.host, pid, started).alive() is False
        ]
        db.executemany(
            "DELETE FROM holdings WHERE host = ? AND pid = ? AND started IS ?",
            [(self.owner.host, pid, started) for pid, started in dead],
        )

    def try_acquire(self, holder: str, cores: int) -> bool:
        """Reserve `cores` for `holder` if they fit; never blocks on a full machine."""
        if cores < 1:
            raise ValueError(f"cores={cores} must be at least 1")
        with self._transaction() as db:
            self._reap(db)
            if db.execute("SELECT 1 FROM holdings WHERE holder = ?", (holder,)).fetchone():
                return True
            held = db.execute("SELECT COALESCE(SUM(cores), 0) FROM holdings").fetchone()[0]
            if held + cores > self.capacity:
                return False
            db.execute(
                "INSERT INTO holdings (holder, host, pid, cores, since, started) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (holder, self.owner.host, self.owner.pid, cores, time.time(), self.owner.started),
            )
            return True

    def release(self, holder: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM holdings WHERE holder = ?", (holder,))

    def release_all(self, prefix: str) -> None:
        """Release every reservation whose holder starts with `prefix` (one run's steps)."""
        with self._transaction() as db:
            db.execute("DELETE FROM holdings WHERE substr(holder, 1, ?) = ?", (len(prefix), prefix))

    def held(self) -> int:
        with self._transaction() as db:
            self._reap(db)
            return int(db.execute("SELECT COALESCE(SUM(cores), 0) FROM holdings").fetchone()[0])

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
