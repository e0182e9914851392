"""What the feature engine computes, as configuration, validated before anything runs.

A feature configuration file (TOML, named by ``FOREX_ASSETS_FEATURE_CONFIG``) holds the
matrix's base timeframe, the warm-up allowance, the label settings and the indicator
set; anything it leaves out keeps its default::

    base_timeframe = "M5"
    max_warmup_share = 0.25

    [labels]                              # fields of `labels.LabelSettings`
    take_profit_atr = 2.0
    stop_loss_atr = 1.0

    [indicators]
    rsi = [9, 14, 21]                     # one-parameter indicators take bare values
    bbands = [{period = 20, nbdev = 2.0}, {period = 50, nbdev = 2.0}]
    macd = [[12, 26, 9]]                  # or positional lists, in parameter order
    candle = true                         # parameterless indicators are switched on

The indicator table maps indicator names to parameter sets; when present it replaces the
default set. A name the registry does not know, a missing, extra or out-of-range
parameter, or a set listed twice is rejected with the path of the offending entry, so a
typo fails when the code location loads instead of silently producing fewer features.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

from forex_assets.features.hygiene import DEFAULT_MAX_WARMUP_SHARE
from forex_assets.features.indicator_definition import Indicator, Param, ParamValue
from forex_assets.features.indicator_set import INDICATORS, IndicatorSpec
from forex_assets.features.labels import LabelConfigError, LabelSettings
from forex_assets.market.timeframes import Timeframe

# The seed's TA-Lib mix, extended to everything the feature engine offers.
DEFAULT_INDICATORS: dict[str, object] = {
    "sma": [20, 50, 100, 200],
    "ema": [9, 21, 50, 200],
    "wma": [20, 50],
    "rsi": [9, 14, 21],
    "macd": [{"fast": 12, "slow": 26, "signal": 9}, {"fast": 5, "slow": 35, "signal": 5}],
    "bbands": [
        {"period": 20, "nbdev": 2.0},
        {"period": 20, "nbdev": 2.5},
        {"period": 50, "nbdev": 2.0},
    ],
    "atr": [14, 30],
    "natr": [14],
    "adx": [14],
    "cci": [14, 20],
    "stoch": [{"k_period": 14, "k_smooth": 3, "d_period": 3}],
    "willr": [14],
    "mom": [10],
    "roc": [10],
    "cmo": [14],
    "donchian": [20, 55],
    "keltner": [{"period": 20, "atr_period": 10, "multiplier": 2.0}],
    "log_return": [1, 5, 20],
    "realized_vol": [20, 60],
    "ewma_vol": [20, 60],
    "zscore": [20, 50],
    "candle": True,
    "session": True,
}


# TA-Lib rejects longer periods with a bare TA_BAD_PARAM.
MAX_PERIOD = 100_000


class FeatureConfigError(ValueError):
    """A feature configuration that cannot be computed; the message names the entry."""


def parse_indicators(
    config: Mapping[str, object], source: str = "indicators"
) -> list[IndicatorSpec]:
    """Validate an `{indicator: parameter sets}` mapping into specs, in configuration order."""
    if not isinstance(config, Mapping):
        raise FeatureConfigError(
            f"{source} is a {type(config).__name__}; expected a table mapping indicator "
            f"names to parameter sets, e.g. {{'rsi': [14]}}."
        )
    specs: list[IndicatorSpec] = []
    seen: dict[IndicatorSpec, str] = {}
    for name, entries in config.items():
        indicator = _known_indicator(name, source)
        for where, raw in _entries(indicator, entries, f"{source}.{name}"):
            spec = IndicatorSpec(name, _assign(indicator, raw, where))
            if spec in seen:
                raise FeatureConfigError(
                    f"{where} repeats {seen[spec]} ({spec.prefix}); list each parameter set once."
                )
            seen[spec] = where
            specs.append(spec)
    if not specs:
        raise FeatureConfigError(f"{source} enables no indicator; name at least one.")
    return specs


@dataclass(frozen=True)
class FeatureSettings:
    """Everything the feature assets need to know, fixed when the code location loads.

    The base timeframe shapes the asset graph (the matrix reads the features of the base
    and every higher timeframe), which is why it is settled at load, not per run.
    """

    indicators: tuple[IndicatorSpec, ...] = field(
        default_factory=lambda: tuple(default_indicators())
    )
    base_timeframe: Timeframe = Timeframe.M5
    max_warmup_share: float = DEFAULT_MAX_WARMUP_SHARE
    labels: LabelSettings = field(default_factory=LabelSettings)
    source: str = "defaults"


_TOP_LEVEL = ("base_timeframe", "max_warmup_share", "labels", "indicators")


def load_feature_settings(path: Path) -> FeatureSettings:
    """Settings from a TOML feature configuration file; errors name the file and entry."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise FeatureConfigError(f"feature config {path} cannot be read: {error}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise FeatureConfigError(
            f"feature config {path} is not UTF-8 text (byte {data[error.start]:#04x} at offset "
            f"{error.start}); it looks like a binary file: point the setting at a TOML file."
        ) from None
    if "\0" in text:
        raise FeatureConfigError(
            f"feature config {path} contains a NUL byte at offset {data.index(0)}; it looks "
            "like a binary file: point the setting at a TOML file."
        )
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise FeatureConfigError(f"feature config {path} is not valid TOML: {error}") from None
    return feature_settings_from(document, source=str(path))


