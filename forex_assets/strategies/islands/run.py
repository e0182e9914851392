"""One island's live CMA-ES: how each of its runs starts (the restart policy), and the
calls that advance it, made alike by new generations and by a replay of its log.

The replay (`replay`) rebuilds an island from its log only if every call that changes the
ES is made the same way, from the same data, in both cases; `IslandRun` is that one way.
Each run samples from its own seeded stream, never numpy's global generator, which the
objective may also draw from while a replay would not.
"""

from __future__ import annotations

from collections.abc import Callable

import cma
import numpy as np

from forex_assets.strategies.islands.events import Done, Start
from forex_assets.strategies.islands.settings import Island

Objective = Callable[[np.ndarray], np.ndarray]

# CMA-ES only ranks candidates, but its termination tests read the values: a large finite
# number keeps NaN/inf candidates last without turning the fitness history into NaN.
NONFINITE_FITNESS = 1e300


class IslandRun:
    """One island's live CMA-ES, driven identically by the replay and by new generations."""

    def __init__(self, island: Island):
        self.island = island
        self.es: cma.CMAEvolutionStrategy | None = None
        self.restart = -1
        self.runs: list[list] = []  # [regime, evaluations] per start, for BIPOP's budgets
        self.stopped: dict = {}
        self.done = False

    def start(self, event: Start) -> None:
        self.restart = event.restart
        _, samples = _seed_sequences(self.island, self.restart)
        rng = np.random.default_rng(samples)
        options = {
            "popsize": event.popsize,
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
        self.es = cma.CMAEvolutionStrategy(event.mean, event.sigma, options)
        self.runs.append([event.regime, 0])
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


def next_start(island: Island, run: IslandRun) -> Start | Done:
    """The island's first run, or its next restart per the policy (`Done` if none is left)."""
    restart = run.restart + 1
    after = tuple(sorted(run.stopped))
    if restart > 0 and (island.restarts == "none" or restart > island.max_restarts):
        return Done(after)
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
    return Start(restart, regime, popsize, sigma, mean, after)


def evaluate(objective: Objective, island: Island, X: np.ndarray) -> np.ndarray:
    """The objective's fitness of the search-space solutions `X`, NaN/inf replaced."""
    values = np.asarray(objective(island.to_objective_space(X)), dtype=float)
    if values.shape != (len(X),):
        raise ValueError(
            f"objective returned shape {values.shape} for {len(X)} candidates: it must return "
            f"one fitness per row of X, shape ({len(X)},)"
        )
    return np.where(np.isfinite(values), values, NONFINITE_FITNESS)


def _seed_sequences(island: Island, restart: int) -> list[np.random.SeedSequence]:
    """Independent streams for a run's start parameters and for its CMA-ES samples."""
    return np.random.SeedSequence([island.seed, island.index, restart]).spawn(2)
