"""Shared fixtures: every test gets its own project home and Dagster home in tmp_path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import polars as pl
import pytest

from forex_assets.market.bar_schema import M1_SCHEMA

if TYPE_CHECKING:
    from forex_assets_tests.trained_run import TrainedRun


@pytest.fixture(autouse=True)
def isolated_homes(tmp_path, monkeypatch):
    """No test may read or write the developer's own .forex_assets or Dagster instance."""
    home = tmp_path / "forex_home"
    monkeypatch.setenv("FOREX_ASSETS_HOME", str(home))
    monkeypatch.delenv("FOREX_ASSETS_DATA_DIR", raising=False)
    monkeypatch.delenv("FOREX_ASSETS_SYMBOLS", raising=False)
    monkeypatch.delenv("FOREX_ASSETS_SAMPLE_YEARS", raising=False)
    monkeypatch.delenv("FOREX_ASSETS_FEATURE_CONFIG", raising=False)
    monkeypatch.delenv("FOREX_ASSETS_INBOX", raising=False)
    monkeypatch.delenv("FOREX_ASSETS_RISK_LEDGER", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    # Each test accounts cores in its own ledger: tests must not wait on each other's steps.
    monkeypatch.setenv("FOREX_ASSETS_CORE_LEDGER", str(tmp_path / "core_ledger.sqlite"))
    for variable in (
        "FOREX_ASSETS_CORES",
        "FOREX_BOT_MAX_CONCURRENT_SYMBOLS",
        "FOREX_BOT_MAX_CONCURRENT_TF_LOADS",
        "FOREX_BOT_FEATURE_WORKERS",
        "FOREX_BOT_CPU_THREADS",
        "FOREX_BOT_TALIB_WORKERS",
    ):
        monkeypatch.delenv(variable, raising=False)
    return home


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def m1_frame(start: datetime, closes: list[float], spread: float | None = None) -> pl.DataFrame:
    """Consecutive M1 bars from `start` with the given closes (open = previous close)."""
    rows = []
    previous = closes[0]
    for i, close in enumerate(closes):
        open_ = previous
        rows.append(
            {
                "time": start + timedelta(minutes=i),
                "open": open_,
                "high": max(open_, close) + 0.0001,
                "low": min(open_, close) - 0.0001,
                "close": close,
                "volume": float(i + 1),
                "spread": spread,
            }
        )
        previous = close
    return pl.DataFrame(rows, schema=M1_SCHEMA)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> TrainedRun:
    """One small symbol trained end to end into a model store (see `train_small_run`),
    shared by every test of what a training run leaves, since training is the slow part.
    Copy the run folder before damaging it."""
    from forex_assets_tests.trained_run import train_small_run  # models: only when asked

    return train_small_run(tmp_path_factory.mktemp("trained_run"))
