"""One SQL database that several processes write: a SQLite file, or PostgreSQL for hosts.

State that processes must agree on (the risk ledger) needs write transactions that
exclude each other from their first read, so that a read-decide-write cannot interleave
with another writer's. On SQLite that is `BEGIN IMMEDIATE` (see
`forex_assets.storage.sqlite`); on PostgreSQL, a transaction-scoped advisory lock taken
first thing, which works the same from every host that reaches the server. SQL is written
once, in the subset both speak (`?` placeholders, `ON CONFLICT DO NOTHING`, CASE rather
than scalar MAX/GREATEST); the schema is adapted for PostgreSQL's wider integer and float
types.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from forex_assets.storage.sqlite import DEFAULT_BUSY_TIMEOUT_S, open_sqlite, write_transaction

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
# `scheme://`: a URL, not a file name (a Windows drive, `C:\\...`, has no `//`).
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# Advisory lock id serializing writers (any fixed 64-bit number).
_WRITE_LOCK = 0x6C6564676572


def _postgres_schema(schema: str) -> str:
    """SQLite's INTEGER is 64-bit and REAL double; PostgreSQL's are 32-bit and single."""
    return (
        schema.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY")
        .replace("INTEGER", "BIGINT")
        .replace("REAL", "DOUBLE PRECISION")
    )


class UnsupportedDatabaseError(ValueError):
    """A location that is a URL of a database this module cannot open."""


def is_postgres(location: str) -> bool:
    """True for a PostgreSQL URL, False for a SQLite file path.

    Any other URL (`mysql://...`, `sqlite:///...`) is refused: taken as a path, it would
    silently become a SQLite file named `mysql:/...` under the working directory, and
    processes started elsewhere would each keep their own ledger.
    """
    if location.startswith(POSTGRES_SCHEMES):
        return True
    if _URL.match(location):
        raise UnsupportedDatabaseError(
            f"{_without_password(location)!r} is a {location.split(':', 1)[0]}:// URL, which "
            "names a database this project cannot open; use a SQLite file path (one host) or a "
            "postgresql://user:password@host/database URL (several hosts)."
        )
    return False


def _without_password(url: str) -> str:
    """`url` with any password replaced by ***, fit for an error message or a log."""
    password = urlsplit(url).password
    return url.replace(f":{password}@", ":***@", 1) if password else url


class Transaction:
    """Statements inside one write transaction; `execute` returns a DB-API cursor."""

    def __init__(self, connection: Any, postgres: bool):
        self._connection = connection
        self._postgres = postgres

    def execute(self, sql: str, parameters: Sequence[object] = ()) -> Any:
        if not self._postgres:
            return self._connection.execute(sql, tuple(parameters))
        cursor = self._connection.cursor()
        cursor.execute(sql.replace("?", "%s"), tuple(parameters))
        return cursor


class SharedDatabase:
    """A SQLite path or a `postgresql://` URL; one connection per process, opened lazily
    (and again in a forked child)."""

    def __init__(
        self, location: str | Path, schema: str, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S
    ):
        self.location = str(location)
        self.postgres = is_postgres(self.location)
        self._schema = schema
        self._busy_timeout_s = busy_timeout_s
        self._connection: Any = None
        self._pid = -1

    def _connect(self) -> Any:
        if self._connection is None or self._pid != os.getpid():
            if self.postgres:
                import psycopg2  # only where a PostgreSQL ledger is configured

                connection = psycopg2.connect(self.location)
                with connection, connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_WRITE_LOCK,))
                    cursor.execute(_postgres_schema(self._schema))
            else:
                connection = open_sqlite(Path(self.location), self._schema, self._busy_timeout_s)
            self._connection, self._pid = connection, os.getpid()
        return self._connection

    def close(self) -> None:
        if self._connection is not None and self._pid == os.getpid():
            self._connection.close()
        self._connection = None

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """A write transaction that excludes every other writer from its first statement."""
        connection = self._connect()
        if not self.postgres:
            with write_transaction(connection) as sqlite_connection:
                yield Transaction(sqlite_connection, postgres=False)
            return
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_WRITE_LOCK,))
            yield Transaction(connection, postgres=True)
        except BaseException:
            connection.rollback()
            raise
        connection.commit()

    def query(self, sql: str, parameters: Sequence[object] = ()) -> list[tuple]:
        """Rows of one read (committed data; readers never wait for writers)."""
        connection = self._connect()
        if not self.postgres:
            return connection.execute(sql, tuple(parameters)).fetchall()
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql.replace("?", "%s"), tuple(parameters))
                return cursor.fetchall()
        finally:
            connection.rollback()  # end the implicit read transaction
