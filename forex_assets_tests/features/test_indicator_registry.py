"""Indicators are collected by module: a new indicator is one new module and nothing else."""

import sys
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from forex_assets.features import indicator_types
from forex_assets.features.feature_config import parse_indicators
from forex_assets.features.indicator_set import (
    INDICATORS,
    IndicatorRegistryError,
    compute_indicators,
    discover_indicators,
)

_CLOSE = 1.1 + np.cumsum(np.random.default_rng(4).normal(0, 1e-4, 200))
BARS = pl.DataFrame(
    {
        "time": pl.datetime_range(
            datetime(2024, 1, 1, tzinfo=UTC),
            datetime(2024, 1, 1, 3, 19, tzinfo=UTC),
            "1m",
            eager=True,
        ),
        "open": _CLOSE,
        "high": _CLOSE + 2e-4,
        "low": _CLOSE - 2e-4,
        "close": _CLOSE,
    }
)
MIDPOINT = """
from forex_assets.features.indicator_definition import Indicator, one

INDICATORS = (
    Indicator(
        "hl_mid", "midpoint of the bar's high and low", (), ("",),
        lambda p, a: one((p.high + p.low) / 2.0), False,
    ),
)
"""


@pytest.fixture
def extra_indicators(tmp_path, monkeypatch):
    """A folder searched as part of `indicator_types`, and a registry that includes it."""
    monkeypatch.setattr(indicator_types, "__path__", [*indicator_types.__path__, str(tmp_path)])
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith(f"{indicator_types.__name__}.")]:
        if getattr(sys.modules[name], "__file__", "").startswith(str(tmp_path)):
            del sys.modules[name]


def test_a_new_module_adds_an_indicator_the_configuration_can_name(extra_indicators, monkeypatch):
    (extra_indicators / "midpoint.py").write_text(MIDPOINT)
    found = discover_indicators()
    assert set(found) == {*INDICATORS, "hl_mid"}
    monkeypatch.setitem(INDICATORS, "hl_mid", found["hl_mid"])
    specs = parse_indicators({"hl_mid": True, "rsi": [14]})
    columns = compute_indicators(BARS, specs)
    expected = (BARS["high"].to_numpy() + BARS["low"].to_numpy()) / 2.0
    np.testing.assert_array_equal(columns["hl_mid"].to_numpy(), expected)


def test_two_modules_defining_one_name_are_refused(extra_indicators):
    (extra_indicators / "copy.py").write_text(MIDPOINT.replace('"hl_mid"', '"rsi"'))
    with pytest.raises(IndicatorRegistryError, match=r"'rsi' is defined by both .*oscillators"):
        discover_indicators()


def test_a_module_without_indicators_is_refused(extra_indicators):
    (extra_indicators / "empty.py").write_text("INDICATOR = ()\n")
    with pytest.raises(IndicatorRegistryError, match=r"empty defines INDICATORS=None"):
        discover_indicators()
