"""The code location loads, validates, and has the shape the design card asks for."""

import subprocess
import sys

import dagster as dg
import pytest

from forex_assets import settings
from forex_assets.compute.plan import Pool
from forex_assets.definitions import build_definitions
from forex_assets.defs.checks import MODEL_GATE
from forex_assets.defs.jobs import PAPER_TRADING_JOB, SYMBOL_PIPELINE
from forex_assets.defs.keys import FEATURE_MATRIX, timeframe_bars_key, timeframe_features_key
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
        assert node.pools == {Pool.TF_LOADS}
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
    assert ("feature_matrix", "no_look_ahead") in checks
    assert ("trained_models", MODEL_GATE) in checks
    job = defs.resolve_job_def(SYMBOL_PIPELINE)
    # 28 asset steps + the look-ahead check; paper trading and its gate have their own job.
    assert len(job.graph.node_defs) == 29
    assert job.executor_def.name == "budgeted_executor"
    paper = defs.resolve_job_def(PAPER_TRADING_JOB)
    assert {n.name for n in paper.graph.node_defs} == {
        "paper_trading",
        f"trained_models_{MODEL_GATE}",
    }


def test_every_asset_has_a_domain_group_and_a_description():
    graph = build_definitions().resolve_asset_graph()
    groups = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description and len(node.description) > 40, key
        groups.setdefault(node.group_name, set()).add(key.to_user_string())
    assert set(groups) == {"data", "features", "validation", "models", "strategies", "trading"}
    assert groups["trading"] == {"paper_trading"}
    assert groups["validation"] == {"cpcv_folds"}


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


def test_feature_assets_one_step_per_timeframe_in_pool_features():
    graph = build_definitions().resolve_asset_graph()
    for tf in Timeframe:
        node = graph.get(timeframe_features_key(tf))
        assert node.pools == {Pool.FEATURES}
        assert node.parent_keys == {timeframe_bars_key(tf)}
    matrix = graph.get(FEATURE_MATRIX)
    higher = [tf for tf in Timeframe if tf.nominal_minutes >= Timeframe.M5.nominal_minutes]
    assert matrix.parent_keys == {timeframe_bars_key(tf) for tf in higher} | {
        timeframe_features_key(tf) for tf in higher
    }


def test_feature_config_file_sets_the_base_timeframe(tmp_path, monkeypatch):
    config = tmp_path / "features.toml"
    config.write_text('base_timeframe = "H1"\n[indicators]\nrsi = [14]\nema = [9, 21]\n')
    monkeypatch.setenv(settings.ENV_FEATURE_CONFIG, str(config))
    matrix = build_definitions().resolve_asset_graph().get(FEATURE_MATRIX)
    assert timeframe_bars_key(Timeframe.H1) in matrix.parent_keys
    assert timeframe_features_key(Timeframe.M15) not in matrix.parent_keys


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[indicators]\nrsii = [14]\n",
            r"indicators\.rsii names an unknown indicator\. Did you mean rsi",
        ),
        ("[indicators]\nrsi = [0]\n", r"indicators\.rsi\[0\]\.period=0 is below the minimum 2"),
        ('base_timeframe = "M7"\n', "timeframe='M7' is not one of"),
        ("[labels]\nstop_loss_atr = -1\n", "labels.stop_loss_atr=-1 must be a positive number"),
        ("indicators = 3\n", "expected a table mapping indicator names"),
    ],
)
def test_bad_feature_config_fails_at_load_naming_file_and_entry(
    tmp_path, monkeypatch, text, message
):
    config = tmp_path / "features.toml"
    config.write_text(text)
    monkeypatch.setenv(settings.ENV_FEATURE_CONFIG, str(config))
    with pytest.raises(settings.SettingsError, match=message) as raised:
        build_definitions()
    loaded = str(raised.value)
    assert loaded.startswith(f"{settings.ENV_FEATURE_CONFIG}={str(config)!r}: ")
    assert str(config) in loaded and "\n" not in loaded


def test_feature_config_variable_naming_no_file_fails_at_load(tmp_path, monkeypatch):
    monkeypatch.setenv(settings.ENV_FEATURE_CONFIG, str(tmp_path / "missing.toml"))
    with pytest.raises(
        settings.SettingsError, match=r"FOREX_ASSETS_FEATURE_CONFIG=.*does not name a file"
    ):
        build_definitions()
