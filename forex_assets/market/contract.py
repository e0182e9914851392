"""What one lot of an instrument is worth in the USD account, and how lots round.

The backtest kernel and the live sizer must agree on these to the last cent, or a
strategy's backtested risk is not the risk it trades with. So the arithmetic is written
once here, as numba functions the kernel calls inside its loop and the Python sizer calls
through `Contract`'s methods.

P&L of a position is ``side x (exit - entry) x units`` when USD is the quote currency;
when USD is the base (USDJPY, USDCHF) that P&L is in the quote currency and is divided by
the exit price. Lots are whole multiples of `lot_step`, rounded *down*, so the realised
risk never exceeds the risk aimed at.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
from numba import njit

from forex_assets.market.instruments import METAL_PIP_SIZES, instrument_for
from forex_assets.value_checks import is_finite_number

ACCOUNT_CURRENCY = "USD"
FX_CONTRACT_SIZE = 100_000.0
# Troy ounces per 1.0 lot of the metals with one standard contract; others need contract_size=.
METAL_CONTRACT_SIZES = {"XAU": 100.0, "XAG": 5_000.0}
# Slack for rounding lots down: 0.3 / 0.01 is 29.999999999999996 in floating point.
LOT_ROUNDING_SLACK = 1e-9


class ContractError(ValueError):
    """Contract terms that cannot price a trade; the message names the field."""


@njit(cache=True, nogil=True)
def value_per_price_unit(contract_size: float, quote_is_account: bool, price: float) -> float:
    """Account currency per 1.0 price move of 1.0 lot at `price`."""
    return contract_size if quote_is_account else contract_size / price


@njit(cache=True, nogil=True, error_model="numpy")
def position_pnl(
    side: float, entry: float, price: float, units: float, quote_is_account: bool
) -> float:
    """P&L in the account currency of `units` (lots x contract size) held from `entry` to
    `price`, before commission; a USD-base pair's quote-currency P&L converts at `price`."""
    gross = side * (price - entry) * units
    return gross if quote_is_account else gross / price


@njit(cache=True, nogil=True)
def lots_rounded_down(lots: float, lot_step: float) -> float:
    """`lots` rounded down to a whole number of `lot_step`s (floating-point slack allowed)."""
    return math.floor(lots / lot_step + LOT_ROUNDING_SLACK) * lot_step


@dataclass(frozen=True)
class Contract:
    """An instrument's trading terms for a USD account.

    `quote_is_account`: USD is the quote currency; otherwise USD is the base.
    `commission_per_lot` is per round trip and 1.0 lot; `default_spread_pips` prices bars
    whose spread is unknown; lots are multiples of `lot_step`, at least `min_lot`.
    """

    pip_size: float
    contract_size: float
    quote_is_account: bool
    commission_per_lot: float = 7.0
    default_spread_pips: float = 1.0
    lot_step: float = 0.01
    min_lot: float = 0.01

    def __post_init__(self) -> None:
        if not isinstance(self.quote_is_account, bool | np.bool_):
            raise ContractError(
                f"Contract.quote_is_account={self.quote_is_account!r} must be True (USD is the "
                "quote currency) or False (USD is the base)."
            )
        for name in ("pip_size", "contract_size", "lot_step", "min_lot"):
            value = getattr(self, name)
            if not (is_finite_number(value) and value > 0):
                raise ContractError(f"Contract.{name}={value!r} must be a positive number.")
        for name in ("commission_per_lot", "default_spread_pips"):
            value = getattr(self, name)
            if not (is_finite_number(value) and value >= 0):
                raise ContractError(
                    f"Contract.{name}={value!r} must be a number >= 0: a negative cost would "
                    "pay the strategy for trading."
                )

    @classmethod
    def for_symbol(cls, symbol: str, **overrides: float) -> Contract:
        """The standard contract of `symbol` for a USD account; `overrides` replace fields.

        Crosses without USD (EURGBP) need a conversion rate to USD for every bar, which
        neither the kernel nor the sizer takes, so they are refused rather than priced wrong.
        """
        known = {f.name for f in fields(cls)}
        if set(overrides) - known:
            raise ContractError(
                f"unknown Contract fields {sorted(set(overrides) - known)}; the fields are "
                f"{sorted(known)}."
            )
        instrument = instrument_for(symbol)
        if ACCOUNT_CURRENCY not in (instrument.base, instrument.quote):
            raise ContractError(
                f"{instrument.symbol} has no USD leg: its P&L is in {instrument.quote} and needs "
                f"a {instrument.quote}/USD conversion rate per bar, which is not modelled. "
                "Trade a USD pair, or convert the P&L yourself."
            )
        metal = instrument.base in METAL_PIP_SIZES
        if (
            metal
            and instrument.base not in METAL_CONTRACT_SIZES
            and "contract_size" not in overrides
        ):
            raise ContractError(
                f"{instrument.symbol} has no standard contract size here; pass contract_size= "
                "(ounces per 1.0 lot at your broker)."
            )
        standard = {
            "pip_size": instrument.pip_size,
            "contract_size": METAL_CONTRACT_SIZES.get(instrument.base, FX_CONTRACT_SIZE),
            "quote_is_account": instrument.quote == ACCOUNT_CURRENCY,
        }
        return cls(**{**standard, **overrides})

    @property
    def default_spread(self) -> float:
        """The spread, in price units, of a bar whose spread is unknown."""
        return self.default_spread_pips * self.pip_size

    def value_per_price_unit(self, price: float) -> float:
        """Account currency per 1.0 price move of 1.0 lot at `price`."""
        return value_per_price_unit(float(self.contract_size), bool(self.quote_is_account), price)

    def pip_value(self, price: float) -> float:
        """Account currency per one-pip move of 1.0 lot at `price`."""
        return self.pip_size * self.value_per_price_unit(price)

    def pnl(self, side: int, entry: float, price: float, lots: float) -> float:
        """P&L in the account currency of `lots` held from `entry` to `price`, before
        commission."""
        units = lots * self.contract_size
        return position_pnl(float(side), entry, price, units, bool(self.quote_is_account))

    def risk_at_stop(self, lots: float, stop_distance: float, price: float) -> float:
        """Loss of `lots` stopped out `stop_distance` from `price`, round-trip commission
        included."""
        return lots * (stop_distance * self.value_per_price_unit(price) + self.commission_per_lot)

    def lots_rounded_down(self, lots: float) -> float:
        """`lots` rounded down to the lot step (not raised to `min_lot`: that is policy)."""
        return round(lots_rounded_down(lots, float(self.lot_step)), 10)
