"""CMA-ES islands: several independent CMA-ES runs that trade their best solutions in a ring.

One CMA-ES run on a rugged strategy landscape converges to the first good basin it finds.
Islands with different seeds, start points and population sizes explore different basins
at once; every `migration_interval` generations each island sends its best `migrants`
solutions of that epoch to the next island (`es.inject`), so a good basin found by one
island is tried by the others without collapsing them all onto it. When an island's
CMA-ES stops (tolfun, tolx, flat fitness, ...) it restarts with a larger population
(IPOP) or alternates large and small local runs (BIPOP, Hansen 2009) while keeping its
best.

Every epoch advances each island in its own task in `budgeted_process_pool`, so the
islands run in parallel inside the step's CPU budget. Tasks carry data, not live objects:
a CMA-ES cannot be sent between processes without pickling it, and this project never
unpickles files, so an island travels as its replay log (asked solutions and their
fitness per generation, injected migrants, restarts). A worker rebuilds the island's
`CMAEvolutionStrategy` from the same seed and options, replays the log without
evaluating anything (`ask()` must reproduce the logged solutions), runs the epoch's new
generations and returns only the new log entries; a worker that advanced the island
before keeps its live run and replays only the entries since (`_LIVE_RUNS`). The same
log, written as one sealed JSON file per epoch in a directory of its own per search
(`search_checkpoint`), is the checkpoint: a killed search resumes from it and ends exactly
where an uninterrupted one does. The main process merges results in island order, so the
outcome does not depend on which worker ran which island when.
"""

from __future__ import annotations

import functools
import json
import math
import pickle
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cma
import numpy as np

from forex_assets.compute.worker_pool import budgeted_process_pool, nested_workers
from forex_assets.strategies.search_checkpoint import (
    CHECKPOINT_FORMAT,
    CheckpointReport,
    open_checkpoint,
    write_epoch,
)

Objective = Callable[[np.ndarray], np.ndarray]
Event = dict[str, Any]

RESTART_POLICIES = ("ipop", "bipop", "none")
# CMA-ES only ranks candidates, but its termination tests read the values: a large finite
# number keeps NaN/inf candidates last without turning the fitness history into NaN.
NONFINITE_FITNESS = 1e300
# Replayed solutions may differ in the last bits where the checkpoint is resumed on
# another machine (another BLAS); anything beyond rounding means another search.
REPLAY_RTOL = 1e-9
REPLAY_ATOL = 1e-12


class ReplayMismatchError(RuntimeError):
    """A checkpoint's log does not replay under the settings of the search reading it."""


