"""A real, throwaway PostgreSQL server for tests, on 127.0.0.1 and a free port.

`PostgresServer.start()` runs `initdb` in a fresh temporary directory and starts the server
with `pg_ctl`, listening on loopback only, its Unix socket in that directory (never the
system's /var/run/postgresql), with durability switched off for speed. TCP clients log in
with a password (scram-sha-256), so a client that drops the password fails. `stop()` shuts
the server down and removes the directory.

PostgreSQL refuses to run as root. As root (a container, CI), the server runs as the
unprivileged system user `forexpg`, created with `useradd` when it is missing, through
`runuser` (or `su`). When the server binaries are not installed, or that user cannot be
made, `start()` raises `PostgresUnavailable`, whose message says what is missing and how
to install it; tests turn it into a skip.
"""

import contextlib
import dataclasses
import glob
import os
import pwd
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")
INSTALL_HINT = "apt-get install -y postgresql"
SERVICE_USER = "forexpg"
SUPERUSER = "dagster"
START_TIMEOUT_S = 60
START_ATTEMPTS = 3


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server can be started here; the message says why and what to install."""


def _version_key(bin_dir: str) -> tuple[int, ...]:
    match = re.search(r"/postgresql/([\d.]+)/bin", bin_dir)
    return tuple(int(p) for p in match.group(1).split(".") if p) if match else ()


def find_server_binaries() -> dict[str, Path]:
    """initdb, pg_ctl and postgres from one installation: PATH first, then the newest
    /usr/lib/postgresql/<version>/bin (Debian keeps the server binaries there)."""
    candidates: list[Path] = []
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates += [Path(on_path).parent, Path(os.path.realpath(on_path)).parent]
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    candidates += [Path(d) for d in debian]
    for directory in candidates:
        found = {name: directory / name for name in SERVER_BINARIES}
        if all(path.is_file() and os.access(path, os.X_OK) for path in found.values()):
            return found
    missing = [
        name
        for name in SERVER_BINARIES
        if not shutil.which(name) and not any((Path(d) / name).is_file() for d in debian)
    ]
    what = missing[0] if missing else "initdb/pg_ctl/postgres of one installation"
    raise PostgresUnavailable(
        f"PostgreSQL server binary {what!r} not found on PATH or under "
        f"/usr/lib/postgresql/*/bin; install the server with `{INSTALL_HINT}`."
    )


def _service_user() -> str | None:
    """The user the server runs as: None (this one) unless we are root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVICE_USER)
        return SERVICE_USER
    except KeyError:
        pass
    command = [
        "useradd",
        "--system",
        "--no-create-home",
        "--shell",
        "/usr/sbin/nologin",
        SERVICE_USER,
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    try:  # another process may have created it meanwhile: only its existence matters
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        raise PostgresUnavailable(
            "PostgreSQL refuses to run as root and the unprivileged user "
            f"{SERVICE_USER!r} could not be created ({shlex.join(command)}: "
            f"{(result.stderr or result.stdout).strip()})"
        ) from None
    return SERVICE_USER


def _as_user(user: str | None, command: list[str]) -> list[str]:
    if user is None:
        return command
    if shutil.which("runuser"):
        return ["runuser", "-u", user, "--", *command]
    return ["su", "-s", "/bin/sh", user, "-c", shlex.join(command)]


def _parent_for(run_as: str | None) -> str:
    """The temp dir, unless the server user could not reach into it (pytest's tmp_path and
    a private TMPDIR are root's alone): then /tmp."""
    parent = tempfile.gettempdir()
    if run_as is None:
        return parent
    reachable = all(os.stat(p).st_mode & 0o001 for p in [parent, *map(str, Path(parent).parents)])
    return parent if reachable else "/tmp"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclasses.dataclass
class PostgresServer:
    """A running server; connect with host, port, user, password, db."""

    host: str
    port: int
    user: str
    password: str
    db: str
    directory: Path
    binaries: dict[str, Path]
    run_as: str | None
    version: str = ""

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def log_file(self) -> Path:
        return self.directory / "server.log"

    @classmethod
    def start(cls) -> "PostgresServer":
        binaries = find_server_binaries()
        run_as = _service_user()
        directory = Path(tempfile.mkdtemp(prefix="forex-pg-", dir=_parent_for(run_as)))
        server = cls(
            host="127.0.0.1",
            port=0,
            user=SUPERUSER,
            password=secrets.token_hex(12),
            db="postgres",
            directory=directory,
            binaries=binaries,
            run_as=run_as,
        )
        try:
            server._initdb()
            server._start_on_a_free_port()
        except BaseException:
            with contextlib.suppress(Exception):  # keep the error that stopped the start
                server.stop()
            raise
        return server

    def _run(self, command: list[str], timeout: float = START_TIMEOUT_S) -> str:
        result = subprocess.run(
            _as_user(self.run_as, command),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.directory,
        )
        if result.returncode != 0:
            log = self.log_file.read_text() if self.log_file.exists() else ""
            raise RuntimeError(
                f"{shlex.join(command)} exited with {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}\n{log[-3000:]}"
            )
        return result.stdout

    def _initdb(self) -> None:
        password_file = self.directory / "password"
        password_file.write_text(self.password + "\n")
        if self.run_as is not None:
            user = pwd.getpwnam(self.run_as)
            os.chown(self.directory, user.pw_uid, user.pw_gid)
            os.chown(password_file, user.pw_uid, user.pw_gid)
        password_file.chmod(0o600)
        self._run(
            [
                str(self.binaries["initdb"]),
                "--pgdata",
                str(self.data_dir),
                "--username",
                self.user,
                f"--pwfile={password_file}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            ]
        )
        password_file.unlink()
        self.version = self._run([str(self.binaries["postgres"]), "--version"]).strip()

    def _start_on_a_free_port(self) -> None:
        for attempt in range(START_ATTEMPTS):
            self.port = _free_port()
            options = [
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"port={self.port}",
                "-c",
                f"unix_socket_directories={self.directory}",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]
            try:
                self._run(
                    [
                        str(self.binaries["pg_ctl"]),
                        "--pgdata",
                        str(self.data_dir),
                        "--log",
                        str(self.log_file),
                        "--wait",
                        f"--timeout={START_TIMEOUT_S}",
                        "--options",
                        shlex.join(options),
                        "start",
                    ],
                    timeout=START_TIMEOUT_S + 10,
                )
                return
            except RuntimeError as error:
                # Another process took the port between our probe and the server's bind.
                if "already in use" not in str(error) or attempt == START_ATTEMPTS - 1:
                    raise

    def stop(self) -> None:
        """Shut the server down (if it runs) and remove its directory."""
        try:
            if (self.data_dir / "postmaster.pid").exists():
                pg_ctl = str(self.binaries["pg_ctl"])
                stop = [pg_ctl, "--pgdata", str(self.data_dir), "--wait", "--timeout=30"]
                # The data is thrown away: no need for the shutdown checkpoint of --mode=fast.
                self._run([*stop, "--mode=immediate", "stop"], timeout=40)
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def dsn(self, db: str | None = None) -> dict[str, object]:
        """Keyword arguments for psycopg2.connect."""
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "dbname": db or self.db,
        }

    def create_database(self, name: str) -> str:
        """A new, empty database on this server; returns its name."""
        import psycopg2
        from psycopg2 import sql

        connection = psycopg2.connect(**self.dsn())
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        finally:
            connection.close()
        return name

    def dagster_env(self, db: str) -> dict[str, str]:
        """The DAGSTER_PG_* variables that point forex_assets/deploy/dagster_postgres.yaml here."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USER": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": db,
        }
