"""`island_search`: the epoch loop that advances every island, migrates and stops.

Each epoch advances every active island by up to `migration_interval` generations, each
in its own task (`replay.advance_island`) in an `ElasticPool` (one thread each), so the
islands run in parallel on the cores the step holds or leases; between epochs the main process merges the new
events in island order, picks each island's migrants from the previous island's epoch
(a ring), checks the budgets and logs the epoch to the checkpoint. Every decision reads
only the logs, so a search resumed from its checkpoint decides as the uninterrupted one.
"""

from __future__ import annotations

import functools
import pickle
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from forex_assets.compute.elastic_pool import ElasticPool, Task
from forex_assets.strategies.islands.checkpoint import (
    LoggedEpoch,
    open_checkpoint,
    search_fingerprint,
    write_epoch,
)
from forex_assets.strategies.islands.events import Event, Generation, tally
from forex_assets.strategies.islands.replay import (
    ReplayMismatchError,
    advance_island,
    forget_live_runs,
)
from forex_assets.strategies.islands.result import SearchResult, summarize
from forex_assets.strategies.islands.run import Objective
from forex_assets.strategies.islands.settings import (
    Island,
    IslandSettings,
    evaluation_quota,
    plan_islands,
)


def island_search(
    objective: Objective,
    dim: int,
    settings: IslandSettings,
    x0: np.ndarray | None = None,
    checkpoint_root: Path | None = None,
    *,
    stop_after_epochs: int | None = None,
) -> SearchResult:
    """Minimize `objective(X (pop, dim)) -> (pop,)` with CMA-ES islands; NaN/inf rank last.

    `objective` runs in spawned worker processes, so it must be picklable: a module-level
    function or a `functools.partial` of one. `x0` (default: the box centre, or zeros
    unbounded) is island 0's start; the other islands start at seeded random points, since
    islands that all start in one place explore one basin. With `checkpoint_root` the
    search logs every epoch under `checkpoint_root/search-<hash of its settings>/` and
    resumes from the good epochs found there, so searches with other settings (another
    island layout) share a root without meeting. `stop_after_epochs` ends the call once
    that many epochs exist in total, as a kill between epochs would (the checkpoint
    continues it).
    """
    islands = plan_islands(dim, settings, x0)
    if stop_after_epochs is not None and stop_after_epochs < 1:
        raise ValueError(f"stop_after_epochs={stop_after_epochs}: pass a positive count, or None")
    try:
        pickle.dumps(objective)
    except Exception as error:
        raise ValueError(
            f"objective {objective!r} cannot be sent to the island worker processes "
            f"({error}): pass a module-level function or a functools.partial of one"
        ) from error

    logs: list[list[Event]] = [[] for _ in islands]
    epochs_done, elapsed_before, report = 0, 0.0, None
    if checkpoint_root is not None:
        report, epochs = open_checkpoint(
            Path(checkpoint_root), search_fingerprint(objective, islands, settings), islands
        )
        for epoch in epochs:
            for log, events in zip(logs, epoch.islands, strict=True):
                log.extend(events)
            epochs_done, elapsed_before = epochs_done + 1, epoch.elapsed_s

    try:
        stopped_by = _run_epochs(
            objective,
            islands,
            settings,
            logs,
            epochs_done,
            elapsed_before,
            None if report is None else report.directory,
            stop_after_epochs,
        )
    except ReplayMismatchError as error:
        where = "" if report is None else f" in {report.directory}"
        raise ReplayMismatchError(
            f"{error}; the log{where} cannot be resumed: move that directory aside and run "
            "again to start this search afresh"
        ) from None
    finally:
        # Runs advanced in this process (a budget of one worker: no pool) end with the search.
        forget_live_runs(islands)
    return summarize(islands, logs, stopped_by, report)


def _run_epochs(
    objective: Objective,
    islands: list[Island],
    settings: IslandSettings,
    logs: list[list[Event]],
    epochs_done: int,
    elapsed_before: float,
    checkpoint_dir: Path | None,
    stop_after_epochs: int | None,
) -> str:
    """Advance every active island one epoch at a time until a stop; extends `logs`."""
    started = time.perf_counter()
    with _task_runner(len(islands)) as run_all:
        while True:
            elapsed = elapsed_before + time.perf_counter() - started
            statuses = [
                _status(island, log, settings) for island, log in zip(islands, logs, strict=True)
            ]
            stopped_by = _stop_reason(statuses, elapsed, settings, epochs_done, stop_after_epochs)
            if stopped_by:
                return stopped_by
            calls = {
                island.index: functools.partial(
                    advance_island,
                    objective,
                    island,
                    logs[island.index],
                    _migrants(logs, island.index, epochs_done, settings),
                    epochs_done,
                    settings.max_generations - tally(logs[island.index]).generations,
                    settings.migration_interval,
                    _evaluations_left(island, logs[island.index], settings),
                )
                for island, status in zip(islands, statuses, strict=True)
                if status == "active"
            }
            new = dict(zip(calls, run_all(list(calls.values())), strict=True))
            for index, events in new.items():
                logs[index].extend(events)
            if checkpoint_dir is not None:
                write_epoch(
                    checkpoint_dir,
                    epochs_done,
                    LoggedEpoch(
                        elapsed_before + time.perf_counter() - started,
                        tuple(tuple(new.get(island.index, ())) for island in islands),
                    ),
                )
            epochs_done += 1


def _evaluations_left(island: Island, log: list[Event], settings: IslandSettings) -> int | None:
    quota = evaluation_quota(island, settings)
    return None if quota is None else quota - tally(log).evaluations


def _status(island: Island, log: list[Event], settings: IslandSettings) -> str:
    counts = tally(log)
    if counts.done:
        return "converged"
    if counts.generations >= settings.max_generations:
        return "generations"
    left = _evaluations_left(island, log, settings)
    if left is not None and left < (counts.popsize or island.popsize):
        return "evaluations"
    return "active"


def _stop_reason(
    statuses: list[str],
    elapsed: float,
    settings: IslandSettings,
    epochs_done: int,
    stop_after_epochs: int | None,
) -> str | None:
    if "active" not in statuses:
        return next(
            (reason for reason in ("evaluations", "generations") if reason in statuses),
            "converged",
        )
    # Never before the first epoch: a search that evaluated nothing has no result.
    if settings.time_budget_s is not None and epochs_done and elapsed >= settings.time_budget_s:
        return "time"
    if stop_after_epochs is not None and epochs_done >= stop_after_epochs:
        return "epochs"
    return None


def _migrants(
    logs: list[list[Event]], index: int, epoch: int, settings: IslandSettings
) -> np.ndarray | None:
    """The previous island's best `migrants` solutions of the last epoch (ring topology)."""
    if epoch == 0 or settings.islands == 1 or settings.migrants == 0:
        return None
    sender = logs[(index - 1) % settings.islands]
    generations = [e for e in sender if isinstance(e, Generation) and e.epoch == epoch - 1]
    if not generations:
        return None
    X = np.concatenate([e.X for e in generations])
    f = np.concatenate([e.f for e in generations])
    return X[np.argsort(f, kind="stable")[: settings.migrants]]


@contextmanager
def _task_runner(islands: int) -> Iterator[Callable[[list[Callable[[], Any]]], list[Any]]]:
    """Runs a list of calls and returns their results in order.

    A single island runs in this process instead of paying for a spawned worker.
    """
    if islands == 1:
        yield lambda calls: [call() for call in calls]
        return
    with ElasticPool(max_threads=1) as pool:
        yield lambda calls: pool.map([Task(f"island {i}", c) for i, c in enumerate(calls)])
