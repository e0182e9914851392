"""One symbol's paper trading over its held-out period, from model and strategy signals.

The held-out period is the one the strategy search never saw (it starts at the evolved
strategies' `holdout_start`); the model's probabilities there are its out-of-fold ones,
which no model trained on. Sources: the blended model (buy when P(up) - P(down) exceeds
`edge_threshold`, sell below minus it, with the triple barrier's stop, target and
horizon) and each portfolio strategy (its genes' signals and exits). All trade one
account through one risk manager and one paper broker; the model's edge also sets every
order's confidence, so a strategy trade the model disagrees with is sized down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from forex_assets.market.contract import Contract
from forex_assets.market.fx_calendar import DEFAULT_CALENDAR, FxCalendar
from forex_assets.prop_firms.challenge import RuleReport, check_rules
from forex_assets.prop_firms.rules import PropFirmRules
from forex_assets.strategies.backtest.market import Market
from forex_assets.strategies.backtest.rules import TradeRules
from forex_assets.strategies.fitness import sliced
from forex_assets.strategies.genes import RuleInputs, signals, trade_rules
from forex_assets.trading.paper_broker import PaperBroker, SwapRates
from forex_assets.trading.paper_session import PaperSession, SessionSummary, SignalSource
from forex_assets.trading.risk_ledger import RiskLedger
from forex_assets.trading.risk_limits import NewsCalendar, RiskLimits
from forex_assets.trading.risk_manager import RiskManager
from forex_assets.trading.sizing import SizingPolicy

MODEL_SOURCE = "model_blend"


@dataclass(frozen=True)
class PaperTradingSettings:
    limits: RiskLimits
    sizing: SizingPolicy
    prop_firm: PropFirmRules  # the verdict on the paper account's days
    edge_threshold: float = 0.1
    model_stop_atr: float = 1.0
    model_take_atr: float = 2.0
    model_max_hold_bars: int = 48
    initial_equity: float = 100_000.0
    slippage_pips: float = 0.0
    swaps: SwapRates | None = None
    news: NewsCalendar = field(default_factory=NewsCalendar)
    contract_terms: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 <= self.edge_threshold < 1:
            raise ValueError(
                f"edge_threshold={self.edge_threshold!r} must be in [0, 1): the model trades "
                "when P(up) - P(down) exceeds it."
            )


@dataclass(frozen=True)
class PaperTrading:
    summary: SessionSummary
    intents: pl.DataFrame  # orders and their fills and exits, one row per reserved trade
    refusals: pl.DataFrame
    daily: pl.DataFrame  # per FX day: equity start/peak/low/end, P&L, trades, refusals
    verdict: RuleReport
    sources: tuple[str, ...]
    holdout_bars: int


def _model_edge(times: pl.Series, blend: pl.DataFrame) -> np.ndarray:
    """P(up) - P(down) of the blend at each bar's time, 0 where it has no prediction."""
    edge = blend.select("time", (pl.col("p_+1") - pl.col("p_-1")).alias("edge"))
    joined = times.to_frame("time").join(edge, on="time", how="left")
    return joined.get_column("edge").fill_null(0.0).to_numpy().astype(np.float64)


def paper_trade(
    symbol: str,
    bars: pl.DataFrame,
    holdout_start: object,
    blend: pl.DataFrame,
    strategy_genes: np.ndarray,
    settings: PaperTradingSettings,
    directory: Path,
    account: str,
    ledger_location: str | None = None,
    calendar: FxCalendar = DEFAULT_CALENDAR,
) -> PaperTrading:
    """Replay the held-out bars; ledger and broker book live in `directory` (the account's
    earlier records there are replaced). `bars` are complete base-timeframe bars;
    `blend` the blended out-of-fold probabilities (time, p_-1, p_+0, p_+1); `calendar`
    says where the daily limits and the swap nights start a new day."""
    times = bars.get_column("time")
    start = int(times.search_sorted(holdout_start))
    if start >= bars.height - 1:
        raise ValueError(
            f"the held-out period starting {holdout_start} has {bars.height - start} bars of "
            f"{symbol}; paper trading needs at least two. Re-run the strategy search with a "
            "larger holdout_share or more data."
        )
    held_out = slice(start, bars.height)
    market = sliced(Market.from_bars(bars, calendar), held_out)
    times_us = times.dt.epoch("us").to_numpy()[held_out]
    edge = _model_edge(times, blend)[held_out]
    threshold = settings.edge_threshold
    model_signal = ((edge > threshold).astype(np.int8) - (edge < -threshold)).astype(np.int8)
    sources = [
        SignalSource(
            MODEL_SOURCE,
            model_signal,
            settings.model_stop_atr,
            settings.model_take_atr,
            settings.model_max_hold_bars,
        )
    ]
    if len(strategy_genes):
        strategy_signals = signals(RuleInputs.from_bars(bars), strategy_genes)[:, held_out]
        for i, row in enumerate(trade_rules(strategy_genes)):
            rules = TradeRules.from_row(row)
            sources.append(
                SignalSource(
                    f"strategy_{i}",
                    strategy_signals[i],
                    rules.stop_atr,
                    rules.take_atr,
                    rules.max_hold_bars,
                    rules.trail_atr,
                )
            )
    ledger = RiskLedger(ledger_location or directory / "risk_ledger.sqlite", calendar=calendar)
    contract = Contract.for_symbol(symbol, **settings.contract_terms)
    broker = PaperBroker(
        directory / "paper_broker.sqlite",
        account,
        symbol,
        market,
        times_us,
        contract,
        settings.slippage_pips,
        settings.swaps,
    )
    ledger.delete_account(account)
    broker.reset()
    manager = RiskManager(
        ledger, settings.limits, settings.sizing, {symbol: settings.contract_terms}, settings.news
    )
    session = PaperSession(
        account, f"{account}/replay", symbol, market, times_us, sources, edge, manager, broker
    )
    summary = session.run(settings.initial_equity)
    intents, refusals = ledger.intents(account), ledger.refusals(account)
    daily = _daily(ledger.days(account), intents, refusals)
    verdict = check_rules(
        daily.get_column("day").to_numpy(),
        daily.get_column("start_equity").to_numpy(),
        daily.get_column("low_equity").to_numpy(),
        daily.get_column("end_equity").to_numpy(),
        daily.get_column("trades").to_numpy(),
        settings.prop_firm,
        settings.initial_equity,
    )
    return PaperTrading(
        summary,
        intents,
        refusals,
        daily,
        verdict,
        tuple(s.name for s in sources),
        len(market),
    )


def _daily(days: pl.DataFrame, intents: pl.DataFrame, refusals: pl.DataFrame) -> pl.DataFrame:
    """The ledger's days with the trades opened and orders refused on each."""
    counted = intents.filter(pl.col("state") != "cancelled").group_by("day").agg(trades=pl.len())
    refused = refusals.group_by("day").agg(refusals=pl.len())
    return (
        days.drop("account")
        .join(counted, on="day", how="left")
        .join(refused, on="day", how="left")
        .with_columns(
            pl.col("trades", "refusals").fill_null(0).cast(pl.Int64),
            date=pl.col("day").cast(pl.Date),
        )
        .sort("day")
    )