@dataclass(frozen=True, eq=False)
class IslandSettings:
    """How to search. Bounds are stored as read-only float arrays (hence identity equality)."""

    islands: int = 4
    # Per island; default: cma's default population for the dimension times 1, 2, 1, 2, ...
    population_sizes: tuple[int, ...] | None = None
    # Island i, restart r samples from SeedSequence((seed, i, r)).
    seed: int = 1
    # Initial step size, in the unit cube when bounds are given.
    sigma0: float = 0.3
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    migration_interval: int = 10
    migrants: int = 2
    # Per island, across its restarts.
    max_generations: int = 200
    # Across all islands; each island gets an equal share.
    max_evaluations: int | None = None
    # Checked at migration boundaries: the search stops at the first one after it.
    time_budget_s: float | None = None
    restarts: str = "bipop"
    max_restarts: int = 5

    def __post_init__(self) -> None:
        _require(self.islands >= 1, f"islands={self.islands}: pass at least one island")
        if self.population_sizes is not None:
            sizes = tuple(int(size) for size in self.population_sizes)
            _require(
                len(sizes) == self.islands,
                f"population_sizes has {len(sizes)} entries for islands={self.islands}: give "
                "one population size per island, or None for the defaults",
            )
            _require(
                min(sizes) >= 3,
                f"population_sizes={sizes}: CMA-ES needs at least 3 candidates per generation",
            )
            object.__setattr__(self, "population_sizes", sizes)
        _require(self.seed >= 0, f"seed={self.seed}: seeds must be non-negative integers")
        _require(
            math.isfinite(self.sigma0) and self.sigma0 > 0,
            f"sigma0={self.sigma0}: the initial step size must be a positive number",
        )
        self._set_bounds()
        _require(
            self.migration_interval >= 1,
            f"migration_interval={self.migration_interval}: islands migrate every "
            "migration_interval generations; pass at least 1",
        )
        _require(
            self.migrants >= 0,
            f"migrants={self.migrants}: pass 0 to disable migration, or a positive count",
        )
        _require(
            self.max_generations >= 1,
            f"max_generations={self.max_generations}: pass at least 1",
        )
        _require(
            self.max_evaluations is None or self.max_evaluations >= 1,
            f"max_evaluations={self.max_evaluations}: pass a positive count, or None for no limit",
        )
        _require(
            self.time_budget_s is None or self.time_budget_s > 0,
            f"time_budget_s={self.time_budget_s}: pass a positive number of seconds, or None",
        )
        _require(
            self.restarts in RESTART_POLICIES,
            f"restarts={self.restarts!r} is not a restart policy: use one of {RESTART_POLICIES}",
        )
        _require(
            self.max_restarts >= 0,
            f"max_restarts={self.max_restarts}: pass 0 for no restarts, or a positive count",
        )

    def _set_bounds(self) -> None:
        if self.lower is None and self.upper is None:
            return
        _require(
            self.lower is not None and self.upper is not None,
            "only one of lower and upper was given: box bounds need both, or neither for an "
            "unbounded search",
        )
        lower = np.array(self.lower, dtype=float)
        upper = np.array(self.upper, dtype=float)
        _require(
            lower.ndim == 1 and lower.size >= 1 and lower.shape == upper.shape,
            f"lower has shape {lower.shape} and upper {upper.shape}: bounds must be two 1-D "
            "arrays of the same length, one entry per dimension",
        )
        _require(
            bool(np.all(np.isfinite(lower)) and np.all(np.isfinite(upper))),
            "lower/upper hold NaN or inf: the search maps the unit cube linearly onto the box, "
            "which needs finite bounds; leave both None for an unbounded search",
        )
        bad = np.flatnonzero(lower >= upper)
        _require(
            bad.size == 0,
            f"lower >= upper in dimensions {bad.tolist()} (lower {lower[bad].tolist()}, "
            f"upper {upper[bad].tolist()}): every dimension needs lower < upper",
        )
        lower.flags.writeable = False
        upper.flags.writeable = False
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)


@dataclass(frozen=True, eq=False)
class SearchResult:
    """The best solution over all islands, and what every island did per generation.

    `history` has one entry per island per generation (ordered by generation, then island):
    island, generation (the island's count across restarts), restart, popsize, best_f (of
    this generation), best_so_far (of the island), evaluations (of the island so far) and
    injected (migrants evaluated in this generation). `generations` is the most any island
    ran; `stopped_by` is "generations", "evaluations", "time", "converged" (every island
    used up its restarts) or "epochs" (`stop_after_epochs`). `checkpoint` says where the
    search logged and how it began (resumed, afresh, files set aside); None without one.
    """

    best_x: np.ndarray
    best_f: float
    best_island: int
    history: list[dict]
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


