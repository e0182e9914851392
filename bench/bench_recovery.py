"""Kill -9 soak: runs of the symbol pipeline killed at random moments on one home.

`KILLS` runs (alternately `python -m forex_assets train` and `dagster job execute`) start
on one DAGSTER_HOME; each is SIGKILLed at a random moment of a normal run's duration,
either whole (its process group, as `kill -9` of a terminal's job) or one of its worker
processes only. Nobody cleans up in between: each next run must find and free what the
killed ones held. Then one more run must succeed, and afterwards the home must be
consistent: no run left in progress, every pool slot and core-ledger row free, no
temporary file in the store, every Parquet file readable, and the model folders of killed
runs found and removed by `python -m forex_assets models orphans --delete`.

Ours: that last run, after the kills. Anchor: the same run on a fresh home. Their ratio
is what recovering costs (reaping dead runs, redoing what they left half done).
Set BENCH_RECOVERY_KILLS for a shorter soak (default 20).
"""

from __future__ import annotations

import collections
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq

from bench.harness import BenchConfig, BenchResult, BenchRow, Measurement, check
from bench.process_tree import tree_pids
from forex_assets.compute.core_ledger import LEDGER_ENV, CoreLedger
from forex_assets.defs.jobs import SYMBOL_PIPELINE
from forex_assets.storage.atomic import TEMP_SUFFIX

DESCRIPTION = "kill -9 soak: random kills of train / dagster job execute on one home, then a run"
DEFAULT_CONFIG = {"repeats": 1, "years": 0.05}
KILLS = int(os.environ.get("BENCH_RECOVERY_KILLS", "20"))
REPO = Path(__file__).resolve().parents[1]
SYMBOL = "EURUSD"
RUN_TIMEOUT_S = 600


def _commands() -> dict[str, list[str]]:
    return {
        "train": [sys.executable, "-m", "forex_assets", "train", "--symbol", SYMBOL],
        "dagster job execute": [
            sys.executable, "-m", "dagster", "job", "execute", "-m", "forex_assets",
            "-j", SYMBOL_PIPELINE, "--tags", f'{{"dagster/partition": "{SYMBOL}"}}',
        ],
    }  # fmt: skip


