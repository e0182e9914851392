"""The Postgres instance variant against a real PostgreSQL server started on loopback.

`forex_assets/deploy/dagster_postgres.yaml` must load into an instance whose run, event
log and schedule storage are Postgres, whose runs land in that database, and through
which pool limits hold across separate processes: two runs of the project's budgeted
executor, started at once as two `dagster job execute` processes, never run two steps of
a pool with limit 1 at the same time, while with limit 2 their steps do overlap.
"""

import concurrent.futures
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from itertools import combinations
from pathlib import Path

import dagster as dg
import pytest
import yaml

from forex_assets.compute.machine import detect_machine
from forex_assets.executor.scheduling import claims_serialized
from forex_assets_tests.deploy.postgres_server import PostgresServer

REPO = Path(__file__).resolve().parents[2]
VARIANT = REPO / "forex_assets" / "deploy" / "dagster_postgres.yaml"
PG_VARIABLES = (
    "DAGSTER_PG_HOST",
    "DAGSTER_PG_PORT",
    "DAGSTER_PG_USER",
    "DAGSTER_PG_PASSWORD",
    "DAGSTER_PG_DB",
)
STEPS_PER_RUN = 3
RUN_TIMEOUT_S = 120

# The code location of the concurrent runs, written to a file for `dagster job execute -f`.
# Three steps in pool `training`, chained so that a run never overlaps with itself: any
# overlap is between the two runs. Each step appends one JSON line (step, run, pid, start,
# end) to the file named by FOREX_TEST_POOL_LOG. So that the result does not depend on how
# far apart the two processes happened to start, a run's first step first waits (at most
# RENDEZVOUS_S) for the other run: with FOREX_TEST_RENDEZVOUS=runs until the instance shows
# both runs started (it holds its slot meanwhile, so the other run must queue for it), with
# FOREX_TEST_RENDEZVOUS=steps until the other run's first step has started too.
JOB_SOURCE = """
import json
import os
import time
from pathlib import Path

import dagster as dg

from forex_assets.executor import budgeted_executor

STEP_SECONDS = 0.5
RENDEZVOUS_S = 60.0


def _other_run_is_there(context: dg.OpExecutionContext, log: Path, mode: str) -> bool:
    if mode == "runs":
        started = dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])
        return context.instance.get_runs_count(started) >= 2
    mine = f"started.{context.run_id}"
    return any(p.name != mine for p in log.parent.glob("started.*"))


def _wait_for_the_other_run(context: dg.OpExecutionContext, log: Path) -> None:
    mode = os.environ.get("FOREX_TEST_RENDEZVOUS", "")
    if not mode:
        return
    (log.parent / f"started.{context.run_id}").touch()
    deadline = time.time() + RENDEZVOUS_S
    while time.time() < deadline and not _other_run_is_there(context, log, mode):
        time.sleep(0.05)


def _training_step(name: str, first: bool) -> dg.OpDefinition:
    @dg.op(name=name, pool="training", ins={"after": dg.In(dg.Nothing)})
    def step(context: dg.OpExecutionContext) -> None:
        start = time.time()
        log = Path(os.environ["FOREX_TEST_POOL_LOG"])
        if first:
            _wait_for_the_other_run(context, log)
        time.sleep(STEP_SECONDS)
        record = {
            "step": name,
            "run_id": context.run_id,
            "pid": os.getpid(),
            "start": start,
            "end": time.time(),
        }
        with open(log, "a") as handle:
            handle.write(json.dumps(record) + "\\n")

    return step


@dg.job(executor_def=budgeted_executor)
def training_chain():
    first = _training_step("train_a", first=True)()
    second = _training_step("train_b", first=False)(first)
    _training_step("train_c", first=False)(second)
"""

# The plan is told training=2 on purpose: a limit set by hand on the instance must win.
RUN_CONFIG = "execution:\n  config:\n    training: 2\n    training_threads: 1\n"


