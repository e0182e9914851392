"""Island settings: bad settings refused where they are made, and the islands they plan."""

from __future__ import annotations

import numpy as np
import pytest

from forex_assets.strategies.islands.settings import IslandSettings, plan_islands


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"islands": 0}, "islands=0: pass at least one island"),
        ({"islands": 2, "population_sizes": (8,)}, "one population size per island"),
        ({"population_sizes": (8, 8, 2, 8)}, "at least 3 candidates"),
        ({"lower": np.zeros(3)}, "only one of lower and upper"),
        ({"lower": np.zeros(3), "upper": np.ones(2)}, r"lower has shape \(3,\) and upper \(2,\)"),
        ({"lower": np.zeros((2, 2)), "upper": np.ones((2, 2))}, "two 1-D arrays"),
        ({"lower": [0.0, 1.0], "upper": [1.0, 1.0]}, r"lower >= upper in dimensions \[1\]"),
        ({"lower": [0.0, np.nan], "upper": [1.0, 1.0]}, "NaN or inf"),
        ({"restarts": "lipop"}, "'lipop' is not a restart policy"),
        ({"sigma0": 0.0}, "sigma0=0.0"),
        ({"migration_interval": 0}, "migration_interval=0"),
        ({"migrants": -1}, "migrants=-1"),
        ({"max_generations": 0}, "max_generations=0"),
        ({"max_evaluations": 0}, "max_evaluations=0"),
        ({"time_budget_s": 0.0}, "time_budget_s=0.0"),
        ({"max_restarts": -1}, "max_restarts=-1"),
        ({"seed": -1}, "seed=-1"),
    ],
)
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        IslandSettings(**settings)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ({"dim": 0}, "dim=0"),
        ({"settings": IslandSettings(lower=np.zeros(3), upper=np.ones(3))}, "3 entries for dim=2"),
        ({"x0": np.zeros(3)}, r"x0 has shape \(3,\)"),
        (
            {"settings": IslandSettings(lower=np.zeros(2), upper=np.ones(2)), "x0": [0.5, 2.0]},
            r"outside the bounds in dimensions \[1\]",
        ),
        (
            {"settings": IslandSettings(migrants=6)},
            "migrants=6 but the smallest island population is 6",
        ),
        (
            {"settings": IslandSettings(islands=2, max_evaluations=17)},
            "gives island 1 8 evaluations, fewer than its population of 12",
        ),
    ],
)
def test_settings_that_do_not_fit_the_dimension_are_refused(call, message):
    arguments = {"dim": 2, "settings": IslandSettings(), "x0": None, **call}
    with pytest.raises(ValueError, match=message):
        plan_islands(**arguments)


def test_planned_islands_start_in_the_unit_cube_with_alternating_populations():
    settings = IslandSettings(islands=3, lower=np.full(5, -2.0), upper=np.full(5, 2.0))
    islands = plan_islands(5, settings, np.array([1.0, -2.0, 0.0, 2.0, 0.5]))
    assert [island.popsize for island in islands] == [8, 16, 8]  # 4 + floor(3 ln 5) = 8
    np.testing.assert_array_equal(islands[0].x0, [0.75, 0.0, 0.5, 1.0, 0.625])
    np.testing.assert_array_equal(islands[0].to_objective_space(islands[0].x0), [1, -2, 0, 2, 0.5])
    # One token per search: the processes' caches of live runs never mix two searches.
    assert len({island.search for island in islands}) == 1
    assert plan_islands(5, settings, None)[0].search != islands[0].search