def _home(root: Path, name: str, years: float) -> tuple[Path, dict[str, str]]:
    home = root / name
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "FOREX_ASSETS_SAMPLE_YEARS": str(years),
        LEDGER_ENV: str(home / "core_ledger.sqlite"),
    }
    env.pop("FOREX_ASSETS_HOME", None)
    return home, env


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start a run in its own process group, its output in `log` (a pipe nobody reads
    would fill up and stall the run)."""
    with log.open("w") as output:
        return subprocess.Popen(
            command,
            env=env,
            cwd=REPO,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _timed_run(command: list[str], env: dict[str, str], log: Path) -> float:
    begin = time.perf_counter()
    process = _start(command, env, log)
    process.wait(timeout=RUN_TIMEOUT_S)
    check(process.returncode == 0, f"{command[2:4]} failed: {log.read_text()[-2000:]}")
    return time.perf_counter() - begin


def _kill(process: subprocess.Popen, target: str) -> bool:
    """SIGKILL the whole group or one worker; False when there was nothing to kill."""
    if process.poll() is not None:
        return False
    if target == "run":
        os.killpg(process.pid, signal.SIGKILL)
        return True
    workers = [pid for pid in tree_pids(process.pid) if pid != process.pid]
    if not workers:
        os.killpg(process.pid, signal.SIGKILL)  # no worker yet: the kill hits the run
        return True
    os.kill(random.choice(workers), signal.SIGKILL)
    return True


def _last_step(instance: dg.DagsterInstance, earlier: set[str]) -> str:
    """The step the killed run (the one not in `earlier`) started last: where the kill hit."""
    runs = [r for r in instance.get_runs() if r.run_id not in earlier]
    if not runs:
        return "(before the run was created)"
    started = [
        r.event_log_entry.dagster_event.step_key
        for r in instance.get_records_for_run(
            runs[0].run_id, of_type=dg.DagsterEventType.STEP_START
        ).records
    ]
    return started[-1] if started else "(before the first step)"


def _check_consistent(home: Path, env: dict[str, str]) -> list[str]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        statuses = collections.Counter(r.status.value for r in instance.get_runs())
        in_progress = [
            r.run_id
            for r in instance.get_runs()
            if r.status in (dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING)
        ]
        check(not in_progress, f"runs left in progress after the soak: {in_progress}")
        storage = instance.event_log_storage
        for key in storage.get_concurrency_keys():
            info = storage.get_concurrency_info(key)
            check(
                info.active_slot_count == 0 and not info.pending_steps,
                f"pool {key!r} still has {info.active_slot_count} claimed slot(s) and "
                f"{len(info.pending_steps)} pending step(s)",
            )
    held = CoreLedger(Path(env[LEDGER_ENV]), os.cpu_count() or 1).held()
    check(held == 0, f"the core ledger still holds {held} core(s)")
    store = home / ".forex_assets" / "store"
    temps = sorted(str(p) for p in store.rglob(f"*{TEMP_SUFFIX}"))
    check(not temps, f"temporary files left in the store: {temps[:5]}")
    files = sorted(store.rglob("*.parquet"))
    for path in files:
        pq.read_metadata(path)  # raises on a partial or damaged file
    orphans = [sys.executable, "-m", "forex_assets", "models", "orphans"]
    deleted = subprocess.run(
        [*orphans, "--delete"], env=env, cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.count("deleted: ")
    listed = subprocess.run(orphans, env=env, cwd=REPO, capture_output=True, text=True).stdout
    check("no orphaned model folders" in listed, f"model folders left after --delete: {listed}")
    return [
        f"runs by final status: {dict(sorted(statuses.items()))}",
        f"`models orphans --delete` removed {deleted} model folder(s) of killed runs; none left",
        f"{len(files)} Parquet files readable, no temporary file left, all pool slots and "
        "core-ledger rows free",
    ]


def run(config: BenchConfig) -> BenchResult:
    rng = random.Random(13)
    commands = _commands()
    result = BenchResult("recovery", f"kill -9 soak: {KILLS} kills on one home", unit="runs")
    with tempfile.TemporaryDirectory(prefix="bench_recovery_") as tmp:
        root = Path(tmp)
        _, fresh_env = _home(root, "fresh", config.years)
        clean_s = _timed_run(commands["dagster job execute"], fresh_env, root / "fresh.log")

        home, env = _home(root, "soak", config.years)
        hits: collections.Counter[str] = collections.Counter()
        targets: collections.Counter[str] = collections.Counter()
        names = list(commands)
        for kill in range(KILLS):
            name = names[kill % 2]
            with dg.DagsterInstance.from_config(str(home)) as instance:
                earlier = {r.run_id for r in instance.get_runs()}
            process = _start(commands[name], env, root / f"killed_{kill}.log")
            deadline = time.monotonic() + rng.uniform(1.0, 0.9 * clean_s)
            while time.monotonic() < deadline and process.poll() is None:
                time.sleep(0.05)
            target = rng.choice(["run", "worker"])
            if _kill(process, target):
                targets[f"{name}: {target}"] += 1
                with dg.DagsterInstance.from_config(str(home)) as instance:
                    hits[_last_step(instance, earlier)] += 1
            try:
                process.wait(timeout=RUN_TIMEOUT_S)  # a killed worker's run goes on or fails
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                check(False, f"run {kill} did not end within {RUN_TIMEOUT_S} s of its kill")

        recovered_s = _timed_run(commands["dagster job execute"], env, root / "recovery.log")
        result.checks.extend(_check_consistent(home, env))

    result.rows.append(
        BenchRow(
            f"symbol_pipeline after {KILLS} kills",
            Measurement(recovered_s, 1),
            Measurement(clean_s, 1),
            "the same run on a fresh home",
        )
    )
    result.notes.append(
        "kills by command and target: " + ", ".join(f"{k} {v}" for k, v in sorted(targets.items()))
    )
    result.notes.append(
        "last step started when killed: " + ", ".join(f"{k} {v}" for k, v in hits.most_common())
    )
    return result
