"""SQLite connections for state that several processes write: the risk ledger, the paper
broker's order book.

`BEGIN IMMEDIATE` takes the database's write lock before a transaction's first read, so a
read-decide-write sequence cannot interleave with another process's. SQLite's locking is
its own portable code (POSIX locks on Linux and macOS, LockFileEx on Windows), and a
process killed inside a transaction leaves nothing half-written: the next opener rolls
its journal back. WAL mode lets readers read while a writer writes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DEFAULT_BUSY_TIMEOUT_S = 60.0


def open_sqlite(path: Path, schema: str, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S):
    """A connection in autocommit mode (transactions are explicit) with `schema` applied."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    # NORMAL in WAL mode: a killed process loses nothing it committed; only a power loss
    # can drop the last commits, and it never tears one.
    connection.execute("PRAGMA synchronous = NORMAL")
    connection.executescript(schema)
    return connection


@contextmanager
def write_transaction(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A transaction holding the write lock from its first statement; rolled back on error."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
