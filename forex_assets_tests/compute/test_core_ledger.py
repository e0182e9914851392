"""The machine-wide core ledger: capacity, idempotence, release, reaping, and contention."""

from __future__ import annotations

import multiprocessing
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from forex_assets.compute.core_ledger import LEDGER_ENV, CoreLedger, default_ledger_path
from forex_assets.processes import process_alive

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def ledger_path(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "ledger" / "core_ledger.sqlite"
    monkeypatch.setenv(LEDGER_ENV, str(path))
    return path


def rows(path: Path) -> list[tuple[str, int, int]]:
    """Raw holdings, read without reaping."""
    with sqlite3.connect(path) as db:
        return db.execute("SELECT holder, pid, cores FROM holdings ORDER BY holder").fetchall()


# ---------------------------------------------------------------- basics


def test_default_path_comes_from_the_environment(ledger_path):
    assert default_ledger_path() == ledger_path


def test_default_path_without_the_environment_is_per_user_in_the_temp_dir(monkeypatch):
    monkeypatch.delenv(LEDGER_ENV, raising=False)
    path = default_ledger_path()
    assert path.name == "core_ledger.sqlite"
    assert path.parent.parent == Path(tempfile.gettempdir())
    assert str(os.getuid()) in path.parent.name


def test_creates_its_directory(ledger_path):
    assert not ledger_path.parent.exists()
    CoreLedger(ledger_path, 2)
    assert ledger_path.exists()


@pytest.mark.parametrize("capacity", [0, -1])
def test_capacity_must_be_positive(ledger_path, capacity):
    with pytest.raises(ValueError, match="capacity"):
        CoreLedger(ledger_path, capacity)


@pytest.mark.parametrize("cores", [0, -2])
def test_acquire_needs_at_least_one_core(ledger_path, cores):
    ledger = CoreLedger(ledger_path, 4)
    with pytest.raises(ValueError, match="cores"):
        ledger.try_acquire("a", cores)
    assert ledger.held() == 0


def test_acquire_release_held(ledger_path):
    ledger = CoreLedger(ledger_path, 4)
    assert ledger.held() == 0
    assert ledger.try_acquire("run/a", 3)
    assert ledger.held() == 3
    assert not ledger.try_acquire("run/b", 2)  # 3 + 2 > 4
    assert ledger.held() == 3
    assert ledger.try_acquire("run/c", 1)  # exactly full
    assert ledger.held() == 4
    assert not ledger.try_acquire("run/d", 1)
    ledger.release("run/a")
    assert ledger.held() == 1
    assert ledger.try_acquire("run/b", 2)
    assert ledger.held() == 3
    ledger.release("run/b")
    ledger.release("run/c")
    assert ledger.held() == 0
    assert rows(ledger_path) == []


def test_a_request_larger_than_capacity_never_fits(ledger_path):
    ledger = CoreLedger(ledger_path, 4)
    assert not ledger.try_acquire("big", 5)
    assert ledger.held() == 0


def test_acquire_is_idempotent_for_the_same_holder(ledger_path):
    ledger = CoreLedger(ledger_path, 4)
    assert ledger.try_acquire("step", 2)
    assert ledger.try_acquire("step", 2)
    assert ledger.try_acquire("step", 3)  # already holds: no second reservation
    assert ledger.held() == 2
    assert ledger.try_acquire("other", 2)
    assert ledger.try_acquire("step", 1)  # the machine is full, but the holder holds already
    assert ledger.held() == 4
    ledger.release("step")
    assert ledger.held() == 2


def test_release_of_an_unknown_holder_is_harmless(ledger_path):
    ledger = CoreLedger(ledger_path, 4)
    ledger.try_acquire("a", 2)
    ledger.release("nobody")
    ledger.release("nobody")
    assert ledger.held() == 2


def test_release_all_by_prefix(ledger_path):
    ledger = CoreLedger(ledger_path, 16)
    for holder in ["run1/a", "run1/b", "run2/a", "xrun1/a", "run_%/a", "runX/a"]:
        assert ledger.try_acquire(holder, 2)
    ledger.release_all("run1/")
    assert [h for h, _, _ in rows(ledger_path)] == ["run2/a", "runX/a", "run_%/a", "xrun1/a"]
    ledger.release_all("run_%")  # no LIKE wildcards: only the literal prefix
    assert [h for h, _, _ in rows(ledger_path)] == ["run2/a", "runX/a", "xrun1/a"]
    ledger.release_all("nothing")
    assert ledger.held() == 6
    ledger.release_all("")
    assert ledger.held() == 0


def test_two_ledger_objects_share_the_file(ledger_path):
    first, second = CoreLedger(ledger_path, 4), CoreLedger(ledger_path, 4)
    assert first.try_acquire("a", 3)
    assert second.held() == 3
    assert not second.try_acquire("b", 2)
    first.release("a")
    assert second.try_acquire("b", 2)
    assert first.held() == 2


def test_live_reservations_of_this_process_are_not_reaped(ledger_path):
    ledger = CoreLedger(ledger_path, 4)
    ledger.try_acquire("mine", 2)
    assert [(h, pid) for h, pid, _ in rows(ledger_path)] == [("mine", os.getpid())]
    for _ in range(3):
        assert ledger.held() == 2


def test_a_reservation_of_another_host_is_never_reaped(ledger_path):
    ledger = CoreLedger(ledger_path, 4)
    with sqlite3.connect(ledger_path) as db:
        db.execute(
            "INSERT INTO holdings (holder, host, pid, cores, since) "
            "VALUES ('remote', 'other-host', 999999999, 3, 0)"
        )
    assert ledger.held() == 3
    assert not ledger.try_acquire("local", 2)


def test_a_reused_pid_does_not_keep_a_dead_holders_cores(ledger_path):
    """The row names a live pid (this process) but another start time: the pid was reused."""
    ledger = CoreLedger(ledger_path, 4)
    me = ledger.owner
    assert me.started is not None  # Linux tells start times; the check below needs one
    with sqlite3.connect(ledger_path) as db:
        db.execute(
            "INSERT INTO holdings (holder, host, pid, cores, since, started) "
            "VALUES ('dead-run:step', ?, ?, 4, 0, ?)",
            (me.host, me.pid, me.started - 1),
        )
    assert ledger.try_acquire("next", 4)
    assert [h.holder for h in ledger.holdings()] == ["next"]
    assert ledger.holdings()[0].owner == me


def test_a_ledger_written_before_start_times_is_upgraded_in_place(ledger_path):
    ledger_path.parent.mkdir(parents=True)
    with sqlite3.connect(ledger_path) as db:
        db.execute(
            "CREATE TABLE holdings (holder TEXT PRIMARY KEY, host TEXT NOT NULL, "
            "pid INTEGER NOT NULL, cores INTEGER NOT NULL, since REAL NOT NULL)"
        )
        db.execute("INSERT INTO holdings VALUES ('remote', 'other-host', 1, 1, 0)")
    ledger = CoreLedger(ledger_path, 4)
    assert ledger.try_acquire("local", 3)
    assert {h.holder: h.cores for h in ledger.holdings()} == {"remote": 1, "local": 3}


# ---------------------------------------------------------------- dead processes

CHILD = textwrap.dedent(
    """
    import sys, time
    from forex_assets.compute.core_ledger import CoreLedger
    ledger = CoreLedger(sys.argv[1], 4)
    assert ledger.try_acquire(sys.argv[2], int(sys.argv[3]))
    print("acquired", flush=True)
    if sys.argv[4] == "wait":
        time.sleep(120)
    """
)


def child_command(path: Path, holder: str, cores: int, mode: str) -> list[str]:
    return [sys.executable, "-c", CHILD, str(path), holder, str(cores), mode]


def test_reservations_of_an_exited_process_are_reaped(ledger_path):
    ledger = CoreLedger(ledger_path, 4)
    result = subprocess.run(
        child_command(ledger_path, "gone/step", 3, "exit"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "acquired"
    [(holder, pid, cores)] = rows(ledger_path)
    assert (holder, cores) == ("gone/step", 3)
    assert pid != os.getpid()
    assert not process_alive(pid)
    assert ledger.held() == 0
    assert rows(ledger_path) == []
    assert ledger.try_acquire("next", 4)


def test_reservations_of_a_killed_process_are_reaped(ledger_path):
    ledger = CoreLedger(ledger_path, 4)
    child = subprocess.Popen(
        child_command(ledger_path, "killed/step", 3, "wait"),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "acquired", child.stderr.read()
        assert ledger.held() == 3  # alive: its cores stay reserved
        assert not ledger.try_acquire("parent", 2)
        assert rows(ledger_path)[0][1] == child.pid
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    assert not process_alive(child.pid)
    assert ledger.try_acquire("parent", 2)  # try_acquire reaps too
    assert ledger.held() == 2
    assert [h for h, _, _ in rows(ledger_path)] == ["parent"]


# ---------------------------------------------------------------- contention across processes

STRESS_PROCESSES = 6
STRESS_LOOPS = 40
STRESS_CAPACITY = 4


def _stress_worker(path: str, index: int, barrier, results) -> None:
    """Acquire 1..3 cores, look at the total, release; report every total seen."""
    ledger = CoreLedger(Path(path), STRESS_CAPACITY)
    rng = random.Random(index)
    seen: list[tuple[int, int]] = []
    refused = 0
    barrier.wait()
    for loop in range(STRESS_LOOPS):
        cores = rng.randint(1, 3)
        holder = f"p{index}/{loop}"
        if ledger.try_acquire(holder, cores):
            seen.append((cores, ledger.held()))
            time.sleep(rng.uniform(0, 0.002))
            ledger.release(holder)
        else:
            refused += 1
            time.sleep(0.0005)
    results.put((index, seen, refused))


def test_capacity_is_never_exceeded_across_processes(ledger_path):
    CoreLedger(ledger_path, STRESS_CAPACITY)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(STRESS_PROCESSES)
    results = context.Queue()
    processes = [
        context.Process(target=_stress_worker, args=(str(ledger_path), i, barrier, results))
        for i in range(STRESS_PROCESSES)
    ]
    for process in processes:
        process.start()
    try:
        reports = [results.get(timeout=120) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    assert all(process.exitcode == 0 for process in processes)
    assert sorted(index for index, _, _ in reports) == list(range(STRESS_PROCESSES))
    observations = [pair for _, seen, _ in reports for pair in seen]
    refused = sum(count for _, _, count in reports)
    assert len(observations) + refused == STRESS_PROCESSES * STRESS_LOOPS
    assert observations, "no process ever acquired"
    for own, held in observations:
        assert own <= held <= STRESS_CAPACITY, (own, held)
    assert CoreLedger(ledger_path, STRESS_CAPACITY).held() == 0
    assert rows(ledger_path) == []


# ---------------------------------------------------------------- model-based tests

HOLDERS = ["r1/a", "r1/b", "r1/c", "r10/a", "r2/a", "r2/b", "x"]
PREFIXES = ["r1", "r1/", "r2/", "r", "x", "none", ""]


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.directory = tempfile.mkdtemp(prefix="ledger-state-")
        self.model: dict[str, int] = {}

    @initialize(capacity=st.integers(1, 8))
    def open_ledger(self, capacity):
        self.ledger = CoreLedger(Path(self.directory) / "ledger.sqlite", capacity)

    @rule(holder=st.sampled_from(HOLDERS), cores=st.integers(1, 9))
    def acquire(self, holder, cores):
        if holder in self.model:
            expected = True
        else:
            expected = sum(self.model.values()) + cores <= self.ledger.capacity
            if expected:
                self.model[holder] = cores
        assert self.ledger.try_acquire(holder, cores) is expected

    @rule(holder=st.sampled_from(HOLDERS))
    def release(self, holder):
        self.ledger.release(holder)
        self.model.pop(holder, None)

    @rule(prefix=st.sampled_from(PREFIXES))
    def release_all(self, prefix):
        self.ledger.release_all(prefix)
        self.model = {h: c for h, c in self.model.items() if not h.startswith(prefix)}

    @invariant()
    def held_matches_the_model(self):
        if hasattr(self, "ledger"):
            held = self.ledger.held()
            assert held == sum(self.model.values())
            assert held <= self.ledger.capacity

    def teardown(self):
        shutil.rmtree(self.directory, ignore_errors=True)


TestLedgerStateMachine = LedgerMachine.TestCase
TestLedgerStateMachine.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)


@settings(max_examples=40, deadline=None)
@given(
    capacity=st.integers(1, 6),
    operations=st.lists(
        st.tuples(st.sampled_from(["acquire", "release"]), st.integers(0, 4), st.integers(1, 4)),
        max_size=30,
    ),
)
def test_operation_sequences_match_a_model(capacity, operations):
    with tempfile.TemporaryDirectory() as directory:
        ledger = CoreLedger(Path(directory) / "ledger.sqlite", capacity)
        model: dict[int, int] = {}
        for operation, holder, cores in operations:
            if operation == "acquire":
                fits = holder in model or sum(model.values()) + cores <= capacity
                assert ledger.try_acquire(f"h{holder}", cores) is fits
                if fits:
                    model.setdefault(holder, cores)
            else:
                ledger.release(f"h{holder}")
                model.pop(holder, None)
            assert ledger.held() == sum(model.values()) <= capacity


# ---------------------------------------------------------------- leases, waiting steps, history


def test_a_lease_takes_what_want_asks_of_the_idle_cores(ledger_path):
    ledger = CoreLedger(ledger_path, 8)
    assert ledger.try_acquire("r:step", 2)
    seen = []
    assert ledger.lease("r:step/lease/1", lambda free: seen.append(free) or 3) == 3
    assert seen == [6]
    assert ledger.lease("r:step/lease/2", lambda free: 0) == 0  # nothing taken, nothing held
    assert ledger.held() == 5
    with pytest.raises(ValueError, match="already holds"):
        ledger.lease("r:step/lease/1", lambda free: 1)
    with pytest.raises(ValueError, match="between 0 and the 3 leasable"):
        ledger.lease("r:step/lease/3", lambda free: free + 1)
    ledger.release("r:step/lease/1")
    assert ledger.held() == 2


def test_waiting_steps_come_before_leases_and_stop_waiting_once_admitted(ledger_path):
    ledger = CoreLedger(ledger_path, 8)
    assert ledger.try_acquire("a:train", 2)
    ledger.set_waiting("b:", {"b:features": 1, "b:train": 4})
    assert ledger.waiting() == {"b:features": 1, "b:train": 4}
    assert ledger.lease("a:train/lease/1", lambda free: free) == 1  # 8 - 2 held - 5 waiting
    assert ledger.try_acquire("b:train", 4)  # waiting steps acquire the cores kept for them
    assert ledger.waiting() == {"b:features": 1}
    ledger.set_waiting("b:", {})  # replaced, per run
    assert ledger.waiting() == {}
    with pytest.raises(ValueError, match="do not start with prefix"):
        ledger.set_waiting("b:", {"c:x": 1})
    ledger.set_waiting("b:", {"b:x": 1})
    ledger.release_all("b:")  # a run's end withdraws its waits too
    assert ledger.waiting() == {}


def test_history_keeps_each_reservation_with_its_end(ledger_path):
    ledger = CoreLedger(ledger_path, 4)
    assert ledger.try_acquire("r:a", 1)
    assert ledger.lease("r:a/lease/1", lambda free: 2) == 2
    ledger.release("r:a/lease/1")
    assert ledger.try_acquire("other:a", 1)
    spans = ledger.history("r:")
    assert [(s.holder, s.cores, s.is_lease, s.step_holder) for s in spans] == [
        ("r:a", 1, False, "r:a"),
        ("r:a/lease/1", 2, True, "r:a"),
    ]
    assert spans[0].end is None and spans[1].end >= spans[1].start
    ledger.release_all("r:")
    assert all(s.end is not None for s in ledger.history("r:"))


class ElasticLedgerMachine(RuleBasedStateMachine):
    """Steps acquire, lease per task, wait, release, and die, in any order; the ledger
    never holds more than its capacity and never lends the cores waiting steps need."""

    def __init__(self):
        super().__init__()
        self.directory = tempfile.mkdtemp(prefix="ledger-elastic-")
        self.held: dict[str, int] = {}
        self.waits: dict[str, dict[str, int]] = {}
        self.leases = 0

    @initialize(capacity=st.integers(1, 8))
    def open_ledger(self, capacity):
        self.ledger = CoreLedger(Path(self.directory) / "ledger.sqlite", capacity)

    def free(self) -> int:
        return self.ledger.capacity - sum(self.held.values())

    @rule(step=st.sampled_from(["r1:a", "r1:b", "r2:a"]), cores=st.integers(1, 4))
    def acquire(self, step, cores):
        expected = step in self.held or cores <= self.free()
        assert self.ledger.try_acquire(step, cores) is expected
        if expected:
            self.held.setdefault(step, cores)
            for waits in self.waits.values():
                waits.pop(step, None)

    @rule(step=st.sampled_from(["r1:a", "r2:a"]), ask=st.integers(1, 8))
    def lease(self, step, ask):
        waiting = sum(sum(w.values()) for w in self.waits.values())
        leasable = max(0, self.free() - waiting)
        self.leases += 1
        holder = f"{step}/lease/{self.leases}"
        granted = self.ledger.lease(holder, lambda free: min(free, ask))
        assert granted == min(leasable, ask)
        if granted:
            self.held[holder] = granted

    @rule(run=st.sampled_from(["r1:", "r2:", "r3:"]), cores=st.integers(0, 4))
    def wait(self, run, cores):
        needs = {f"{run}waiting": cores} if cores else {}
        self.ledger.set_waiting(run, needs)
        self.waits[run] = needs

    @rule(data=st.data())
    def release(self, data):
        if self.held:
            holder = data.draw(st.sampled_from(sorted(self.held)))
            self.ledger.release(holder)
            del self.held[holder]

    @rule(data=st.data())
    def kill(self, data):
        """The process behind a holder dies (its start time no longer matches)."""
        if not self.held:
            return
        holder = data.draw(st.sampled_from(sorted(self.held)))
        with sqlite3.connect(self.ledger.path) as db:
            db.execute("UPDATE holdings SET started = started - 1 WHERE holder = ?", (holder,))
        del self.held[holder]

    @rule(run=st.sampled_from(["r1:", "r2:"]))
    def run_ends(self, run):
        self.ledger.release_all(run)
        self.held = {h: c for h, c in self.held.items() if not h.startswith(run)}
        self.waits.pop(run, None)

    @invariant()
    def within_capacity_and_as_modelled(self):
        if hasattr(self, "ledger"):
            held = self.ledger.held()
            assert held == sum(self.held.values()) <= self.ledger.capacity

    def teardown(self):
        shutil.rmtree(self.directory, ignore_errors=True)


TestElasticLedgerStateMachine = ElasticLedgerMachine.TestCase
TestElasticLedgerStateMachine.settings = settings(
    max_examples=40, stateful_step_count=25, deadline=None
)
