"""Killed and interrupted runs on a real instance: who frees what they held, and how fast.

A SIGKILLed orchestrator cannot mark its run failed or return its pool slots; the next
run of any job does it before it waits (`reap_dead_runs`), a waiting step does it at its
next report (`WaitReporter`), and the daemon's run monitoring does it through
`MonitoredRunLauncher`. SIGTERM lets the orchestrator do it itself.
"""

import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.launcher.base import WorkerStatus
from dagster._daemon.monitoring.run_monitoring import monitor_started_run

from forex_assets.compute.core_ledger import CoreLedger, default_ledger_path
from forex_assets.executor.waits import CORES, Block, WaitReporter
from forex_assets.instance.orchestrators import ORCHESTRATOR_TAG, reap_dead_runs
from forex_assets.processes import ProcessIdentity, process_start_time
from forex_assets_tests.executor import jobs_for_tests
from forex_assets_tests.executor.jobs_for_tests import PROBE_DIR_ENV
from forex_assets_tests.executor.test_budgeted_executor import (
    _env,
    _job_execute,
    _run,
    reexecute_from_failure,
)

HEAVY = {"symbols": 1, "training": 2}


def _wait_for_file(path: Path, timeout_s: float = 120) -> str:
    deadline = time.time() + timeout_s
    while not path.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert path.exists(), f"{path} never appeared"
    return path.read_text()


def _dead_identity() -> ProcessIdentity:
    """The identity a process had, once it has exited (its pid may be reused later)."""
    process = subprocess.Popen(["sleep", "30"])
    identity = ProcessIdentity(socket.gethostname(), process.pid, process_start_time(process.pid))
    process.kill()
    process.wait()
    return identity


def _started_run(instance: dg.DagsterInstance, orchestrator: ProcessIdentity) -> dg.DagsterRun:
    """A STARTED run of stuck_heavy_job, tagged with `orchestrator`, holding pool slots."""
    run = instance.create_run_for_job(
        job_def=jobs_for_tests.stuck_heavy_job,
        status=dg.DagsterRunStatus.STARTED,
        tags={ORCHESTRATOR_TAG: orchestrator.token()},
    )
    storage = instance.event_log_storage
    for pool in HEAVY:
        storage.set_concurrency_slots(pool, 8)  # room for every run a test seeds
        claim = storage.claim_concurrency_slot(pool, run.run_id, "stuck_training")
        assert claim.is_claimed
    return instance.get_run_by_id(run.run_id)


def _active_slots(instance: dg.DagsterInstance) -> dict[str, int]:
    storage = instance.event_log_storage
    return {pool: storage.get_concurrency_info(pool).active_slot_count for pool in HEAVY}