@pytest.fixture
def pg_home(request, tmp_path, monkeypatch, pg_server):
    """A DAGSTER_HOME holding the variant, pointed (DAGSTER_PG_*) at a fresh database."""
    db = pg_server.create_database(re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[:63])
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(VARIANT, home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    for name, value in pg_server.dagster_env(db).items():
        monkeypatch.setenv(name, value)
    return home


def _query(server: PostgresServer, sql: str, *params) -> list[tuple]:
    import psycopg2

    connection = psycopg2.connect(**server.dsn(os.environ["DAGSTER_PG_DB"]))
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    finally:
        connection.close()


@dg.op
def hello() -> int:
    return 1


@dg.job
def hello_job():
    hello()


def test_variant_matches_the_repository_instance_apart_from_storage():
    variant = yaml.safe_load(VARIANT.read_text())
    repository = yaml.safe_load((REPO / "dagster.yaml").read_text())
    storage = variant.pop("storage")
    assert variant == repository
    assert storage == {
        "postgres": {
            "postgres_db": {
                "hostname": {"env": "DAGSTER_PG_HOST"},
                "port": {"env": "DAGSTER_PG_PORT"},
                "username": {"env": "DAGSTER_PG_USER"},
                "password": {"env": "DAGSTER_PG_PASSWORD"},
                "db_name": {"env": "DAGSTER_PG_DB"},
                "scheme": "postgresql+psycopg2",
            }
        }
    }


def test_variant_loads_postgres_storage_and_runs_land_in_the_database(pg_home, pg_server):
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        assert instance.event_log_storage.supports_global_concurrency_limits
        pools = instance.get_concurrency_config().pool_config
        assert pools.default_pool_limit == 1
        assert instance.run_monitoring_enabled and not instance.telemetry_enabled
        result = hello_job.execute_in_process(instance=instance)
        assert result.success
    rows = _query(
        pg_server, "SELECT pipeline_name, status FROM runs WHERE run_id = %s", result.run_id
    )
    assert rows == [("hello_job", "SUCCESS")]
    [(events,)] = _query(
        pg_server, "SELECT count(*) FROM event_logs WHERE run_id = %s", result.run_id
    )
    assert events > 0


@pytest.mark.parametrize("variable", PG_VARIABLES)
def test_variant_names_a_missing_variable(pg_home, monkeypatch, variable):
    monkeypatch.delenv(variable)
    with pytest.raises(Exception, match=variable):
        dg.DagsterInstance.get()


def _set_limits(limits: dict[str, int]) -> None:
    """Limits set by hand, as `dagster instance concurrency set` does; this also creates
    the tables, so the two runs do not race to create them."""
    with dg.DagsterInstance.get() as instance:
        for pool, limit in limits.items():
            instance.event_log_storage.set_concurrency_slots(pool, limit)


def _two_concurrent_runs(home: Path, tmp_path: Path, rendezvous: str) -> list[dict]:
    """Two `dagster job execute` processes of training_chain started at once; returns the
    step records they wrote, in start order, after checking both processes exited 0."""
    job_file = tmp_path / "training_chain.py"
    job_file.write_text(JOB_SOURCE)
    config_file = tmp_path / "run_config.yaml"
    config_file.write_text(RUN_CONFIG)
    log_dir = tmp_path / "steps"
    log_dir.mkdir()
    log = log_dir / "steps.jsonl"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "FOREX_TEST_POOL_LOG": str(log),
        "FOREX_TEST_RENDEZVOUS": rendezvous,
    }
    command = [
        *(sys.executable, "-m", "dagster", "job", "execute"),
        *("-f", str(job_file), "-j", "training_chain", "-c", str(config_file)),
    ]
    outputs = [tmp_path / f"run_{i}.log" for i in range(2)]
    handles = [path.open("w") for path in outputs]
    processes: list[subprocess.Popen] = []
    try:
        for handle in handles:
            processes.append(
                subprocess.Popen(
                    command, env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=tmp_path
                )
            )
        deadline = time.monotonic() + RUN_TIMEOUT_S
        for process in processes:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        for handle in handles:
            handle.close()
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output.read_text()[-4000:]
    records = [json.loads(line) for line in log.read_text().splitlines()]
    return sorted(records, key=lambda r: r["start"])


