"""The orchestrator's side of the warm workers: start, reuse, recycle, retire.

Workers are keyed by thread budget (a worker's polars pool is fixed at start). A worker
is reused until it has run `max_steps` steps or its resident memory has grown by more
than `max_memory_growth` since it became ready, then it is replaced, so that a long run
does not accumulate what a library leaks. Idle workers beyond `max_workers` are retired,
oldest budget first.
"""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from forex_assets.compute.thread_budget import environment_for_children
from forex_assets.executor.step_worker import (
    resident_memory_bytes,
    worker_main,
)

WORKER_START_TIMEOUT_S = 300.0


@dataclass
class Worker:
    process: Any  # multiprocessing.Process
    connection: Connection
    term_event: Any
    threads: int
    steps_done: int = 0
    ready_memory: int = 0
    started_at: float = field(default_factory=time.monotonic)
    ready: bool = False
    pending: Any = None  # the step command waiting for the worker to finish loading

    @property
    def pid(self) -> int:
        return int(self.process.pid or 0)

    def request_stop(self) -> None:
        try:
            if self.process.is_alive():
                self.connection.send(None)
        except (OSError, ValueError):
            pass

    def stop(self, timeout: float = 10.0) -> None:
        self.request_stop()
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout)
        self.connection.close()


class WorkerPool:
    def __init__(
        self,
        recon_job: Any,
        blas_cap: int,
        max_workers: int,
        max_steps: int,
        max_memory_growth: int,
    ):
        self._context = multiprocessing.get_context("spawn")
        self._recon_job = recon_job
        self._blas_cap = blas_cap
        self._max_workers = max(1, max_workers)
        self._max_steps = max_steps
        self._max_memory_growth = max_memory_growth
        self._idle: list[Worker] = []
        self._busy: dict[str, Worker] = {}
        self.started = 0
        self.recycled = 0

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def _start(self, threads: int) -> Worker:
        """Start a worker without waiting for it: workers load the code in parallel, and
        the orchestrator keeps serving busy workers meanwhile."""
        parent, child = self._context.Pipe()
        term_event = self._context.Event()
        process = self._context.Process(
            target=worker_main,
            args=(child, threads, self._blas_cap, term_event, self._recon_job),
            name=f"forex-assets-worker-{threads}t",
        )
        # A spawned child inherits the environment at start(): that is how the budget reaches
        # libraries that read it once, at import, before any code of ours runs there.
        with environment_for_children(threads, self._blas_cap):
            process.start()
        child.close()
        self.started += 1
        return Worker(process, parent, term_event, threads)

    def submit(self, worker: Worker, command: Any) -> None:
        """Send a step to the worker now, or as soon as it has loaded the code."""
        if worker.ready:
            worker.connection.send(command)
        else:
            worker.pending = command

    def mark_ready(self, worker: Worker) -> None:
        worker.ready = True
        worker.ready_memory = resident_memory_bytes(worker.pid)
        if worker.pending is not None:
            command, worker.pending = worker.pending, None
            worker.connection.send(command)

    def overdue(self) -> list[str]:
        """Steps whose new worker has not loaded the code within WORKER_START_TIMEOUT_S."""
        now = time.monotonic()
        return [
            key
            for key, worker in self._busy.items()
            if not worker.ready and now - worker.started_at > WORKER_START_TIMEOUT_S
        ]

    def acquire(self, threads: int, step_key: str) -> tuple[Worker, bool]:
        """An idle worker with this budget, or a new one; returns (worker, was_warm)."""
        warm = next((w for w in self._idle if w.threads == threads and w.process.is_alive()), None)
        if warm is not None:
            self._idle.remove(warm)
            worker = warm
        else:
            while self._idle and len(self._idle) + len(self._busy) >= self._max_workers:
                self._idle.pop(0).stop()
            worker = self._start(threads)
        self._busy[step_key] = worker
        return worker, warm is not None

    def finish(self, step_key: str, memory_after: int) -> None:
        """The step ended normally: keep the worker warm unless it is due for recycling."""
        worker = self._busy.pop(step_key)
        worker.steps_done += 1
        grown = memory_after - worker.ready_memory if worker.ready_memory else 0
        if worker.steps_done >= self._max_steps or grown > self._max_memory_growth:
            self.recycled += 1
            worker.stop()
        else:
            self._idle.append(worker)

    def discard(self, step_key: str) -> None:
        """The worker died or its step was interrupted: never reuse it."""
        worker = self._busy.pop(step_key, None)
        if worker is not None:
            worker.stop(timeout=5.0)

    def busy(self) -> dict[str, Worker]:
        return dict(self._busy)

    def shutdown(self) -> None:
        workers = [*self._idle, *self._busy.values()]
        for worker in workers:  # let them all wind down at once, then wait
            worker.request_stop()
        for worker in workers:
            worker.stop()
        self._idle.clear()
        self._busy.clear()
