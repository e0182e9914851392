"""Triple-barrier and meta-labels on hand-built price paths whose right answer is obvious.

The base path is 5-minute bars with a constant close of 1.1000 and a 0.0010 high-low range,
so every true range, and hence TA-Lib's ATR(14) after its warm-up, is 0.001. Single bars
are then given a spike (a higher high or a lower low, close unchanged) to touch a barrier.
A spike only changes the ATR of its own bar and later ones, so every assertion is on an
entry row before the spike, and barriers are computed from TA-Lib's ATR at the entry row.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
import pytest
import talib

from forex_assets.features.labels import (
    LabelConfigError,
    LabelSettings,
    Touch,
    cross_side,
    ema_cross_side,
    first_touch,
    label_bars,
    meta_labels,
    triple_barrier_labels,
    volatility_scaled_horizon,
)
from forex_assets_tests.conftest import utc

START = utc(2024, 1, 8)
STEP = timedelta(minutes=5)
CLOSE = 1.1
HALF_RANGE = 0.0005
ATR = 0.001
ATR_PERIOD = 14
ENTRY = 50
HORIZON = 10

SETTINGS = LabelSettings(
    take_profit_atr=2,
    stop_loss_atr=1,
    atr_period=ATR_PERIOD,
    horizon_bars=HORIZON,
    min_horizon_bars=2,
    max_horizon_bars=40,
    volatility_lookback=20,
    max_hold_bars=10,
)


def make_bars(
    closes: np.ndarray | list[float],
    highs: dict[int, float] | None = None,
    lows: dict[int, float] | None = None,
) -> pl.DataFrame:
    """5-minute bars: high/low = close +/- 0.0005, except the given spikes."""
    close = np.asarray(closes, dtype=np.float64)
    high = close + HALF_RANGE
    low = close - HALF_RANGE
    for i, value in (highs or {}).items():
        high[i] = value
    for i, value in (lows or {}).items():
        low[i] = value
    times = [START + i * STEP for i in range(close.size)]
    return pl.DataFrame(
        {
            "time": pl.Series(times, dtype=pl.Datetime("us", "UTC")),
            "close_time": pl.Series([t + STEP for t in times], dtype=pl.Datetime("us", "UTC")),
            "open": close,
            "high": high,
            "low": low,
            "close": close,
        }
    )


def flat(n: int = 80, **spikes) -> pl.DataFrame:
    return make_bars(np.full(n, CLOSE), **spikes)


def atr_of(bars: pl.DataFrame) -> np.ndarray:
    return talib.ATR(
        bars["high"].to_numpy(), bars["low"].to_numpy(), bars["close"].to_numpy(), ATR_PERIOD
    )


def close_time(bars: pl.DataFrame, i: int):
    return bars["close_time"][i]


def upper_at(bars: pl.DataFrame, i: int, settings: LabelSettings = SETTINGS) -> float:
    return bars["close"][i] + settings.take_profit_atr * atr_of(bars)[i]


def lower_at(bars: pl.DataFrame, i: int, settings: LabelSettings = SETTINGS) -> float:
    return bars["close"][i] - settings.stop_loss_atr * atr_of(bars)[i]


def row(labels: pl.DataFrame, i: int) -> dict:
    return labels.row(i, named=True)


# --- the base path --------------------------------------------------------------------


def test_flat_path_has_constant_atr_after_warm_up():
    atr = atr_of(flat())
    assert np.isnan(atr[:ATR_PERIOD]).all()
    assert atr[ATR_PERIOD:] == pytest.approx(ATR, rel=1e-9)


def test_constant_atr_gives_the_configured_horizon():
    bars = flat()
    labels = triple_barrier_labels(bars, SETTINGS)
    assert (labels["tb_horizon"][ATR_PERIOD:] == HORIZON).all()
    assert (labels["tb_horizon"][:ATR_PERIOD] == 0).all()
    assert (volatility_scaled_horizon(atr_of(bars), SETTINGS)[ATR_PERIOD:] == HORIZON).all()


def test_output_layout():
    bars = flat()
    labels = triple_barrier_labels(bars, SETTINGS)
    assert labels.columns == ["time", "tb_label", "tb_t1", "tb_return", "tb_horizon"]
    assert labels.height == bars.height
    assert labels["time"].to_list() == bars["time"].to_list()
    assert labels.schema["tb_t1"] == pl.Datetime("us", "UTC")
    both = label_bars(bars, SETTINGS)
    assert both.columns == [
        "time",
        "tb_label",
        "tb_t1",
        "tb_return",
        "tb_horizon",
        "meta_label",
        "meta_t1",
        "meta_side",
    ]
    assert both.height == bars.height


# --- volatility-scaled horizon ---------------------------------------------------------


def _atr_series(n: int = 200, warmup: int = ATR_PERIOD) -> np.ndarray:
    atr = np.full(n, ATR)
    atr[:warmup] = np.nan
    return atr


HORIZON_SETTINGS = LabelSettings(
    horizon_bars=10, min_horizon_bars=1, max_horizon_bars=100, volatility_lookback=100
)


def test_horizon_is_zero_during_warm_up():
    horizon = volatility_scaled_horizon(_atr_series(), HORIZON_SETTINGS)
    assert (horizon[:ATR_PERIOD] == 0).all()
    assert (horizon[ATR_PERIOD:] == 10).all()


@pytest.mark.parametrize(
    ("factor", "expected"),
    [
        # Reference stays ~0.001 (one bar of 100 differs): horizon 10 x 0.001 / ATR.
        (2.0, 5),
        (0.5, 20),
        (3.0, 3),
        (1.0, 10),
    ],
)
def test_horizon_scales_inversely_with_atr(factor, expected):
    atr = _atr_series()
    atr[150] = ATR * factor
    horizon = volatility_scaled_horizon(atr, HORIZON_SETTINGS)
    assert horizon[150] == expected
    assert (horizon[ATR_PERIOD:150] == 10).all()


def test_horizon_is_clipped_to_bounds():
    settings = LabelSettings(
        horizon_bars=10, min_horizon_bars=6, max_horizon_bars=15, volatility_lookback=100
    )
    atr = _atr_series()
    atr[150] = 2 * ATR  # unclipped 5
    atr[160] = 0.5 * ATR  # unclipped 20
    atr[170] = 10 * ATR  # unclipped 1
    atr[180] = 0.0  # infinitely calm
    horizon = volatility_scaled_horizon(atr, settings)
    assert horizon[150] == 6
    assert horizon[160] == 15
    assert horizon[170] == 6
    assert horizon[180] == 15


def test_horizon_uses_atr_seen_so_far_before_lookback_fills():
    settings = LabelSettings(
        horizon_bars=10, min_horizon_bars=1, max_horizon_bars=100, volatility_lookback=1000
    )
    atr = _atr_series(60)
    atr[40] = 2 * ATR
    horizon = volatility_scaled_horizon(atr, settings)
    assert (horizon[ATR_PERIOD:40] == 10).all()
    assert horizon[40] == 5  # reference ~0.001 from the 26 bars seen so far


def test_busier_bars_shorten_the_horizon_in_labels():
    # Range 0.002 from bar 60 on: ATR rises above its reference, the horizon shrinks.
    closes = np.full(120, CLOSE)
    bars = make_bars(
        closes,
        highs={i: CLOSE + 2 * HALF_RANGE for i in range(60, 120)},
        lows={i: CLOSE - 2 * HALF_RANGE for i in range(60, 120)},
    )
    labels = triple_barrier_labels(bars, SETTINGS)
    expected = volatility_scaled_horizon(atr_of(bars), SETTINGS)
    assert labels["tb_horizon"].to_list() == expected.tolist()
    assert (labels["tb_horizon"][ATR_PERIOD:60] == HORIZON).all()
    assert labels["tb_horizon"][75] < HORIZON


# --- triple barrier ---------------------------------------------------------------------


def test_upper_barrier_touched_first():
    bars = flat(highs={ENTRY + 3: CLOSE + 2.5 * ATR})
    labels = triple_barrier_labels(bars, SETTINGS)
    upper = upper_at(bars, ENTRY)
    assert upper == pytest.approx(CLOSE + 2 * ATR)
    got = row(labels, ENTRY)
    assert got["tb_label"] == 1
    assert got["tb_t1"] == close_time(bars, ENTRY + 3)
    assert got["tb_return"] == pytest.approx(upper / CLOSE - 1, rel=1e-6)
    assert got["tb_horizon"] == HORIZON


def test_every_entry_whose_horizon_reaches_the_spike_sees_it():
    spike = ENTRY + 3
    bars = flat(highs={spike: CLOSE + 2.5 * ATR})
    labels = triple_barrier_labels(bars, SETTINGS)
    for i in range(spike - HORIZON, spike):
        assert row(labels, i)["tb_label"] == 1, i
        assert row(labels, i)["tb_t1"] == close_time(bars, spike), i
    before = row(labels, spike - HORIZON - 1)
    assert before["tb_label"] == 0
    assert before["tb_t1"] == close_time(bars, spike - 1)


def test_touch_at_exactly_the_barrier_counts():
    probe = flat()
    bars = flat(highs={ENTRY + 2: upper_at(probe, ENTRY)})
    got = row(triple_barrier_labels(bars, SETTINGS), ENTRY)
    assert got["tb_label"] == 1
    assert got["tb_t1"] == close_time(bars, ENTRY + 2)
    bars = flat(lows={ENTRY + 2: lower_at(probe, ENTRY)})
    got = row(triple_barrier_labels(bars, SETTINGS), ENTRY)
    assert got["tb_label"] == -1
    assert got["tb_t1"] == close_time(bars, ENTRY + 2)


def test_just_short_of_the_barrier_is_no_touch():
    probe = flat()
    upper = upper_at(probe, ENTRY)
    bars = flat(highs={ENTRY + 2: upper - 1e-7})
    got = row(triple_barrier_labels(bars, SETTINGS), ENTRY)
    assert got["tb_label"] == 0
    assert got["tb_t1"] == close_time(bars, ENTRY + HORIZON)


def test_lower_barrier_touched_first():
    bars = flat(lows={ENTRY + 2: CLOSE - 1.5 * ATR})
    labels = triple_barrier_labels(bars, SETTINGS)
    lower = lower_at(bars, ENTRY)
    assert lower == pytest.approx(CLOSE - ATR)
    got = row(labels, ENTRY)
    assert got["tb_label"] == -1
    assert got["tb_t1"] == close_time(bars, ENTRY + 2)
    assert got["tb_return"] == pytest.approx(lower / CLOSE - 1, rel=1e-6)


def test_the_entry_bar_itself_is_not_part_of_the_path():
    bars = flat(highs={ENTRY: CLOSE + 5 * ATR})
    # Entry row ENTRY - 1 sees the spike at ENTRY; entry row ENTRY does not see its own bar.
    labels = triple_barrier_labels(bars, SETTINGS)
    assert row(labels, ENTRY - 1)["tb_label"] == 1
    assert row(labels, ENTRY - 1)["tb_t1"] == close_time(bars, ENTRY)


def test_both_barriers_in_one_bar_counts_as_stop_by_default():
    bars = flat(highs={ENTRY + 2: CLOSE + 2.5 * ATR}, lows={ENTRY + 2: CLOSE - 1.5 * ATR})
    got = row(triple_barrier_labels(bars, SETTINGS), ENTRY)
    assert SETTINGS.both_hit == "stop"
    assert got["tb_label"] == -1
    assert got["tb_t1"] == close_time(bars, ENTRY + 2)
    assert got["tb_return"] == pytest.approx(lower_at(bars, ENTRY) / CLOSE - 1, rel=1e-6)


def test_both_barriers_in_one_bar_with_zero_rule():
    settings = LabelSettings(**{**SETTINGS.__dict__, "both_hit": "zero"})
    bars = flat(highs={ENTRY + 2: CLOSE + 2.5 * ATR}, lows={ENTRY + 2: CLOSE - 1.5 * ATR})
    got = row(triple_barrier_labels(bars, settings), ENTRY)
    assert got["tb_label"] == 0
    assert got["tb_t1"] == close_time(bars, ENTRY + 2)
    assert got["tb_return"] == pytest.approx(0.0, abs=1e-12)  # close of the deciding bar


def test_neither_barrier_within_horizon_is_zero_at_the_vertical_barrier():
    bars = flat()
    labels = triple_barrier_labels(bars, SETTINGS)
    got = row(labels, ENTRY)
    assert got["tb_label"] == 0
    assert got["tb_t1"] == close_time(bars, ENTRY + HORIZON)
    assert got["tb_return"] == pytest.approx(0.0, abs=1e-12)
    # With a constant path every resolved row is a vertical-barrier zero.
    resolved = labels.slice(ATR_PERIOD, bars.height - ATR_PERIOD - HORIZON)
    assert (resolved["tb_label"] == 0).all()
    assert resolved["tb_t1"].to_list() == bars["close_time"][ATR_PERIOD + HORIZON :].to_list()


def test_spike_one_bar_after_the_vertical_barrier_is_ignored():
    bars = flat(highs={ENTRY + HORIZON + 1: CLOSE + 5 * ATR})
    got = row(triple_barrier_labels(bars, SETTINGS), ENTRY)
    assert got["tb_label"] == 0
    assert got["tb_t1"] == close_time(bars, ENTRY + HORIZON)


@pytest.mark.parametrize(("move", "sign"), [(0.0003, 1), (-0.0003, -1), (0.0, 0)])
def test_neither_hit_sign_rule_takes_the_sign_at_the_vertical_barrier(move, sign):
    closes = np.full(80, CLOSE)
    closes[ENTRY + HORIZON] = CLOSE + move  # inside both barriers; true range stays 0.001
    bars = make_bars(closes)
    assert atr_of(bars)[ENTRY] == pytest.approx(ATR, rel=1e-9)
    expected_return = (CLOSE + move) / CLOSE - 1
    sign_settings = LabelSettings(**{**SETTINGS.__dict__, "neither_hit": "sign"})
    got = row(triple_barrier_labels(bars, sign_settings), ENTRY)
    assert got["tb_label"] == sign
    assert got["tb_t1"] == close_time(bars, ENTRY + HORIZON)
    assert got["tb_return"] == pytest.approx(expected_return, rel=1e-5, abs=1e-9)
    zero = row(triple_barrier_labels(bars, SETTINGS), ENTRY)
    assert zero["tb_label"] == 0
    assert zero["tb_return"] == pytest.approx(expected_return, rel=1e-5, abs=1e-9)


def test_path_running_past_the_end_is_unresolved():
    n = ENTRY + HORIZON  # last bar index ENTRY + HORIZON - 1: ENTRY's vertical is missing
    bars = flat(n)
    labels = triple_barrier_labels(bars, SETTINGS)
    for i in range(ENTRY, n):
        got = row(labels, i)
        assert got["tb_label"] is None, i
        assert got["tb_t1"] is None, i
        assert got["tb_return"] is None, i
    last_resolved = row(labels, ENTRY - 1)
    assert last_resolved["tb_label"] == 0
    assert last_resolved["tb_t1"] == close_time(bars, n - 1)


def test_touch_before_the_end_resolves_a_short_path():
    n = 60
    bars = flat(n, highs={n - 2: CLOSE + 2.5 * ATR})
    labels = triple_barrier_labels(bars, SETTINGS)
    for i in range(n - 2 - HORIZON, n - 2):
        assert row(labels, i)["tb_label"] == 1, i
        assert row(labels, i)["tb_t1"] == close_time(bars, n - 2), i
    for i in (n - 2, n - 1):
        assert row(labels, i)["tb_label"] is None
        assert row(labels, i)["tb_t1"] is None


def test_warm_up_rows_have_no_label():
    bars = flat()
    labels = triple_barrier_labels(bars, SETTINGS)
    warm = labels.head(ATR_PERIOD)
    assert warm["tb_label"].null_count() == ATR_PERIOD
    assert warm["tb_t1"].null_count() == ATR_PERIOD
    assert warm["tb_return"].null_count() == ATR_PERIOD
    assert row(labels, ATR_PERIOD)["tb_label"] == 0


def test_earliest_touch_wins():
    bars = flat(highs={ENTRY + 5: CLOSE + 3 * ATR}, lows={ENTRY + 2: CLOSE - 1.5 * ATR})
    got = row(triple_barrier_labels(bars, SETTINGS), ENTRY)
    assert got["tb_label"] == -1
    assert got["tb_t1"] == close_time(bars, ENTRY + 2)

    bars = flat(highs={ENTRY + 2: CLOSE + 3 * ATR}, lows={ENTRY + 5: CLOSE - 1.5 * ATR})
    got = row(triple_barrier_labels(bars, SETTINGS), ENTRY)
    assert got["tb_label"] == 1
    assert got["tb_t1"] == close_time(bars, ENTRY + 2)


def test_barrier_multiples_scale_with_settings():
    # A spike of 2.5 ATR reaches a 2-ATR take-profit but not a 3-ATR one.
    bars = flat(highs={ENTRY + 3: CLOSE + 2.5 * ATR})
    wide = LabelSettings(**{**SETTINGS.__dict__, "take_profit_atr": 3.0})
    assert row(triple_barrier_labels(bars, SETTINGS), ENTRY)["tb_label"] == 1
    assert row(triple_barrier_labels(bars, wide), ENTRY)["tb_label"] == 0


# --- first_touch on tiny arrays ---------------------------------------------------------


def _scan(high, low, upper, lower, horizon):
    exit_index, touch = first_touch(
        np.asarray(high, dtype=np.float64),
        np.asarray(low, dtype=np.float64),
        np.asarray(upper, dtype=np.float64),
        np.asarray(lower, dtype=np.float64),
        np.asarray(horizon, dtype=np.int64),
    )
    return exit_index.tolist(), touch.tolist()


NAN = float("nan")


def test_first_touch_upper_lower_both_vertical():
    #        bar:    0    1    2    3    4
    high = [1.0, 1.0, 3.0, 1.0, 1.0]
    low = [0.0, 0.0, 0.0, 0.0, -5.0]
    upper = [2.0, NAN, 4.0, 2.0, 2.0]
    lower = [-1.0, NAN, -1.0, -1.0, -1.0]
    horizon = [4, 3, 1, 1, 3]
    exit_index, touch = _scan(high, low, upper, lower, horizon)
    assert exit_index[0] == 2 and touch[0] == Touch.UPPER
    assert exit_index[1] == -1 and touch[1] == Touch.UNRESOLVED  # NaN barrier
    assert exit_index[2] == 3 and touch[2] == Touch.VERTICAL
    assert exit_index[3] == 4 and touch[3] == Touch.LOWER
    assert exit_index[4] == -1 and touch[4] == Touch.UNRESOLVED  # past the end


def test_first_touch_both_in_one_bar_and_equality():
    high = [0.0, 2.0, 0.0]
    low = [0.0, -1.0, 0.0]
    exit_index, touch = _scan(high, low, [2.0, 9.0, 9.0], [-1.0, -9.0, -9.0], [2, 1, 1])
    assert exit_index[0] == 1 and touch[0] == Touch.BOTH
    assert exit_index[1] == 2 and touch[1] == Touch.VERTICAL
    assert touch[2] == Touch.UNRESOLVED


def test_first_touch_horizon_below_one_is_unresolved():
    exit_index, touch = _scan([0, 5, 5], [0, -5, -5], [1, 1, 1], [-1, -1, -1], [0, -3, 1])
    assert exit_index[:2] == [-1, -1]
    assert touch[:2] == [Touch.UNRESOLVED, Touch.UNRESOLVED]


def test_first_touch_vertical_at_the_last_bar_is_resolved():
    exit_index, touch = _scan([0, 0, 0], [0, 0, 0], [1, 1, 1], [-1, -1, -1], [2, 2, 2])
    assert exit_index == [2, -1, -1]
    assert touch == [Touch.VERTICAL, Touch.UNRESOLVED, Touch.UNRESOLVED]


def test_first_touch_does_not_look_at_the_entry_bar():
    exit_index, touch = _scan([9, 0, 0], [-9, 0, 0], [1, 1, 1], [-1, -1, -1], [1, 1, 1])
    assert exit_index[0] == 1 and touch[0] == Touch.VERTICAL


# --- EMA cross and meta-labels ----------------------------------------------------------

FALL = 40
DRIFT = 0.0002  # below the half range: the true range, and so ATR, stays 0.001


def cross_path(direction: int, after: int = 40, **spikes_after) -> tuple[pl.DataFrame, int]:
    """Close drifts against `direction`, turns, crosses once, then stays flat.

    Returns the bars and the cross bar; spikes are given as offsets from the cross bar.
    """
    trend = np.r_[-np.arange(FALL), -(FALL - 1) + np.arange(1, 60)] * DRIFT * direction
    closes = CLOSE + trend
    spread = talib.EMA(closes, 9) - talib.EMA(closes, 21)
    cross = int(np.flatnonzero(np.sign(spread[:-1]) * np.sign(spread[1:]) < 0)[0]) + 1
    closes = np.r_[closes[: cross + 1], np.full(after, closes[cross])]
    spikes = {
        key: {cross + offset: value for offset, value in offsets.items()}
        for key, offsets in spikes_after.items()
    }
    return make_bars(closes, **spikes), cross


def test_ema_cross_side_marks_only_the_sign_change_bar():
    bars, cross = cross_path(+1)
    closes = bars["close"].to_numpy()
    spread = talib.EMA(closes, 9) - talib.EMA(closes, 21)
    assert spread[cross - 1] < 0 < spread[cross]
    expected = np.zeros(closes.size, dtype=np.int8)
    expected[cross] = 1
    assert ema_cross_side(closes, 9, 21).tolist() == expected.tolist()


def test_ema_cross_side_down():
    bars, cross = cross_path(-1)
    closes = bars["close"].to_numpy()
    spread = talib.EMA(closes, 9) - talib.EMA(closes, 21)
    assert spread[cross - 1] > 0 > spread[cross]
    side = ema_cross_side(closes, 9, 21)
    assert side[cross] == -1
    assert np.count_nonzero(side) == 1


def test_ema_cross_side_matches_sign_changes_on_a_wave():
    closes = CLOSE + 0.01 * np.sin(np.arange(400) / 15.0)
    spread = talib.EMA(closes, 5) - talib.EMA(closes, 13)
    prev, cur = spread[:-1], spread[1:]
    expected = np.zeros(closes.size, dtype=np.int8)
    expected[1:][(prev < 0) & (cur > 0)] = 1
    expected[1:][(prev > 0) & (cur < 0)] = -1
    side = ema_cross_side(closes, 5, 13)
    assert side.tolist() == expected.tolist()
    assert np.count_nonzero(side == 1) >= 3 and np.count_nonzero(side == -1) >= 3
    # Warm-up (NaN spread) never makes an event.
    assert (side[:13] == 0).all()


def _meta_row(bars: pl.DataFrame, cross: int, settings: LabelSettings = SETTINGS) -> dict:
    return row(meta_labels(bars, settings), cross)


def _take_and_stop(bars: pl.DataFrame, cross: int, side: int) -> tuple[float, float]:
    entry = bars["close"][cross]
    atr = atr_of(bars)[cross]
    assert atr == pytest.approx(ATR, rel=1e-9)
    return entry + side * 2 * atr, entry - side * atr


def test_meta_take_profit_first_is_one():
    probe, cross = cross_path(+1)
    take, stop = _take_and_stop(probe, cross, +1)
    bars, _ = cross_path(+1, highs={4: take + 1e-4}, lows={7: stop - 1e-4})
    got = _meta_row(bars, cross)
    assert got["meta_side"] == 1
    assert got["meta_label"] == 1
    assert got["meta_t1"] == close_time(bars, cross + 4)


def test_meta_take_profit_at_exactly_the_level_counts():
    probe, cross = cross_path(+1)
    take, _ = _take_and_stop(probe, cross, +1)
    bars, _ = cross_path(+1, highs={4: take})
    got = _meta_row(bars, cross)
    assert got["meta_label"] == 1
    assert got["meta_t1"] == close_time(bars, cross + 4)


def test_meta_stop_first_is_zero():
    probe, cross = cross_path(+1)
    take, stop = _take_and_stop(probe, cross, +1)
    bars, _ = cross_path(+1, highs={6: take + 1e-4}, lows={3: stop - 1e-4})
    got = _meta_row(bars, cross)
    assert got["meta_side"] == 1
    assert got["meta_label"] == 0
    assert got["meta_t1"] == close_time(bars, cross + 3)


def test_meta_both_in_one_bar_is_zero():
    probe, cross = cross_path(+1)
    take, stop = _take_and_stop(probe, cross, +1)
    bars, _ = cross_path(+1, highs={3: take + 1e-4}, lows={3: stop - 1e-4})
    got = _meta_row(bars, cross)
    assert got["meta_label"] == 0
    assert got["meta_t1"] == close_time(bars, cross + 3)


def test_meta_neither_within_max_hold_is_zero():
    probe, cross = cross_path(+1)
    take, _ = _take_and_stop(probe, cross, +1)
    hold = SETTINGS.max_hold_bars
    bars, _ = cross_path(+1, highs={hold + 1: take + 1e-4})
    got = _meta_row(bars, cross)
    assert got["meta_side"] == 1
    assert got["meta_label"] == 0
    assert got["meta_t1"] == close_time(bars, cross + hold)


def test_meta_event_whose_hold_runs_past_the_end_is_unresolved():
    bars, cross = cross_path(+1, after=SETTINGS.max_hold_bars - 1)
    got = _meta_row(bars, cross)
    assert got["meta_side"] == 1
    assert got["meta_label"] is None
    assert got["meta_t1"] is None


def test_meta_rows_without_event_have_no_label():
    probe, cross = cross_path(+1)
    take, _ = _take_and_stop(probe, cross, +1)
    bars, _ = cross_path(+1, highs={4: take + 1e-4})
    labels = meta_labels(bars, SETTINGS)
    assert labels.columns == ["time", "meta_label", "meta_t1", "meta_side"]
    others = labels.filter(pl.int_range(pl.len()) != cross)
    assert others["meta_label"].null_count() == others.height
    assert others["meta_t1"].null_count() == others.height
    assert others["meta_side"].null_count() == others.height
    assert labels["meta_side"].drop_nulls().to_list() == [1]


def test_meta_short_take_profit_is_below_entry():
    probe, cross = cross_path(-1)
    take, stop = _take_and_stop(probe, cross, -1)
    assert take < probe["close"][cross] < stop
    bars, _ = cross_path(-1, lows={4: take - 1e-4}, highs={7: stop + 1e-4})
    got = _meta_row(bars, cross)
    assert got["meta_side"] == -1
    assert got["meta_label"] == 1
    assert got["meta_t1"] == close_time(bars, cross + 4)


def test_meta_short_stop_is_above_entry():
    probe, cross = cross_path(-1)
    take, _ = _take_and_stop(probe, cross, -1)
    # A rise of two ATR would be a long's take-profit; for a short it is the stop.
    bars, _ = cross_path(-1, highs={3: probe["close"][cross] + 2.5 * ATR}, lows={6: take - 1e-4})
    got = _meta_row(bars, cross)
    assert got["meta_side"] == -1
    assert got["meta_label"] == 0
    assert got["meta_t1"] == close_time(bars, cross + 3)


def test_meta_short_both_in_one_bar_is_zero():
    probe, cross = cross_path(-1)
    take, stop = _take_and_stop(probe, cross, -1)
    bars, _ = cross_path(-1, lows={2: take - 1e-4}, highs={2: stop + 1e-4})
    got = _meta_row(bars, cross)
    assert got["meta_label"] == 0
    assert got["meta_t1"] == close_time(bars, cross + 2)


def test_label_bars_combines_both():
    probe, cross = cross_path(+1)
    take, _ = _take_and_stop(probe, cross, +1)
    bars, _ = cross_path(+1, highs={4: take + 1e-4})
    both = label_bars(bars, SETTINGS)
    tb = triple_barrier_labels(bars, SETTINGS)
    meta = meta_labels(bars, SETTINGS)
    assert both.select(tb.columns).equals(tb)
    assert both.select(meta.columns).equals(meta)


# --- bad settings ---------------------------------------------------------------------


@pytest.mark.parametrize("field", ["take_profit_atr", "stop_loss_atr"])
@pytest.mark.parametrize("value", [0, 0.0, -1, -0.5, "x", None, True, float("nan")])
def test_barrier_multiples_must_be_positive_numbers(field, value):
    with pytest.raises(LabelConfigError, match=field):
        LabelSettings(**{field: value})


@pytest.mark.parametrize(
    "field",
    ["atr_period", "horizon_bars", "volatility_lookback", "signal_fast", "max_hold_bars"],
)
@pytest.mark.parametrize("value", [0, -3, 2.5, "x", True])
def test_bar_counts_must_be_whole_numbers(field, value):
    with pytest.raises(LabelConfigError, match=field):
        LabelSettings(**{field: value})


def test_min_horizon_must_be_at_least_one():
    with pytest.raises(LabelConfigError, match="min_horizon_bars"):
        LabelSettings(min_horizon_bars=0)


@pytest.mark.parametrize(
    "bounds",
    [
        {"min_horizon_bars": 50, "horizon_bars": 48},
        {"horizon_bars": 200, "max_horizon_bars": 192},
        {"min_horizon_bars": 20, "horizon_bars": 15, "max_horizon_bars": 10},
    ],
)
def test_horizon_bounds_out_of_order(bounds):
    with pytest.raises(LabelConfigError, match="min_horizon_bars") as raised:
        LabelSettings(**bounds)
    assert "max_horizon_bars" in str(raised.value)
    assert "horizon_bars" in str(raised.value)


def test_horizon_bounds_may_be_equal():
    settings = LabelSettings(min_horizon_bars=5, horizon_bars=5, max_horizon_bars=5)
    assert settings.horizon_bars == 5


@pytest.mark.parametrize(("fast", "slow"), [(21, 21), (30, 21)])
def test_fast_signal_must_be_shorter(fast, slow):
    with pytest.raises(LabelConfigError, match="signal_fast"):
        LabelSettings(signal_fast=fast, signal_slow=slow)


@pytest.mark.parametrize(("field", "value"), [("both_hit", "maybe"), ("neither_hit", "maybe")])
def test_rules_must_be_known(field, value):
    with pytest.raises(LabelConfigError, match=field) as raised:
        LabelSettings(**{field: value})
    assert "maybe" in str(raised.value)


def test_label_config_error_is_a_value_error():
    assert issubclass(LabelConfigError, ValueError)


@pytest.mark.parametrize(
    "kwargs", [{"signal_slow": "x"}, {"signal_slow": 21.5}, {"max_horizon_bars": 100.5}]
)
def test_unchecked_bar_counts_are_rejected(kwargs):
    with pytest.raises(LabelConfigError, match=next(iter(kwargs))):
        LabelSettings(**kwargs)


@pytest.mark.parametrize(
    ("spread", "expected"),
    [
        ([-1.0, 0.0, 1.0], [0, 0, 1]),
        ([-1.0, 0.0, 0.0, -2.0], [0, 0, 0, 0]),
        ([1.0, 0.0, -1.0, 0.0, 1.0], [0, 0, -1, 0, 1]),
        ([np.nan, 1.0, -1.0], [0, 0, -1]),
        ([np.nan, np.nan, 0.0, 1.0], [0, 0, 0, 0]),
    ],
)
def test_cross_through_exact_equality_is_one_cross(spread, expected):
    assert cross_side(np.array(spread)).tolist() == expected