def feature_settings_from(document: Mapping[str, object], source: str) -> FeatureSettings:
    unknown = sorted(set(document) - set(_TOP_LEVEL))
    if unknown:
        raise FeatureConfigError(
            f"{source}: unknown setting(s) {unknown}; a feature config holds {list(_TOP_LEVEL)}."
        )
    settings: dict[str, object] = {"source": source}
    if "indicators" in document:
        settings["indicators"] = tuple(
            parse_indicators(document["indicators"], source=f"{source}: indicators")
        )
    if "base_timeframe" in document:
        try:
            settings["base_timeframe"] = Timeframe.parse(str(document["base_timeframe"]))
        except ValueError as error:
            raise FeatureConfigError(f"{source}: {error}") from None
    if "max_warmup_share" in document:
        share = document["max_warmup_share"]
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share < 1:
            raise FeatureConfigError(
                f"{source}: max_warmup_share={share!r} must be a number in [0, 1), the "
                "largest share of rows one column's warm-up may cost."
            )
        settings["max_warmup_share"] = float(share)
    if "labels" in document:
        settings["labels"] = _label_settings(document["labels"], source)
    return FeatureSettings(**settings)


def _label_settings(table: object, source: str) -> LabelSettings:
    names = [f.name for f in fields(LabelSettings)]
    if not isinstance(table, Mapping):
        raise FeatureConfigError(f"{source}: labels must be a table of {names}.")
    unknown = sorted(set(table) - set(names))
    if unknown:
        raise FeatureConfigError(f"{source}: labels has unknown setting(s) {unknown}; use {names}.")
    try:
        return LabelSettings(**table)
    except LabelConfigError as error:
        raise FeatureConfigError(f"{source}: labels.{error}") from None


def default_indicators() -> list[IndicatorSpec]:
    return parse_indicators(DEFAULT_INDICATORS, source="DEFAULT_INDICATORS")


def _known_indicator(name: object, source: str) -> Indicator:
    if isinstance(name, str) and name in INDICATORS:
        return INDICATORS[name]
    close = difflib.get_close_matches(str(name), INDICATORS, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise FeatureConfigError(
        f"{source}.{name} names an unknown indicator.{hint} Known indicators: "
        f"{', '.join(sorted(INDICATORS))}."
    )


def _entries(indicator: Indicator, entries: object, where: str) -> list[tuple[str, object]]:
    if not indicator.params:
        if entries is True or entries in ([{}], {}):
            return [(where, {})]
        if entries is False:
            return []
        raise FeatureConfigError(
            f"{where}={entries!r}: {indicator.name} takes no parameters; set it to true or false."
        )
    if (
        isinstance(entries, Mapping)
        or not isinstance(entries, Sequence)
        or isinstance(entries, str)
    ):
        entries = [entries]
    return [(f"{where}[{i}]", raw) for i, raw in enumerate(entries)]


def _assign(indicator: Indicator, raw: object, where: str) -> tuple[tuple[str, ParamValue], ...]:
    names = [p.name for p in indicator.params]
    if isinstance(raw, Mapping):
        extra = sorted(set(map(str, raw)) - set(names))
        missing = [n for n in names if n not in raw]
        if extra or missing:
            problems = ([f"unknown {extra}"] if extra else []) + (
                [f"missing {missing}"] if missing else []
            )
            raise FeatureConfigError(
                f"{where}={dict(raw)!r}: {'; '.join(problems)}. {indicator.name} takes "
                f"{_signature(indicator)}."
            )
        values = [raw[n] for n in names]
    elif isinstance(raw, Sequence) and not isinstance(raw, str):
        values = list(raw)
    else:
        values = [raw]
    if len(values) != len(names):
        raise FeatureConfigError(
            f"{where}={raw!r} gives {len(values)} value(s); {indicator.name} takes "
            f"{_signature(indicator)}."
        )
    assigned = tuple(
        (param.name, _coerce(param, value, f"{where}.{param.name}"))
        for param, value in zip(indicator.params, values, strict=True)
    )
    if indicator.check is not None and (problem := indicator.check(dict(assigned))):
        raise FeatureConfigError(f"{where}: {problem}.")
    return assigned


def _coerce(param: Param, value: object, where: str) -> ParamValue:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FeatureConfigError(f"{where}={value!r} is not a finite number.")
    if param.kind is int:
        if value > MAX_PERIOD:
            raise FeatureConfigError(
                f"{where}={value!r} is above {MAX_PERIOD:,} bars, TA-Lib's limit; use a longer "
                "timeframe instead of a longer period."
            )
        if value != int(value):
            raise FeatureConfigError(f"{where}={value!r} must be a whole number of bars.")
        if value < param.minimum:
            raise FeatureConfigError(
                f"{where}={value!r} is below the minimum {param.minimum:g}: a period needs at "
                f"least {param.minimum:g} bar(s) to mean anything."
            )
        return int(value)
    if not value > param.minimum:
        raise FeatureConfigError(f"{where}={value!r} must be greater than {param.minimum:g}.")
    return float(value)


def _signature(indicator: Indicator) -> str:
    return "(" + ", ".join(f"{p.name}: {p.kind.__name__}" for p in indicator.params) + ")"
