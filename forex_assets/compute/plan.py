"""The resource plan: one set of numbers, derived from the machine, that every layer obeys.

The bot this project replaces collapsed to "1 core active" on 252 cores because every
layer sized itself from the whole machine at once: 252 feature threads, 63 BLAS threads
in each of 300 processes, every model trainer taking every core. Its fix was a hard cap of
8 everywhere, which wastes big machines and still oversubscribes small ones. Here a plan
gives each layer its share instead, so that the threads of everything running at once
add up to the usable cores and no more.

Derivations (every default below comes from one of these):

- **Threads per step.** Bar and feature steps are single-threaded kernels (polars on one
  timeframe, TA-Lib's C loops), so they get one thread and parallelism comes from running
  timeframes side by side. A training step gets ``round(sqrt(cores))`` threads: measured on
  16 cores, ten LightGBM folds took 105 s on 1 thread, 12.6 s as 4 processes x 4 threads
  and much longer with wider processes, because LightGBM's OpenMP scaling flattens past a
  few threads while more processes scale almost linearly until memory runs out; the
  square root lands on 4x4 at 16 cores and keeps both factors growing on larger machines.
- **Pool limits.** A pool admits as many steps as their threads fit in the cores:
  ``cores // threads_per_step``, and no more than their memory estimate fits in
  ``MEMORY_HEADROOM`` of usable memory.
- **Symbols.** What dominates a symbol's heavy stage (first feature step to the end of
  training) is training, whose tasks grow into whatever cores are idle; on average over
  that stage one symbol keeps `HEAVY_STAGE_WIDTH` cores busy (the scheduling simulator's
  `heavy_stage_width` of the recorded 2-core run: its CPU seconds over its span, tasks one
  thread each). A machine wider than that needs ``ceil(cores / width)`` symbols in their
  heavy stage to stay busy, plus one to fill in while a symbol is in its narrow feature,
  matrix and fold steps; a machine no wider than one symbol needs one. Bounded by memory
  per symbol. Replayed 28-symbol backfills: `python -m bench.run simulator`.

Running steps never exceed the cores regardless of pool limits: the executor charges
every step's threads against a machine-wide core ledger (see `core_ledger`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from enum import StrEnum

from forex_assets.compute.machine import MachineResources

GiB = 2**30


class Pool(StrEnum):
    """The concurrency pools the plan sizes; steps name theirs with `pool=Pool.X`."""

    TF_LOADS = "tf_loads"
    FEATURES = "features"
    SYMBOLS = "symbols"
    TRAINING = "training"


POOLS = tuple(Pool)
# Heavy stages: a run holds a `symbols` slot from its first step in these pools to its last.
HEAVY_POOLS = frozenset({Pool.FEATURES, Pool.TRAINING})
# A step that has waited this long for cores reserves them: no step behind it starts until
# it does. Long enough for small steps to fill short gaps, short next to the minutes a
# wide (training) step runs, so a wide step never starves behind a stream of narrow ones.
STARVATION_S = 5.0
# Memory a step may use at its peak, for 2 years of M1 source data (750k rows):
# resampling holds the M1 frame and its groups (~0.25 GiB) -> 0.5 GiB with headroom;
# a feature step on the M1 timeframe holds ~150 float64 columns of 750k rows (~0.9 GiB)
# -> 2 GiB; a training split holds its slice of the feature matrix and the model -> 2 GiB;
# a symbol's heavy stages together stay under 4 GiB (the training issue's target).
STEP_MEMORY_BYTES = {
    Pool.TF_LOADS: GiB // 2,
    Pool.FEATURES: 2 * GiB,
    Pool.TRAINING: 2 * GiB,
    Pool.SYMBOLS: 4 * GiB,
}
# Cores one symbol keeps busy on average through its heavy stage (see "Symbols" above):
# heavy_stage_width of bench/data/symbol_pipeline_2cores.json, which bench simulator prints.
HEAVY_STAGE_WIDTH = 6.4
# Share of usable memory the plan hands to steps; the rest is for the OS, page cache,
# the orchestrating process and the Dagster webserver/daemon.
MEMORY_HEADROOM = 0.8


@dataclass(frozen=True)
class PlanSettings:
    """Explicit choices; None means "derive from the machine"."""

    cores: int | None = None
    tf_loads: int | None = None
    features: int | None = None
    symbols: int | None = None
    training: int | None = None
    training_threads: int | None = None
    feature_threads: int | None = None
    blas_threads: int | None = None

    def merged_over(self, base: PlanSettings) -> PlanSettings:
        """These settings, falling back to `base` where they are None."""
        return PlanSettings(
            **{
                f.name: getattr(self, f.name)
                if getattr(self, f.name) is not None
                else getattr(base, f.name)
                for f in fields(self)
            }
        )


@dataclass(frozen=True)
class ResourcePlan:
    """The shares: pool limits, threads per step, and the reason behind each figure."""

    cores: int
    memory_bytes: int
    pool_limits: dict[str, int]
    step_threads: dict[str, int]
    blas_threads_cap: int
    reasons: dict[str, str] = field(default_factory=dict)
    # Pools whose threads per step were set explicitly (run config, environment): their
    # steps keep exactly that many and never lease more.
    explicit_threads: frozenset[str] = frozenset()

    def threads_for(self, pool: str | None, requested: int | None = None) -> int:
        """Threads a step gets: what it asked for, else its pool's share; never above cores."""
        share = requested if requested is not None else self.step_threads.get(pool or "", 1)
        return max(1, min(share, self.cores))

    @property
    def queued_runs(self) -> int:
        """Runs the queue starts at once: one more than `symbols`, so that while every
        slot is in its heavy stage a next run is already loading its bars."""
        return self.pool_limits[Pool.SYMBOLS] + 1

    def as_rows(self) -> list[tuple[str, str, str]]:
        """(figure, value, why) rows, for the run's event log and the CLI."""
        rows = [
            ("usable cores", str(self.cores), self.reasons.get("cores", "")),
            ("usable memory", f"{self.memory_bytes / GiB:.1f} GiB", self.reasons.get("memory", "")),
        ]
        rows += [(f"pool {p}", str(self.pool_limits[p]), self.reasons.get(p, "")) for p in POOLS]
        # reasons are keyed by the setting behind each figure ("feature_threads", "blas_threads")
        thread_reasons = {"features": "feature_threads"}
        rows += [
            (
                f"threads per {p} step",
                str(n),
                self.reasons.get(thread_reasons.get(p, f"{p}_threads"), ""),
            )
            for p, n in self.step_threads.items()
        ]
        rows.append(
            (
                "queued runs at once",
                str(self.queued_runs),
                "symbols + 1, so a backfill has a run starting while every slot is busy "
                "(dagster.yaml's concurrency.runs.max_concurrent_runs, where set, wins)",
            )
        )
        rows.append(
            (
                "BLAS/OpenMP threads cap",
                str(self.blas_threads_cap),
                self.reasons.get("blas_threads", ""),
            )
        )
        return rows

    def as_markdown(self) -> str:
        lines = ["| figure | value | why |", "|---|---:|---|"]
        lines += [f"| {a} | {b} | {c} |" for a, b, c in self.as_rows()]
        return "\n".join(lines)


