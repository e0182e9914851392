"""A partitioned backfill from the command line, queued and run by the daemon under the
repository's dagster.yaml: every symbol's run succeeds, and the `symbols` limit keeps their
heavy stages apart across runs."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg

from forex_assets import settings
from forex_assets.compute.overrides import resolve_plan
from forex_assets.compute.plan import PlanSettings
from forex_assets.defs.jobs import REFRESH_FEATURES
from forex_assets.partitions import register_symbols

REPO = Path(__file__).resolve().parents[1]
SYMBOLS = ["EURUSD", "USDJPY"]
RUNS_TIMEOUT_S = 240
# `dagster-daemon` through this interpreter: the script may not sit beside it (a venv that
# reuses the system's site-packages).
DAEMON = [sys.executable, "-m", "dagster._daemon"]


def last_events(instance: dg.DagsterInstance, run_id: str, count: int = 10) -> list[str]:
    """What a run was doing last, for a failure message."""
    return [
        f"{r.dagster_event.event_type_value if r.dagster_event else ''} {r.user_message[:120]}"
        for r in instance.all_logs(run_id)[-count:]
    ]


def heavy_stage(instance: dg.DagsterInstance, run_id: str) -> tuple[float, float]:
    """(first start, last end) of the run's steps in pool `features`."""
    starts, ends = [], []
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or not (event.step_key or "").startswith("features__"):
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            starts.append(record.timestamp)
        elif event.event_type == dg.DagsterEventType.STEP_SUCCESS:
            ends.append(record.timestamp)
    assert len(starts) == len(ends) == 11, (run_id, len(starts), len(ends))
    return min(starts), max(ends)


def test_a_cli_backfill_is_queued_and_bounded_by_the_symbols_limit(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), settings.ENV_SAMPLE_YEARS: "0.05"}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        coordinator = instance.run_coordinator
        assert type(coordinator).__name__ == "QueuedRunCoordinator"
        # 2 cores: `symbols` is 1, so the queue starts 2 runs at once (symbols + 1)
        queue = instance.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs == resolve_plan(PlanSettings())[0].queued_runs == 2
        register_symbols(instance, SYMBOLS)

    backfill = subprocess.run(
        [sys.executable, "-m", "dagster", "job", "backfill", "-m", "forex_assets",
         "-j", REFRESH_FEATURES, "--partitions", ",".join(SYMBOLS), "--noprompt"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert backfill.returncode == 0, backfill.stdout[-3000:] + backfill.stderr[-3000:]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        assert sorted(r.tags["dagster/partition"] for r in runs) == sorted(SYMBOLS)
        assert {r.status for r in runs} == {dg.DagsterRunStatus.QUEUED}
        assert len({r.tags["dagster/backfill"] for r in runs}) == 1

    # The daemon and the runs it launches log to a file: a pipe nobody reads would fill
    # up and block them all.
    log = tmp_path / "daemon.log"
    with log.open("w") as sink:
        daemon = subprocess.Popen(
            [*DAEMON, "run", "-w", str(REPO / "workspace.yaml")],
            env=env, cwd=REPO, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + RUNS_TIMEOUT_S
        while time.monotonic() < deadline and daemon.poll() is None:
            with dg.DagsterInstance.from_config(str(home)) as instance:
                runs = instance.get_runs()
                if all(r.is_finished for r in runs):
                    break
            time.sleep(2)
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(timeout=60)
    output = log.read_text()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs), (
            [
                (r.tags["dagster/partition"], r.status, last_events(instance, r.run_id))
                for r in runs
            ],
            output[-3000:],
        )
        first, second = sorted(heavy_stage(instance, r.run_id) for r in runs)
        # 2 cores: the plan's `symbols` limit is 1, so one symbol's feature stage ends
        # before the other's begins, although both runs were launched together.
        assert first[1] <= second[0], (first, second)
        assert instance.event_log_storage.get_concurrency_info("symbols").active_slot_count == 0
