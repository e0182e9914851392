"""Strategy genes: a weighted vote of indicator rules, encoded as a real vector for CMA-ES.

A strategy is seven indicator rules, each voting long (+1), short (-1) or nothing (0) on
every bar, a weight per rule, the rules' thresholds, a vote threshold, an ADX gate, and
the trade rules (stop and take-profit in ATR multiples, maximum hold, trailing stop).
The vote score is sum(weight x vote) / sum(|weight|); the strategy signals long above
the vote threshold and short below its negative, only while ADX is at least the gate.
Every gene lives in a box (`GENES`), so CMA-ES searches the unit cube and any point of it
decodes to a valid strategy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from forex_assets.features.feature_config import parse_indicators
from forex_assets.features.indicator_definition import PriceInputs

RULES = ("rsi", "ema_trend", "macd", "bollinger", "stochastic", "donchian", "cci")


@dataclass(frozen=True)
class Gene:
    name: str
    lower: float
    upper: float


GENES = (
    *(Gene(f"weight_{rule}", -1.0, 1.0) for rule in RULES),
    Gene("rsi_low", 10.0, 45.0),
    Gene("rsi_high", 55.0, 90.0),
    Gene("stochastic_low", 5.0, 45.0),
    Gene("stochastic_high", 55.0, 95.0),
    Gene("cci_level", 50.0, 250.0),
    Gene("vote_threshold", 0.05, 0.95),
    Gene("adx_min", 0.0, 40.0),
    Gene("stop_atr", 0.5, 4.0),
    Gene("take_atr", 0.5, 8.0),
    Gene("max_hold_bars", 6.0, 288.0),
    Gene("trail_atr", 0.0, 3.0),
)
GENE_NAMES = tuple(g.name for g in GENES)
LOWER = np.array([g.lower for g in GENES])
UPPER = np.array([g.upper for g in GENES])
DIMENSION = len(GENES)
_INDEX = {name: i for i, name in enumerate(GENE_NAMES)}


class GeneError(ValueError):
    """A gene vector that does not describe a strategy; the message says why."""


def check_population(population: np.ndarray) -> np.ndarray:
    """(candidates, DIMENSION) float array inside the gene box, or a clear error."""
    genes = np.atleast_2d(np.asarray(population, dtype=np.float64))
    if genes.ndim != 2 or genes.shape[1] != DIMENSION:
        raise GeneError(
            f"gene vectors of shape {np.shape(population)} do not have {DIMENSION} genes "
            f"({', '.join(GENE_NAMES)}); pass one row of {DIMENSION} values per strategy."
        )
    if not np.isfinite(genes).all():
        raise GeneError("gene vectors hold NaN or infinite values; every gene needs a number.")
    outside = (genes < LOWER - 1e-9) | (genes > UPPER + 1e-9)
    if outside.any():
        row, column = map(int, np.argwhere(outside)[0])
        raise GeneError(
            f"gene {GENE_NAMES[column]}={float(genes[row, column])!r} (strategy {row}) is outside "
            f"[{LOWER[column]:g}, {UPPER[column]:g}]; map the search space onto the gene box."
        )
    return genes


def from_unit(unit: np.ndarray) -> np.ndarray:
    """Unit-cube points (what CMA-ES searches) -> genes."""
    return LOWER + np.clip(unit, 0.0, 1.0) * (UPPER - LOWER)


def describe(genes: np.ndarray) -> dict[str, float]:
    return dict(zip(GENE_NAMES, map(float, check_population(genes)[0]), strict=True))


# What the rules read, in the feature configuration's syntax: the same registry entries,
# so a rule's RSI is the feature matrix's rsi_14 to the last bit.
RULE_INDICATORS = parse_indicators(
    {
        "rsi": [14],
        "ema": [21, 50],
        "macd": [{"fast": 12, "slow": 26, "signal": 9}],
        "bbands": [{"period": 20, "nbdev": 2.0}],
        "stoch": [{"k_period": 14, "k_smooth": 3, "d_period": 3}],
        "donchian": [20],
        "cci": [20],
        "adx": [14],
    },
    source="strategies.genes.RULE_INDICATORS",
)


def _lagged(values: np.ndarray) -> np.ndarray:
    """`values` one bar later: a breakout compares with the channel before this bar."""
    return np.concatenate(([np.nan], values[:-1]))


@dataclass(frozen=True)
class RuleInputs:
    """The indicator series the rules read, computed once per bar series."""

    close: np.ndarray
    rsi: np.ndarray
    ema_trend: np.ndarray  # sign(EMA 21 - EMA 50)
    macd_hist: np.ndarray
    bollinger_upper: np.ndarray
    bollinger_lower: np.ndarray
    stochastic: np.ndarray
    donchian_high: np.ndarray  # highest high of the 20 bars before this one
    donchian_low: np.ndarray
    cci: np.ndarray
    adx: np.ndarray

    @classmethod
    def from_bars(cls, bars: pl.DataFrame) -> RuleInputs:
        prices = PriceInputs.from_bars(bars)
        values = {
            column: array
            for spec in RULE_INDICATORS
            for column, array in spec.compute(prices).items()
        }
        return cls(
            close=prices.close,
            rsi=values["rsi_14"],
            ema_trend=np.sign(values["ema_21"] - values["ema_50"]),
            macd_hist=values["macd_12_26_9_hist"],
            bollinger_upper=values["bbands_20_2_upper"],
            bollinger_lower=values["bbands_20_2_lower"],
            stochastic=values["stoch_14_3_3_k"],
            donchian_high=_lagged(values["donchian_20_upper"]),
            donchian_low=_lagged(values["donchian_20_lower"]),
            cci=values["cci_20"],
            adx=values["adx_14_adx"],
        )


def _band_vote(value: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """+1 below `low`, -1 above `high` (mean reversion), per candidate row."""
    return (value < low[:, None]).astype(np.int8) - (value > high[:, None]).astype(np.int8)


def rule_votes(inputs: RuleInputs, genes: np.ndarray) -> np.ndarray:
    """(candidates, rules, bars) int8 votes; NaN inputs (warm-up) vote 0."""
    g = check_population(genes)
    n = g.shape[0]
    c = inputs.close

    def same_for_all(vote: np.ndarray) -> np.ndarray:
        return np.broadcast_to(np.nan_to_num(vote).astype(np.int8), (n, c.size))

    votes = [
        _band_vote(inputs.rsi, g[:, _INDEX["rsi_low"]], g[:, _INDEX["rsi_high"]]),
        same_for_all(inputs.ema_trend),
        same_for_all(np.sign(inputs.macd_hist)),
        same_for_all((c < inputs.bollinger_lower).astype(np.int8) - (c > inputs.bollinger_upper)),
        _band_vote(
            inputs.stochastic, g[:, _INDEX["stochastic_low"]], g[:, _INDEX["stochastic_high"]]
        ),
        same_for_all((c > inputs.donchian_high).astype(np.int8) - (c < inputs.donchian_low)),
        _band_vote(inputs.cci, -g[:, _INDEX["cci_level"]], g[:, _INDEX["cci_level"]]),
    ]
    return np.stack(votes, axis=1)


def signals(inputs: RuleInputs, genes: np.ndarray) -> np.ndarray:
    """(candidates, bars) int8 signals in {-1, 0, +1} known at each bar's close."""
    g = check_population(genes)
    weights = g[:, : len(RULES)]
    total = np.abs(weights).sum(axis=1)
    total = np.where(total > 0, total, 1.0)
    score = np.einsum("nr,nrb->nb", weights, rule_votes(inputs, g).astype(np.float64))
    score /= total[:, None]
    threshold = g[:, _INDEX["vote_threshold"], None]
    gate = np.nan_to_num(inputs.adx, nan=-1.0) >= g[:, _INDEX["adx_min"], None]
    side = (score > threshold).astype(np.int8) - (score < -threshold).astype(np.int8)
    return np.where(gate, side, 0).astype(np.int8)


def trade_rules(genes: np.ndarray) -> np.ndarray:
    """(candidates, 4) [stop_atr, take_atr, max_hold_bars, trail_atr] for the kernel batch."""
    g = check_population(genes)
    columns = [_INDEX[n] for n in ("stop_atr", "take_atr", "max_hold_bars", "trail_atr")]
    rules = g[:, columns].copy()
    rules[:, 2] = np.round(rules[:, 2])
    return rules
