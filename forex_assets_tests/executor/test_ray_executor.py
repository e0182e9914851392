"""ray_budgeted_executor: the local plan's per-step budgets as Ray CPUs, on a real Ray head."""

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.execution.api import create_execution_plan

from forex_assets.compute.machine import MachineResources, detect_machine
from forex_assets.compute.overrides import resolve_plan
from forex_assets.compute.plan import GiB, PlanSettings, plan_resources
from forex_assets.compute.step_budget import StepBudget
from forex_assets.compute.thread_budget import budget_environment
from forex_assets.executor.scheduling import THREADS_TAG, requested_threads
from forex_assets_tests.executor.jobs_for_tests import PROBE_DIR_ENV

REPO = Path(__file__).resolve().parents[2]
INSTALL = "pip install -e '.[ray]'"
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None or importlib.util.find_spec("dagster_ray") is None,
    reason=f"ray / dagster-ray are not installed ({INSTALL})",
)
HEAD_START_TIMEOUT_S = 60


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    """Every process below `pid`, from /proc (Ray gives its workers their own groups)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


class _PlacementGroupWatch(threading.Thread):
    """Polls the cluster's placement groups while a run goes: name -> CPUs and states."""

    def __init__(self, address: str):
        super().__init__(daemon=True)
        self.address = address
        self.seen: dict[str, dict] = {}
        self._done = threading.Event()

    def _poll(self) -> None:
        from ray.util.state import list_placement_groups

        for group in list_placement_groups(address=self.address, detail=True):
            entry = self.seen.setdefault(
                group.name,
                {"cpus": sum(b["unit_resources"].get("CPU", 0) for b in group.bundles),
                 "states": set(), "last": None},
            )  # fmt: skip
            entry["states"].add(group.state)
            entry["last"] = group.state

    def run(self) -> None:
        while not self._done.wait(0.2):
            self._poll()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self.join(30)
        self._poll()  # the final states, once the run ended


@dataclass(frozen=True)
class RayHead:
    dashboard_url: str


