"""The code location loads, validates, and has the shape the design card asks for."""

import subprocess
import sys

import dagster as dg

from forex_assets.assets.bars import TF_LOADS_POOL, timeframe_bars_key
from forex_assets.definitions import build_definitions
from forex_assets.jobs import SYMBOL_PIPELINE
from forex_assets.market.timeframes import Timeframe
from forex_assets.partitions import SYMBOLS_PARTITION_SET


def test_assets_checks_and_job():
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    expected = {"m1_bars", "m1_quarantine", *(f"bars/{tf.value.lower()}" for tf in Timeframe)}
    assert expected <= keys
    assert len(Timeframe) == 11
    for tf in Timeframe:
        node = graph.get(timeframe_bars_key(tf))
        assert node.pools == {TF_LOADS_POOL}
        assert node.partitions_def == dg.DynamicPartitionsDefinition(name=SYMBOLS_PARTITION_SET)
        assert dg.AssetKey("m1_bars") in node.parent_keys
    checks = {(c.asset_key.to_user_string(), c.name) for c in graph.asset_check_keys}
    for asset in ("m1_bars", "bars/h4"):
        for name in (
            "monotonic_utc_index",
            "ohlc_consistency",
            "unique_timestamps",
            "session_coverage",
        ):
            assert (asset, name) in checks
    job = defs.resolve_job_def(SYMBOL_PIPELINE)
    assert len(job.graph.node_defs) == 12
    assert job.executor_def.name == "budgeted_executor"


def test_dagster_definitions_validate(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "forex_assets"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Validation successful" in result.stdout + result.stderr