def default_training_threads(cores: int) -> int:
    return max(1, min(cores, round(math.sqrt(cores))))


def plan_resources(
    machine: MachineResources, settings: PlanSettings = PlanSettings()
) -> ResourcePlan:
    """Derive the plan for `machine`; explicit `settings` win but are clamped to the cores."""
    reasons: dict[str, str] = {}

    def chosen(name: str, derived: int, why: str, ceiling: int) -> int:
        explicit = getattr(settings, name)
        if explicit is None:
            reasons[name] = why
            return max(1, min(derived, ceiling))
        value = max(1, min(explicit, ceiling))
        reasons[name] = f"set to {explicit}" + (
            f", clamped to {value}" if value != explicit else ""
        )
        return value

    cores = chosen("cores", machine.cores, _core_source(machine), machine.cores)
    memory = machine.memory_bytes
    reasons["memory"] = (
        "cgroup memory limit"
        if machine.sources.get("cgroup_memory_limit", "none") != "none"
        else "physical memory"
    )
    budget_memory = memory * MEMORY_HEADROOM

    def memory_bound(pool: str) -> int:
        return max(1, int(budget_memory // STEP_MEMORY_BYTES[pool]))

    training_threads = chosen(
        "training_threads",
        default_training_threads(cores),
        f"round(sqrt({cores} cores)), the floor: elastic training leases idle cores per task",
        cores,
    )
    feature_threads = chosen("feature_threads", 1, "single-threaded indicator kernels", cores)
    step_threads = {
        Pool.TF_LOADS: 1,
        Pool.FEATURES: feature_threads,
        Pool.TRAINING: training_threads,
    }
    reasons["tf_loads_threads"] = "single-threaded resampling; timeframes run side by side"

    limits = {
        Pool.TF_LOADS: chosen(
            "tf_loads",
            min(cores, memory_bound(Pool.TF_LOADS)),
            f"min({cores} cores / 1 thread, memory for {memory_bound(Pool.TF_LOADS)} steps)",
            cores,
        ),
        Pool.FEATURES: chosen(
            "features",
            min(cores // feature_threads, memory_bound(Pool.FEATURES)),
            f"min({cores} cores / {feature_threads} threads, memory for {memory_bound(Pool.FEATURES)} steps)",
            cores,
        ),
        Pool.TRAINING: chosen(
            "training",
            min(cores // training_threads, memory_bound(Pool.TRAINING)),
            f"min({cores} cores / {training_threads} threads, memory for {memory_bound(Pool.TRAINING)} steps)",
            cores,
        ),
    }
    to_fill = 1 if cores <= HEAVY_STAGE_WIDTH else math.ceil(cores / HEAVY_STAGE_WIDTH) + 1
    width_reason = (
        f"1: {cores} cores are no wider than one symbol's heavy stage ({HEAVY_STAGE_WIDTH} cores)"
        if to_fill == 1
        else f"ceil({cores} cores / {HEAVY_STAGE_WIDTH} cores one symbol's heavy stage keeps "
        "busy) + 1 in its narrow steps"
    )
    limits[Pool.SYMBOLS] = chosen(
        Pool.SYMBOLS,
        min(to_fill, memory_bound(Pool.SYMBOLS)),
        f"min({width_reason}, memory for {memory_bound(Pool.SYMBOLS)} symbols)",
        cores,
    )
    blas = chosen("blas_threads", cores, "no cap beyond each step's own budget", cores)
    explicit = frozenset(
        pool
        for pool, setting in (
            (Pool.TRAINING, "training_threads"),
            (Pool.FEATURES, "feature_threads"),
        )
        if getattr(settings, setting) is not None
    )
    return ResourcePlan(cores, memory, limits, step_threads, blas, reasons, explicit)


def _core_source(machine: MachineResources) -> str:
    quota = machine.sources.get("cgroup_cpu_quota", "none")
    affinity = machine.sources.get("affinity_cores", "?")
    if quota != "none":
        return f"min(affinity {affinity}, cgroup quota {quota})"
    return (
        f"CPU affinity ({affinity}; os.cpu_count() says {machine.sources.get('os_cpu_count', '?')})"
    )
