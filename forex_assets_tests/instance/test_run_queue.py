"""The run queue follows the machine's plan unless dagster.yaml fixes its size."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg

from forex_assets.compute.overrides import resolve_plan
from forex_assets.compute.plan import PlanSettings

REPO = Path(__file__).resolve().parents[2]


def _queue_size(home: Path) -> int:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return instance.get_concurrency_config().run_queue_config.max_concurrent_runs


def test_queued_runs_default_to_the_plans_symbols_plus_one(tmp_path):
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    plan, _ = resolve_plan(PlanSettings())
    assert _queue_size(tmp_path) == plan.queued_runs == plan.pool_limits["symbols"] + 1


def test_a_max_concurrent_runs_set_in_dagster_yaml_wins(tmp_path):
    text = (REPO / "dagster.yaml").read_text()
    text = text.replace("  runs:\n", "  runs:\n    max_concurrent_runs: 7\n", 1)
    (tmp_path / "dagster.yaml").write_text(text)
    assert _queue_size(tmp_path) == 7
