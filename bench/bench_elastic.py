"""README command 1 with elastic steps vs the static plan, side by side in one run.

Both sides run `dagster job execute -m forex_assets -j symbol_pipeline` for EURUSD on the
embedded sample data (`--years`, default 2 as the README), each in a fresh Dagster home
with the repository's dagster.yaml, one after the other on this machine, after a
warm-up run of `WARMUP_YEARS` in a throwaway home: the first run on a machine compiles
and caches the numba kernels (tens of CPU seconds), which would otherwise be charged to
whichever side runs first. Ours: the
default executor config (elastic). Anchor: the same job with `execution: config:
{elastic: false}`, the static plan (every step's share fixed at admission).

Measured for each: wall; CPU seconds of the whole process tree (the command's rusage,
which includes every worker it reaped); effective cores = CPU / wall, against the usable
cores; `trained_models`' wall and CPU seconds (from the run's "Core use" event); and, as
the never-oversubscribed check, the runnable threads of the command's process tree,
sampled from /proc every `RUNNABLE_SAMPLE_S` (p99 must stay within usable cores + 1).

Targets (issue 14): effective cores >= 0.90 of usable; wall >= 1.6x faster than the
static plan; `trained_models` wall <= 1.15 x its CPU seconds / usable cores.

Both runs are also recorded (`forex_assets.instance.run_record`) and replayed by the
scheduling simulator under their own policy on these cores: the simulated makespans must
land within `REPLAY_TOLERANCE` of the measured walls. The recordings are saved to
bench/results/ (the static one is what bench/data/symbol_pipeline_2cores.json holds).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import numpy as np

from bench.harness import BenchConfig, BenchResult, BenchRow, Measurement, check
from bench.process_tree import TreeSampler
from forex_assets.compute.machine import detect_machine
from forex_assets.compute.recorded_run import RecordedRun
from forex_assets.compute.schedule_simulator import simulate
from forex_assets.instance.run_record import record_run

DESCRIPTION = "README command 1: elastic steps vs the static plan (wall, effective cores)"
DEFAULT_CONFIG = {"repeats": 1}
REPO = Path(__file__).resolve().parents[1]
TRAINING_STEP = "trained_models"
REPLAY_TOLERANCE = 0.15
WARMUP_YEARS = 0.05
RESULTS = REPO / "bench" / "results"


@dataclass(frozen=True)
class PipelineRun:
    wall_s: float
    cpu_s: float
    runnable_p99: float
    training_wall_s: float
    training_cpu_s: float
    logged_effective: float
    recorded: RecordedRun

    def effective(self) -> float:
        return self.cpu_s / self.wall_s


def _step_use(home: Path) -> tuple[dict, float]:
    """The run's per-step use and logged effective cores, from its "Core use" event."""
    code = (
        "import json, dagster as dg\n"
        "from forex_assets.executor.budgeted import CORE_USE_PREFIX, STEP_USE_METADATA\n"
        "with dg.DagsterInstance.get() as instance:\n"
        "    [run] = instance.get_runs()\n"
        "    for record in instance.get_records_for_run(run.run_id).records:\n"
        "        entry = record.event_log_entry\n"
        "        if entry.message.startswith(CORE_USE_PREFIX):\n"
        "            data = entry.dagster_event.engine_event_data.metadata\n"
        "            print(json.dumps([data[STEP_USE_METADATA].value,\n"
        "                              data['effective cores'].value]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "DAGSTER_HOME": str(home)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    import json

    steps, effective = json.loads(out.strip().splitlines()[-1])
    return steps, effective


def _readme_command(work: Path, name: str, symbol: str, years: float, elastic: bool):
    """A fresh home under `work` and README command 1 run in it: (home, command, env)."""
    home = work / name
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    run_config = home / "run.yaml"
    run_config.write_text(f"execution:\n  config:\n    elastic: {str(elastic).lower()}\n")
    command = [sys.executable, "-m", "dagster", "job", "execute", "-m", "forex_assets", "-j",
               "symbol_pipeline", "--tags", f'{{"dagster/partition": "{symbol}"}}',
               "-c", str(run_config)]  # fmt: skip
    env = {**os.environ, "DAGSTER_HOME": str(home), "FOREX_ASSETS_SAMPLE_YEARS": f"{years:g}"}
    env.pop("FOREX_ASSETS_HOME", None)
    return home, command, env


def _warm_up(work: Path, config: BenchConfig) -> None:
    """README command 1 on a short sample in a throwaway home: compiles and caches the
    numba kernels before either measured side runs."""
    home, command, env = _readme_command(work, "warm-up", config.symbol, WARMUP_YEARS, True)
    done = subprocess.run(command, cwd=home, env=env, capture_output=True, text=True)
    check(done.returncode == 0, f"the warm-up run failed:\n{done.stderr[-3000:]}")


def _run_pipeline(work: Path, name: str, elastic: bool, config: BenchConfig) -> PipelineRun:
    home, command, env = _readme_command(work, name, config.symbol, config.years, elastic)
    log = home / "run.log"
    with log.open("w") as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=home, env=env, stdout=out, stderr=out)
        with TreeSampler() as sampler:  # this process's tree: the command and its workers
            _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    check(process.returncode == 0, f"{name}: the pipeline failed; see {log}")
    steps, effective = _step_use(home)
    training = steps[TRAINING_STEP]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        [finished] = instance.get_runs()
        recorded = record_run(instance, finished.run_id)
    RESULTS.mkdir(parents=True, exist_ok=True)
    recorded.save(RESULTS / f"symbol_pipeline_{detect_machine().cores}cores_{name}.json")
    return PipelineRun(
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        runnable_p99=float(np.percentile(sampler.samples, 99)),
        training_wall_s=training["seconds"],
        training_cpu_s=training["cpu_s"],
        logged_effective=effective,
        recorded=recorded,
    )


