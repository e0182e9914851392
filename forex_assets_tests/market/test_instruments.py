import pytest
from hypothesis import given
from hypothesis import strategies as st

from forex_assets.market.instruments import (
    CURRENCIES,
    METALS,
    UnknownSymbolError,
    instrument_for,
    normalize_symbol,
    symbols_in_text,
)


@pytest.mark.parametrize(
    ("symbol", "pip", "decimals"),
    [
        ("EURUSD", 0.0001, 5),
        ("USDJPY", 0.01, 3),
        ("EURJPY", 0.01, 3),
        ("XAUUSD", 0.1, 2),
        ("XAGUSD", 0.01, 3),
    ],
)
def test_pip_conventions(symbol, pip, decimals):
    instrument = instrument_for(symbol)
    assert instrument.pip_size == pip
    assert instrument.price_decimals == decimals
    assert instrument.point == pytest.approx(10.0**-decimals)


def test_symbols_are_normalized():
    assert normalize_symbol("eur/usd") == "EURUSD"
    assert instrument_for("gbp_usd").symbol == "GBPUSD"


@pytest.mark.parametrize("bad", ["EURUS", "ABCDEF", "EURUSDX", "123456", ""])
def test_unknown_symbols_are_explained(bad):
    with pytest.raises(UnknownSymbolError, match="six-letter pair"):
        instrument_for(bad)


def test_symbols_in_vendor_file_names():
    assert symbols_in_text("DAT_ASCII_EURUSD_M1_2023.csv") == ["EURUSD"]
    assert symbols_in_text("EURUSD_Candlestick_1_M_BID_01.01.2023-31.12.2023.csv") == ["EURUSD"]
    assert symbols_in_text("USDJPY1.csv") == ["USDJPY"]
    assert symbols_in_text("notes_about_trading.csv") == []


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ("USDUSD", "quotes USD against itself"),
        ("eur/eur", "quotes EUR against itself"),
        ("XAUXAG", "pairs two metals (XAU, XAG)"),
        ("XPTXPD", "pairs two metals (XPT, XPD)"),
    ],
)
def test_a_code_against_itself_or_two_metals_is_refused(bad, problem):
    with pytest.raises(UnknownSymbolError) as info:
        instrument_for(bad)
    message = str(info.value)
    assert message.startswith(f"symbol={bad!r} {problem}")
    assert "'EURUSD'" in message and "\n" not in message


def test_file_names_never_yield_a_refused_pair():
    assert symbols_in_text("USDUSD_M1.csv") == []
    assert symbols_in_text("XAUXAG_XAUUSD_M1.csv") == ["XAUUSD"]


@given(st.sampled_from(sorted(CURRENCIES)), st.sampled_from(sorted(CURRENCIES)))
def test_every_pair_of_codes_is_accepted_or_refused_consistently(base, quote):
    """Symbol parsing and file-name detection agree on which pairs exist."""
    try:
        accepted = instrument_for(base + quote).symbol == base + quote
    except UnknownSymbolError:
        accepted = False
    assert accepted == (base != quote and not (base in METALS and quote in METALS))
    assert symbols_in_text(f"{base}{quote}_M1.csv") == ([base + quote] if accepted else [])
