"""Which processes still run: used to reap what dead processes left behind.

A pid alone does not name a process for long: the kernel reuses pids, so a row left by a
killed process can come to look alive when an unrelated process gets its number (seen: a
core-ledger row holding cores forever). A `ProcessIdentity` therefore pairs the pid with
the process's start time, which a reused pid does not share.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import threading
import time
from dataclasses import dataclass


def process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name == "nt":
        return True  # os.kill(pid, 0) would terminate the process on Windows: assume alive
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def process_start_time(pid: int) -> int | None:
    """When `pid` started, in clock ticks since boot (Linux); None where the system hides it.

    Field 22 of /proc/<pid>/stat; the command name before it may contain spaces and
    parentheses, so the fields are counted from the last ')'.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    try:
        return int(stat[stat.rindex(b")") + 2 :].split()[19])
    except (ValueError, IndexError):
        return None


@dataclass(frozen=True)
class ProcessIdentity:
    """A process as its host, pid and start time (None where the system does not tell)."""

    host: str
    pid: int
    started: int | None

    @classmethod
    def current(cls) -> ProcessIdentity:
        pid = os.getpid()
        return cls(socket.gethostname(), pid, process_start_time(pid))

    @property
    def on_this_host(self) -> bool:
        return self.host == socket.gethostname()

    def alive(self) -> bool | None:
        """Whether the process still runs; None for a process of another host (unknowable)."""
        if not self.on_this_host:
            return None
        if not process_alive(self.pid):
            return False
        if self.started is None:
            return True
        started = process_start_time(self.pid)
        return started is None or started == self.started

    def token(self) -> str:
        """`host/pid/start`: a string to store with what the process holds."""
        return f"{self.host}/{self.pid}/{'' if self.started is None else self.started}"

    @classmethod
    def from_token(cls, token: str) -> ProcessIdentity:
        host, pid, started = token.rsplit("/", 2)
        return cls(host, int(pid), int(started) if started else None)

    def describe(self) -> str:
        state = {True: "alive", False: "dead", None: "on another host"}[self.alive()]
        return f"pid {self.pid} on {self.host}, {state}"


PARENT_CHECK_S = 1.0


def exit_with_parent() -> None:
    """End this process within `PARENT_CHECK_S` of its parent's death.

    A worker whose orchestrator (or whose step, for a nested pool) was killed must not
    finish work nobody will collect, nor sit idle forever: its task queue never reports
    the end while sibling workers hold the queue's other end.
    """
    # The parent that started this process, not whoever adopted it: a parent killed
    # while this one was still starting would otherwise leave it watching init forever.
    spawner = multiprocessing.parent_process()
    parent = spawner.pid if spawner is not None and spawner.pid else os.getppid()

    def watch() -> None:
        while True:
            time.sleep(PARENT_CHECK_S)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()
