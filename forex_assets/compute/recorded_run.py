"""A recorded run: the step graph and the work of each step, as the scheduling simulator replays it.

A run is recorded once (from a Dagster instance's event log, see
`forex_assets.instance.run_record`) and replayed at any core count, so the figures a
run took on 2 cores say what it would take on 252. What is kept is what does not depend
on the machine: each step's dependencies and pool, the single-threaded seconds of its own
work, and the CPU seconds of each task it fans out to (CPCV splits, strategy islands).
What does depend on the machine (threads per step, pool limits, how wide each task runs)
comes from the resource plan and the policy at replay. The JSON form lets a recorded run
travel as a file (bench/data/) and be replayed without the instance it came from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

FORMAT_VERSION = 1


@dataclass(frozen=True)
class RecordedTask:
    """One task of a step that fans out: `cpu_s` single-threaded seconds; `weight` orders
    the tasks (longest first) and shares the free cores between them; `grows`: it widens
    into cores that come free while it runs (`Task.grows`)."""

    name: str
    cpu_s: float
    weight: float
    grows: bool = False

    def __post_init__(self) -> None:
        if not self.cpu_s >= 0:
            raise ValueError(f"task {self.name!r}: cpu_s={self.cpu_s} must be zero or more seconds")
        if not self.weight > 0:
            raise ValueError(
                f"task {self.name!r}: weight={self.weight} must be positive (the elastic "
                "policy shares cores by weight); use its cpu_s, or 1 for equal tasks"
            )


@dataclass(frozen=True)
class RecordedStep:
    """One step: its dependencies, its pool, the threads it ran with when recorded, the
    single-threaded seconds of its own work outside its tasks, and its tasks."""

    key: str
    deps: tuple[str, ...]
    pool: str | None
    threads: int
    serial_s: float
    tasks: tuple[RecordedTask, ...] = ()

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise ValueError(f"step {self.key!r}: threads={self.threads} must be at least 1")
        if not self.serial_s >= 0:
            raise ValueError(
                f"step {self.key!r}: serial_s={self.serial_s} must be zero or more seconds"
            )

    @property
    def cpu_s(self) -> float:
        """The step's single-threaded work: its own seconds plus its tasks'."""
        return self.serial_s + sum(task.cpu_s for task in self.tasks)


@dataclass(frozen=True)
class RecordedRun:
    """A job's steps, each listed after its dependencies, and what the run measured.

    `startup_s` is the run's own start-up before its first step (loading the code
    location, the plan, the ledger), `teardown_s` its end after the last (stopping its
    workers); `source` says where the figures came from.
    """

    job: str
    steps: tuple[RecordedStep, ...]
    measured_cores: int
    measured_makespan_s: float
    startup_s: float = 0.0
    teardown_s: float = 0.0
    source: str = ""
    by_key: dict[str, RecordedStep] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.steps:
            raise ValueError(f"run of {self.job!r} has no steps; record a run that executed some")
        if self.measured_cores < 1:
            raise ValueError(f"measured_cores={self.measured_cores} must be at least 1")
        if not min(self.measured_makespan_s, self.startup_s, self.teardown_s) >= 0:
            raise ValueError(
                f"measured_makespan_s={self.measured_makespan_s}, startup_s={self.startup_s} "
                f"and teardown_s={self.teardown_s} must be zero or more seconds"
            )
        seen: dict[str, RecordedStep] = {}
        for step in self.steps:
            if step.key in seen:
                raise ValueError(f"step {step.key!r} is listed twice; step keys must be unique")
            later = [dep for dep in step.deps if dep not in seen]
            if later:
                raise ValueError(
                    f"step {step.key!r} depends on {later}, which are not listed before it; "
                    "list every step after its dependencies (a topological order) and name "
                    "only steps of the run"
                )
            seen[step.key] = step
        object.__setattr__(self, "by_key", seen)

    @property
    def cpu_s(self) -> float:
        return sum(step.cpu_s for step in self.steps)

    def to_json(self) -> str:
        document = {
            "format": FORMAT_VERSION,
            "source": self.source,
            "job": self.job,
            "measured_cores": self.measured_cores,
            "measured_makespan_s": self.measured_makespan_s,
            "startup_s": self.startup_s,
            "teardown_s": self.teardown_s,
            "steps": [
                {
                    "key": step.key,
                    "deps": list(step.deps),
                    "pool": step.pool,
                    "threads": step.threads,
                    "serial_s": step.serial_s,
                    "tasks": [
                        {
                            "name": task.name,
                            "cpu_s": task.cpu_s,
                            "weight": task.weight,
                            "grows": task.grows,
                        }
                        for task in step.tasks
                    ],
                }
                for step in self.steps
            ],
        }
        return json.dumps(document, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> RecordedRun:
        document = json.loads(text)
        version = document.get("format")
        if version != FORMAT_VERSION:
            raise ValueError(
                f"recorded run has format {version!r}; this version reads format "
                f"{FORMAT_VERSION}: record the run again (python -m forex_assets simulate "
                "--run RUN_ID --record FILE)"
            )
        return cls(
            job=document["job"],
            steps=tuple(
                RecordedStep(
                    key=step["key"],
                    deps=tuple(step["deps"]),
                    pool=step["pool"],
                    threads=int(step["threads"]),
                    serial_s=float(step["serial_s"]),
                    tasks=tuple(
                        RecordedTask(
                            task["name"],
                            float(task["cpu_s"]),
                            float(task["weight"]),
                            bool(task.get("grows", False)),  # recordings before growth
                        )
                        for task in step["tasks"]
                    ),
                )
                for step in document["steps"]
            ),
            measured_cores=int(document["measured_cores"]),
            measured_makespan_s=float(document["measured_makespan_s"]),
            startup_s=float(document.get("startup_s", 0.0)),
            teardown_s=float(document.get("teardown_s", 0.0)),
            source=document.get("source", ""),
        )

    def save(self, path: Path) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> RecordedRun:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))
