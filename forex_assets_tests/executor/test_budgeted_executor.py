"""The budgeted executor on a real Dagster instance: pools, budgets, crashes, reuse."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pytest

from forex_assets.compute.core_ledger import CoreLedger, default_ledger_path
from forex_assets_tests.executor import jobs_for_tests
from forex_assets_tests.executor.jobs_for_tests import PROBE_DIR_ENV

REPO = Path(__file__).resolve().parents[2]
JOBS_MODULE = "forex_assets_tests.executor.jobs_for_tests"


def _run(instance, job, run_config=None, **kwargs):
    config = {"execution": {"config": run_config or {}}}
    with dg.execute_job(
        dg.reconstructable(job), instance=instance, run_config=config, **kwargs
    ) as result:
        return result


def reexecute_from_failure(instance, job, run_id: str) -> set[str]:
    """Re-execute `run_id` from its failure (the UI's Re-execute > From failure); it must
    succeed. Returns the steps it ran."""
    options = dg.ReexecutionOptions.from_failure(run_id, instance)
    with dg.execute_job(
        dg.reconstructable(job), instance=instance, reexecution_options=options
    ) as again:
        assert again.success
        return {e.step_key for e in again.all_events if e.is_step_success}


def _intervals(instance, run_id: str) -> dict[str, tuple[float, float]]:
    starts, ends = {}, {}
    for record in instance.get_records_for_run(run_id).records:
        event = record.event_log_entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            starts[event.step_key] = record.event_log_entry.timestamp
        elif event.event_type in (
            dg.DagsterEventType.STEP_SUCCESS,
            dg.DagsterEventType.STEP_FAILURE,
        ):
            ends[event.step_key] = record.event_log_entry.timestamp
    return {k: (starts[k], ends[k]) for k in starts if k in ends}


def _max_overlap(intervals) -> int:
    points = sorted(
        [(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda p: (p[0], p[1])
    )
    running = peak = 0
    for _, delta in points:
        running += delta
        peak = max(peak, running)
    return peak


def test_pool_limits_hold_and_are_logged_and_a_limit_set_on_the_instance_wins(instance):
    """The run config's pool limit bounds a run and is used, the plan is logged and
    synced into the instance; a limit a user then sets on the instance wins over it."""
    result = _run(instance, jobs_for_tests.pool_job, {"tf_loads": 2})
    assert result.success
    intervals = _intervals(instance, result.run_id)
    assert len(intervals) == 6
    assert _max_overlap(intervals.values()) == 2  # bounded by the pool, and the pool is used
    messages = [
        r.event_log_entry.message for r in instance.get_records_for_run(result.run_id).records
    ]
    plan = next(m for m in messages if m.startswith("Resource plan:"))
    assert "tf_loads=2" in plan and "cores" in plan
    limits = {p.name: p.limit for p in instance.event_log_storage.get_pool_limits()}
    assert limits["tf_loads"] == 2  # synced into the instance for other runs

    instance.event_log_storage.set_concurrency_slots("tf_loads", 1)
    result = _run(instance, jobs_for_tests.pool_job, {"tf_loads": 2})
    assert _max_overlap(_intervals(instance, result.run_id).values()) == 1
    messages = " ".join(
        r.event_log_entry.message for r in instance.get_records_for_run(result.run_id).records
    )
    assert "keeping the limit 1 set on the instance" in messages


def test_pool_limit_of_one_serializes_steps(instance):
    result = _run(instance, jobs_for_tests.pool_job, {"tf_loads": 1})
    assert result.success
    assert _max_overlap(_intervals(instance, result.run_id).values()) == 1


def _env(dagster_home: Path) -> dict[str, str]:
    return {**os.environ, "DAGSTER_HOME": str(dagster_home)}


def _job_execute(job: str, *extra: str) -> list[str]:
    """`dagster job execute` of a test job, as a user runs it."""
    return [sys.executable, "-m", "dagster", "job", "execute", "-m", JOBS_MODULE, "-j", job, *extra]


def _concurrent_cli_runs(dagster_home: Path, job: str, run_config: str, count: int = 2) -> None:
    config_file = dagster_home / f"{job}.yaml"
    config_file.write_text(run_config)
    command = _job_execute(job, "-c", str(config_file))
    env = _env(dagster_home)
    processes = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(count)
    ]
    outputs = [p.communicate(timeout=300)[0].decode() for p in processes]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output[-3000:]


def test_pool_limit_holds_across_two_concurrent_runs(dagster_home, instance):
    _concurrent_cli_runs(dagster_home, "pool_job", "execution:\n  config:\n    tf_loads: 1\n")
    runs = instance.get_run_records()
    assert len(runs) == 2 and all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    intervals = [i for r in runs for i in _intervals(instance, r.dagster_run.run_id).values()]
    assert len(intervals) == 12
    assert _max_overlap(intervals) == 1
    assert instance.event_log_storage.get_concurrency_info("tf_loads").active_slot_count == 0


def test_symbols_limit_bounds_heavy_stages_across_runs(dagster_home, instance):
    _concurrent_cli_runs(
        dagster_home, "heavy_job", "execution:\n  config:\n    symbols: 1\n    training: 3\n"
    )
    runs = instance.get_run_records()
    assert len(runs) == 2
    spans = []
    for record in runs:
        intervals = _intervals(instance, record.dagster_run.run_id).values()
        assert _max_overlap(intervals) >= 1
        spans.append((min(s for s, _ in intervals), max(e for _, e in intervals)))
    first, second = sorted(spans)
    assert first[1] <= second[0]  # one symbol's heavy stage at a time
    assert instance.event_log_storage.get_concurrency_info("symbols").active_slot_count == 0


def test_each_step_sees_its_thread_budget_in_every_library(instance, tmp_path):
    result = _run(instance, jobs_for_tests.probe_job)
    assert result.success
    probes = Path(os.environ[PROBE_DIR_ENV])
    two = json.loads((probes / "two.json").read_text())
    one = json.loads((probes / "one.json").read_text())
    for report, budget in ((two, 2), (one, 1)):
        assert report["step_threads"] == budget
        assert report["torch"] == budget
        assert report["polars"] == budget
        assert report["numba"] == budget
        assert report["lightgbm"] == budget
        assert report["openmp"] and set(report["openmp"]) == {budget}
        assert not report["blas"] or set(report["blas"]) == {budget}
    assert two["pid"] != one["pid"]  # different budgets run in different workers


def test_killed_worker_fails_its_step_frees_its_slot_and_run_reexecutes(instance):
    probes = Path(os.environ[PROBE_DIR_ENV])

    leases_before_kill: list[int] = []

    def kill_when_started() -> None:
        """SIGKILL the elastic step once both its tasks run, one of them on a lease."""
        started = [probes / f"killable_task_{i}.started" for i in range(2)]
        deadline = time.time() + 120
        while not all(f.exists() for f in started) and time.time() < deadline:
            time.sleep(0.05)
        holdings = CoreLedger(default_ledger_path(), 2).holdings()
        leases_before_kill.extend(h.cores for h in holdings if "killable/lease/" in h.holder)
        os.kill(int((probes / "killable.pid").read_text()), signal.SIGKILL)

    killer = threading.Thread(target=kill_when_started)
    killer.start()
    failed = _run(instance, jobs_for_tests.crash_job, raise_on_error=False)
    killer.join()
    assert not failed.success
    failure = next(e for e in failed.all_events if e.is_step_failure)
    assert failure.step_key == "killable"
    message = failure.step_failure_data.error.message
    assert "running step 'killable' was terminated by signal 9 (SIGKILL)" in message
    assert (probes / "downstream_ran").exists()  # independent steps were not affected
    assert instance.event_log_storage.get_concurrency_info("tf_loads").active_slot_count == 0
    assert leases_before_kill == [1]  # the step had grown onto the second core...
    assert CoreLedger(default_ledger_path(), 2).held() == 0  # ...and its lease was reaped

    (probes / "killed_once").write_text("yes")
    assert reexecute_from_failure(instance, jobs_for_tests.crash_job, failed.run_id) == {"killable"}


def test_workers_are_reused_and_recycled(instance):
    result = _run(instance, jobs_for_tests.recycle_job, {"max_steps_per_worker": 2, "cores": 1})
    assert result.success
    messages = [
        r.event_log_entry.message for r in instance.get_records_for_run(result.run_id).records
    ]
    starting = [m for m in messages if m.startswith('Running "noop_')]
    assert len(starting) == 5
    assert sum("in warm worker" in m for m in starting) == 2  # steps 2 and 4 reuse a worker
    summary = next(m for m in messages if m.startswith("Budgeted executor finished"))
    assert "3 worker processes started, 2 recycled" in summary


def test_invalid_environment_override_is_reported_not_fatal(instance, monkeypatch):
    monkeypatch.setenv("FOREX_BOT_MAX_CONCURRENT_TF_LOADS", "lots")
    result = _run(instance, jobs_for_tests.pool_job)
    assert result.success
    messages = " ".join(
        r.event_log_entry.message for r in instance.get_records_for_run(result.run_id).records
    )
    assert (
        "FOREX_BOT_MAX_CONCURRENT_TF_LOADS='lots' is not a whole number; using 2 instead."
        in messages
    )


def test_workers_exit_and_cores_return_when_the_orchestrator_is_killed(dagster_home):
    probes = Path(os.environ[PROBE_DIR_ENV])
    orchestrator = subprocess.Popen(
        _job_execute("crash_job"),
        env=_env(dagster_home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pid_file = probes / "killable.pid"
    deadline = time.time() + 120
    while not pid_file.exists() and time.time() < deadline:
        time.sleep(0.05)
    worker_pid = int(pid_file.read_text())
    ledger = CoreLedger(default_ledger_path(), 2)
    assert ledger.held() >= 1
    orchestrator.send_signal(signal.SIGKILL)
    orchestrator.wait()
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            os.kill(worker_pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"worker {worker_pid} outlived its orchestrator")
    assert ledger.held() == 0  # the dead orchestrator's reservations are reaped


def test_step_output_reaches_the_terminal_and_the_captured_logs(dagster_home, instance):
    result = subprocess.run(
        _job_execute("talkative_job"),
        env=_env(dagster_home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "stdout line from the step" in result.stdout
    assert "line from a child process" in result.stdout
    assert "stderr line from the step" in result.stderr
    run_id = instance.get_run_records()[0].dagster_run.run_id
    captured = [
        r.event_log_entry.dagster_event.logs_captured_data
        for r in instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.LOGS_CAPTURED
        ).records
    ]
    assert len(captured) == 1
    manager = instance.compute_log_manager
    data = manager.get_log_data(manager.build_log_key_for_run(run_id, captured[0].file_key))
    assert (
        b"stdout line from the step" in data.stdout and b"line from a child process" in data.stdout
    )
    assert b"stderr line from the step" in data.stderr


# ---------------------------------------------------------------- elastic steps


def _held_peak(spans) -> int:
    changes = sorted([(s.start, s.cores) for s in spans] + [(s.end, -s.cores) for s in spans])
    held = peak = 0
    for _, delta in changes:
        held += delta
        peak = max(peak, held)
    return peak


def test_an_elastic_step_grows_into_idle_cores_and_a_waiting_step_goes_first(
    instance, dagster_home
):
    """2 cores: the fan-out step's floor is 1 (round(sqrt(2))), `gate` holds the other.
    When `gate` ends, `latecomer` becomes ready while the fan-out step may lease that
    core: it gets it at the latest when the one task already on it ends."""
    result = _run(instance, jobs_for_tests.elastic_job, {"cores": 2})
    assert result.success
    probes = Path(os.environ[PROBE_DIR_ENV])
    records = json.loads((probes / "fan_out.json").read_text())
    started = json.loads((probes / "latecomer.json").read_text())["started"]
    ledger = CoreLedger(default_ledger_path(), 2)
    spans = ledger.history(f"{result.run_id}:")
    assert spans and all(s.end is not None for s in spans)
    assert _held_peak(spans) <= 2  # never oversubscribed, leases included
    leases = [s for s in spans if s.is_lease]
    assert leases, "the fan-out step never grew past its floor"
    assert {s.step_holder for s in leases} == {f"{result.run_id}:fan_out"}
    assert max(r["threads"] for r in records) == 1 and len(records) == 8
    # Once `latecomer` could run, no new lease started before it did (a lease begun in
    # the instant before it asked may delay it by that one task).
    _, gate_end = _intervals(instance, result.run_id)["gate"]
    late_leases = [s for s in leases if gate_end + 0.5 < s.start < started]
    assert late_leases == []
    assert started < max(s.end for s in leases)  # not starved until the step ended
    use = next(
        r.event_log_entry.dagster_event
        for r in instance.get_records_for_run(result.run_id).records
        if r.event_log_entry.message.startswith("Core use (elastic)")
    )
    metadata = use.engine_event_data.metadata
    assert metadata["usable cores"].value == 2
    assert "| fan_out | 1 | 2 |" in metadata["steps"].value
    assert metadata["cores held"].value.startswith("![cores held over time](data:image/png")


@pytest.mark.parametrize(
    ("setting", "mode"),
    [({"elastic": False}, "static plan"), ({"training_threads": 1}, "elastic")],
    ids=["static plan", "training threads set by the user"],
)
def test_the_static_plan_and_a_users_thread_setting_lease_nothing(instance, setting, mode):
    result = _run(instance, jobs_for_tests.elastic_job, {"cores": 2, **setting})
    assert result.success
    spans = CoreLedger(default_ledger_path(), 2).history(f"{result.run_id}:")
    assert spans and not any(s.is_lease for s in spans)
    records = instance.get_records_for_run(result.run_id).records
    assert any(r.event_log_entry.message.startswith(f"Core use ({mode})") for r in records)
    [fan_out] = [
        r.event_log_entry.dagster_event
        for r in records
        if r.event_log_entry.dagster_event is not None
        and r.event_log_entry.dagster_event.event_type == dg.DagsterEventType.STEP_WORKER_STARTING
        and r.event_log_entry.dagster_event.step_key == "fan_out"
    ]
    assert fan_out.event_specific_data.metadata["elastic"].value is False
