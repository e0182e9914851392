"""Trading: the held-out period replayed through the risk manager and a paper broker."""

import dagster as dg
import polars as pl
from pydantic import Field

from forex_assets.defs.assets.markdown import markdown_image, markdown_table
from forex_assets.defs.assets.strategies import GENE_COLUMNS
from forex_assets.defs.keys import (
    EVOLVED_STRATEGIES,
    PAPER_TRADING,
    STRATEGY_PORTFOLIO,
    TRADING_GROUP,
    TRAINED_MODELS,
    timeframe_bars_key,
)
from forex_assets.defs.resources import MarketCalendarResource, TradingLedgerResource
from forex_assets.features.feature_config import FeatureSettings
from forex_assets.market.fx_calendar import FxCalendar
from forex_assets.models.cpcv_training import BLEND
from forex_assets.models.evaluation import EquityCurve
from forex_assets.models.plots import equity_png
from forex_assets.partitions import symbol_partitions
from forex_assets.prop_firms.registry import preset
from forex_assets.trading.paper_trading import PaperTrading, PaperTradingSettings, paper_trade
from forex_assets.trading.risk_limits import NewsCalendar, RiskLimits
from forex_assets.trading.sizing import SizingPolicy


class PaperTradingConfig(dg.Config):
    """The account's limits (the prop firm's, plus desk guards), sizing and model signal.
    A guard of 0 is off."""

    prop_firm: str = "ftmo_challenge"
    initial_equity: float = 100_000.0
    risk_fraction: float = 0.005
    min_confidence: float = 0.25
    max_lot: float = 50.0
    edge_threshold: float = 0.1
    oof_path: int = 0
    max_trades_per_day: int = 0
    max_open_positions: int = 5
    daily_peak_drawdown: float = 0.0
    daily_profit_lock: float = 0.0
    loss_streak_limit: int = 3
    cooldown_minutes: float = 120.0
    sessions: list[str] = Field(default_factory=list)
    week_open_buffer_minutes: float = 30.0
    week_close_buffer_minutes: float = 60.0
    max_spread_pips: float = 3.0
    max_slippage_pips: float = 0.0
    slippage_pips: float = 0.0
    news_file: str = ""

    def settings(self, features: FeatureSettings) -> PaperTradingSettings:
        firm = preset(self.prop_firm)

        def off(value: float) -> float | None:
            return value or None

        limits = RiskLimits.from_prop_firm(
            firm,
            max_trades_per_day=self.max_trades_per_day or firm.max_trades_per_day,
            max_open_positions=self.max_open_positions or None,
            daily_peak_drawdown=off(self.daily_peak_drawdown),
            daily_profit_lock=off(self.daily_profit_lock),
            loss_streak_limit=self.loss_streak_limit or None,
            cooldown_minutes=self.cooldown_minutes,
            sessions=tuple(self.sessions),
            week_open_buffer_minutes=self.week_open_buffer_minutes,
            week_close_buffer_minutes=self.week_close_buffer_minutes,
            max_spread_pips=off(self.max_spread_pips),
            max_slippage_pips=off(self.max_slippage_pips),
        )
        labels = features.labels
        return PaperTradingSettings(
            limits=limits,
            sizing=SizingPolicy(self.risk_fraction, self.min_confidence, max_lot=self.max_lot),
            prop_firm=firm,
            edge_threshold=self.edge_threshold,
            model_stop_atr=labels.stop_loss_atr,
            model_take_atr=labels.take_profit_atr,
            model_max_hold_bars=labels.horizon_bars,
            initial_equity=self.initial_equity,
            slippage_pips=self.slippage_pips,
            news=NewsCalendar.from_csv(self.news_file) if self.news_file else NewsCalendar(),
        )


def _refusal_table(paper: PaperTrading) -> str:
    refusals = paper.refusals
    if refusals.is_empty():
        return "No order was refused."
    table = (
        refusals.group_by("rule")
        .agg(refusals=pl.len(), example=pl.col("message").first())
        .with_columns(share=pl.col("refusals") / refusals.height)
        .sort("refusals", descending=True)
        .select("rule", "refusals", "share", "example")
    )
    return markdown_table(table)


def _source_table(paper: PaperTrading) -> str:
    traded = paper.intents.filter(pl.col("state") != "cancelled")
    refused = paper.refusals.group_by("source").agg(refused=pl.len())
    table = (
        pl.DataFrame({"source": list(paper.sources)})
        .join(
            traded.group_by("source").agg(
                trades=pl.len(),
                closed=(pl.col("state") == "closed").sum(),
                win_rate=(pl.col("pnl") > 0).sum() / (pl.col("state") == "closed").sum(),
                net_pnl=pl.col("pnl").sum(),
                mean_lots=pl.col("lots").mean(),
            ),
            on="source",
            how="left",
        )
        .join(refused, on="source", how="left")
        .with_columns(pl.col("trades", "closed", "refused").fill_null(0))
    )
    return markdown_table(table)


