"""What an island search found, merged from its islands' logs in island order, so the
result does not depend on which worker ran which island when."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from forex_assets.strategies.islands.checkpoint import CheckpointReport
from forex_assets.strategies.islands.events import Event, Generation, Inject, Start, tally
from forex_assets.strategies.islands.run import NONFINITE_FITNESS
from forex_assets.strategies.islands.settings import Island


@dataclass(frozen=True)
class GenerationRecord:
    """One generation of one island, as the history reports it."""

    island: int
    generation: int  # the island's count across restarts, from 1
    restart: int
    popsize: int
    best_f: float  # of this generation
    best_so_far: float  # of the island
    evaluations: int  # of the island so far
    injected: int  # migrants evaluated in this generation


@dataclass(frozen=True, eq=False)
class SearchResult:
    """The best solution over all islands, and what every island did per generation.

    `history` has one record per island per generation, ordered by generation, then
    island. `generations` is the most any island ran; `stopped_by` is "generations",
    "evaluations", "time", "converged" (every island used up its restarts) or "epochs"
    (`stop_after_epochs`). `checkpoint` says where the search logged and how it began
    (resumed, afresh, files set aside); None without one.
    """

    best_x: np.ndarray
    best_f: float
    best_island: int
    history: tuple[GenerationRecord, ...]
    evaluations: int
    generations: int
    restarts: dict[int, int]
    stopped_by: str
    evaluated_x: np.ndarray  # every point evaluated, in objective space, island by island
    evaluated_f: np.ndarray
    checkpoint: CheckpointReport | None

    def archive(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The `k` best distinct points evaluated (best first) and their values.

        The search keeps one best point, but a portfolio needs many good ones; every
        evaluated point is in the log anyway, so the archive costs nothing extra. Failed
        evaluations (NaN or inf, stored as NONFINITE_FITNESS) are never archived.
        """
        order = np.argsort(self.evaluated_f, kind="stable")
        points, values, seen = [], [], set()
        for i in order:
            key = np.round(self.evaluated_x[i], 9).tobytes()
            if key in seen or not self.evaluated_f[i] < NONFINITE_FITNESS:
                continue
            seen.add(key)
            points.append(self.evaluated_x[i])
            values.append(self.evaluated_f[i])
            if len(points) == k:
                break
        dim = self.evaluated_x.shape[1]
        return np.reshape(points, (-1, dim)), np.asarray(values, dtype=np.float64)


def summarize(
    islands: list[Island],
    logs: list[list[Event]],
    stopped_by: str,
    checkpoint: CheckpointReport | None,
) -> SearchResult:
    rows = []  # (history record, best x of the generation)
    for island, log in zip(islands, logs, strict=True):
        generation = evaluations = restart = popsize = injected = 0
        best_so_far = math.inf
        for event in log:
            if isinstance(event, Start):
                restart, popsize = event.restart, event.popsize
            elif isinstance(event, Inject):
                injected = len(event.X)
            elif isinstance(event, Generation):
                generation += 1
                evaluations += len(event.f)
                k = int(np.argmin(event.f))
                best_so_far = min(best_so_far, float(event.f[k]))
                record = GenerationRecord(
                    island=island.index,
                    generation=generation,
                    restart=restart,
                    popsize=popsize,
                    best_f=float(event.f[k]),
                    best_so_far=best_so_far,
                    evaluations=evaluations,
                    injected=injected,
                )
                rows.append((record, event.X[k]))
                injected = 0
    rows.sort(key=lambda row: (row[0].generation, row[0].island))
    best, best_x = min(rows, key=lambda row: row[0].best_f)  # first of equals, in history order
    evaluated = [
        (island.to_objective_space(event.X), event.f)
        for island, log in zip(islands, logs, strict=True)
        for event in log
        if isinstance(event, Generation)
    ]
    tallies = [tally(log) for log in logs]
    return SearchResult(
        best_x=islands[best.island].to_objective_space(best_x[None, :])[0],
        best_f=best.best_f,
        best_island=best.island,
        history=tuple(record for record, _ in rows),
        evaluations=sum(t.evaluations for t in tallies),
        generations=max(t.generations for t in tallies),
        restarts={island.index: t.restart for island, t in zip(islands, tallies, strict=True)},
        stopped_by=stopped_by,
        evaluated_x=np.concatenate([x for x, _ in evaluated]),
        evaluated_f=np.concatenate([f for _, f in evaluated]).astype(np.float64),
        checkpoint=checkpoint,
    )
