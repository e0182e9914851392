import pytest

from forex_assets.market.instruments import (
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
