"""Reading a process tree from /proc: who is whose child, and how much memory it holds.

Benchmarks measure whole trees (an executor's workers, a training step's split
workers), which no single process's resource usage shows.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path


def stat_fields(path: str) -> list[str] | None:
    """Fields of a /proc stat file after the ``(comm)`` one: [state, ppid, ...]."""
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def children_by_scan() -> dict[int, list[int]]:
    """Parent pid -> child pids, from the stat file of every process in /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = stat_fields(f"/proc/{entry.name}/stat")
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def tree_pids(root: int) -> list[int]:
    children = children_by_scan()
    tree = [root]
    for pid in tree:  # grows while iterating: breadth-first
        tree.extend(children.get(pid, ()))
    return tree


def proportional_bytes(pid: int) -> int:
    """Proportional set size of one process (0 if it has gone).

    PSS charges each shared page (a memory-mapped training matrix, shared libraries) to
    the processes mapping it in equal parts, so the PSS of a tree sums to the memory the
    tree really occupies; summed RSS would count every shared page once per process.
    """
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class TreeMemorySampler:
    """The peak of the summed proportional memory of `root`'s tree, sampled in a thread."""

    def __init__(self, root: int | None = None, interval: float = 0.25):
        self.root = root or os.getpid()
        self.interval = interval
        self.peak_bytes = 0
        self.peak_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-memory", daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            pids = tree_pids(self.root)
            total = sum(proportional_bytes(pid) for pid in pids)
            if total > self.peak_bytes:
                self.peak_bytes, self.peak_processes = total, len(pids)
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeMemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