def _messages(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [r.event_log_entry.message for r in instance.get_records_for_run(run_id).records]


def test_sigkilled_orchestrator_is_failed_and_freed_by_the_next_run(dagster_home, instance):
    probes = Path(os.environ[PROBE_DIR_ENV])
    config = dagster_home / "heavy.yaml"
    config.write_text("execution:\n  config:\n    symbols: 1\n    training: 2\n")
    stuck = subprocess.Popen(
        _job_execute("stuck_heavy_job", "-c", str(config)),
        env=_env(dagster_home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, killed whole as a user's kill -9 would
    )
    _wait_for_file(probes / "stuck_training.pid")
    assert CoreLedger(default_ledger_path(), 2).held() >= 1
    os.killpg(stuck.pid, signal.SIGKILL)
    stuck.wait()
    [killed] = instance.get_runs()
    assert killed.status == dg.DagsterRunStatus.STARTED  # nobody told the instance
    assert _active_slots(instance) == {"symbols": 1, "training": 1}

    result = _run(instance, jobs_for_tests.heavy_job, HEAVY)
    assert result.success
    assert instance.get_run_by_id(killed.run_id).status == dg.DagsterRunStatus.FAILURE
    gone = f"the orchestrator of run {killed.run_id} (pid {stuck.pid} on "
    assert any(gone in m for m in _messages(instance, result.run_id))
    assert any(gone in m for m in _messages(instance, killed.run_id))
    assert _active_slots(instance) == {"symbols": 0, "training": 0}
    assert CoreLedger(default_ledger_path(), 2).held() == 0


def _crash_job_in_step(dagster_home: Path) -> tuple[subprocess.Popen, int]:
    """`dagster job execute` of crash_job in its own process group (killed whole as a
    terminal's kill -9 would), once its step `killable` runs: (orchestrator, worker pid)."""
    orchestrator = subprocess.Popen(
        _job_execute("crash_job"),
        env=_env(dagster_home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    probes = Path(os.environ[PROBE_DIR_ENV])
    return orchestrator, int(_wait_for_file(probes / "killable.pid"))


def test_a_killed_run_reexecutes_from_its_failure_once_reaped(dagster_home, instance):
    probes = Path(os.environ[PROBE_DIR_ENV])
    orchestrator, _ = _crash_job_in_step(dagster_home)
    os.killpg(orchestrator.pid, signal.SIGKILL)
    orchestrator.wait()
    [killed] = instance.get_runs()
    # What the next run, a waiting step or the daemon does: now the UI offers "From failure".
    assert reap_dead_runs(instance, CoreLedger(default_ledger_path(), 2), print) == [killed.run_id]

    (probes / "killed_once").write_text("yes")
    assert "killable" in reexecute_from_failure(instance, jobs_for_tests.crash_job, killed.run_id)
    assert instance.event_log_storage.get_concurrency_info("tf_loads").active_slot_count == 0


def test_sigterm_ends_the_orchestrator_and_its_workers_within_seconds(dagster_home, instance):
    orchestrator, worker_pid = _crash_job_in_step(dagster_home)
    orchestrator.send_signal(signal.SIGTERM)
    stderr = orchestrator.communicate(timeout=30)[1].decode()  # raises if it hangs on
    assert orchestrator.returncode != 0
    assert "Invariant failed" not in stderr
    with pytest.raises(ProcessLookupError):
        os.kill(worker_pid, 0)
    [run] = instance.get_runs()
    assert run.status == dg.DagsterRunStatus.FAILURE
    assert instance.event_log_storage.get_concurrency_info("tf_loads").active_slot_count == 0
    assert CoreLedger(default_ledger_path(), 2).held() == 0


def test_sigterm_to_a_worker_fails_its_step_and_the_run_ends(dagster_home, instance):
    orchestrator, worker_pid = _crash_job_in_step(dagster_home)
    os.kill(worker_pid, signal.SIGTERM)
    orchestrator.communicate(timeout=60)  # raises if the run waits on the stopped worker
    [run] = instance.get_runs()
    assert run.status == dg.DagsterRunStatus.FAILURE
    failed = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    assert [r.event_log_entry.step_key for r in failed.records] == ["killable"]
    assert instance.event_log_storage.get_concurrency_info("tf_loads").active_slot_count == 0
    assert CoreLedger(default_ledger_path(), 2).held() == 0


def test_two_first_runs_on_a_fresh_home_both_succeed(dagster_home):
    """Nothing has created the instance's tables yet: both runs start at once."""
    env = _env(dagster_home)
    runs = [
        subprocess.Popen(
            _job_execute("recycle_job"), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=300)[0].decode() for run in runs]
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output[-3000:]
        assert "already exists" not in output
    with dg.DagsterInstance.from_config(str(dagster_home)) as fresh:
        statuses = [r.dagster_run.status for r in fresh.get_run_records()]
    assert statuses == [dg.DagsterRunStatus.SUCCESS] * 2


def test_run_monitoring_fails_a_run_whose_orchestrator_died(instance):
    alive = _started_run(instance, ProcessIdentity.current())
    dead = _started_run(instance, _dead_identity())
    launcher = instance.run_launcher
    assert launcher.supports_check_run_worker_health
    assert launcher.check_run_worker_health(alive).status == WorkerStatus.RUNNING
    health = launcher.check_run_worker_health(dead)
    assert health.status == WorkerStatus.FAILED
    assert f"the orchestrator of run {dead.run_id}" in health.msg

    logger = logging.getLogger("run_monitoring_test")
    for run in (alive, dead):  # what the daemon does every poll_interval_seconds
        monitor_started_run(instance, None, instance.get_run_record_by_id(run.run_id), logger)
    assert instance.get_run_by_id(alive.run_id).status == dg.DagsterRunStatus.STARTED
    assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE


def test_reaping_spares_live_and_foreign_runs_and_frees_ended_ones(instance):
    alive = _started_run(instance, ProcessIdentity.current())
    elsewhere = _started_run(instance, ProcessIdentity("another-host", 4242, 1))
    dead = _started_run(instance, _dead_identity())
    ended = _started_run(instance, ProcessIdentity.current())
    instance.report_run_failed(instance.get_run_by_id(ended.run_id), "ended, slots kept")
    ledger = CoreLedger(default_ledger_path(), 2)
    log: list[str] = []

    freed = reap_dead_runs(instance, ledger, log.append)

    assert sorted(freed) == sorted([dead.run_id, ended.run_id])
    assert instance.get_run_by_id(alive.run_id).status == dg.DagsterRunStatus.STARTED
    assert instance.get_run_by_id(elsewhere.run_id).status == dg.DagsterRunStatus.STARTED
    assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
    holders = {
        s.run_id for s in instance.event_log_storage.get_concurrency_info("symbols").claimed_slots
    }
    assert holders == {alive.run_id, elsewhere.run_id}
    assert any(f"freed the pool slots still held by run {ended.run_id}" in m for m in log)


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_wait_is_reported_at_once_then_every_interval_and_frees_a_dead_holder(instance):
    holder = _started_run(instance, ProcessIdentity.current())
    clock = _Clock()
    ledger = CoreLedger(default_ledger_path(), 2)
    reporter = WaitReporter(instance, ledger, "waiting-run", report_every_s=30, clock=clock)
    symbols = Block("pool", "symbols", 1)

    [message] = reporter.observe({"train_0": symbols}, {"train_0"})
    assert message.startswith("step 'train_0' waits for a slot of pool 'symbols': ")
    assert f"run {holder.run_id} (started, pid {os.getpid()} on " in message
    assert "alive) holds it for step(s) stuck_training" in message
    clock.now = 10
    assert reporter.observe({"train_0": symbols}, {"train_0"}) == []  # said once, not due
    clock.now = 31
    assert len(reporter.observe({"train_0": symbols}, {"train_0"})) == 1  # due again

    # The holder's orchestrator dies: the next due report frees its slot instead.
    instance.add_run_tags(holder.run_id, {ORCHESTRATOR_TAG: _dead_identity().token()})
    clock.now = 62
    [freed] = reporter.observe({"train_0": symbols}, {"train_0"})
    assert f"the orchestrator of run {holder.run_id}" in freed
    assert _active_slots(instance)["symbols"] == 0


def test_waits_for_cores_name_the_holding_process(instance):
    ledger = CoreLedger(default_ledger_path(), 2)
    assert ledger.try_acquire("other-run:fit", 2)
    reporter = WaitReporter(instance, ledger, "waiting-run", clock=_Clock())
    [message] = reporter.observe({"features": Block(CORES, None, 2)}, {"features"})
    assert message.startswith("step 'features' waits for 2 core(s): 0 of 2 free; ")
    assert f"other-run step fit holds 2 (pid {os.getpid()} on " in message
    own = WaitReporter(instance, ledger, "other-run", clock=_Clock())
    assert own.observe({"features": Block(CORES, None, 2)}, {"features"}) == []  # the plan at work