@dataclass(frozen=True, eq=False)
class _Island:
    """What a worker needs to rebuild and advance one island (picklable, no live objects)."""

    search: str  # this island_search call, for the processes' caches of live runs
    index: int
    seed: int
    popsize: int
    sigma0: float
    x0: np.ndarray  # island 0's first mean, in the search space
    lower: np.ndarray | None
    upper: np.ndarray | None
    restarts: str
    max_restarts: int

    @property
    def dim(self) -> int:
        return len(self.x0)

    def to_objective_space(self, X: np.ndarray) -> np.ndarray:
        """Bounded searches run in the unit cube; the objective sees the box."""
        if self.lower is None or self.upper is None:
            return np.array(X, dtype=float)
        return self.lower + X * (self.upper - self.lower)


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
    islands = _islands(dim, settings, x0)
    _require(
        stop_after_epochs is None or stop_after_epochs >= 1,
        f"stop_after_epochs={stop_after_epochs}: pass a positive count, or None",
    )
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
            Path(checkpoint_root),
            _fingerprint(objective, islands, settings),
            functools.partial(_decode_epoch, islands=islands),
        )
        for elapsed_s, events in epochs:
            for log, island_events in zip(logs, events, strict=True):
                log.extend(island_events)
            epochs_done, elapsed_before = epochs_done + 1, elapsed_s

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
        for island in islands:
            _LIVE_RUNS.pop((island.search, island.index), None)
    return _summarize(islands, logs, stopped_by, report)


def _run_epochs(
    objective: Objective,
    islands: list[_Island],
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
                    _advance_island,
                    objective,
                    island,
                    logs[island.index],
                    _migrants(logs, island.index, epochs_done, settings),
                    epochs_done,
                    settings.max_generations - _tally(logs[island.index]).generations,
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
                    {
                        "elapsed_s": elapsed_before + time.perf_counter() - started,
                        "islands": [
                            [_encode(e) for e in new.get(island.index, [])] for island in islands
                        ],
                    },
                )
            epochs_done += 1


# ------------------------------------------------------------------ settings and planning


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _default_popsize(dim: int) -> int:
    """cma's default population, 4 + floor(3 ln dim)."""
    return 4 + int(3 * math.log(dim))


def _islands(dim: int, settings: IslandSettings, x0: np.ndarray | None) -> list[_Island]:
    _require(dim >= 1, f"dim={dim}: the search needs at least one dimension")
    bounded = settings.lower is not None
    if bounded:
        _require(
            len(settings.lower) == dim,
            f"bounds have {len(settings.lower)} entries for dim={dim}: give one lower and one "
            "upper bound per dimension",
        )
    if x0 is None:
        start = np.full(dim, 0.5) if bounded else np.zeros(dim)
    else:
        start = np.array(x0, dtype=float)
        _require(
            start.shape == (dim,) and bool(np.all(np.isfinite(start))),
            f"x0 has shape {start.shape} (or holds NaN/inf): pass a finite vector of length "
            f"dim={dim}, or None for the default start",
        )
        if bounded:
            outside = np.flatnonzero((start < settings.lower) | (start > settings.upper))
            _require(
                outside.size == 0,
                f"x0 lies outside the bounds in dimensions {outside.tolist()}: start inside "
                "[lower, upper]",
            )
            start = (start - settings.lower) / (settings.upper - settings.lower)
    start.flags.writeable = False
    search = secrets.token_hex(8)
    sizes = settings.population_sizes or tuple(
        _default_popsize(dim) * (1 + i % 2) for i in range(settings.islands)
    )
    if settings.islands > 1 and settings.migrants > 0:
        _require(
            settings.migrants < min(sizes),
            f"migrants={settings.migrants} but the smallest island population is {min(sizes)}: "
            "migrants take the place of sampled candidates, so every island needs more "
            "candidates than migrants; lower migrants or raise population_sizes",
        )
    islands = [
        _Island(
            search=search,
            index=i,
            seed=settings.seed,
            popsize=sizes[i],
            sigma0=settings.sigma0,
            x0=start,
            lower=settings.lower,
            upper=settings.upper,
            restarts=settings.restarts,
            max_restarts=settings.max_restarts,
        )
        for i in range(settings.islands)
    ]
    for island in islands:
        quota = _evaluation_quota(island, settings)
        _require(
            quota is None or quota >= island.popsize,
            f"max_evaluations={settings.max_evaluations} gives island {island.index} {quota} "
            f"evaluations, fewer than its population of {island.popsize}: raise "
            "max_evaluations or use fewer islands",
        )
    return islands


