"""The scheduling simulator: hand-computed makespans, the policy's rules, invariants."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forex_assets.compute.plan import PlanSettings, Pool
from forex_assets.compute.recorded_run import RecordedRun, RecordedStep, RecordedTask
from forex_assets.compute.schedule_simulator import (
    heavy_stage_width,
    makespan_bound_s,
    simulate,
    task_seconds,
)


def _run(*steps: RecordedStep) -> RecordedRun:
    return RecordedRun("job", steps, measured_cores=2, measured_makespan_s=1.0)


def _fan_out(key: str, tasks: int, cpu_s: float, deps: tuple[str, ...] = ()) -> RecordedStep:
    return RecordedStep(
        key,
        deps,
        Pool.TRAINING,
        1,
        0.0,
        tuple(RecordedTask(f"{key}_{i}", cpu_s, 1.0) for i in range(tasks)),
    )


def test_task_seconds_follow_amdahl():
    assert task_seconds(10.0, 1) == 10.0
    assert task_seconds(10.5, 4) == pytest.approx(4.2)  # plan.py's measured fold on 4 threads
    assert task_seconds(10.0, 4, parallel_fraction=1.0) == 2.5


def test_a_chain_runs_one_step_after_the_other():
    run = _run(RecordedStep("a", (), None, 1, 2.0), RecordedStep("b", ("a",), None, 1, 3.0))
    for elastic in (False, True):
        result = simulate(run, 2, elastic=elastic)
        assert result.makespan_s == 5.0
        assert result.utilization == pytest.approx(5.0 / (2 * 5.0))
        assert [(s.key, s.start_s, s.end_s) for s in result.steps] == [
            ("a", 0.0, 2.0),
            ("b", 2.0, 5.0),
        ]


@pytest.mark.parametrize(
    ("cores", "elastic", "makespan"),
    [
        (2, False, 16.0),  # 1 training thread: four 4 s tasks one after another
        (2, True, 8.0),  # the idle core is leased: two at a time
        (4, False, 8.0),  # 2 training threads, 1 per task: two at a time
        (4, True, 4.0),  # floor 2 + 2 leased: all four at once on 1 thread
    ],
)
def test_fan_out_of_four_equal_tasks(cores, elastic, makespan):
    result = simulate(_run(_fan_out("train", 4, 4.0)), cores, elastic=elastic)
    assert result.makespan_s == pytest.approx(makespan)
    assert result.busy_core_s == pytest.approx(16.0)


@pytest.mark.parametrize(("grows", "makespan", "busy"), [(True, 5.6, 11.2), (False, 8.0, 10.0)])
def test_the_last_task_widens_into_the_core_the_other_gave_back(grows, makespan, busy):
    tasks = (RecordedTask("long", 8.0, 8.0, grows), RecordedTask("short", 2.0, 2.0, grows))
    run = _run(RecordedStep("train", (), Pool.TRAINING, 1, 0.0, tasks))
    result = simulate(run, 2, elastic=True)
    # both start on 1 thread; at t=2 the short one ends and the long one has 6 s of work
    # left, which on 2 threads takes 6 * (0.2 + 0.8 / 2) = 3.6 s
    assert result.makespan_s == pytest.approx(makespan)
    assert result.busy_core_s == pytest.approx(busy)
    assert max(held for _, held in result.cores_held) <= 2
    assert simulate(run, 2, elastic=False).makespan_s == pytest.approx(10.0)  # none grows


def test_the_bound_is_the_critical_path_or_the_work_left_on_every_core():
    run = _run(RecordedStep("a", (), None, 1, 2.0), _fan_out("train", 4, 4.0, ("a",)))
    # training cannot start before t=2, then 16 core-seconds on 2 cores: 10 s, which the
    # elastic policy reaches; on 64 cores the longest task on unlimited threads bounds it
    assert makespan_bound_s(run, 2) == pytest.approx(10.0)
    assert simulate(run, 2, elastic=True).makespan_s == pytest.approx(10.0)
    assert makespan_bound_s(run, 64) == pytest.approx(2.0 + 4.0 * 0.2)


def test_heavy_stage_width_is_its_work_over_its_span():
    run = _run(
        RecordedStep("bars", (), Pool.TF_LOADS, 1, 1.0),
        RecordedStep("features", ("bars",), Pool.FEATURES, 1, 2.0),
        RecordedStep("train", ("features",), Pool.TRAINING, 1, 1.0, _fan_out("t", 4, 4.0).tasks),
    )
    # the slot spans features (t=1..3) and train (3..8, its tasks side by side): 19 s of
    # work over 7 s; the bars before it are outside
    assert heavy_stage_width(run) == pytest.approx(19.0 / 7.0)
    with pytest.raises(ValueError, match="never holds a symbols slot"):
        heavy_stage_width(_run(RecordedStep("bars", (), Pool.TF_LOADS, 1, 1.0)))


def test_elastic_widens_the_last_tasks():
    # 2 tasks on 4 cores: static gives each 1 of its 2 threads; elastic gives each 2 of
    # the 4 free cores: 4 s x (0.2 + 0.8 / 2) = 2.4 s.
    run = _run(_fan_out("train", 2, 4.0))
    assert simulate(run, 4, elastic=False).makespan_s == pytest.approx(4.0)
    elastic = simulate(run, 4, elastic=True)
    assert elastic.makespan_s == pytest.approx(2.4)
    assert elastic.steps[0].effective_cores == pytest.approx(4.0)


def test_heaviest_task_starts_first_and_gets_the_wider_share():
    run = _run(
        RecordedStep(
            "train",
            (),
            Pool.TRAINING,
            1,
            0.0,
            (RecordedTask("split", 4.0, 1.0), RecordedTask("final", 12.0, 3.0)),
        )
    )
    # 4 free cores, weights 3 and 1: the final refit gets int(4 * 3 / 4) = 3 threads,
    # the split the 1 left; 12 s x (0.2 + 0.8 / 3) = 5.6 s bounds the step.
    result = simulate(run, 4, elastic=True)
    assert result.makespan_s == pytest.approx(5.6)
    assert max(busy for _, busy in result.cores_busy) == 4


def test_waiting_steps_come_first():
    # 4 cores: `train` (floor 2) leases the core `pre` leaves until `late` (2 threads)
    # becomes ready at t=1; from then on leases must leave its cores free, so it starts
    # when the first tasks end (t=2), not after the tasks of t=1 would have ended (t=3).
    run = _run(
        RecordedStep("pre", (), None, 1, 1.0),
        _fan_out("train", 8, 2.0),
        RecordedStep("late", ("pre",), Pool.TRAINING, 1, 1.0),
    )
    result = simulate(run, 4, elastic=True, parallel_fraction=1.0)
    late = next(s for s in result.steps if s.key == "late")
    assert late.start_s == pytest.approx(2.0)


def test_a_backfill_waits_for_run_slots_and_the_symbols_slot():
    run = _run(RecordedStep("features", (), Pool.FEATURES, 1, 3.0))
    # 8 cores with a symbols limit of 1: four runs, one heavy stage at a time
    serial = simulate(run, 8, symbols=4, settings=PlanSettings(symbols=1))
    assert serial.makespan_s == pytest.approx(12.0)
    # two symbols slots, but at most one run at a time
    one_run = simulate(run, 8, symbols=4, settings=PlanSettings(symbols=2), max_concurrent_runs=1)
    assert one_run.makespan_s == pytest.approx(12.0)
    both = simulate(run, 8, symbols=4, settings=PlanSettings(symbols=2))
    assert both.makespan_s == pytest.approx(6.0)  # the queue starts symbols + 1 runs


def test_startup_and_teardown_hold_the_run_slot():
    run = RecordedRun(
        "job", (RecordedStep("a", (), None, 1, 2.0),), 1, 1.0, startup_s=1.0, teardown_s=0.5
    )
    assert simulate(run, 4, symbols=2, max_concurrent_runs=1).makespan_s == pytest.approx(7.0)


def test_a_starving_step_stops_the_steps_behind_it():
    # 4 cores; `wide` (training: 2 threads) waits behind 1-thread steps that free one
    # core at a time (t = 1, 2, 3, ...), each taken at once by the next narrow step. Once
    # it has waited more than STARVATION_S (at t = 6) no narrow step of its run starts, so
    # it gets the 2 cores when the next one frees (t = 7), not when two free together (8).
    narrow = [RecordedStep(f"n{i}", (), Pool.TF_LOADS, 1, float(i + 1)) for i in range(4)]
    stream = [RecordedStep(f"m{i}", (), Pool.TF_LOADS, 1, 4.0) for i in range(6)]
    run = _run(*narrow, RecordedStep("wide", (), Pool.TRAINING, 1, 1.0), *stream)

    def wide_start(**options) -> float:
        result = simulate(run, 4, elastic=False, **options)
        return next(s.start_s for s in result.steps if s.key == "wide")

    assert wide_start() == pytest.approx(7.0)
    assert wide_start(starvation_s=float("inf")) == pytest.approx(8.0)


def test_round_trip_through_json():
    run = RecordedRun(
        "symbol_pipeline",
        (
            RecordedStep("a", (), None, 1, 2.5),
            RecordedStep("b", ("a",), "training", 4, 1.0, (RecordedTask("t", 3.0, 3.0),)),
        ),
        measured_cores=2,
        measured_makespan_s=9.0,
        startup_s=0.5,
        teardown_s=0.25,
        source="test",
    )
    assert RecordedRun.from_json(run.to_json()) == run


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ((RecordedStep("b", ("a",), None, 1, 1.0),), "not listed before it"),
        ((RecordedStep("a", (), None, 1, 1.0), RecordedStep("a", (), None, 1, 1.0)), "twice"),
    ],
)
def test_a_run_must_list_each_step_once_after_its_dependencies(steps, message):
    with pytest.raises(ValueError, match=message):
        RecordedRun("job", steps, 2, 1.0)


POOLS = st.sampled_from([None, Pool.TF_LOADS, Pool.FEATURES, Pool.TRAINING])
TASKS = st.lists(
    st.builds(
        RecordedTask,
        name=st.just("t"),
        cpu_s=st.sampled_from([0.0, 0.5, 1.0, 3.0]),
        weight=st.sampled_from([1.0, 1.5, 3.0]),
    ),
    max_size=6,
).map(tuple)


@st.composite
def recorded_runs(draw) -> RecordedRun:
    steps: list[RecordedStep] = []
    for i in range(draw(st.integers(1, 6))):
        deps = draw(st.sets(st.sampled_from([s.key for s in steps]))) if steps else set()
        steps.append(
            RecordedStep(
                f"s{i}",
                tuple(sorted(deps)),
                draw(POOLS),
                1,
                draw(st.sampled_from([0.0, 0.5, 2.0])),
                draw(TASKS),
            )
        )
    return _run(*steps)


@settings(max_examples=150, deadline=None)
@given(
    run=recorded_runs(),
    cores=st.integers(1, 24),
    symbols=st.integers(1, 3),
    elastic=st.booleans(),
)
def test_invariants(run, cores, symbols, elastic):
    # With p = 1 a task's busy core-seconds are its cpu_s on any width, so all the work
    # done is known without replaying the policy.
    result = simulate(run, cores, symbols=symbols, elastic=elastic, parallel_fraction=1.0)
    assert max(held for _, held in result.cores_held) <= cores
    assert max(busy for _, busy in result.cores_busy) <= cores
    assert result.utilization <= 1.0 + 1e-9
    assert result.makespan_s >= makespan_bound_s(run, cores, symbols, 1.0) - 1e-9
    own_work = sum(s.serial_s * result.plan.threads_for(s.pool) for s in run.steps)
    task_work = sum(t.cpu_s for s in run.steps for t in s.tasks)
    assert result.busy_core_s == pytest.approx(symbols * (own_work + task_work))
    timeline = result.cores_busy
    integral = sum(
        busy * (end - start)
        for (start, busy), (end, _) in zip(
            timeline, [*timeline[1:], (result.makespan_s, 0)], strict=True
        )
    )
    assert integral == pytest.approx(result.busy_core_s, abs=1e-6)
    spans = {(s.run, s.key): s for s in result.steps}
    assert len(spans) == symbols * len(run.steps)
    for (index, key), span in spans.items():
        for dep in run.by_key[key].deps:
            assert spans[(index, dep)].end_s <= span.start_s + 1e-9
