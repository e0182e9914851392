"""Dagster's default run launcher, plus a health check run monitoring can use.

The stock launcher cannot say whether a run's worker lives, so the daemon's run
monitoring never fails a run whose process was killed: it stays STARTED and its pool
slots stay claimed. This one answers from the orchestrator tag every run of this project
carries, for runs the daemon launched and for `dagster job execute` and `train` alike.
"""

from __future__ import annotations

from dagster import DagsterRun, DefaultRunLauncher
from dagster._core.launcher.base import CheckRunHealthResult, WorkerStatus

from forex_assets.instance.orchestrators import dead_orchestrator_message, orchestrator_of


class MonitoredRunLauncher(DefaultRunLauncher):
    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        orchestrator = orchestrator_of(run)
        # Untagged (not started by the budgeted executor yet, or another executor) or on
        # another host: nothing to tell. Only a definite death fails a run.
        if orchestrator is None or orchestrator.alive() is not False:
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        return CheckRunHealthResult(
            WorkerStatus.FAILED, dead_orchestrator_message(run, orchestrator)
        )
