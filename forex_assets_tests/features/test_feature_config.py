"""Feature configuration: bad input fails at load with a message naming the entry, and a
valid configuration (a mapping or a TOML file) yields exactly the columns it names."""

from __future__ import annotations

import re
from datetime import date

import pytest

from forex_assets.features.feature_config import (
    FeatureConfigError,
    default_indicators,
    load_feature_settings,
    parse_indicators,
)
from forex_assets.features.indicator_set import INDICATORS, compute_indicators, feature_columns
from forex_assets.ingest.sample import generate_sample_m1
from forex_assets.market.timeframes import Timeframe


def rejects(config: object, *fragments: str) -> str:
    """The configuration is rejected and the message holds every fragment verbatim."""
    with pytest.raises(FeatureConfigError) as info:
        parse_indicators(config)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


# --------------------------------------------------------------------------- names


def test_unknown_indicator_suggests_the_close_match():
    message = rejects({"rsii": [14]}, "indicators.rsii", "unknown indicator", "Did you mean rsi")
    assert "Known indicators:" in message


def test_unknown_indicator_without_a_close_match_lists_the_known_ones():
    message = rejects({"frobnicate": [3]}, "indicators.frobnicate", "unknown indicator")
    assert "Did you mean" not in message
    assert all(name in message for name in INDICATORS)


def test_the_first_bad_entry_is_named_in_configuration_order():
    rejects({"rsi": [14], "emaa": [9], "smaa": [20]}, "indicators.emaa")


def test_config_that_is_not_a_table():
    rejects([("rsi", 14)], "indicators is a list", "expected a table")


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (0, "is below the minimum 2"),
        (-3, "is below the minimum 2"),
        (1, "is below the minimum 2"),
        (14.5, "must be a whole number of bars"),
        ("x", "is not a finite number"),
        ("14", "is not a finite number"),
        (True, "is not a finite number"),
        (None, "is not a finite number"),
    ],
)
def test_invalid_period(value, problem):
    rejects({"rsi": [9, value]}, f"indicators.rsi[1].period={value!r}", problem)


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_non_finite_period(value):
    rejects({"rsi": [value]}, "indicators.rsi[0].period")


def test_whole_float_period_is_an_int():
    (spec,) = parse_indicators({"rsi": [14.0]})
    assert spec.params == (("period", 14),)
    assert isinstance(spec.params[0][1], int)
    assert spec.columns == ("rsi_14",)


def test_periods_of_one_where_one_bar_means_something():
    specs = parse_indicators({"atr": [1], "mom": [1], "log_return": [1]})
    assert feature_columns(specs) == ["atr_1", "mom_1", "log_return_1"]
    rejects({"sma": [1]}, "indicators.sma[0].period=1", "below the minimum 2")


@pytest.mark.parametrize(
    ("nbdev", "problem"),
    [
        (0, "must be greater than 0"),
        (-2.0, "must be greater than 0"),
        ("2", "is not a finite number"),
    ],
)
def test_invalid_multiplier(nbdev, problem):
    rejects(
        {"bbands": [{"period": 20, "nbdev": nbdev}]},
        f"indicators.bbands[0].nbdev={nbdev!r}",
        problem,
    )


def test_stochastic_periods_are_checked_each():
    rejects(
        {"stoch": [{"k_period": 14, "k_smooth": 0, "d_period": 3}]},
        "indicators.stoch[0].k_smooth=0",
        "below the minimum 1",
    )


# --------------------------------------------------------------------------- parameter sets


def test_missing_parameter():
    rejects(
        {"bbands": [{"period": 20}]},
        "indicators.bbands[0]",
        "missing ['nbdev']",
        "bbands takes (period: int, nbdev: float)",
    )


def test_extra_parameter():
    rejects(
        {"bbands": [{"period": 20, "nbdev": 2.0, "matype": 0}]},
        "indicators.bbands[0]",
        "unknown ['matype']",
    )


def test_missing_and_extra_together():
    rejects({"keltner": [{"period": 20, "atr": 10}]}, "unknown ['atr']", "missing ['atr_period'")


def test_positional_list_of_the_wrong_length():
    rejects(
        {"macd": [[12, 26]]},
        "indicators.macd[0]=[12, 26] gives 2 value(s)",
        "macd takes (fast: int, slow: int, signal: int)",
    )


def test_flat_macd_list_is_three_one_value_sets():
    rejects({"macd": [12, 26, 9]}, "indicators.macd[0]=12 gives 1 value(s)")


@pytest.mark.parametrize(("fast", "slow"), [(26, 12), (26, 26)])
def test_macd_fast_must_be_shorter_than_slow(fast, slow):
    rejects(
        {"macd": [{"fast": fast, "slow": slow, "signal": 9}]},
        "indicators.macd[0]",
        f"fast={fast} must be shorter than slow={slow}",
    )


@pytest.mark.parametrize(
    ("config", "where", "first"),
    [
        ({"rsi": [14, 9, 14]}, "indicators.rsi[2]", "indicators.rsi[0]"),
        ({"rsi": [14, 14.0]}, "indicators.rsi[1]", "indicators.rsi[0]"),
        (
            {"macd": [[12, 26, 9], {"fast": 12, "slow": 26, "signal": 9}]},
            "indicators.macd[1]",
            "indicators.macd[0]",
        ),
        (
            {"bbands": [{"period": 20, "nbdev": 2}, {"period": 20, "nbdev": 2.0}]},
            "indicators.bbands[1]",
            "indicators.bbands[0]",
        ),
    ],
)
def test_duplicate_parameter_sets(config, where, first):
    rejects(config, f"{where} repeats {first}", "list each parameter set once")