@dataclass(frozen=True)
class _Tally:
    generations: int = 0
    evaluations: int = 0
    popsize: int = 0  # of the island's current run; 0 before its first start
    done: bool = False


def _tally(log: list[Event]) -> _Tally:
    generations = evaluations = popsize = 0
    done = False
    for event in log:
        if event["kind"] == "start":
            popsize = event["popsize"]
        elif event["kind"] == "generation":
            generations += 1
            evaluations += len(event["f"])
        elif event["kind"] == "done":
            done = True
    return _Tally(generations, evaluations, popsize, done)


def _evaluation_quota(island: _Island, settings: IslandSettings) -> int | None:
    """An equal share per island, fixed up front, so no island waits on another's count."""
    if settings.max_evaluations is None:
        return None
    share, rest = divmod(settings.max_evaluations, settings.islands)
    return share + (island.index < rest)


def _evaluations_left(island: _Island, log: list[Event], settings: IslandSettings) -> int | None:
    quota = _evaluation_quota(island, settings)
    return None if quota is None else quota - _tally(log).evaluations


def _status(island: _Island, log: list[Event], settings: IslandSettings) -> str:
    tally = _tally(log)
    if tally.done:
        return "converged"
    if tally.generations >= settings.max_generations:
        return "generations"
    left = _evaluations_left(island, log, settings)
    if left is not None and left < (tally.popsize or island.popsize):
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
    generations = [e for e in sender if e["kind"] == "generation" and e["epoch"] == epoch - 1]
    if not generations:
        return None
    X = np.concatenate([e["X"] for e in generations])
    f = np.concatenate([e["f"] for e in generations])
    return X[np.argsort(f, kind="stable")[: settings.migrants]]


@contextmanager
def _task_runner(islands: int) -> Iterator[Callable[[list[Callable[[], Any]]], list[Any]]]:
    """Runs a list of calls and returns their results in order.

    With a budget of one thread a pool could only run the islands one after another, so
    they run in this process instead of paying for a spawned worker.
    """
    if nested_workers(1, islands) == 1:
        yield lambda calls: [call() for call in calls]
        return
    with budgeted_process_pool(threads_per_task=1, tasks=islands) as pool:
        yield lambda calls: [future.result() for future in [pool.submit(c) for c in calls]]


# ---------------------------------------------------------------- one island (in a worker)


class _IslandRun:
    """One island's live CMA-ES, driven identically by the replay and by new generations."""

    def __init__(self, island: _Island):
        self.island = island
        self.es: cma.CMAEvolutionStrategy | None = None
        self.restart = -1
        self.runs: list[list] = []  # [regime, evaluations] per start, for BIPOP's budgets
        self.stopped: dict = {}
        self.done = False

    def start(self, event: Event) -> None:
        self.restart = event["restart"]
        _, samples = _seed_sequences(self.island, self.restart)
        rng = np.random.default_rng(samples)
        options = {
            "popsize": event["popsize"],
            # cma's own `seed` reseeds numpy's global generator, which the objective may
            # also draw from while a replay would not: each run gets a private stream.
            "seed": np.nan,
            "randn": lambda *shape: rng.standard_normal(shape),
            "bounds": [0, 1] if self.island.lower is not None else [None, None],
            # The island's budgets are ours; cma's own would end runs as if converged.
            "maxiter": np.inf,
            "maxfevals": np.inf,
            "verbose": -9,
        }
        self.es = cma.CMAEvolutionStrategy(event["mean"], event["sigma"], options)
        self.runs.append([event["regime"], 0])
        self.stopped = {}

    def inject(self, X: np.ndarray) -> None:
        # force: the migrants themselves are evaluated, not a step towards them. `inject`
        # takes genotypes; near a bound the phenotype differs, hence the inverse first.
        inverse = self.es.boundary_handler.inverse
        self.es.inject([self.es.gp.geno(x, from_bounds=inverse) for x in X], force=True)

    def tell(self, X: np.ndarray, f: np.ndarray) -> None:
        # Copies: cma may repair the solutions it is told in place, and X is also the log.
        self.es.tell(list(X.copy()), f.tolist())
        self.runs[-1][1] += len(f)
        # Also called while replaying, in case the stop tests touch the ES's state.
        self.stopped = dict(self.es.stop())