def run(config: BenchConfig) -> BenchResult:
    cores = detect_machine().cores
    result = BenchResult(
        name="elastic",
        title=f"symbol_pipeline {config.symbol}, {config.years:g} years, {cores} cores",
        unit="runs",
    )
    with tempfile.TemporaryDirectory(prefix="bench_elastic_") as tmp:
        work = Path(tmp)
        _warm_up(work, config)
        elastic = _run_pipeline(work, "elastic", True, config)
        static = _run_pipeline(work, "static", False, config)
    for name, measured in (("elastic", elastic), ("static plan", static)):
        check(
            measured.runnable_p99 <= cores + 1,
            f"{name}: runnable threads p99 {measured.runnable_p99:.0f} > {cores} cores + 1",
        )
    replays = []
    for name, measured, elastic_policy in (
        ("elastic", elastic, True),
        ("static plan", static, False),
    ):
        simulated = simulate(measured.recorded, cores, elastic=elastic_policy).makespan_s
        error = (simulated - measured.wall_s) / measured.wall_s
        check(
            abs(error) <= REPLAY_TOLERANCE,
            f"{name}: the simulator replays the recorded run in {simulated:.0f} s, measured "
            f"{measured.wall_s:.0f} s ({error:+.0%}), beyond {REPLAY_TOLERANCE:.0%}",
        )
        replays.append(f"{name} {simulated:.0f} s vs {measured.wall_s:.0f} s ({error:+.1%})")
    result.checks.append(
        "the simulator replays each recorded run under its policy within "
        f"{REPLAY_TOLERANCE:.0%} of its measured wall: " + "; ".join(replays)
    )
    result.checks.append(
        f"both runs succeed; runnable threads p99 within usable cores + 1 "
        f"(elastic {elastic.runnable_p99:.0f}, static {static.runnable_p99:.0f}, cores {cores})"
    )
    result.rows.append(
        BenchRow(
            "README command 1, wall",
            Measurement(elastic.wall_s, 1, (elastic.wall_s,)),
            Measurement(static.wall_s, 1, (static.wall_s,)),
            "static plan (elastic: false)",
        )
    )
    result.rows.append(
        BenchRow(
            f"{TRAINING_STEP}, wall",
            Measurement(elastic.training_wall_s, 1, (elastic.training_wall_s,)),
            Measurement(static.training_wall_s, 1, (static.training_wall_s,)),
            "static plan (elastic: false)",
        )
    )

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    for name, measured in (("elastic", elastic), ("static plan", static)):
        share = measured.effective() / cores
        bound = measured.training_wall_s / (measured.training_cpu_s / cores)
        result.notes.append(
            f"{name}: {measured.wall_s:.0f} s wall, {measured.cpu_s:.0f} CPU s, "
            f"{measured.effective():.2f} effective cores of {cores} ({share:.0%}; the run's "
            f"own log says {measured.logged_effective:.2f}); {TRAINING_STEP} "
            f"{measured.training_wall_s:.0f} s for {measured.training_cpu_s:.0f} CPU s "
            f"(wall / (CPU / cores) = {bound:.2f})"
        )
    share = elastic.effective() / cores
    speedup = static.wall_s / elastic.wall_s
    bound = elastic.training_wall_s / (elastic.training_cpu_s / cores)
    result.notes.append(
        f"targets: effective cores >= 0.90 of usable: {share:.2f} ({verdict(share >= 0.9)}); "
        f"wall >= 1.6x the static plan: {speedup:.2f}x ({verdict(speedup >= 1.6)}); "
        f"{TRAINING_STEP} wall <= 1.15 x CPU / cores: {bound:.2f} ({verdict(bound <= 1.15)})"
    )
    return result
