"""`island_search`: optima found, migration, restarts, budgets, exact resume, determinism.

Searches with several islands run their epochs in a spawned pool of two workers (each
pool start costs seconds, so one search serves several tests); single-island searches run
in-process. Objectives are module-level functions so the spawned workers can import them.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from forex_assets.compute.thread_budget import STEP_THREADS_ENV
from forex_assets.strategies.islands.events import (
    Done,
    Event,
    Generation,
    Inject,
    Start,
    decode_event,
)
from forex_assets.strategies.islands.result import SearchResult
from forex_assets.strategies.islands.run import NONFINITE_FITNESS
from forex_assets.strategies.islands.search import island_search
from forex_assets.strategies.islands.settings import IslandSettings

SPHERE_CENTER = (0.7, -1.2, 0.4, 1.5, -0.3)  # inside the box, away from its centre
SPHERE_SETTINGS = IslandSettings(
    islands=3,
    lower=np.full(5, -2.0),
    upper=np.full(5, 2.0),
    migration_interval=10,
    max_generations=60,
)


def shifted_sphere(X: np.ndarray, center: tuple[float, ...] = SPHERE_CENTER) -> np.ndarray:
    return np.sum((X - np.asarray(center)) ** 2, axis=1)


def sphere(X: np.ndarray) -> np.ndarray:
    return np.sum((X - 0.3) ** 2, axis=1)


def counted_sphere(X: np.ndarray, calls: str) -> np.ndarray:
    """The sphere, appending one line per evaluated generation to `calls` (any process)."""
    with open(calls, "a", encoding="utf-8") as handle:
        handle.write(f"{len(X)}\n")
    return shifted_sphere(X)


def rastrigin(X: np.ndarray) -> np.ndarray:
    """Rastrigin shifted to 0.5 per dimension: a grid of local minima, global minimum 0."""
    Z = X - 0.5
    return 10 * X.shape[1] + np.sum(Z**2 - 10 * np.cos(2 * np.pi * Z), axis=1)


def plateau(X: np.ndarray) -> np.ndarray:
    """Flat over most of the unit square, so CMA-ES soon stops on flat fitness."""
    return np.floor(4 * np.sum((X - 0.3) ** 2, axis=1))


def nan_beyond_half(X: np.ndarray) -> np.ndarray:
    """A sphere at 0.3 that cannot be evaluated (NaN/inf) where x0 > 0.5."""
    values = sphere(X)
    values[X[:, 0] > 0.5] = np.nan
    values[X[:, 0] > 0.8] = np.inf
    return values


def scalar_sum(X: np.ndarray) -> float:
    return float(X.sum())


@pytest.fixture(autouse=True)
def small_pools(monkeypatch):
    monkeypatch.setenv(STEP_THREADS_ENV, "2")


@pytest.fixture(scope="module")
def sphere_search(tmp_path_factory) -> tuple[SearchResult, Path, Path]:
    """One uninterrupted three-island search, its checkpoint and its file of evaluations."""
    directory = tmp_path_factory.mktemp("sphere")
    calls = directory / "calls.txt"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(STEP_THREADS_ENV, "2")
        result = island_search(
            functools.partial(counted_sphere, calls=str(calls)),
            5,
            SPHERE_SETTINGS,
            checkpoint_root=directory / "checkpoint",
        )
    return result, result.checkpoint.directory, calls


def logged_events(checkpoint: Path, dim: int) -> list[list[Event]]:
    """Each island's whole log, read from the epoch files of one search's directory."""
    logs: list[list[Event]] = []
    for path in sorted(checkpoint.glob("epoch_*.json")):
        islands = json.loads(path.read_text())["payload"]["islands"]
        logs = logs or [[] for _ in islands]
        for index, (log, events) in enumerate(zip(logs, islands, strict=True)):
            log.extend(decode_event(event, dim, index) for event in events)
    return logs


def assert_same_result(a: SearchResult, b: SearchResult) -> None:
    assert np.array_equal(a.best_x, b.best_x)
    assert a.best_f == b.best_f
    assert a.best_island == b.best_island
    assert a.history == b.history
    assert (a.evaluations, a.generations, a.restarts) == (b.evaluations, b.generations, b.restarts)


# ------------------------------------------------------------------------ optima


def test_sphere_optimum_found_inside_the_bounds(sphere_search):
    result, checkpoint, _ = sphere_search
    assert result.best_f < 1e-6
    np.testing.assert_allclose(result.best_x, SPHERE_CENTER, atol=1e-3)
    assert result.stopped_by == "generations"
    assert result.generations == 60
    assert len(result.history) == 3 * 60
    assert result.evaluations == sum(
        max(h.evaluations for h in result.history if h.island == i) for i in range(3)
    )
    for log in logged_events(checkpoint, 5):  # every candidate asked lies in the unit cube
        X = np.concatenate([e.X for e in log if isinstance(e, Generation)])
        assert X.min() >= 0.0 and X.max() <= 1.0


def test_archive_holds_the_best_distinct_points_evaluated(sphere_search):
    result, _, _ = sphere_search
    assert len(result.evaluated_f) == result.evaluations
    points, values = result.archive(5)
    assert points.shape == (5, 5)
    assert values[0] == result.best_f and np.all(np.diff(values) >= 0)
    np.testing.assert_allclose(points[0], result.best_x, atol=1e-9)
    assert len({row.tobytes() for row in np.round(points, 9)}) == 5


def test_bounds_hold_when_the_optimum_lies_outside_the_box():
    settings = IslandSettings(
        islands=1, lower=np.zeros(2), upper=np.ones(2), max_generations=80, restarts="none"
    )
    result = island_search(functools.partial(shifted_sphere, center=(1.5, 0.4)), 2, settings)
    np.testing.assert_allclose(result.best_x, [1.0, 0.4], atol=1e-3)
    assert np.all(result.best_x <= 1.0)
    assert result.best_f == pytest.approx(0.25, abs=1e-3)


def test_rastrigin_solved_and_identical_whatever_runs_the_islands(monkeypatch):
    settings = IslandSettings(
        islands=3,
        population_sizes=(30, 60, 30),  # Rastrigin needs large populations to see its bowl
        lower=np.full(3, -5.12),
        upper=np.full(3, 5.12),
        migration_interval=20,
        max_generations=120,
    )
    pooled = island_search(rastrigin, 3, settings)  # three islands on two workers
    assert pooled.best_f < 1e-6
    np.testing.assert_allclose(pooled.best_x, 0.5, atol=1e-3)
    monkeypatch.setenv(STEP_THREADS_ENV, "1")  # one thread: the islands run in this process
    assert_same_result(island_search(rastrigin, 3, settings), pooled)


def test_nonfinite_fitness_ranks_last():
    settings = IslandSettings(islands=1, lower=np.zeros(2), upper=np.ones(2), max_generations=60)
    result = island_search(nan_beyond_half, 2, settings)
    assert result.best_f < 1e-8
    np.testing.assert_allclose(result.best_x, 0.3, atol=1e-3)
    assert all(np.isfinite(h.best_f) for h in result.history)
    assert max(h.best_f for h in result.history) <= NONFINITE_FITNESS


# --------------------------------------------------------------------- migration


def test_migrants_are_injected_into_the_next_island_and_evaluated(sphere_search):
    result, checkpoint, _ = sphere_search
    logs = logged_events(checkpoint, 5)
    best_so_far = {(h.island, h.generation): h.best_so_far for h in result.history}
    for receiver, log in enumerate(logs):
        sender = logs[(receiver - 1) % 3]
        injections = [(k, e) for k, e in enumerate(log) if isinstance(e, Inject)]
        assert [e.epoch for _, e in injections] == [1, 2, 3, 4, 5]
        for k, injection in injections:
            sent = [e for e in sender if isinstance(e, Generation)]
            sent = [e for e in sent if e.epoch == injection.epoch - 1]
            X = np.concatenate([e.X for e in sent])
            f = np.concatenate([e.f for e in sent])
            best = np.argsort(f, kind="stable")[:2]
            np.testing.assert_array_equal(injection.X, X[best])
            evaluated = log[k + 1]  # the receiver's next generation tries the migrants first
            assert isinstance(evaluated, Generation)
            np.testing.assert_allclose(evaluated.X[:2], X[best], rtol=0, atol=1e-12)
            generation = sum(isinstance(e, Generation) for e in log[: k + 2])
            assert best_so_far[(receiver, generation)] <= f[best[0]] + 1e-12
    injected = [h for h in result.history if h.injected]
    assert len(injected) == 3 * 5 and all(h.injected == 2 for h in injected)
    assert {h.generation for h in injected} == {11, 21, 31, 41, 51}


# ----------------------------------------------------------- checkpoint and resume


def test_resumed_search_equals_the_uninterrupted_one(sphere_search, tmp_path):
    uninterrupted, _, uninterrupted_calls = sphere_search
    checkpoint, calls = tmp_path / "checkpoint", tmp_path / "calls.txt"
    objective = functools.partial(counted_sphere, calls=str(calls))

    killed = island_search(
        objective, 5, SPHERE_SETTINGS, checkpoint_root=checkpoint, stop_after_epochs=2
    )
    assert killed.stopped_by == "epochs"
    assert killed.generations == 20
    assert sorted(p.name for p in killed.checkpoint.directory.glob("epoch_*.json")) == [
        "epoch_00000.json",
        "epoch_00001.json",
    ]
    resumed = island_search(objective, 5, SPHERE_SETTINGS, checkpoint_root=checkpoint)

    assert resumed.checkpoint.directory == killed.checkpoint.directory
    assert resumed.checkpoint.resumed_epochs == 2
    assert_same_result(resumed, uninterrupted)
    assert resumed.stopped_by == uninterrupted.stopped_by == "generations"
    # The replay evaluated nothing: both calls together evaluated what one run did.
    evaluated = Counter(calls.read_text().split())
    assert evaluated == Counter(uninterrupted_calls.read_text().split())
    # A finished search resumes to the same result without evaluating anything more.
    assert_same_result(
        island_search(objective, 5, SPHERE_SETTINGS, checkpoint_root=checkpoint), uninterrupted
    )
    assert Counter(calls.read_text().split()) == evaluated


def test_resume_across_restarts_equals_the_uninterrupted_search(monkeypatch, tmp_path):
    """Restarts in the killed part: the resumed islands replay only their current runs."""
    monkeypatch.setenv(STEP_THREADS_ENV, "1")
    settings = IslandSettings(
        islands=2, lower=np.zeros(2), upper=np.ones(2), migration_interval=4, max_generations=40
    )
    uninterrupted = island_search(plateau, 2, settings)
    assert uninterrupted.restarts[0] >= 2 and uninterrupted.restarts[1] >= 2
    killed = island_search(plateau, 2, settings, checkpoint_root=tmp_path, stop_after_epochs=3)
    assert killed.restarts[0] >= 1
    resumed = island_search(plateau, 2, settings, checkpoint_root=tmp_path)
    assert_same_result(resumed, uninterrupted)
    assert resumed.stopped_by == uninterrupted.stopped_by


# ----------------------------------------------------------------------- restarts


def test_ipop_doubles_the_population_at_each_restart(tmp_path):
    settings = IslandSettings(
        islands=1, lower=np.zeros(2), upper=np.ones(2), restarts="ipop", max_restarts=3
    )
    result = island_search(plateau, 2, settings, checkpoint_root=tmp_path)
    assert result.stopped_by == "converged"
    assert result.restarts == {0: 3}
    popsizes = {h.restart: h.popsize for h in result.history}
    assert popsizes == {0: 6, 1: 12, 2: 24, 3: 48}
    logs = logged_events(result.checkpoint.directory, 2)
    ends = [e for e in logs[0] if isinstance(e, Start | Done)]
    assert isinstance(ends[-1], Done)
    assert all(e.after for e in ends[1:])  # each run ended on a stop condition


def test_bipop_interleaves_large_and_small_local_runs(tmp_path):
    settings = IslandSettings(
        islands=1, lower=np.zeros(2), upper=np.ones(2), restarts="bipop", max_restarts=6
    )
    result = island_search(plateau, 2, settings, checkpoint_root=tmp_path)
    assert result.restarts == {0: 6}
    starts = [e for e in logged_events(result.checkpoint.directory, 2)[0] if isinstance(e, Start)]
    assert [e.regime for e in starts[:2]] == ["initial", "large"]
    large = [e for e in starts if e.regime == "large"]
    small = [e for e in starts if e.regime == "small"]
    assert [e.popsize for e in large] == [6 * 2 ** (k + 1) for k in range(len(large))]
    assert all(e.sigma == 0.3 for e in large)
    assert small, "no small-population run between the large ones"
    for event in small:
        large_before = sum(e.regime == "large" for e in starts[: event.restart])
        assert 6 <= event.popsize <= 6 * 2**large_before
        assert 0.003 <= event.sigma <= 0.3


def test_no_restart_policy_ends_the_island_when_its_run_stops():
    settings = IslandSettings(islands=1, lower=np.zeros(2), upper=np.ones(2), restarts="none")
    result = island_search(plateau, 2, settings)
    assert result.stopped_by == "converged"
    assert result.restarts == {0: 0}
    assert result.generations < settings.max_generations


# ------------------------------------------------------------------------ budgets


def test_max_evaluations_stops_within_the_budget(monkeypatch):
    monkeypatch.setenv(STEP_THREADS_ENV, "1")
    settings = IslandSettings(islands=2, max_evaluations=401, max_generations=1000)
    result = island_search(sphere, 5, settings, x0=np.zeros(5))  # unbounded
    assert result.stopped_by == "evaluations"
    # Island 0 may use 201, island 1 200; each stops with less than a generation left.
    assert 401 - (8 + 16) < result.evaluations <= 401
    assert [h.evaluations for h in result.history if h.island == 0][-1] == 200
    assert [h.evaluations for h in result.history if h.island == 1][-1] == 192
    assert any(h.injected for h in result.history)  # migration without bounds too


def test_time_budget_stops_at_the_next_migration():
    settings = IslandSettings(islands=1, time_budget_s=1e-6, max_generations=1000)
    result = island_search(sphere, 5, settings)
    assert result.stopped_by == "time"
    assert result.generations == settings.migration_interval


# ------------------------------------------------------------------ bad arguments


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ({"objective": lambda X: X.sum(axis=1)}, "cannot be sent to the island worker processes"),
        ({"stop_after_epochs": 0}, "stop_after_epochs=0"),
        ({"dim": 0}, "dim=0"),  # the settings' checks against the dimension run first
    ],
)
def test_bad_search_arguments_are_refused(call, message):
    arguments = {"objective": sphere, "dim": 2, "settings": IslandSettings(), **call}
    with pytest.raises(ValueError, match=message):
        island_search(**arguments)


def test_objective_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match=r"objective returned shape \(\) for 6 candidates"):
        island_search(scalar_sum, 2, IslandSettings(islands=1))


def half_undefined(X: np.ndarray) -> np.ndarray:
    """NaN on half the box: failed evaluations an archive must never offer."""
    values = np.sum((X - 0.25) ** 2, axis=1)
    return np.where(X[:, 0] > 0.5, np.nan, values)


def test_archive_never_holds_failed_evaluations():
    settings = IslandSettings(
        islands=1, lower=np.zeros(2), upper=np.ones(2), max_generations=10, restarts="none"
    )
    result = island_search(half_undefined, 2, settings)
    assert (result.evaluated_f >= NONFINITE_FITNESS).any()  # some evaluations failed
    points, values = result.archive(len(result.evaluated_f))
    assert np.all(values < NONFINITE_FITNESS) and np.all(points[:, 0] <= 0.5)
