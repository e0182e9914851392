"""The refresh and retrain jobs and their schedules, evaluated against a real instance."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from dagster._utils.schedules import cron_string_iterator

from forex_assets.definitions import build_definitions
from forex_assets.defs.jobs import REFRESH_FEATURES, RETRAIN, RETRAIN_GROUPS
from forex_assets.defs.keys import FEATURE_MATRIX
from forex_assets.defs.schedules import (
    DAILY_REFRESH,
    SCHEDULE_TAG,
    SCHEDULED_DATE_TAG,
    WEEKLY_RETRAIN,
)
from forex_assets.executor import budgeted_executor
from forex_assets.market.timeframes import Timeframe
from forex_assets.partitions import SYMBOLS_PARTITION_SET, register_symbols, symbol_partitions

NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
def defs():
    return build_definitions()


@pytest.fixture
def instance(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as test_instance:
        yield test_instance


def evaluate(defs, name: str, instance, when: datetime):
    """One tick of the schedule as the daemon evaluates it: the code location's definition."""
    repository = defs.get_repository_def()
    context = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=when, repository_def=repository
    )
    return repository.get_schedule_def(name).evaluate_tick(context)


def job_keys(defs, name: str) -> set[str]:
    job = defs.resolve_job_def(name)
    return {key.to_user_string() for key in job.asset_layer.executable_asset_keys}


def test_refresh_features_job_loads_bars_and_computes_features(defs):
    keys = job_keys(defs, REFRESH_FEATURES)
    assert keys == {
        "m1_bars",
        "m1_quarantine",
        *(f"bars/{tf.value.lower()}" for tf in Timeframe),
        *(f"features/{tf.value.lower()}" for tf in Timeframe),
        "feature_matrix",
    }
    job = defs.resolve_job_def(REFRESH_FEATURES)
    assert job.partitions_def == symbol_partitions
    assert job.executor_def is budgeted_executor


def test_retrain_job_trains_on_stored_features(defs):
    keys = job_keys(defs, RETRAIN)
    assert {"cpcv_folds", "trained_models", "evolved_strategies", "strategy_portfolio"} <= keys
    assert not keys & job_keys(defs, REFRESH_FEATURES)
    graph = defs.resolve_asset_graph()
    assert {graph.get(dg.AssetKey.from_user_string(k)).group_name for k in keys} <= set(
        RETRAIN_GROUPS
    )
    job = defs.resolve_job_def(RETRAIN)
    assert job.partitions_def == symbol_partitions
    assert job.executor_def is budgeted_executor


def test_retrain_takes_a_later_trading_group_asset_by_its_group(defs):
    @dg.asset(
        group_name="trading",
        partitions_def=symbol_partitions,
        deps=["strategy_portfolio"],
    )
    def live_orders() -> None: ...

    extended = dg.Definitions.merge(defs, dg.Definitions(assets=[live_orders]))
    assert "live_orders" in job_keys(extended, RETRAIN)
    assert "live_orders" not in job_keys(extended, REFRESH_FEATURES)


def test_schedules_run_on_the_new_york_clock_after_the_fx_day_and_week_close(defs):
    daily = defs.resolve_schedule_def(DAILY_REFRESH)
    weekly = defs.resolve_schedule_def(WEEKLY_RETRAIN)
    assert (daily.job_name, weekly.job_name) == (REFRESH_FEATURES, RETRAIN)
    assert daily.execution_timezone == weekly.execution_timezone == "America/New_York"
    assert daily.cron_schedule == "10 17 * * 1-5"
    assert weekly.cron_schedule == "0 6 * * 6"
    # From Friday 2024-03-08 across the US switch to daylight time on Sunday 2024-03-10: the
    # ticks stay at 17:10 New York (22:10 UTC in winter, 21:10 UTC in summer), none at the
    # weekend, while the FX market is shut.
    start = datetime(2024, 3, 8, 12, 0, tzinfo=UTC).timestamp()
    ticks = cron_string_iterator(start, daily.cron_schedule, daily.execution_timezone)
    first = [next(ticks).astimezone(UTC) for _ in range(3)]
    assert first == [
        datetime(2024, 3, 8, 22, 10, tzinfo=UTC),
        datetime(2024, 3, 11, 21, 10, tzinfo=UTC),
        datetime(2024, 3, 12, 21, 10, tzinfo=UTC),
    ]
    ticks = cron_string_iterator(start, weekly.cron_schedule, weekly.execution_timezone)
    assert [next(ticks).astimezone(UTC) for _ in range(2)] == [
        datetime(2024, 3, 9, 11, 0, tzinfo=UTC),  # Saturday 06:00 EST
        datetime(2024, 3, 16, 10, 0, tzinfo=UTC),  # Saturday 06:00 EDT
    ]