def test_distinct_sets_never_share_a_column():
    config = {"bbands": [{"period": 20, "nbdev": 2.0}, {"period": 20, "nbdev": 2.0000001}]}
    columns = feature_columns(parse_indicators(config))
    assert len(columns) == len(set(columns)) == 8
    assert "bbands_20_2p0000001_upper" in columns


# --------------------------------------------------------------------------- switches


@pytest.mark.parametrize("name", ["candle", "session"])
@pytest.mark.parametrize("value", [[14], {"period": 3}, "yes", 1])
def test_parameterless_indicator_given_parameters(name, value):
    rejects({name: value}, f"indicators.{name}={value!r}", f"{name} takes no parameters")


def test_parameterless_indicator_switches():
    specs = parse_indicators({"rsi": [14], "candle": False, "session": True})
    assert feature_columns(specs) == [
        "rsi_14",
        "session_asia",
        "session_london",
        "session_new_york",
    ]


@pytest.mark.parametrize(
    "config", [{}, {"rsi": []}, {"candle": False}, {"candle": False, "session": False}]
)
def test_config_enabling_nothing(config):
    rejects(config, "indicators enables no indicator")


# --------------------------------------------------------------------------- defaults


def test_default_set_covers_every_registered_indicator():
    specs = default_indicators()
    assert {spec.name for spec in specs} == set(INDICATORS)
    columns = feature_columns(specs)
    assert len(columns) == len(set(columns))
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", column) for column in columns)


# --------------------------------------------------------------------------- TOML files


VALID_TOML = """\
base_timeframe = "H1"

[indicators]
rsi = [9, 14]
bbands = [{period = 20, nbdev = 2.5}]
macd = [[12, 26, 9]]
keltner = {period = 20, atr_period = 10, multiplier = 1.5}
candle = true
session = false
"""

VALID_COLUMNS = [
    "rsi_9",
    "rsi_14",
    "bbands_20_2p5_upper",
    "bbands_20_2p5_middle",
    "bbands_20_2p5_lower",
    "bbands_20_2p5_width",
    "macd_12_26_9_line",
    "macd_12_26_9_signal",
    "macd_12_26_9_hist",
    "keltner_20_10_1p5_upper",
    "keltner_20_10_1p5_lower",
    "candle_upper_wick",
    "candle_lower_wick",
    "candle_body",
]


def test_toml_round_trip(tmp_path):
    path = tmp_path / "features.toml"
    path.write_text(VALID_TOML)
    settings = load_feature_settings(path)
    assert settings.base_timeframe is Timeframe.H1
    assert feature_columns(settings.indicators) == VALID_COLUMNS
    bars = generate_sample_m1("EURUSD", start=date(2024, 3, 4), years=2 / 365.25)
    features = compute_indicators(bars, settings.indicators)
    assert features.columns == ["time", *VALID_COLUMNS]
    assert features.height == bars.height


def test_toml_without_indicators_keeps_the_default_set(tmp_path):
    path = tmp_path / "features.toml"
    path.write_text('base_timeframe = "M15"\n')
    settings = load_feature_settings(path)
    assert list(settings.indicators) == default_indicators()
    assert settings.base_timeframe is Timeframe.M15


def test_toml_with_a_misspelt_indicators_table(tmp_path):
    path = tmp_path / "features.toml"
    path.write_text("[indicator]\nrsi = [14]\n")
    with pytest.raises(FeatureConfigError) as info:
        load_feature_settings(path)
    assert str(path) in str(info.value)
    assert "['indicator']" in str(info.value)


def test_toml_errors_name_the_file_and_entry(tmp_path):
    path = tmp_path / "features.toml"
    path.write_text("[indicators]\nrsi = [14]\nrsii = [9]\n")
    with pytest.raises(FeatureConfigError) as info:
        load_feature_settings(path)
    message = str(info.value)
    assert str(path) in message
    assert "indicators.rsii" in message
    assert "Did you mean rsi" in message


def test_toml_with_an_empty_indicators_table(tmp_path):
    path = tmp_path / "features.toml"
    path.write_text("[indicators]\n")
    with pytest.raises(FeatureConfigError, match="enables no indicator") as info:
        load_feature_settings(path)
    assert str(path) in str(info.value)


def test_bad_toml_syntax_names_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[indicators]\nrsi = [14,\n")
    with pytest.raises(FeatureConfigError, match="not valid TOML") as info:
        load_feature_settings(path)
    assert str(path) in str(info.value)


def test_missing_file_names_the_file(tmp_path):
    path = tmp_path / "absent.toml"
    with pytest.raises(FeatureConfigError, match="cannot be read") as info:
        load_feature_settings(path)
    assert str(path) in str(info.value)


def test_config_error_is_a_value_error():
    assert issubclass(FeatureConfigError, ValueError)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is not UTF-8 text (byte 0x89 at offset 0)"),
        (b'base_timeframe = "M5"\n\x00\x00', "contains a NUL byte at offset 22"),
    ],
)
def test_binary_file_is_named_in_one_line(tmp_path, data, problem):
    path = tmp_path / "features.toml"
    path.write_bytes(data)
    with pytest.raises(FeatureConfigError) as info:
        load_feature_settings(path)
    message = str(info.value)
    assert f"feature config {path} {problem}" in message
    assert "\n" not in message
