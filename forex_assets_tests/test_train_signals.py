"""`python -m forex_assets train` stopped by SIGTERM, as a supervisor stops it: it exits within seconds, its run is failed, nothing stays held."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from forex_assets.compute.core_ledger import CoreLedger, default_ledger_path

REPO = Path(__file__).resolve().parents[1]


def test_train_stops_on_sigterm_and_returns_what_it_held(tmp_path):
    """SIGINT (Ctrl-C) takes the same path: both are captured as an interrupt."""
    stop = signal.SIGTERM
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "FOREX_ASSETS_SAMPLE_YEARS": "0.05"}
    env.pop("FOREX_ASSETS_HOME", None)
    train = subprocess.Popen(
        [sys.executable, "-m", "forex_assets", "train", "--symbol", "EURUSD"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    for line in train.stdout:  # stop it once steps are running
        lines.append(line)
        if line.startswith("[  1/"):
            break
    train.send_signal(stop)
    try:
        stdout, _ = train.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        train.kill()
        pytest.fail(f"train ignored {stop.name} for 60 s")
    assert train.returncode == 1
    assert "interrupted (SIGINT or SIGTERM)" in "".join(lines) + stdout
    with dg.DagsterInstance.from_config(str(home)) as instance:
        [run] = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.FAILURE
        storage = instance.event_log_storage
        assert all(
            storage.get_concurrency_info(key).active_slot_count == 0
            for key in storage.get_concurrency_keys()
        )
    deadline = time.monotonic() + 10  # workers notice their parent is gone within a second
    while CoreLedger(default_ledger_path(), 2).held() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert CoreLedger(default_ledger_path(), 2).held() == 0
