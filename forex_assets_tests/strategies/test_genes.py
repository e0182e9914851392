"""Strategy genes: the box, decoding, rule votes and signals."""

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from forex_assets.strategies import genes as G

NAN = float("nan")


def inputs(rsi=None, bars=8) -> G.RuleInputs:
    zeros = np.zeros(bars)
    return G.RuleInputs(
        close=np.ones(bars),
        rsi=np.full(bars, 50.0) if rsi is None else np.asarray(rsi, dtype=float),
        ema_trend=zeros,
        macd_hist=zeros,
        bollinger_upper=np.full(bars, 2.0),
        bollinger_lower=zeros,
        stochastic=np.full(bars, 50.0),
        donchian_high=np.full(bars, 2.0),
        donchian_low=zeros,
        cci=zeros,
        adx=np.full(bars, 30.0),
    )


def genes(**values: float) -> np.ndarray:
    x = (G.LOWER + G.UPPER) / 2
    for name, value in values.items():
        x[G.GENE_NAMES.index(name)] = value
    return x[None, :]


def test_unit_cube_maps_onto_the_box():
    assert np.allclose(G.from_unit(np.zeros(G.DIMENSION)), G.LOWER)
    assert np.allclose(G.from_unit(np.ones(G.DIMENSION)), G.UPPER)
    assert np.allclose(G.from_unit(np.full(G.DIMENSION, 2.0)), G.UPPER)  # clipped


def test_wrong_length_is_refused_naming_the_genes():
    with pytest.raises(G.GeneError, match=f"do not have {G.DIMENSION} genes"):
        G.signals(inputs(), np.zeros((2, G.DIMENSION - 1)))


def test_out_of_box_gene_is_refused_naming_it():
    with pytest.raises(G.GeneError, match=r"gene stop_atr=9.0 \(strategy 0\) is outside"):
        G.trade_rules(genes(stop_atr=9.0))


def test_rsi_rule_alone_votes_mean_reversion():
    weights = {f"weight_{r}": 0.0 for r in G.RULES} | {"weight_rsi": 1.0}
    x = genes(**weights, rsi_low=30.0, rsi_high=70.0, vote_threshold=0.5, adx_min=0.0)
    rsi = [20, 50, 80, NAN, 29.9, 70.1, 30, 70]
    assert G.signals(inputs(rsi), x).tolist() == [[1, 0, -1, 0, 1, -1, 0, 0]]


def test_adx_gate_silences_signals_below_it():
    weights = {f"weight_{r}": 0.0 for r in G.RULES} | {"weight_rsi": 1.0}
    x = genes(**weights, rsi_low=30.0, rsi_high=70.0, vote_threshold=0.5, adx_min=35.0)
    assert not G.signals(inputs([20] * 8), x).any()  # ADX is 30 everywhere


def test_negative_weight_inverts_a_rule():
    weights = {f"weight_{r}": 0.0 for r in G.RULES} | {"weight_rsi": -1.0}
    x = genes(**weights, rsi_low=30.0, rsi_high=70.0, vote_threshold=0.5, adx_min=0.0)
    assert G.signals(inputs([20, 80] + [50] * 6), x)[0, :2].tolist() == [-1, 1]


def test_trade_rules_round_the_holding_period():
    rules = G.trade_rules(genes(stop_atr=1.5, take_atr=3.0, max_hold_bars=10.4, trail_atr=0.0))
    assert rules.tolist() == [[1.5, 3.0, 10.0, 0.0]]


def test_signals_on_real_bars_are_votes():
    rng = np.random.default_rng(2)
    close = 1.1 + np.cumsum(rng.normal(0, 5e-4, 600))
    times = pl.datetime_range(
        datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 25, 23, tzinfo=UTC), "1h", eager=True
    )
    bars = pl.DataFrame(
        {"time": times, "open": close, "high": close + 3e-4, "low": close - 3e-4, "close": close}
    )
    population = G.from_unit(rng.random((5, G.DIMENSION)))
    signals = G.signals(G.RuleInputs.from_bars(bars), population)
    assert signals.shape == (5, 600) and signals.dtype == np.int8
    assert set(np.unique(signals)) <= {-1, 0, 1}
    assert not signals[:, :30].any()  # warm-up: ADX undefined, nothing passes the gate
