"""How an island search runs, checked up front, and the islands it plans for a dimension.

Every setting is checked where it is made, so a bad one fails before a worker pool
starts; the checks that need the dimension or the start point (bounds per dimension, a
start inside them, enough candidates per island for the migrants and the evaluation
budget) run in `plan_islands`. An `Island` is one island's share of the settings: plain
data, since a task in a spawned worker carries data, never a live CMA-ES.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass

import numpy as np

RESTART_POLICIES = ("ipop", "bipop", "none")


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
class Island:
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


def plan_islands(dim: int, settings: IslandSettings, x0: np.ndarray | None) -> list[Island]:
    """The islands of one search of `dim` dimensions starting at `x0`.

    Each call draws a fresh search token, so the live runs two searches leave in one
    process's cache (`replay`) never meet.
    """
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
        Island(
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
        quota = evaluation_quota(island, settings)
        _require(
            quota is None or quota >= island.popsize,
            f"max_evaluations={settings.max_evaluations} gives island {island.index} {quota} "
            f"evaluations, fewer than its population of {island.popsize}: raise "
            "max_evaluations or use fewer islands",
        )
    return islands


def evaluation_quota(island: Island, settings: IslandSettings) -> int | None:
    """An equal share per island, fixed up front, so no island waits on another's count."""
    if settings.max_evaluations is None:
        return None
    share, rest = divmod(settings.max_evaluations, settings.islands)
    return share + (island.index < rest)


def _default_popsize(dim: int) -> int:
    """cma's default population, 4 + floor(3 ln dim)."""
    return 4 + int(3 * math.log(dim))


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)
