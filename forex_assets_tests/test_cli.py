"""`python -m forex_assets ...` from a fresh environment, as a user runs it."""

import os
import subprocess
import sys


def _cli(*args: str, env: dict[str, str], cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "forex_assets", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_train_runs_the_chain_with_progress(tmp_path):
    env = {
        **os.environ,
        "FOREX_ASSETS_HOME": str(tmp_path / "home"),
        "FOREX_ASSETS_SAMPLE_YEARS": "0.1",
    }
    env.pop("DAGSTER_HOME", None)
    result = _cli("train", "--symbol", "eurusd", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    progress = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert len(progress) == 29  # 28 asset steps + the no-look-ahead check
    assert progress[-1].startswith("[ 29/29]") and all(" ok " in line for line in progress)
    assert "symbol_pipeline for EURUSD succeeded" in result.stdout
    store = tmp_path / "home" / "store"
    assert (store / "bars" / "w1" / "symbol=EURUSD" / "data.parquet").exists()
    assert (store / "feature_matrix" / "symbol=EURUSD" / "data.parquet").exists()
    assert (tmp_path / "home" / "dagster_home").is_dir()  # runs recorded without DAGSTER_HOME

    listed = _cli("symbols", "list", env=env, cwd=tmp_path)
    assert listed.stdout.split() == ["EURUSD"]
    queried = _cli("query", "select 1000 + count(*) as marker from bars_mn1", env=env, cwd=tmp_path)
    assert queried.returncode == 0, queried.stderr
    assert "1002" in queried.stdout  # 0.1 years from 2023-01-01: January and February


def test_bad_symbol_is_refused_with_a_reason(tmp_path):
    env = {**os.environ, "FOREX_ASSETS_HOME": str(tmp_path / "home")}
    env.pop("DAGSTER_HOME", None)
    result = _cli("train", "--symbol", "EURXYZ", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "--symbol" in result.stderr and "EURXYZ" in result.stderr