def _seed_sequences(island: _Island, restart: int) -> list[np.random.SeedSequence]:
    """Independent streams for a run's start parameters and for its CMA-ES samples."""
    return np.random.SeedSequence([island.seed, island.index, restart]).spawn(2)


def _start_event(island: _Island, run: _IslandRun) -> Event:
    """The island's first run, or its next restart per the policy (a "done" event if none)."""
    restart = run.restart + 1
    after = sorted(run.stopped)
    if restart > 0 and (island.restarts == "none" or restart > island.max_restarts):
        return {"kind": "done", "after": after}
    params, _ = _seed_sequences(island, restart)
    rng = np.random.default_rng(params)
    if restart == 0 and island.index == 0:
        mean = island.x0.copy()
    elif island.lower is not None:
        mean = rng.uniform(0.0, 1.0, island.dim)
    else:
        mean = island.x0 + island.sigma0 * rng.standard_normal(island.dim)
    regime, popsize, sigma = "initial", island.popsize, island.sigma0
    large_runs = sum(kind == "large" for kind, _ in run.runs)
    if restart > 0 and island.restarts == "ipop":
        regime, popsize = "large", island.popsize * 2**restart
    elif restart > 0:
        # BIPOP as cma.fmin does it: the initial run counts as small; a small run comes
        # whenever small runs have used fewer evaluations than large ones.
        small_evaluations = sum(n for kind, n in run.runs if kind != "large")
        large_evaluations = sum(n for kind, n in run.runs if kind == "large")
        if small_evaluations < large_evaluations:
            u = rng.uniform()
            regime = "small"
            popsize = int(island.popsize * (2**large_runs) ** (u**2))
            sigma = island.sigma0 * 0.01**u
        else:
            regime, popsize = "large", island.popsize * 2 ** (large_runs + 1)
    return {
        "kind": "start",
        "restart": restart,
        "regime": regime,
        "popsize": popsize,
        "sigma": sigma,
        "mean": mean,
        "after": after,
    }


def _replay(run: _IslandRun, log: list[Event], consumed: int) -> None:
    """Bring `run`, which has seen `log[:consumed]`, up to the whole log, evaluating nothing.

    A restart builds a new CMA-ES from its start event and its own random stream, so runs
    before the last start only count their evaluations (for BIPOP); only the current run
    is replayed.
    """
    current = max((k for k, event in enumerate(log) if event["kind"] == "start"), default=0)
    generation = sum(event["kind"] == "generation" for event in log[:consumed])
    for k in range(consumed, len(log)):
        event = log[k]
        kind = event["kind"]
        generation += kind == "generation"
        if k < current:
            if kind == "start":
                run.runs.append([event["regime"], 0])
            elif kind == "generation":
                run.runs[-1][1] += len(event["f"])
        elif kind == "start":
            run.start(event)
        elif kind == "inject":
            run.inject(event["X"])
        elif kind == "generation":
            asked = np.array(run.es.ask(), dtype=float)
            if asked.shape != event["X"].shape or not np.allclose(
                asked, event["X"], rtol=REPLAY_RTOL, atol=REPLAY_ATOL
            ):
                raise ReplayMismatchError(
                    f"island {run.island.index}, generation {generation}: replaying the log "
                    "asked other solutions than the log holds, so it was not written by this "
                    "search (edited together with its hash, or another machine's arithmetic)"
                )
            run.tell(event["X"], event["f"])
        elif kind == "done":
            run.done = True