def _equity_plot(
    paper: PaperTrading, symbol: str, initial_equity: float, calendar: FxCalendar
) -> str:
    daily = paper.daily
    days_us = calendar.day_open_us(daily.get_column("day").to_numpy())
    curve = EquityCurve(
        "paper account", 0, days_us, daily.get_column("end_equity").to_numpy() / initial_equity
    )
    title = f"{symbol} paper trading, held-out period (end-of-day equity)"
    return markdown_image(equity_png([curve], title), title)


def build_paper_trading(settings: FeatureSettings) -> dg.AssetsDefinition:
    bars_key = timeframe_bars_key(settings.base_timeframe)

    @dg.asset(
        key=PAPER_TRADING,
        ins={
            "bars": dg.AssetIn(bars_key),
            "models": dg.AssetIn(TRAINED_MODELS),
            "strategies": dg.AssetIn(EVOLVED_STRATEGIES),
            "portfolio": dg.AssetIn(STRATEGY_PORTFOLIO),
        },
        partitions_def=symbol_partitions,
        group_name=TRADING_GROUP,
        kinds={"sqlite", "parquet"},
        description=(
            "The held-out period (bars the strategy search never saw, where the models' "
            "probabilities are out of fold) replayed bar by bar: the blended model and every "
            "portfolio strategy ask the risk manager for trades on one account under the prop "
            "firm's limits, and a paper broker fills them at the next bar's open. Orders, "
            "fills, refusals and daily equity go to the trading ledger; the value is the "
            "account's daily equity."
        ),
    )
    def paper_trading(
        context: dg.AssetExecutionContext,
        config: PaperTradingConfig,
        trading_ledger: TradingLedgerResource,
        market_calendar: MarketCalendarResource,
        bars: pl.DataFrame,
        models: pl.DataFrame,
        strategies: pl.DataFrame,
        portfolio: pl.DataFrame,
    ) -> dg.Output:
        symbol = context.partition_key
        account = f"paper/{symbol}/{context.run.run_id}"
        blend = models.filter((pl.col("model") == BLEND) & (pl.col("path") == config.oof_path))
        if blend.is_empty():
            paths = sorted(models.get_column("path").unique().to_list())
            raise dg.Failure(
                f"oof_path={config.oof_path} has no blended probabilities for {symbol}; the "
                f"trained models hold paths {paths}. Pick one of them."
            )
        directory = trading_ledger.path()
        calendar = market_calendar.calendar
        paper = paper_trade(
            symbol,
            bars.filter(pl.col("complete")),
            strategies.get_column("holdout_start")[0],
            blend,
            portfolio.select(GENE_COLUMNS).to_numpy(),
            config.settings(settings),
            directory,
            account,
            trading_ledger.ledger_location(),
            calendar,
        )
        intents, daily = paper.intents, paper.daily
        closed = intents.filter(pl.col("state") == "closed")
        final = float(daily.get_column("end_equity")[-1]) if daily.height else config.initial_equity
        worst_day = daily.select(
            ((pl.col("start_equity") - pl.col("low_equity")) / pl.col("start_equity")).max()
        ).item()
        context.log.info(
            f"{symbol}: {intents.height} orders, {paper.refusals.height} refusals, final equity "
            f"{final:,.2f}; prop firm: {paper.verdict.describe()}"
        )
        return dg.Output(
            daily,
            metadata={
                "account": account,
                "ledger": trading_ledger.ledger_location().split("@")[-1],  # no password
                "held_out_bars": paper.holdout_bars,
                "held_out_days": daily.height,
                "sources": dg.MetadataValue.json(list(paper.sources)),
                "orders": intents.height,
                "filled": int(intents.get_column("filled_us").is_not_null().sum()),
                "closed_trades": closed.height,
                "open_at_end": paper.summary.open_at_end,
                "refusals": paper.refusals.height,
                "net_profit": final / config.initial_equity - 1.0,
                "final_equity": final,
                "win_rate": float((closed.get_column("pnl") > 0).mean() or 0.0)
                if closed.height
                else float("nan"),
                "worst_daily_loss": float(worst_day or 0.0),
                "prop_firm_verdict": paper.verdict.describe(),
                "refusal_reasons": dg.MetadataValue.md(_refusal_table(paper)),
                "sources_table": dg.MetadataValue.md(_source_table(paper)),
                "equity": dg.MetadataValue.md(
                    _equity_plot(paper, symbol, config.initial_equity, calendar)
                ),
            },
        )

    return paper_trading
