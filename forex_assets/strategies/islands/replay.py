"""In a worker: bring an island's live CMA-ES up to its log, then advance it one epoch.

A CMA-ES cannot travel between processes without pickling it, and this project never
unpickles files, so an island travels as its log (`events`). A worker rebuilds the
island's `CMAEvolutionStrategy` from the same seed and options and replays the log
without evaluating anything: `ask()` must reproduce the logged solutions, which are then
told their logged fitness. The same replay resumes a search from its checkpoint.

Replaying a whole log every epoch costs time quadratic in the generations, hence the
process-wide cache of live runs: a process that advanced an island before keeps its run
and replays only the entries since. Such a run is in exactly the state a full replay
would build (the same calls on the same data), so a result never depends on which
process ran which island before. The cache is keyed by the search's token (a fresh one
per `island_search` call) and the island, and lives as long as its process: a pool
worker's entries go with the pool, which lasts one search; the main process runs the
islands itself on a budget of one thread, and `island_search` drops its entries
(`forget_live_runs`) when the search ends, however it ends.
"""

from __future__ import annotations

import numpy as np

from forex_assets.strategies.islands.events import Done, Event, Generation, Inject, Start
from forex_assets.strategies.islands.run import IslandRun, Objective, evaluate, next_start
from forex_assets.strategies.islands.settings import Island

# Replayed solutions may differ in the last bits where the checkpoint is resumed on
# another machine (another BLAS); anything beyond rounding means another search.
REPLAY_RTOL = 1e-9
REPLAY_ATOL = 1e-12


class ReplayMismatchError(RuntimeError):
    """A checkpoint's log does not replay under the settings of the search reading it."""


# (search token, island index) -> (how many log entries the run has seen, the live run).
_LIVE_RUNS: dict[tuple[str, int], tuple[int, IslandRun]] = {}


def advance_island(
    objective: Objective,
    island: Island,
    log: list[Event],
    migrants: np.ndarray | None,
    epoch: int,
    generations_left: int,
    interval: int,
    evaluations_left: int | None,
) -> list[Event]:
    """One epoch of one island: catch up with its log (replaying what this process has not
    seen), run up to `interval` generations and return the new log entries. Migrants are
    injected just before the epoch's first generation."""
    key = (island.search, island.index)
    consumed, run = _LIVE_RUNS.pop(key, (0, IslandRun(island)))
    replay(run, log, consumed)
    events: list[Event] = []
    if run.es is None:
        start = next_start(island, run)
        events.append(start)
        run.start(start)
    generations = spent = 0
    while generations < min(interval, generations_left) and not run.done:
        if evaluations_left is not None and spent + run.es.popsize > evaluations_left:
            break
        if migrants is not None:
            run.inject(migrants)
            events.append(Inject(epoch, migrants))
            migrants = None
        X = np.array(run.es.ask(), dtype=float)
        f = evaluate(objective, island, X)
        run.tell(X, f)
        events.append(Generation(epoch, X, f))
        generations += 1
        spent += len(f)
        if run.stopped:
            start = next_start(island, run)
            events.append(start)
            if isinstance(start, Done):
                run.done = True
            else:
                run.start(start)
    _LIVE_RUNS[key] = (len(log) + len(events), run)
    return events


def forget_live_runs(islands: list[Island]) -> None:
    """Drop this process's live runs of these islands (their search has ended)."""
    for island in islands:
        _LIVE_RUNS.pop((island.search, island.index), None)


def replay(run: IslandRun, log: list[Event], consumed: int) -> None:
    """Bring `run`, which has seen `log[:consumed]`, up to the whole log, evaluating nothing.

    A restart builds a new CMA-ES from its start event and its own random stream, so runs
    before the last start only count their evaluations (for BIPOP); only the current run
    is replayed.
    """
    current = max((k for k, event in enumerate(log) if isinstance(event, Start)), default=0)
    generation = sum(isinstance(event, Generation) for event in log[:consumed])
    for k in range(consumed, len(log)):
        event = log[k]
        generation += isinstance(event, Generation)
        if k < current:
            if isinstance(event, Start):
                run.runs.append([event.regime, 0])
            elif isinstance(event, Generation):
                run.runs[-1][1] += len(event.f)
        elif isinstance(event, Start):
            run.start(event)
        elif isinstance(event, Inject):
            run.inject(event.X)
        elif isinstance(event, Generation):
            asked = np.array(run.es.ask(), dtype=float)
            if asked.shape != event.X.shape or not np.allclose(
                asked, event.X, rtol=REPLAY_RTOL, atol=REPLAY_ATOL
            ):
                raise ReplayMismatchError(
                    f"island {run.island.index}, generation {generation}: replaying the log "
                    "asked other solutions than the log holds, so it was not written by this "
                    "search (edited together with its hash, or another machine's arithmetic)"
                )
            run.tell(event.X, event.f)
        elif isinstance(event, Done):
            run.done = True
