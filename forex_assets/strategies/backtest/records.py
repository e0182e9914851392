"""What a backtest returns: trades as structured records, equity, days and metrics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import polars as pl

from forex_assets.metrics.performance import METRIC_NAMES

EXIT_REASONS = ("stop", "take", "trail", "max_hold", "opposite", "end")
STOP, TAKE, TRAIL, MAX_HOLD, OPPOSITE, END = range(len(EXIT_REASONS))
# One closed trade as the kernel writes it; `exit_reason` indexes EXIT_REASONS.
TRADE_RECORD = np.dtype(
    [
        ("entry_bar", np.int64),
        ("exit_bar", np.int64),
        ("side", np.int8),
        ("entry_price", np.float64),
        ("exit_price", np.float64),
        ("lots", np.float64),
        ("pnl", np.float64),
        ("exit_reason", np.int8),
    ]
)


def trades_frame(records: np.ndarray) -> pl.DataFrame:
    """The kernel's trade records as a frame, the exit reason as an enum of its name."""
    columns = {name: records[name] for name in TRADE_RECORD.names if name != "exit_reason"}
    reasons = pl.Series(EXIT_REASONS, dtype=pl.Enum(EXIT_REASONS))
    return pl.DataFrame(
        {**columns, "exit_reason": reasons.gather(records["exit_reason"].astype(np.int64))}
    )


@dataclass(frozen=True)
class BacktestResult:
    """Trades (`TRADE_RECORD` fields), per-bar equity, per-day summary, metrics."""

    trades: pl.DataFrame
    equity: np.ndarray
    equity_low: np.ndarray
    daily: pl.DataFrame
    metrics: dict[str, float]


@dataclass(frozen=True)
class BatchResult:
    """Row c of every array belongs to candidate c: `metrics` columns are `METRIC_NAMES`,
    `daily_*` columns follow `days`."""

    METRIC_NAMES: ClassVar[tuple[str, ...]] = METRIC_NAMES
    metrics: np.ndarray
    days: np.ndarray
    daily_start: np.ndarray
    daily_min: np.ndarray
    daily_end: np.ndarray
    daily_trades: np.ndarray
