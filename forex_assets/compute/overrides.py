"""Settings that override the plan: environment variables (including the old bot's `.env`
names) and the executor's run config.

Existing users' `.env` files keep working: each variable maps onto one plan setting. A
value that is not a whole number, or is zero or negative, is ignored; one larger than
the usable cores is clamped. Either way the run says which variable, what it held, and
the value used instead: a typo in `.env` never crashes a run and never buys more threads
than the machine has. The executor's run config (`execution: config: cores: 0`) is
checked by the same rule, `validate_plan_setting`, and reported the same way.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

from forex_assets.compute.machine import detect_machine
from forex_assets.compute.plan import PlanSettings, Pool, ResourcePlan, plan_resources

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


# How the executor's run config names a plan setting in messages.
RUN_CONFIG_SOURCE = "executor run config execution.config.{setting}"


@dataclass(frozen=True)
class SettingIssue:
    """A setting whose value could not be used as given; `source` is where it was set (a
    variable's name, or the run config key)."""

    source: str
    raw: str | int
    setting: str
    problem: str

    def message(self, plan: ResourcePlan) -> str:
        return f"{self.source}={self.raw!r} {self.problem}; using {used_value(plan, self.setting)} instead."


def used_value(plan: ResourcePlan, setting: str) -> int:
    if setting == "cores":
        return plan.cores
    if setting in plan.pool_limits:
        return plan.pool_limits[setting]
    if setting == "training_threads":
        return plan.step_threads[Pool.TRAINING]
    if setting == "feature_threads":
        return plan.step_threads[Pool.FEATURES]
    return plan.blas_threads_cap


def validate_plan_setting(
    source: str, raw: str | int, setting: str, cores: int | None = None
) -> tuple[int | None, SettingIssue | None]:
    """The number to use for plan `setting` as set to `raw` at `source`, and what was wrong.

    Not a whole number, or below 1: (None, issue), the setting is ignored (a count of zero
    cores or threads cannot run anything, and a negative one has no meaning). Above the
    `cores` usable: (cores, issue), no layer may hold more threads than the machine runs.
    """
    if isinstance(raw, bool):  # a YAML `true` is no count
        return None, SettingIssue(source, raw, setting, "is not a whole number")
    try:
        number = raw if isinstance(raw, int) else int(raw.strip())
    except ValueError:
        return None, SettingIssue(source, raw, setting, "is not a whole number")
    if number < 1:
        return None, SettingIssue(source, raw, setting, "must be at least 1")
    if cores is not None and number > cores:
        return cores, SettingIssue(source, raw, setting, f"exceeds the {cores} usable cores")
    return number, None


def settings_from_env(
    environ: Mapping[str, str] | None = None, cores: int | None = None
) -> tuple[PlanSettings, list[SettingIssue]]:
    """Plan settings from the environment and the values that could not be used as given.

    `cores` (the usable cores) lets an absurdly large value be reported as clamped.
    Where several BLAS variables are set, the smallest valid one wins.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, int] = {}
    issues: list[SettingIssue] = []
    for variable, setting in ENV_SETTINGS.items():
        raw = environ.get(variable)
        if raw is None or raw.strip() == "":
            continue
        number, issue = validate_plan_setting(variable, raw, setting, cores)
        if issue is not None:
            issues.append(issue)
        if number is not None:
            values[setting] = min(number, values.get(setting, number))
    return PlanSettings(**values), issues


def settings_from_run_config(
    config: PlanSettings, cores: int | None = None
) -> tuple[PlanSettings, list[SettingIssue]]:
    """The executor run config's plan settings, each checked like an environment variable:
    `cores: 0` or `-3` is ignored and `100000` clamped to the usable cores, with an issue
    for the run log, instead of silently becoming a plan of one core or of every core."""
    values: dict[str, int | None] = {}
    issues: list[SettingIssue] = []
    for item in fields(config):
        raw = getattr(config, item.name)
        if raw is None:
            continue
        source = RUN_CONFIG_SOURCE.format(setting=item.name)
        values[item.name], issue = validate_plan_setting(source, raw, item.name, cores)
        if issue is not None:
            issues.append(issue)
    return replace(config, **values), issues


def resolve_plan(settings: PlanSettings) -> tuple[ResourcePlan, list[str]]:
    """The plan for this machine: run config first, then environment overrides, then
    derived; with a message for each override that could not be used as given."""
    machine = detect_machine()
    env_settings, issues = settings_from_env(cores=machine.cores)
    plan = plan_resources(machine, settings.merged_over(env_settings))
    return plan, [issue.message(plan) for issue in issues]
