"""The Dagster instance this project configures (dagster.yaml's `instance_class`).

Two things the stock instance lacks on one machine:

* First use is race-free. A fresh DAGSTER_HOME's SQLite files are created (tables,
  indexes, the alembic stamp) by whichever process loads the instance first; two runs
  started at once both try, and one dies with "table runs already exists". The instance
  here builds its storage under a file lock in the home, so the second process waits a
  moment and then finds the tables in place.
* The run queue follows the machine. Unless dagster.yaml sets
  `concurrency.runs.max_concurrent_runs`, queued runs (a backfill) start `symbols` + 1 at
  a time, from the resource plan of the machine the queue runs on (`ResourcePlan.
  queued_runs`): a fixed number leaves a big machine idle behind a short queue.
* Dead runs are noticed. Its run launcher tells run monitoring whether a run's
  orchestrator still lives (see `forex_assets.instance.orchestrators`), so the daemon
  marks a killed `dagster job execute` or `train` failed, not only the runs it launched.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import yaml
from dagster import DagsterInstance
from dagster._core.instance.config import ConcurrencyConfig
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage
from dagster._record import copy
from dagster._serdes import ConfigurableClassData
from filelock import FileLock

from forex_assets.compute.overrides import resolve_plan
from forex_assets.compute.plan import PlanSettings

INIT_LOCK_NAME = ".forex_assets_storage.lock"
INIT_LOCK_TIMEOUT_S = 300.0
_locks: dict[Path, FileLock] = {}


@contextmanager
def storage_initialization(home: str | Path) -> Iterator[None]:
    """Hold the home's storage lock (re-entrant within a process)."""
    path = Path(home).expanduser().resolve() / INIT_LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = _locks.setdefault(path, FileLock(path, timeout=INIT_LOCK_TIMEOUT_S))
    with lock:
        yield


class LockedSqliteStorage(DagsterSqliteStorage):
    """Dagster's SQLite storage, built (tables created, migrated) under the home's lock."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        with storage_initialization(base_dir):
            super().__init__(base_dir, inst_data)

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> LockedSqliteStorage:
        return cls.from_local(inst_data=inst_data, **config_value)


class ForexAssetsInstance(DagsterInstance):
    """DagsterInstance whose default storage is `LockedSqliteStorage`.

    An explicit `storage:` block (the PostgreSQL deployment) still wins: a server database
    creates its tables in transactions and needs no file lock.
    """

    @classmethod
    def config_schema(cls) -> dict:
        return {}

    @staticmethod
    def config_defaults(base_dir: str) -> Mapping[str, ConfigurableClassData | None]:
        defaults = dict(InstanceRef.config_defaults(base_dir))
        defaults["storage"] = ConfigurableClassData(
            LockedSqliteStorage.__module__,
            LockedSqliteStorage.__name__,
            yaml.dump({"base_dir": base_dir}, default_flow_style=False),
        )
        return defaults

    def get_concurrency_config(self) -> ConcurrencyConfig:
        """Dagster's concurrency settings, with the run queue sized to the machine unless
        dagster.yaml names `concurrency.runs.max_concurrent_runs` (the user's number wins)."""
        config = super().get_concurrency_config()
        runs = (self.get_settings("concurrency") or {}).get("runs") or {}
        if config.run_queue_config is None or "max_concurrent_runs" in runs:
            return config
        queue = config.run_queue_config._replace(max_concurrent_runs=queued_runs_of_this_machine())
        return copy(config, run_queue_config=queue)


@functools.cache
def queued_runs_of_this_machine() -> int:
    """The plan's `queued_runs` for this machine (its cores and the environment's
    overrides), computed once per process: the daemon asks on every queue pass."""
    plan, _ = resolve_plan(PlanSettings())
    return plan.queued_runs