def _check_runs(records: list[dict], pool_note: str) -> dict[str, str]:
    """Both runs succeeded (as the Postgres instance says), ran at the same time, each ran
    its three steps and kept the limit set by hand, and every slot was given back.
    Returns each run's event log messages."""
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_run_records()
        assert len(runs) == 2
        assert all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in runs)
        # the runs were in flight together: both started before either ended
        assert max(r.start_time for r in runs) < min(r.end_time for r in runs)
        messages = {
            r.dagster_run.run_id: " | ".join(
                e.event_log_entry.message
                for e in instance.get_records_for_run(r.dagster_run.run_id).records
            )
            for r in runs
        }
        for pool in ("training", "symbols"):
            assert instance.event_log_storage.get_concurrency_info(pool).active_slot_count == 0
    for text in messages.values():
        assert pool_note in text
    assert sorted({r["run_id"] for r in records}) == sorted(messages)
    for run_id in messages:
        steps = sorted(r["step"] for r in records if r["run_id"] == run_id)
        assert steps == ["train_a", "train_b", "train_c"]
    return messages


def _overlapping_pairs(records: list[dict]) -> list[tuple[dict, dict]]:
    return [
        (a, b)
        for a, b in combinations(records, 2)
        if a["start"] < b["end"] and b["start"] < a["end"]
    ]


def _describe(records: list[dict]) -> str:
    t0 = records[0]["start"]
    return "\n".join(
        f"  run {r['run_id'][:8]} {r['step']} worker pid {r['pid']}: "
        f"{r['start'] - t0:6.2f} s .. {r['end'] - t0:6.2f} s"
        for r in records
    )


def test_pool_limit_of_one_holds_across_two_concurrent_runs(pg_home, tmp_path):
    # `symbols` at 2 lets both runs into their heavy stage at once (a small machine's plan
    # gives 1, which alone would keep the runs apart); `training` at 1 must then keep their
    # steps apart, although the run config tells the plan training=2.
    _set_limits({"training": 1, "symbols": 2})
    records = _two_concurrent_runs(pg_home, tmp_path, rendezvous="runs")
    print("\npool training = 1, two runs:\n" + _describe(records))
    messages = _check_runs(records, "pool training: keeping the limit 1 set on the instance")
    assert len(records) == 2 * STEPS_PER_RUN
    assert _overlapping_pairs(records) == [], _describe(records)
    # the instance's pool, not luck, kept them apart: a run queued for the other's slot
    assert any("blocked by limit for pool training" in text for text in messages.values())
    with dg.DagsterInstance.get() as instance:
        limits = {p.name: p.limit for p in instance.event_log_storage.get_pool_limits()}
    assert limits["training"] == 1 and limits["symbols"] == 2  # not overwritten by the plan


def test_control_with_limit_two_the_runs_overlap(pg_home, tmp_path):
    if detect_machine().cores < 2:
        pytest.skip("two one-thread steps at once need two usable cores")
    _set_limits({"training": 2, "symbols": 2})
    records = _two_concurrent_runs(pg_home, tmp_path, rendezvous="steps")
    print("\npool training = 2, two runs:\n" + _describe(records))
    _check_runs(records, "pool training: keeping the limit 2 set on the instance")
    pairs = _overlapping_pairs(records)
    assert pairs, _describe(records)
    assert all(a["run_id"] != b["run_id"] for a, b in pairs)  # the chain never overlaps itself


def _race_for_one_slot(instance: dg.DagsterInstance, serialized: bool, racers: int = 8) -> int:
    """`racers` threads, each with its own instance on the database, claim the one slot of
    pool `race` at the same moment; how many got it."""
    barrier = threading.Barrier(racers)
    home = os.environ["DAGSTER_HOME"]

    def claim(index: int) -> bool:
        with dg.DagsterInstance.from_config(home) as own:
            barrier.wait()
            guard = claims_serialized(own) if serialized else contextlib.nullcontext()
            with guard:
                status = own.event_log_storage.claim_concurrency_slot(
                    "race", f"run-{index}", "step", 0
                )
        return status.is_claimed

    with concurrent.futures.ThreadPoolExecutor(racers) as pool:
        won = sum(pool.map(claim, range(racers)))
    for index in range(racers):
        instance.event_log_storage.free_concurrency_slot_for_step(f"run-{index}", "step")
    return won


def test_serialized_claims_never_hand_out_one_slot_twice(pg_home):
    """Dagster's Postgres claim locks the slot row on an autocommit connection, so the lock
    ends before its UPDATE; the executor's advisory lock must keep every race at one."""
    with dg.DagsterInstance.get() as instance:
        instance.event_log_storage.set_concurrency_slots("race", 1)
        assert all(_race_for_one_slot(instance, serialized=True) == 1 for _ in range(20))
