"""Instrument conventions (pip size, quote precision) derived from the symbol itself.

FX quotes follow a convention a strategy cannot ignore: a pip is 0.0001 for most pairs,
0.01 when JPY is the quote currency, and metals have their own sizes. Costs, stops and
position sizes are all expressed in pips, so every layer asks this module rather than
guessing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# ISO 4217 codes that appear in retail FX plus the metals brokers list as FX-style symbols.
CURRENCIES = frozenset(
    [
        "USD",
        "EUR",
        "JPY",
        "GBP",
        "CHF",
        "AUD",
        "NZD",
        "CAD",
        "SEK",
        "NOK",
        "DKK",
        "PLN",
        "HUF",
        "CZK",
        "TRY",
        "ZAR",
        "MXN",
        "SGD",
        "HKD",
        "CNH",
        "CNY",
        "RUB",
        "ILS",
        "THB",
        "INR",
        "KRW",
        "BRL",
        "XAU",
        "XAG",
        "XPT",
        "XPD",
    ]
)
METAL_PIP_SIZES = {"XAU": 0.1, "XAG": 0.01, "XPT": 0.1, "XPD": 0.1}
METALS = frozenset(METAL_PIP_SIZES)
METAL_DECIMALS = {"XAU": 2, "XAG": 3, "XPT": 2, "XPD": 2}
_SYMBOL_RE = re.compile(r"^[A-Z]{6}$")


class UnknownSymbolError(ValueError):
    """A symbol that is not a pair of known currency or metal codes."""


@dataclass(frozen=True)
class Instrument:
    """Quote conventions of one symbol.

    `pip_size` is the unit traders count in; `point` is the smallest quoted increment
    (brokers quote one extra "fractional pip" digit), which MetaTrader uses for spreads.
    """

    symbol: str
    base: str
    quote: str
    pip_size: float
    price_decimals: int

    @property
    def point(self) -> float:
        return 10.0**-self.price_decimals


def normalize_symbol(raw: str) -> str:
    """Upper-case a symbol and drop the separators people write (`eur/usd`, `EUR_USD`)."""
    return re.sub(r"[\s/_\-.]", "", raw).upper()


def _pair_problem(base: str, quote: str) -> str | None:
    """Why `base`+`quote` is no tradable pair, or None when it is one.

    A code against itself (USDUSD) is a constant 1.0, and two metals (XAUXAG) have no
    FX-style quote convention (the pip sizes here are per metal against a currency).
    """
    if base == quote:
        return f"quotes {base} against itself, a price that is always 1"
    if base in METALS and quote in METALS:
        return f"pairs two metals ({base}, {quote}); a metal is quoted against a currency"
    return None


def instrument_for(symbol: str) -> Instrument:
    """Quote conventions of `symbol`, e.g. `USDJPY` -> pip 0.01, 3 decimals."""
    normalized = normalize_symbol(symbol)
    base, quote = normalized[:3], normalized[3:]
    if not _SYMBOL_RE.match(normalized) or base not in CURRENCIES or quote not in CURRENCIES:
        raise UnknownSymbolError(
            f"symbol={symbol!r} is not a pair of two known currency or metal codes "
            f"(e.g. EURUSD, USDJPY, XAUUSD); known codes: {', '.join(sorted(CURRENCIES))}. "
            "Pass a six-letter pair such as 'EURUSD'."
        )
    problem = _pair_problem(base, quote)
    if problem is not None:
        raise UnknownSymbolError(
            f"symbol={symbol!r} {problem}. Pass a pair of two different codes, at most one "
            "of them a metal, such as 'EURUSD' or 'XAUUSD'."
        )
    if base in METAL_PIP_SIZES:
        return Instrument(normalized, base, quote, METAL_PIP_SIZES[base], METAL_DECIMALS[base])
    if quote == "JPY":
        return Instrument(normalized, base, quote, 0.01, 3)
    return Instrument(normalized, base, quote, 0.0001, 5)


def symbols_in_text(text: str) -> list[str]:
    """Currency-pair tokens inside a file name such as `DAT_ASCII_EURUSD_M1_2023.csv`."""
    found = []
    for token in re.findall(r"(?<![A-Za-z])([A-Za-z]{6})(?![A-Za-z])", text) + re.findall(
        r"(?<![A-Za-z])([A-Za-z]{6})(?=\d)", text
    ):
        upper = token.upper()
        base, quote = upper[:3], upper[3:]
        known = base in CURRENCIES and quote in CURRENCIES and _pair_problem(base, quote) is None
        if known and upper not in found:
            found.append(upper)
    return found