def test_daily_refresh_requests_one_run_per_registered_symbol(defs, instance):
    register_symbols(instance, ["EURUSD", "GBPJPY", "XAUUSD"])
    # Friday's tick at 17:10 New York is 22:10 UTC: the run keys carry the New York date.
    tick = datetime(2024, 3, 8, 17, 10, tzinfo=NEW_YORK)
    result = evaluate(defs, DAILY_REFRESH, instance, tick)
    assert result.skip_message is None
    requests = sorted(result.run_requests, key=lambda r: r.partition_key)
    assert [r.partition_key for r in requests] == ["EURUSD", "GBPJPY", "XAUUSD"]
    assert [r.run_key for r in requests] == [
        "daily_refresh:EURUSD:2024-03-08",
        "daily_refresh:GBPJPY:2024-03-08",
        "daily_refresh:XAUUSD:2024-03-08",
    ]
    for request in requests:
        assert request.job_name == REFRESH_FEATURES
        assert request.tags[SCHEDULE_TAG] == DAILY_REFRESH
        assert request.tags[SCHEDULED_DATE_TAG] == "2024-03-08"
        assert request.tags["dagster/partition"] == request.partition_key

    # The same tick evaluated again (daemon restart) asks for the same runs, which Dagster
    # launches once per key; the next trading day's tick gets its own keys.
    again = evaluate(defs, DAILY_REFRESH, instance, tick.astimezone(UTC))
    assert sorted(r.run_key for r in again.run_requests) == [r.run_key for r in requests]
    monday = evaluate(defs, DAILY_REFRESH, instance, datetime(2024, 3, 11, 17, 10, tzinfo=NEW_YORK))
    assert {r.run_key for r in monday.run_requests} == {
        f"daily_refresh:{s}:2024-03-11" for s in ("EURUSD", "GBPJPY", "XAUUSD")
    }


def test_schedules_skip_when_no_symbol_is_registered(defs, instance):
    assert instance.get_dynamic_partitions(SYMBOLS_PARTITION_SET) == []
    when = datetime(2024, 3, 8, 17, 10, tzinfo=NEW_YORK)
    for name in (DAILY_REFRESH, WEEKLY_RETRAIN):
        result = evaluate(defs, name, instance, when)
        assert result.run_requests == []
        assert "no symbol is registered in the 'symbols' partition set" in result.skip_message


def test_weekly_retrain_requests_symbols_that_have_features(defs, instance):
    register_symbols(instance, ["EURUSD", "GBPUSD", "USDJPY"])
    saturday = datetime(2024, 3, 9, 6, 0, tzinfo=NEW_YORK)
    none_ready = evaluate(defs, WEEKLY_RETRAIN, instance, saturday)
    assert none_ready.run_requests == []
    assert "none of the 3 registered symbols has a feature matrix" in none_ready.skip_message

    for symbol in ("EURUSD", "USDJPY"):
        instance.report_runless_asset_event(
            dg.AssetMaterialization(asset_key=FEATURE_MATRIX, partition=symbol)
        )
    result = evaluate(defs, WEEKLY_RETRAIN, instance, saturday)
    requests = sorted(result.run_requests, key=lambda r: r.partition_key)
    assert [(r.partition_key, r.run_key) for r in requests] == [
        ("EURUSD", "weekly_retrain:EURUSD:2024-03-09"),
        ("USDJPY", "weekly_retrain:USDJPY:2024-03-09"),
    ]
    assert all(r.tags[SCHEDULE_TAG] == WEEKLY_RETRAIN for r in requests)
    assert all(r.job_name == RETRAIN for r in requests)


def test_schedules_skip_partition_keys_that_are_not_canonical_symbols(defs, instance, capfd):
    register_symbols(instance, ["EURUSD"])
    # Added through the UI or the API as typed: each would fail at run start.
    instance.add_dynamic_partitions(SYMBOLS_PARTITION_SET, ["eurusd", "../../EURUSD", "USDUSD"])
    for key in ("EURUSD", "eurusd"):
        instance.report_runless_asset_event(
            dg.AssetMaterialization(asset_key=FEATURE_MATRIX, partition=key)
        )
    friday = datetime(2024, 3, 8, 17, 10, tzinfo=NEW_YORK)
    saturday = datetime(2024, 3, 9, 6, 0, tzinfo=NEW_YORK)
    for name, when in ((DAILY_REFRESH, friday), (WEEKLY_RETRAIN, saturday)):
        capfd.readouterr()
        result = evaluate(defs, name, instance, when)
        assert [r.partition_key for r in result.run_requests] == ["EURUSD"]
        logged = capfd.readouterr().err
        for key in ("eurusd", "../../EURUSD", "USDUSD"):
            assert f"no run scheduled: partition {key!r} of the 'symbols' partition set" in logged
        assert "'eurusd' of the 'symbols' partition set is not the canonical spelling" in logged