def _evaluate(objective: Objective, island: _Island, X: np.ndarray) -> np.ndarray:
    values = np.asarray(objective(island.to_objective_space(X)), dtype=float)
    if values.shape != (len(X),):
        raise ValueError(
            f"objective returned shape {values.shape} for {len(X)} candidates: it must return "
            f"one fitness per row of X, shape ({len(X)},)"
        )
    return np.where(np.isfinite(values), values, NONFINITE_FITNESS)


# The live runs this process advanced, by (search, island) with the log entries each has
# seen. Replaying a whole log every epoch costs time quadratic in the generations; a
# process that advanced an island before replays only the entries since. Its run then is
# in exactly the state a full replay would build (the same calls on the same data), so
# results do not depend on which process ran which island before.
_LIVE_RUNS: dict[tuple[str, int], tuple[int, _IslandRun]] = {}


def _advance_island(
    objective: Objective,
    island: _Island,
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
    consumed, run = _LIVE_RUNS.pop(key, (0, _IslandRun(island)))
    _replay(run, log, consumed)
    events: list[Event] = []
    if run.es is None:
        events.append(_start_event(island, run))
        run.start(events[-1])
    generations = spent = 0
    while generations < min(interval, generations_left) and not run.done:
        if evaluations_left is not None and spent + run.es.popsize > evaluations_left:
            break
        if migrants is not None:
            run.inject(migrants)
            events.append({"kind": "inject", "epoch": epoch, "X": migrants})
            migrants = None
        X = np.array(run.es.ask(), dtype=float)
        f = _evaluate(objective, island, X)
        run.tell(X, f)
        events.append({"kind": "generation", "epoch": epoch, "X": X, "f": f})
        generations += 1
        spent += len(f)
        if run.stopped:
            events.append(_start_event(island, run))
            if events[-1]["kind"] == "done":
                run.done = True
            else:
                run.start(events[-1])
    _LIVE_RUNS[key] = (len(log) + len(events), run)
    return events


# ------------------------------------------------------------------------- result


def _summarize(
    islands: list[_Island],
    logs: list[list[Event]],
    stopped_by: str,
    checkpoint: CheckpointReport | None,
) -> SearchResult:
    rows = []  # (generation, island, history entry, best x of the generation)
    for island, log in zip(islands, logs, strict=True):
        generation = evaluations = restart = popsize = injected = 0
        best_so_far = math.inf
        for event in log:
            if event["kind"] == "start":
                restart, popsize = event["restart"], event["popsize"]
            elif event["kind"] == "inject":
                injected = len(event["X"])
            elif event["kind"] == "generation":
                generation += 1
                evaluations += len(event["f"])
                k = int(np.argmin(event["f"]))
                best_so_far = min(best_so_far, float(event["f"][k]))
                entry = {
                    "island": island.index,
                    "generation": generation,
                    "restart": restart,
                    "popsize": popsize,
                    "best_f": float(event["f"][k]),
                    "best_so_far": best_so_far,
                    "evaluations": evaluations,
                    "injected": injected,
                }
                rows.append((generation, island.index, entry, event["X"][k]))
                injected = 0
    rows.sort(key=lambda row: (row[0], row[1]))
    best = min(rows, key=lambda row: row[2]["best_f"])  # first of equals, in history order
    evaluated = [
        (island.to_objective_space(event["X"]), event["f"])
        for island, log in zip(islands, logs, strict=True)
        for event in log
        if event["kind"] == "generation"
    ]
    tallies = [_tally(log) for log in logs]
    return SearchResult(
        best_x=islands[best[1]].to_objective_space(best[3][None, :])[0],
        best_f=best[2]["best_f"],
        best_island=best[1],
        history=[row[2] for row in rows],
        evaluations=sum(t.evaluations for t in tallies),
        generations=max(t.generations for t in tallies),
        restarts={
            island.index: max((e["restart"] for e in log if e["kind"] == "start"), default=0)
            for island, log in zip(islands, logs, strict=True)
        },
        stopped_by=stopped_by,
        evaluated_x=np.concatenate([x for x, _ in evaluated]),
        evaluated_f=np.concatenate([f for _, f in evaluated]).astype(np.float64),
        checkpoint=checkpoint,
    )


# --------------------------------------------------------------------- checkpoint


def _fingerprint(objective: Objective, islands: list[_Island], settings: IslandSettings) -> dict:
    """What makes a log replayable; budgets are left out so a search can be extended."""
    function = objective.func if isinstance(objective, functools.partial) else objective
    first = islands[0]
    fingerprint = {
        "format": CHECKPOINT_FORMAT,
        "cma": cma.__version__,
        "objective": f"{function.__module__}.{getattr(function, '__qualname__', function)}",
        "dim": first.dim,
        "islands": settings.islands,
        "population_sizes": [island.popsize for island in islands],
        "seed": settings.seed,
        "sigma0": settings.sigma0,
        "lower": None if first.lower is None else first.lower.tolist(),
        "upper": None if first.upper is None else first.upper.tolist(),
        "x0": first.x0.tolist(),
        "migration_interval": settings.migration_interval,
        "migrants": settings.migrants,
        "restarts": settings.restarts,
        "max_restarts": settings.max_restarts,
    }
    return json.loads(json.dumps(fingerprint))


def _encode(event: Event) -> dict:
    # float repr round-trips exactly, so a decoded log replays bit for bit.
    return {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in event.items()}


def _decode_epoch(payload: Any, islands: list[_Island]) -> tuple[float, list[list[Event]]]:
    """(elapsed_s, each island's events) of one epoch file; ValueError names what is wrong."""
    if not isinstance(payload, dict) or set(payload) != {"elapsed_s", "islands"}:
        raise ValueError("expected an object with the keys elapsed_s and islands")
    elapsed, logs = payload["elapsed_s"], payload["islands"]
    if not isinstance(elapsed, int | float) or not math.isfinite(elapsed) or elapsed < 0:
        raise ValueError(f"elapsed_s={elapsed!r} is not a number of seconds")
    if not (
        isinstance(logs, list)
        and len(logs) == len(islands)
        and all(isinstance(log, list) for log in logs)
    ):
        raise ValueError(f"expected a list of {len(islands)} island logs")
    return float(elapsed), [
        [_decode(event, island) for event in log] for log, island in zip(logs, islands, strict=True)
    ]


# The keys each kind of logged event has, as `_start_event` and `_advance_island` write them.
EVENT_KEYS = {
    "start": {"kind", "restart", "regime", "popsize", "sigma", "mean", "after"},
    "inject": {"kind", "epoch", "X"},
    "generation": {"kind", "epoch", "X", "f"},
    "done": {"kind", "after"},
}


def _decode(event: Any, island: _Island) -> Event:
    """One logged event, its arrays as arrays of the island's dimension."""
    kind = event.get("kind") if isinstance(event, dict) else None
    if kind not in EVENT_KEYS or set(event) != EVENT_KEYS[kind]:
        raise ValueError(f"island {island.index}: {str(event)[:80]} is not a logged event")
    try:
        decoded = {
            k: np.asarray(v, dtype=float) if k in ("X", "f", "mean") else v
            for k, v in event.items()
        }
    except (TypeError, ValueError) as error:
        raise ValueError(f"island {island.index}: a {kind} event's arrays: {error}") from None
    rows = decoded.get("X", np.zeros((0, island.dim)))
    if "mean" in decoded:  # a start's mean is one point
        rows = decoded["mean"][None] if decoded["mean"].ndim == 1 else decoded["mean"]
    if (
        rows.ndim != 2
        or rows.shape[1] != island.dim
        or ("f" in decoded and decoded["f"].shape != (len(rows),))
    ):
        raise ValueError(
            f"island {island.index}: a {kind} event with arrays of the wrong shape for "
            f"dim={island.dim}"
        )
    return decoded
