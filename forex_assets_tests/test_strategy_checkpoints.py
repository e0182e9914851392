"""`evolved_strategies` on one Dagster home under two island layouts, as `python -m
forex_assets train` and `dagster job execute` give it (other CPU budgets), then after a
checkpoint file was damaged: every run succeeds and its log says how its search began."""

from pathlib import Path

import dagster as dg
import pytest

from forex_assets import settings
from forex_assets.compute.thread_budget import STEP_THREADS_ENV
from forex_assets.definitions import build_definitions
from forex_assets.defs.jobs import SYMBOL_PIPELINE
from forex_assets.defs.keys import EVOLVED_STRATEGIES, timeframe_bars_key
from forex_assets.features.feature_config import FeatureSettings
from forex_assets.partitions import register_symbols
from forex_assets.strategies.islands.checkpoint import DAMAGED_FOLDER, epoch_path

SYMBOL = "EURUSD"


def _evolve(instance: dg.DagsterInstance, upstream: bool = False):
    """Materialize evolved_strategies (and its bars first, when `upstream`) for SYMBOL."""
    defs = build_definitions()
    bars = timeframe_bars_key(FeatureSettings().base_timeframe)
    keys = [dg.AssetKey("m1_bars"), dg.AssetKey("m1_quarantine"), bars] if upstream else []
    result = defs.resolve_job_def(SYMBOL_PIPELINE).execute_in_process(
        instance=instance,
        partition_key=SYMBOL,
        asset_selection=[*keys, EVOLVED_STRATEGIES],
        run_config={
            "ops": {
                "evolved_strategies": {
                    "config": {
                        "max_generations": 2,
                        "migration_interval": 1,
                        "candidates": 3,
                    }
                }
            }
        },
    )
    assert result.success
    [materialization] = result.asset_materializations_for_node("evolved_strategies")
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    logs = [
        (entry.level, entry.user_message)
        for entry in instance.all_logs(result.run_id)
        if "island" in entry.user_message
    ]
    return metadata, logs


@pytest.fixture
def instance(tmp_path, monkeypatch):
    monkeypatch.setenv(settings.ENV_SAMPLE_YEARS, "0.05")
    monkeypatch.setenv(STEP_THREADS_ENV, "1")
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as test_instance:
        register_symbols(test_instance, [SYMBOL])
        yield test_instance


def test_two_budgets_on_one_home_resume_their_own_searches(instance, monkeypatch):
    train, _ = _evolve(instance, upstream=True)  # one thread: one island
    monkeypatch.setenv(STEP_THREADS_ENV, "2")  # two threads: two islands, same config
    pipeline, logs = _evolve(instance)
    assert (train["islands"], pipeline["islands"]) == (1, 2)
    train_dir, pipeline_dir = Path(train["checkpoint"]), Path(pipeline["checkpoint"])
    assert train_dir.parent == pipeline_dir.parent and train_dir != pipeline_dir
    assert any(
        "started afresh" in message and "differs in islands, population_sizes" in message
        for _, message in logs
    )

    monkeypatch.setenv(STEP_THREADS_ENV, "1")
    again, logs = _evolve(instance)
    assert Path(again["checkpoint"]) == train_dir
    assert again["checkpoint_resumed_epochs"] == 2
    assert any("resumed from its 2 logged epoch(s)" in message for _, message in logs)

    epoch_path(train_dir, 1).write_text('{"format": 2, "kind": "ep')  # truncated
    repaired, logs = _evolve(instance)
    assert repaired["checkpoint_files_set_aside"] == 1
    assert repaired["checkpoint_resumed_epochs"] == 1
    assert repaired["best_genes"] == again["best_genes"]
    warnings = [message for level, message in logs if level == 30]  # logging.WARNING
    assert len(warnings) == 1 and str(epoch_path(train_dir, 1)) in warnings[0]
    assert "is not valid JSON" in warnings[0]
    assert (train_dir / DAMAGED_FOLDER / "epoch_00001.json").exists()