@pytest.fixture
def ray_head(monkeypatch):
    """`ray start --head --block` on 127.0.0.1 with 2 CPUs; every process it started is killed."""
    for variable in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS"):  # they override any address
        monkeypatch.delenv(variable, raising=False)
    # Ray's socket paths must stay under 108 bytes: a short directory, not tmp_path.
    temp_dir = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    log = temp_dir / "head.log"
    dashboard_port = _free_port()
    ports = {
        "--port": _free_port(),
        "--dashboard-port": dashboard_port,
        "--ray-client-server-port": _free_port(),
        "--dashboard-agent-listen-port": _free_port(),
        "--dashboard-agent-grpc-port": _free_port(),
        "--runtime-env-agent-port": _free_port(),
        "--metrics-export-port": _free_port(),
    }
    command = [
        # Ray's CLI through this interpreter: its `ray` script may live elsewhere on PATH.
        sys.executable,
        "-m",
        "ray.scripts.scripts",
        "start",
        "--head",
        "--block",
        "--node-ip-address=127.0.0.1",
        "--num-cpus=2",
        # The dashboard process hosts the job-submission API that dagster-ray submits to.
        "--include-dashboard=true",
        "--dashboard-host=127.0.0.1",
        "--disable-usage-stats",
        f"--temp-dir={temp_dir}",
        *(f"{flag}={port}" for flag, port in ports.items()),
    ]
    # Without this Ray swaps 127.0.0.1 for the machine's routable address.
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    with log.open("w") as out:
        head = subprocess.Popen(
            command,
            cwd=temp_dir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        from ray.job_submission import JobSubmissionClient

        url = f"http://127.0.0.1:{dashboard_port}"
        deadline = time.monotonic() + HEAD_START_TIMEOUT_S
        while True:
            if head.poll() is not None:
                pytest.fail(f"ray start exited with {head.returncode}:\n{log.read_text()}")
            try:
                JobSubmissionClient(url)
                break
            except ConnectionError:
                if time.monotonic() > deadline:
                    pytest.fail(f"the Ray head did not serve jobs in time:\n{log.read_text()}")
                time.sleep(0.5)
        yield RayHead(url)
    finally:
        processes = [head.pid, *_descendants(head.pid)]
        for pid in processes:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        head.wait(30)
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_step_requests_are_the_local_budgets():
    from forex_assets.executor.ray_budgets import ray_step_requests

    @dg.op(pool="tf_loads")
    def load():
        pass

    @dg.op(pool="features")
    def features():
        pass

    @dg.op(pool="training")
    def train():
        pass

    @dg.op(pool="training", tags={THREADS_TAG: "all"})
    def train_wide():
        pass

    @dg.op(tags={THREADS_TAG: "3"})
    def tagged():
        pass

    @dg.op
    def plain():
        pass

    @dg.job
    def every_kind():
        for op in (load, features, train, train_wide, tagged, plain):
            op()

    plan = plan_resources(MachineResources(16, 64 * GiB), PlanSettings(blas_threads=2))
    steps = create_execution_plan(every_kind).get_steps_to_execute_in_topo_order()
    requests = ray_step_requests(steps, plan, "run-1")

    expected = {"load": 1, "features": 1, "train": 4, "train_wide": 16, "tagged": 3, "plain": 1}
    assert {key: r.num_cpus for key, r in requests.items()} == expected
    assert {s.key: requested_threads(s, plan) for s in steps} == expected
    for key, threads in expected.items():
        env = requests[key].runtime_env["env_vars"]
        elastic = StepBudget(threads, 16, True, holder=f"run-1:{key}", ray_leases=True)
        assert env == {**budget_environment(threads, blas_cap=2), **elastic.environment()}
        assert env["FOREX_ASSETS_STEP_THREADS"] == str(threads)
        assert env["OMP_NUM_THREADS"] == str(min(threads, 2))
        assert StepBudget.current(env) == elastic  # what the step reads back: it leases Ray CPUs
    static = ray_step_requests(steps, plan, "run-1", elastic=False)["train"]
    assert StepBudget.current(static.runtime_env["env_vars"]).leases() is None


def test_an_ops_own_ray_config_keeps_all_but_cpus_and_thread_variables():
    from dagster_ray.configs import RayExecutionConfig

    from forex_assets.executor.ray_budgets import with_budget

    budget = budget_environment(4, blas_cap=2)
    request = RayExecutionConfig(num_cpus=4, runtime_env={"env_vars": budget})
    executor_env = {"pip": ["polars"], "env_vars": {"SHARED": "1", "OMP_NUM_THREADS": "64"}}

    own = RayExecutionConfig(
        num_cpus=32,
        num_gpus=1,
        memory=2 * GiB,
        runtime_env={"env_vars": {"OWN": "1", "POLARS_MAX_THREADS": "64"}},
    )
    merged = with_budget(own, request, executor_env)
    assert (merged.num_cpus, merged.num_gpus, merged.memory) == (4, 1, 2 * GiB)
    assert merged.runtime_env == {"env_vars": {"OWN": "1", **budget}}
    assert own.runtime_env["env_vars"]["POLARS_MAX_THREADS"] == "64"  # not modified

    merged = with_budget(RayExecutionConfig(), request, executor_env)
    assert merged.num_cpus == 4
    assert merged.runtime_env == {"pip": ["polars"], "env_vars": {"SHARED": "1", **budget}}
    assert executor_env["env_vars"]["OMP_NUM_THREADS"] == "64"  # not modified


def test_executor_rejects_one_cpu_count_for_every_step(instance):
    from forex_assets_tests.executor import ray_jobs_for_tests as jobs

    result = dg.execute_job(
        dg.reconstructable(jobs.ray_probe_job),
        instance=instance,
        run_config={"execution": {"config": {"ray": {"num_cpus": 4}}}},
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
    assert "ray.num_cpus" in str(failure.event_specific_data.error)


def test_steps_run_on_ray_with_the_local_budgets(ray_head, instance, monkeypatch):
    if detect_machine().cores < 2:
        pytest.skip("a training budget of 2 threads needs 2 usable cores")
    # How an operator points runs at a cluster (Ray's job client reads it, over any config).
    monkeypatch.setenv("RAY_ADDRESS", ray_head.dashboard_url)
    # The elastic probe's tasks live in this test package, which its pool workers (spawned
    # by the step's Ray job) import: the package is not installed, so give them its path.
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    from ray.job_submission import JobSubmissionClient
    from ray.util.state import list_nodes

    from forex_assets_tests.executor import ray_jobs_for_tests as jobs

    run_config = {
        "execution": {
            "config": {
                "training_threads": 2,
                "ray": {
                    "env_vars": [PROBE_DIR_ENV, "PYTHONPATH"],
                    "runtime_env": {"env_vars": {jobs.RUNTIME_ENV_MARKER: "kept"}},
                },
            }
        }
    }
    groups = _PlacementGroupWatch(ray_head.dashboard_url)
    with (
        groups,
        dg.execute_job(
            dg.reconstructable(jobs.ray_probe_job), instance=instance, run_config=run_config
        ) as result,
    ):
        if not result.success:
            client = JobSubmissionClient(ray_head.dashboard_url)
            logs = "\n".join(
                f"--- {job.submission_id}: {job.status}\n{client.get_job_logs(job.submission_id)}"
                for job in client.list_jobs()
            )
            pytest.fail(f"run failed; Ray job logs:\n{logs}")
        worker_events = [
            e.message
            for e in result.all_events
            if e.event_type == dg.DagsterEventType.STEP_WORKER_STARTING
        ]

    plan, _ = resolve_plan(PlanSettings(training_threads=2))
    steps = create_execution_plan(
        jobs.ray_probe_job, run_config=run_config
    ).get_steps_to_execute_in_topo_order()
    budgets = {s.key: requested_threads(s, plan) for s in steps}
    assert budgets == {"features_probe": 1, "training_probe": 2, "elastic_probe": 1}

    client = JobSubmissionClient(ray_head.dashboard_url)
    (node,) = list_nodes(address=ray_head.dashboard_url)
    probes = Path(os.environ[PROBE_DIR_ENV])
    records = {k: json.loads((probes / f"{k}.json").read_text()) for k in budgets}
    for key, threads in budgets.items():
        record = records[key]
        assert record["pid"] != os.getpid()
        assert record["ray"]["node_id"] == node.node_id
        assert record["ray"]["job_metadata"]["dagster/op"] == key
        assert record["ray"]["supervisor_resources"]["CPU"] == threads
        assert record["ray"]["supervisor_state"] == "ALIVE"
        # The step process started through the module that applies the budget first.
        entrypoint = client.get_job_info(record["ray"]["submission_id"]).entrypoint
        assert " -m forex_assets.executor.ray_budgets api execute_step" in entrypoint
        assert record["env"] == budget_environment(threads, plan.blas_threads_cap)
        assert record["polars_threads"] == threads
        assert record["blas_threads"] == [min(threads, plan.blas_threads_cap)]
        assert record["runtime_env_marker"] == "kept"
        assert any(f'"{key}" in Ray job' in m for m in worker_events), worker_events
    assert records["features_probe"]["pid"] != records["training_probe"]["pid"]
    # 2 + 1 CPUs do not fit the head's 2: Ray must have run the steps one after the other.
    first, second = sorted(
        [records["features_probe"], records["training_probe"]], key=lambda r: r["started"]
    )
    assert first["ended"] <= second["started"], (first, second)

    # The elastic step, alone on the 2-CPU head with a floor of 1, ran its two tasks at
    # once: the second on a Ray CPU it leased as a placement group, removed afterwards.
    tasks = json.loads((probes / "elastic_probe_tasks.json").read_text())
    assert tasks["ray_leases"] and tasks["widths"] == [1, 1]
    assert sorted(r["leased"] for r in tasks["records"]) == [0, 1]
    early, late = sorted(tasks["records"], key=lambda r: r["start_s"])
    assert late["start_s"] < early["start_s"] + early["seconds"]  # they overlapped
    leases = {name: g for name, g in groups.seen.items() if name.startswith(tasks["holder"])}
    assert [g["cpus"] for g in leases.values()] == [1.0], groups.seen
    assert all(g["states"] >= {"CREATED"} for g in leases.values()), leases
    assert all(g["last"] == "REMOVED" for g in leases.values()), leases


def test_the_ray_code_location_runs_every_job_on_the_budgeted_ray_executor():
    from forex_assets.defs.jobs import PAPER_TRADING_JOB, SYMBOL_PIPELINE
    from forex_assets.executor.ray_budgets import ray_budgeted_executor
    from forex_assets.ray_definitions import defs

    for name in (SYMBOL_PIPELINE, PAPER_TRADING_JOB):
        assert defs.resolve_job_def(name).executor_def is ray_budgeted_executor
