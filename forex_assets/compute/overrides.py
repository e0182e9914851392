"""Environment variables that override the plan, including the old bot's `.env` names.

Existing users' `.env` files keep working: each variable maps onto one plan setting. A
value that is not a whole number, or is zero or negative, is ignored; one larger than
the usable cores is clamped. Either way the run says which variable, what it held, and
the value used instead: a typo in `.env` never crashes a run and never buys more threads
than the machine has.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from forex_assets.compute.plan import PlanSettings, ResourcePlan

# variable -> plan setting it overrides
ENV_SETTINGS: dict[str, str] = {
    "FOREX_ASSETS_CORES": "cores",
    "FOREX_BOT_MAX_CONCURRENT_SYMBOLS": "symbols",
    "FOREX_BOT_MAX_CONCURRENT_TF_LOADS": "tf_loads",
    "FOREX_BOT_FEATURE_WORKERS": "features",
    "FOREX_BOT_CPU_THREADS": "training_threads",
    "FOREX_BOT_TALIB_WORKERS": "feature_threads",
    "OMP_NUM_THREADS": "blas_threads",
    "MKL_NUM_THREADS": "blas_threads",
    "OPENBLAS_NUM_THREADS": "blas_threads",
}


@dataclass(frozen=True)
class EnvIssue:
    """A variable whose value could not be used as given."""

    variable: str
    raw: str
    setting: str
    problem: str

    def message(self, plan: ResourcePlan) -> str:
        return f"{self.variable}={self.raw!r} {self.problem}; using {used_value(plan, self.setting)} instead."


def used_value(plan: ResourcePlan, setting: str) -> int:
    if setting == "cores":
        return plan.cores
    if setting in plan.pool_limits:
        return plan.pool_limits[setting]
    if setting == "training_threads":
        return plan.step_threads["training"]
    if setting == "feature_threads":
        return plan.step_threads["features"]
    return plan.blas_threads_cap


def settings_from_env(
    environ: Mapping[str, str] | None = None, cores: int | None = None
) -> tuple[PlanSettings, list[EnvIssue]]:
    """Plan settings from the environment and the values that could not be used as given.

    `cores` (the usable cores) lets an absurdly large value be reported as clamped.
    Where several BLAS variables are set, the smallest valid one wins.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, int] = {}
    issues: list[EnvIssue] = []
    for variable, setting in ENV_SETTINGS.items():
        raw = environ.get(variable)
        if raw is None or raw.strip() == "":
            continue
        try:
            number = int(raw.strip())
        except ValueError:
            issues.append(EnvIssue(variable, raw, setting, "is not a whole number"))
            continue
        if number < 1:
            issues.append(EnvIssue(variable, raw, setting, "must be at least 1"))
            continue
        if cores is not None and number > cores:
            issues.append(EnvIssue(variable, raw, setting, f"exceeds the {cores} usable cores"))
            number = cores
        values[setting] = min(number, values.get(setting, number))
    return PlanSettings(**values), issues
