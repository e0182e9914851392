"""The code location for a Ray cluster: the same assets, checks, jobs and schedules, with
every step run as a Ray job under its per-step CPU budget (see
`forex_assets.executor.ray_budgets`). Point Dagster at it instead of `forex_assets`, e.g.
`dagster job execute -m forex_assets.ray_definitions -j symbol_pipeline`, with
`RAY_ADDRESS` naming the head. Needs `pip install -e ".[ray]"`."""

from forex_assets.definitions import build_definitions
from forex_assets.executor.ray_budgets import ray_budgeted_executor

defs = build_definitions(executor=ray_budgeted_executor)
