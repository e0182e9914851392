"""Reading a process tree from /proc: who is whose child, and how much memory it holds.

Benchmarks measure whole trees (an executor's workers, a training step's split
workers), which no single process's resource usage shows.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

# How often TreeSampler counts runnable threads.
RUNNABLE_SAMPLE_S = 0.02


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


def _task_children(pid: int, tid: str) -> list[int] | None:
    """Children that thread `tid` of `pid` started (Linux CONFIG_PROC_CHILDREN), if known."""
    try:
        with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as handle:
            return [int(child) for child in handle.read().split()]
    except OSError:
        return None


def is_log_helper(pid: int) -> bool:
    """Whether `pid` is one of the processes Dagster's compute-log capture starts per step.

    `LocalComputeLogManager` mirrors a step's stdout and stderr with, for each stream, a
    ``tail -F`` process and a Python ``watch_orphans.py`` watcher: under any executor.
    """
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv = handle.read().split(b"\0")
    except OSError:
        return False
    return argv[0].endswith(b"tail") or any(a.endswith(b"watch_orphans.py") for a in argv)


def runnable_threads(root: int, skip_tid: int) -> tuple[int, int]:
    """Threads of `root`'s process tree in state R (except the thread `skip_tid`), and how
    many of those belong to Dagster's compute-log helper processes.

    Walks the tree through each thread's ``children`` file where the kernel provides it
    (a few reads per process), else through a scan of every process's parent pid.
    """
    scanned = None if os.path.exists(f"/proc/{root}/task/{root}/children") else children_by_scan()
    count = helpers = 0
    tree = [root]
    for pid in tree:  # grows while iterating: breadth-first
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        running = 0
        for tid in tids:
            if scanned is None:
                tree.extend(_task_children(pid, tid) or ())
            if pid == root and int(tid) == skip_tid:
                continue
            fields = stat_fields(f"/proc/{pid}/task/{tid}/stat")
            if fields is not None and fields[0] == "R":
                running += 1
        if scanned is not None:
            tree.extend(scanned.get(pid, ()))
        count += running
        if running and pid != root and is_log_helper(pid):
            helpers += running
    return count, helpers


class TreeSampler:
    """Counts runnable threads of this process tree every `interval` s, in a thread."""

    def __init__(self, interval: float = RUNNABLE_SAMPLE_S):
        self.interval = interval
        self.samples: list[int] = []
        self.without_helpers: list[int] = []
        self.own_cpu_s = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-tree-sampler", daemon=True)

    def _loop(self) -> None:
        root, me = os.getpid(), threading.get_native_id()
        started = time.thread_time()
        while not self._stop.is_set():
            count, helpers = runnable_threads(root, me)
            self.samples.append(count)
            self.without_helpers.append(count - helpers)
            self._stop.wait(self.interval)
        self.own_cpu_s = time.thread_time() - started

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
