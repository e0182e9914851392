"""Schedules: refresh every symbol's features after each FX day, retrain after each FX week.

`daily_refresh` ticks Monday to Friday at 17:10 New York time, ten minutes after the FX
day closes (17:00 New York, the daily-bar close of `forex_assets.market.fx_calendar`), so
the day's last bars are final, and requests one `refresh_features` run per symbol of the
`symbols` partition set. Saturday and Sunday have no FX day to close: the week's last day
closes Friday 17:00 and the next opens Sunday 17:00. `weekly_retrain` ticks Saturday at
06:00 New York, after the week has closed and Friday's refresh has had the night, and
requests one `retrain` run per symbol that has a feature matrix to train on (a symbol
registered but never refreshed is logged and left out: its run could only fail on missing
inputs). Both run on the New York clock (`execution_timezone`), so they follow US daylight
saving time as the FX day does.

A partition key that is not a symbol's canonical spelling (`eurusd` or `../../EURUSD`
added through the UI or the API) is logged and left out by both: its run would fail at
start (see `forex_assets.executor.symbols`).

Each request's run key is ``<schedule>:<symbol>:<scheduled date>``: a tick that is
evaluated again (daemon restart, failure recovery) launches no second run for a symbol and
day, while the next day's tick gets new keys. Runs are tagged with the schedule and the
date (`forex_assets/schedule`, `forex_assets/scheduled_date`, besides Dagster's own
`dagster/schedule_name`).

How many of these runs compute at once: the requests go to the instance's run queue (the
queued run coordinator; `dagster.yaml` starts at most `max_concurrent_runs` queued runs at
once), and inside each run the project's executor (`forex_assets.executor`) holds a slot of
the instance pool `symbols` from the run's first heavy step (pools `features` and
`training`) to its last. The pool's limit comes from the resource plan at run start
(`python -m forex_assets plan`; a limit set by hand with `dagster instance concurrency set
symbols N` wins), and since pool slots live in the instance's storage, that limit holds
across all the runs a tick starts: with twenty symbols, twenty runs are queued, a few
start, and at most the plan's number of symbols are in feature or training steps at any
moment; the others wait for a slot, holding no cores. Steps also draw their cores from the
machine-wide core ledger, so concurrent runs never oversubscribe the machine.
"""

from collections.abc import Iterator, Sequence
from zoneinfo import ZoneInfo

import dagster as dg

from forex_assets.defs.jobs import REFRESH_FEATURES, RETRAIN, refresh_features_job, retrain_job
from forex_assets.defs.keys import FEATURE_MATRIX
from forex_assets.partitions import SYMBOLS_PARTITION_SET, partition_key_problem

NEW_YORK = "America/New_York"
DAILY_REFRESH = "daily_refresh"
WEEKLY_RETRAIN = "weekly_retrain"
# 17:10 New York, Monday to Friday: ten minutes after each FX day closes.
DAILY_REFRESH_CRON = "10 17 * * 1-5"
# 06:00 New York on Saturday: the week closed Friday 17:00, Friday's refresh has finished.
WEEKLY_RETRAIN_CRON = "0 6 * * 6"
SCHEDULE_TAG = "forex_assets/schedule"
SCHEDULED_DATE_TAG = "forex_assets/scheduled_date"


def scheduled_date(context: dg.ScheduleEvaluationContext) -> str:
    """The tick's date on the New York clock, e.g. '2024-03-08'."""
    return context.scheduled_execution_time.astimezone(ZoneInfo(NEW_YORK)).date().isoformat()


def registered_symbols(context: dg.ScheduleEvaluationContext) -> list[str]:
    """The `symbols` partitions a run can start for; every other key is logged and skipped."""
    symbols = []
    for key in context.instance.get_dynamic_partitions(SYMBOLS_PARTITION_SET):
        problem = partition_key_problem(key)
        if problem is None:
            symbols.append(key)
        else:
            context.log.warning(f"no run scheduled: {problem}")
    return symbols


def symbol_run_requests(
    schedule_name: str, job_name: str, symbols: Sequence[str], date: str
) -> list[dg.RunRequest]:
    """One run request per symbol partition, keyed by schedule, symbol and date."""
    return [
        dg.RunRequest(
            run_key=f"{schedule_name}:{symbol}:{date}",
            job_name=job_name,
            partition_key=symbol,
            tags={SCHEDULE_TAG: schedule_name, SCHEDULED_DATE_TAG: date},
        )
        for symbol in symbols
    ]


@dg.schedule(
    name=DAILY_REFRESH,
    job=refresh_features_job,
    cron_schedule=DAILY_REFRESH_CRON,
    execution_timezone=NEW_YORK,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=(
        "Monday to Friday at 17:10 New York, after the FX day closes: one refresh_features "
        "run (bars and features) per registered symbol."
    ),
)
def daily_refresh_schedule(
    context: dg.ScheduleEvaluationContext,
) -> Iterator[dg.RunRequest | dg.SkipReason]:
    symbols = registered_symbols(context)
    if not symbols:
        yield dg.SkipReason(_no_symbols_message())
        return
    date = scheduled_date(context)
    context.log.info(f"refreshing {len(symbols)} symbols for {date}: {', '.join(symbols)}")
    yield from symbol_run_requests(DAILY_REFRESH, REFRESH_FEATURES, symbols, date)


@dg.schedule(
    name=WEEKLY_RETRAIN,
    job=retrain_job,
    cron_schedule=WEEKLY_RETRAIN_CRON,
    execution_timezone=NEW_YORK,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=(
        "Saturday 06:00 New York, after the FX week closes: one retrain run (CPCV folds, "
        "models, strategies and what follows) per registered symbol with a feature matrix."
    ),
)
def weekly_retrain_schedule(
    context: dg.ScheduleEvaluationContext,
) -> Iterator[dg.RunRequest | dg.SkipReason]:
    symbols = registered_symbols(context)
    if not symbols:
        yield dg.SkipReason(_no_symbols_message())
        return
    refreshed = context.instance.get_materialized_partitions(FEATURE_MATRIX)
    ready = [s for s in symbols if s in refreshed]
    waiting = [s for s in symbols if s not in refreshed]
    if waiting:
        context.log.info(
            f"not retraining {', '.join(waiting)}: no feature matrix yet (run "
            f"{REFRESH_FEATURES} or wait for the {DAILY_REFRESH} schedule)"
        )
    if not ready:
        yield dg.SkipReason(
            f"none of the {len(symbols)} registered symbols has a feature matrix to train on "
            f"yet; run {REFRESH_FEATURES} for them first"
        )
        return
    date = scheduled_date(context)
    context.log.info(f"retraining {len(ready)} symbols for {date}: {', '.join(ready)}")
    yield from symbol_run_requests(WEEKLY_RETRAIN, RETRAIN, ready, date)


def _no_symbols_message() -> str:
    return (
        f"no symbol is registered in the '{SYMBOLS_PARTITION_SET}' partition set; add one with "
        "`python -m forex_assets symbols add EURUSD` or let the symbol_registry sensor run"
    )
