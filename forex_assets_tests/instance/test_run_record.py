"""Recording a finished run from a real instance: graph, threads, walls and tasks."""

import time

import dagster as dg
import pytest
from dagster._core.events import DagsterEvent, EngineEventData

from forex_assets.compute.elastic_pool import TASKS_METADATA
from forex_assets.compute.machine import MachineResources
from forex_assets.compute.plan import Pool, plan_resources
from forex_assets.compute.recorded_run import RecordedRun
from forex_assets.executor.budgeted import plan_summary
from forex_assets.instance.run_record import RunRecordError, record_run

OWN_WORK_S = 0.3
TASKS = [
    {"task": "final", "threads": 2, "start_s": 0.05, "seconds": 0.2, "cpu_s": 0.35, "grows": True},
    {"task": "split_00", "threads": 1, "start_s": 0.1, "seconds": 0.15, "cpu_s": 0.0},
]
LAUNCH_S = 0.5  # how long before its STEP_START the executor launched `fan`'s worker


@dg.asset
def prepare() -> int:
    return 1


@dg.asset(pool=Pool.TRAINING.value)
def fan(prepare: int) -> dg.Output:
    time.sleep(OWN_WORK_S)
    return dg.Output(prepare, metadata={TASKS_METADATA: dg.MetadataValue.json(TASKS)})


@dg.asset(deps=[prepare])
def fails() -> None:
    raise RuntimeError("boom")


def _report(instance, run, kind, step_key, message, timestamp, metadata=None):
    event = DagsterEvent(
        kind.value,
        job_name=run.job_name,
        step_key=step_key,
        message=message,
        event_specific_data=EngineEventData(metadata=metadata or {}),
    )
    instance.report_dagster_event(event, run.run_id, timestamp=timestamp)


@pytest.fixture(scope="module")
def instance(tmp_path_factory):
    with dg.instance_for_test(temp_dir=str(tmp_path_factory.mktemp("home"))) as test_instance:
        yield test_instance


def _timestamps(instance, run_id, kind):
    return {
        r.event_log_entry.step_key: r.event_log_entry.timestamp
        for r in instance.get_records_for_run(run_id, of_type=kind).records
    }


def test_records_graph_threads_walls_and_tasks(instance):
    result = dg.materialize([prepare, fan], instance=instance)
    run = instance.get_run_by_id(result.run_id)
    started = _timestamps(instance, run.run_id, dg.DagsterEventType.STEP_START)
    succeeded = _timestamps(instance, run.run_id, dg.DagsterEventType.STEP_SUCCESS)
    # What the budgeted executor writes, which the in-process executor does not: its plan
    # and each step's launch with the threads it got.
    plan = plan_resources(MachineResources(4, 16 * 2**30))
    _report(
        instance, run, dg.DagsterEventType.ENGINE_EVENT, None,
        f"Resource plan: {plan_summary(plan)}", min(started.values()) - 1.0,
    )  # fmt: skip
    _report(
        instance, run, dg.DagsterEventType.STEP_WORKER_STARTING, "fan",
        'Running "fan" with 3 thread(s)', started["fan"] - LAUNCH_S, {"threads": 3},
    )  # fmt: skip

    recorded = record_run(instance, run.run_id)

    assert recorded.job == run.job_name
    assert recorded.measured_cores == 4
    assert [s.key for s in recorded.steps] == ["prepare", "fan"]
    first, second = recorded.steps
    assert (first.deps, first.pool, first.threads, first.tasks) == ((), None, 1, ())
    assert first.serial_s == pytest.approx(succeeded["prepare"] - started["prepare"])
    assert (second.deps, second.pool, second.threads) == (("prepare",), Pool.TRAINING, 3)
    # tasks spanned 0.05 .. 0.25 s of the step; the rest of its wall, launch included, is
    # its own work
    wall = succeeded["fan"] - started["fan"] + LAUNCH_S
    assert second.serial_s == pytest.approx(wall - 0.2)
    assert second.serial_s >= OWN_WORK_S + LAUNCH_S - 0.2
    assert [(t.name, t.cpu_s) for t in second.tasks] == [("final", 0.35), ("split_00", 0.0)]
    assert second.tasks[0].weight == 0.35 and 0 < second.tasks[1].weight < 0.01
    # a task that can widen while it runs, and one recorded before tasks could
    assert [t.grows for t in second.tasks] == [True, False]
    assert RecordedRun.from_json(recorded.to_json()) == recorded
    run_start = _timestamps(instance, run.run_id, dg.DagsterEventType.RUN_START)[None]
    run_end = _timestamps(instance, run.run_id, dg.DagsterEventType.RUN_SUCCESS)[None]
    assert recorded.measured_makespan_s == pytest.approx(run_end - run_start)
    assert recorded.teardown_s == pytest.approx(run_end - succeeded["fan"])
    assert RecordedRun.from_json(recorded.to_json()) == recorded


def test_a_run_without_the_plan_event_needs_the_cores(instance):
    result = dg.materialize([prepare], instance=instance)
    with pytest.raises(RunRecordError, match="Resource plan"):
        record_run(instance, result.run_id)
    assert record_run(instance, result.run_id, cores=2).measured_cores == 2


def test_refuses_unknown_and_failed_runs(instance):
    with pytest.raises(RunRecordError, match="no run 'nope'"):
        record_run(instance, "nope")
    failed = dg.materialize([prepare, fails], instance=instance, raise_on_error=False)
    with pytest.raises(RunRecordError, match="is FAILURE"):
        record_run(instance, failed.run_id, cores=2)
