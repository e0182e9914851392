"""Every supported bar file format, read from real files: detection, UTC times, prices,
volume, line numbers, row-level errors and file-level errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import polars as pl
import pytest

from forex_assets.ingest.bar_files import ParsedFile, detect_format, read_bar_file
from forex_assets.ingest.bar_format import PARSED_SCHEMA, BarFileError
from forex_assets.market.instruments import instrument_for


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    """Write a fixture file byte-for-byte (no newline translation)."""
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def column(parsed: ParsedFile, name: str) -> list:
    return parsed.rows.get_column(name).to_list()


def prices(parsed: ParsedFile) -> list[tuple[float, float, float, float]]:
    return list(parsed.rows.select("open", "high", "low", "close").iter_rows())


def assert_lines_point_at_raw(path: Path, parsed: ParsedFile, encoding: str = "utf-8") -> None:
    """Every row's 1-based line number names the line of the file holding its raw text."""
    text = path.read_bytes().decode(encoding).lstrip("\ufeff")
    file_lines = text.replace("\r\n", "\n").split("\n")
    for line, raw in parsed.rows.select("line", "raw").iter_rows():
        assert file_lines[line - 1] == raw, f"line {line}"


def assert_clean(parsed: ParsedFile) -> None:
    assert parsed.rows.schema == pl.Schema(PARSED_SCHEMA)
    assert parsed.rows.get_column("error").null_count() == parsed.rows.height


# --------------------------------------------------------------------------- HistData

HISTDATA = (
    "20230102 170000;1.07015;1.07021;1.07010;1.07018;0\n"
    "\n"
    "20230102 170100;1.07018;1.07030;1.07015;1.07025;0\n"
    "20230703 170200;1.09000;1.09010;1.08990;1.09005;0\n"
)


def test_histdata_ascii_m1_is_fixed_est(tmp_path):
    path = write(tmp_path, "DAT_ASCII_EURUSD_M1_2023.csv", HISTDATA)
    assert detect_format(path).name == "histdata"
    parsed = read_bar_file(path)
    assert parsed.format == "histdata"
    assert parsed.timezone == "-05:00"
    assert_clean(parsed)
    assert column(parsed, "line") == [1, 3, 4]
    # 17:00 EST is 22:00 UTC all year: HistData does not follow DST.
    assert column(parsed, "time") == [
        utc(2023, 1, 2, 22, 0),
        utc(2023, 1, 2, 22, 1),
        utc(2023, 7, 3, 22, 2),
    ]
    assert prices(parsed) == [
        (1.07015, 1.07021, 1.07010, 1.07018),
        (1.07018, 1.07030, 1.07015, 1.07025),
        (1.09000, 1.09010, 1.08990, 1.09005),
    ]
    assert column(parsed, "volume") == [None, None, None]
    assert column(parsed, "spread") == [None, None, None]
    assert "volume column is all zero: treated as absent" in parsed.notes
    assert_lines_point_at_raw(path, parsed)


def test_histdata_keeps_a_real_volume_column(tmp_path):
    path = write(
        tmp_path,
        "h.csv",
        "20230102 170000;1.07015;1.07021;1.07010;1.07018;0\n"
        "20230102 170100;1.07018;1.07030;1.07015;1.07025;12\n",
    )
    parsed = read_bar_file(path)
    assert column(parsed, "volume") == [0.0, 12.0]
    assert parsed.notes == ()


def test_histdata_with_windows_line_endings_and_blank_lines(tmp_path):
    path = write(
        tmp_path,
        "h.csv",
        "\r\n20230102 170000;1.07015;1.07021;1.07010;1.07018;3\r\n\r\n  \r\n"
        "20230102 170100;1.07018;1.07030;1.07015;1.07025;4\r\n",
    )
    parsed = read_bar_file(path)
    assert column(parsed, "line") == [2, 5]
    assert column(parsed, "time") == [utc(2023, 1, 2, 22, 0), utc(2023, 1, 2, 22, 1)]
    assert column(parsed, "raw") == [
        "20230102 170000;1.07015;1.07021;1.07010;1.07018;3",
        "20230102 170100;1.07018;1.07030;1.07015;1.07025;4",
    ]
    assert column(parsed, "volume") == [3.0, 4.0]


def test_histdata_malformed_rows_get_errors_naming_the_field(tmp_path):
    path = write(
        tmp_path,
        "h.csv",
        "20230102 170000;1.07015;1.07021;1.07010;1.07018;5\n"
        "20230102 170100;1.07018;abc;1.07015;1.07025;5\n"
        "20230102 17020;1.07018;1.07030;1.07015;1.07025;5\n"
        "20230102 170300;1.07018;1.07030\n"
        "\n"
        "20230102 170400;1.07018;1.07030;1.07015;1.07025;x5\n"
        "20230102 170500;1.07025;1.07031;1.07020;1.07022;5\n",
    )
    parsed = read_bar_file(path)
    assert column(parsed, "line") == [1, 2, 3, 4, 6, 7]
    assert column(parsed, "error") == [
        None,
        "high abc is not a number",
        # chrono alone would read "17020" as 17:02:00; the fixed-width pattern refuses it.
        "time 20230102 17020 does not match %Y%m%d %H%M%S",
        "expected 6 fields separated by ';', found 3",
        "volume x5 is not a number",
        None,
    ]
    assert column(parsed, "time")[2] is None
    assert column(parsed, "time")[-1] == utc(2023, 1, 2, 22, 5)
    assert_lines_point_at_raw(path, parsed)


def test_a_form_feed_inside_a_corrupt_row_does_not_split_it_or_shift_later_lines(tmp_path):
    """Only CR/LF end a line; str.splitlines() would also split at FF, VT, NEL, U+2028."""
    path = write(
        tmp_path,
        "h.csv",
        "20230102 170000;1.07015;1.07021;1.07010;1.07018;5\n"
        "gar\x0cba\x0bge\x85 and\u2028more\x1cjunk\n"
        "20230102 170100;1.07018;1.07030;1.07015;1.07025;5\n",
    )
    parsed = read_bar_file(path)
    assert column(parsed, "line") == [1, 2, 3]
    assert column(parsed, "raw")[1] == "gar\x0cba\x0bge\x85 and\u2028more\x1cjunk"
    assert column(parsed, "error")[1] == "expected 6 fields separated by ';', found 1"
    assert column(parsed, "time")[2] == utc(2023, 1, 2, 22, 1)
    assert_lines_point_at_raw(path, parsed)


# --------------------------------------------------------------------------- Dukascopy


def test_dukascopy_gmt_time(tmp_path):
    path = write(
        tmp_path,
        "EURUSD_Candlestick_1_M_BID_01.01.2023-31.12.2023.csv",
        "Gmt time,Open,High,Low,Close,Volume\n"
        "02.01.2023 00:00:00.000,1.07015,1.07021,1.07010,1.07018,125.37\n"
        "\n"
        "02.01.2023 00:01:00.000,1.07018,1.07030,1.07015,1.07025,0\n",
    )
    assert detect_format(path).name == "dukascopy"
    parsed = read_bar_file(path)
    assert parsed.format == "dukascopy"
    assert parsed.timezone == "UTC"
    assert_clean(parsed)
    assert column(parsed, "line") == [2, 4]
    assert column(parsed, "time") == [utc(2023, 1, 2, 0, 0), utc(2023, 1, 2, 0, 1)]
    assert prices(parsed) == [
        (1.07015, 1.07021, 1.07010, 1.07018),
        (1.07018, 1.07030, 1.07015, 1.07025),
    ]
    assert column(parsed, "volume") == [125.37, 0.0]
    assert_lines_point_at_raw(path, parsed)


def test_dukascopy_all_zero_volume_is_absent(tmp_path):
    path = write(
        tmp_path,
        "d.csv",
        "Gmt time,Open,High,Low,Close,Volume\n"
        "07.01.2023 00:00:00.000,1.07015,1.07015,1.07015,1.07015,0\n"
        "07.01.2023 00:01:00.000,1.07015,1.07015,1.07015,1.07015,0.0\n",
    )
    parsed = read_bar_file(path)
    assert column(parsed, "volume") == [None, None]
    assert "volume column is all zero: treated as absent" in parsed.notes


def test_dukascopy_local_time_uses_the_per_row_gmt_offset(tmp_path):
    path = write(
        tmp_path,
        "d.csv",
        "Local time,Open,High,Low,Close,Volume\n"
        "02.01.2023 00:00:00.000 GMT+0200,1.07015,1.07021,1.07010,1.07018,10\n"
        "03.07.2023 00:01:00.000 GMT+0300,1.09000,1.09010,1.08990,1.09005,11\n"
        "03.07.2023 09:30:00.000 GMT-0430,1.09000,1.09010,1.08990,1.09005,12\n"
        "03.07.2023 00:02:00.000,1.09000,1.09010,1.08990,1.09005,13\n",
    )
    assert detect_format(path).name == "dukascopy"
    parsed = read_bar_file(path)
    assert column(parsed, "time") == [
        utc(2023, 1, 1, 22, 0),
        utc(2023, 7, 2, 21, 1),
        utc(2023, 7, 3, 14, 0),
        None,
    ]
    assert column(parsed, "error") == [
        None,
        None,
        None,
        "time 03.07.2023 00:02:00.000 has no GMT offset suffix",
    ]
    assert column(parsed, "volume") == [10.0, 11.0, 12.0, 13.0]
    assert "timestamps converted from the per-row GMT offset" in parsed.notes


def test_dukascopy_eet_header_is_read_as_eastern_european_time(tmp_path):
    path = write(
        tmp_path,
        "d.csv",
        "Time (EET),Open,High,Low,Close,Volume\n"
        "02.01.2023 00:00:00.000,1.07015,1.07021,1.07010,1.07018,10\n"
        "03.07.2023 00:00:00.000,1.09000,1.09010,1.08990,1.09005,11\n",
    )
    assert detect_format(path).name == "dukascopy"
    parsed = read_bar_file(path)
    assert column(parsed, "time") == [utc(2023, 1, 1, 22, 0), utc(2023, 7, 2, 21, 0)]


def test_dukascopy_header_without_close_is_a_file_error(tmp_path):
    path = write(tmp_path, "d.csv", "Gmt time,Open,High,Low\n02.01.2023 00:00:00.000,1,1,1\n")
    with pytest.raises(BarFileError, match="lacks Open/High/Low/Close") as info:
        read_bar_file(path)
    assert str(path) in str(info.value)


# --------------------------------------------------------------------------- MetaTrader 4

MT4 = (
    "2023.01.02,00:00,1.07015,1.07021,1.07010,1.07018,150\n"
    "2023.01.02,00:01,1.07018,1.07030,1.07015,1.07025,98\n"
    "\n"
    "2023.07.03,00:00,1.09000,1.09010,1.08990,1.09005,77\n"
)


def test_mt4_history_export_defaults_to_new_york_close_server_time(tmp_path):
    path = write(tmp_path, "EURUSD1.csv", MT4)
    assert detect_format(path).name == "mt4"
    parsed = read_bar_file(path)
    assert parsed.format == "mt4"
    assert parsed.timezone == "NY+7"
    assert_clean(parsed)
    assert column(parsed, "line") == [1, 2, 4]
    assert column(parsed, "time") == [
        utc(2023, 1, 1, 22, 0),  # winter: server GMT+2
        utc(2023, 1, 1, 22, 1),
        utc(2023, 7, 2, 21, 0),  # summer: server GMT+3
    ]
    assert prices(parsed)[2] == (1.09000, 1.09010, 1.08990, 1.09005)
    assert column(parsed, "volume") == [150.0, 98.0, 77.0]
    assert column(parsed, "spread") == [None, None, None]
    assert_lines_point_at_raw(path, parsed)


def test_declared_format_and_timezone_override_detection(tmp_path):
    path = write(tmp_path, "EURUSD1.csv", MT4)
    parsed = read_bar_file(path, "mt4", timezone="+02:00")
    assert parsed.format == "mt4"
    assert parsed.timezone == "+02:00"
    # A fixed +02:00 ignores DST: summer midnight is 22:00 UTC, not NY+7's 21:00.
    assert column(parsed, "time") == [
        utc(2023, 1, 1, 22, 0),
        utc(2023, 1, 1, 22, 1),
        utc(2023, 7, 2, 22, 0),
    ]
    assert read_bar_file(path, "mt4", "UTC").rows.item(0, "time") == utc(2023, 1, 2)


def test_declaring_the_wrong_format_fails_with_the_first_row_error(tmp_path):
    path = write(tmp_path, "EURUSD1.csv", MT4)
    with pytest.raises(
        BarFileError, match=r"no row could be parsed as histdata bars; line 1"
    ) as info:
        read_bar_file(path, "histdata")
    assert str(path) in str(info.value)
    assert "Check the declared format" in str(info.value)


def test_unknown_declared_format_is_rejected(tmp_path):
    path = write(tmp_path, "EURUSD1.csv", MT4)
    with pytest.raises(
        ValueError, match=r"file format 'metastock' is not one of \['auto', "
    ) as info:
        read_bar_file(path, "metastock")
    assert "'mt4'" in str(info.value) and "declare one of these" in str(info.value)


def test_mt4_malformed_rows(tmp_path):
    path = write(
        tmp_path,
        "EURUSD1.csv",
        "2023.01.02,00:00,1.07015,1.07021,1.07010,1.07018,150\n"
        "2023.01.02,0:01,1.07018,1.07030,1.07015,1.07025,98\n"
        "2023.01.02,00:02,1.07018,1.07030,1.07015\n"
        "2023.01.02,00:03,1.07018,1.07030,--,1.07025,98\n",
    )
    parsed = read_bar_file(path)
    assert column(parsed, "error") == [
        None,
        "time 2023.01.02 0:01 does not match %Y.%m.%d %H:%M",
        "expected 7 fields separated by ',', found 5",
        "low -- is not a number",
    ]


# --------------------------------------------------------------------------- MetaTrader 5

MT5 = (
    "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>\n"
    "2023.01.02\t00:00:00\t1.07015\t1.07021\t1.07010\t1.07018\t55\t0\t12\n"
    "\n"
    "2023.07.03\t00:01:00\t1.09000\t1.09010\t1.08990\t1.09005\t56\t0\t7\n"
)


def test_mt5_tab_separated_export_with_spread_in_points(tmp_path):
    path = write(tmp_path, "EURUSD_M1.csv", MT5)
    assert detect_format(path).name == "mt5"
    parsed = read_bar_file(path, instrument=instrument_for("EURUSD"))
    assert parsed.format == "mt5"
    assert parsed.timezone == "NY+7"
    assert_clean(parsed)
    assert column(parsed, "line") == [2, 4]
    assert column(parsed, "time") == [utc(2023, 1, 1, 22, 0), utc(2023, 7, 2, 21, 1)]
    assert prices(parsed) == [
        (1.07015, 1.07021, 1.07010, 1.07018),
        (1.09000, 1.09010, 1.08990, 1.09005),
    ]
    assert column(parsed, "volume") == [55.0, 56.0]  # tick volume, not the all-zero <VOL>
    assert column(parsed, "spread") == pytest.approx([12 * 1e-5, 7 * 1e-5])
    assert parsed.notes == ()
    assert_lines_point_at_raw(path, parsed)


def test_mt5_spread_uses_the_instrument_point(tmp_path):
    path = write(tmp_path, "USDJPY_M1.csv", MT5)
    parsed = read_bar_file(path, instrument=instrument_for("USDJPY"))
    assert column(parsed, "spread") == pytest.approx([0.012, 0.007])


def test_mt5_without_instrument_ignores_spread_and_says_so(tmp_path):
    path = write(tmp_path, "EURUSD_M1.csv", MT5)
    parsed = read_bar_file(path)
    assert column(parsed, "spread") == [None, None]
    assert "spread column ignored: points need the instrument's point size" in parsed.notes


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le"], ids=["bom", "no-bom"])
def test_mt5_utf16_export(tmp_path, encoding):
    path = write(tmp_path, "EURUSD_M1.csv", MT5.encode(encoding))
    if encoding == "utf-16":
        assert path.read_bytes()[:2] in (b"\xff\xfe", b"\xfe\xff")
    assert detect_format(path).name == "mt5"
    parsed = read_bar_file(path, instrument=instrument_for("EURUSD"))
    assert column(parsed, "line") == [2, 4]
    assert column(parsed, "time") == [utc(2023, 1, 1, 22, 0), utc(2023, 7, 2, 21, 1)]
    assert column(parsed, "close") == [1.07018, 1.09005]
    assert column(parsed, "volume") == [55.0, 56.0]
    assert column(parsed, "spread") == pytest.approx([12e-5, 7e-5])
    assert_lines_point_at_raw(path, parsed, encoding=encoding)


def test_mt5_rows_without_header_and_without_seconds(tmp_path):
    path = write(
        tmp_path,
        "m.csv",
        "2023.01.02\t00:00\t1.07015\t1.07021\t1.07010\t1.07018\t55\t0\t12\n"
        "2023.01.02\t00:01\t1.07018\t1.07030\t1.07015\t1.07025\t56\t0\t7\n",
    )
    assert detect_format(path).name == "mt5"
    parsed = read_bar_file(path)
    assert column(parsed, "line") == [1, 2]
    assert column(parsed, "time") == [utc(2023, 1, 1, 22, 0), utc(2023, 1, 1, 22, 1)]
    assert column(parsed, "volume") == [55.0, 56.0]


def test_mt5_malformed_rows(tmp_path):
    path = write(
        tmp_path,
        "m.csv",
        MT5.splitlines(keepends=True)[0]
        + "2023.01.02\t00:00:00\t1.07015\t1.07021\t1.07010\t1.07018\t55\t0\t12\n"
        + "2023.01.02\t00:01:0\t1.07015\t1.07021\t1.07010\t1.07018\t55\t0\t12\n"
        + "2023.01.02\t00:02:00\t1.07015\tN/A\t1.07010\t1.07018\t55\t0\t12\n"
        + "2023.01.02\t00:03:00\t1.07015\n",
    )
    parsed = read_bar_file(path)
    assert column(parsed, "error") == [
        None,
        "time 2023.01.02 00:01:0 does not match %Y.%m.%d %H:%M:%S",
        "high N/A is not a number",
        "expected 9 fields separated by '\\t', found 3",
    ]


def test_mt5_header_lacking_ohlc_is_a_file_error(tmp_path):
    path = write(tmp_path, "m.csv", "<DATE>\t<TIME>\t<OPEN>\t<CLOSE>\n2023.01.02\t00:00\t1\t1\n")
    with pytest.raises(BarFileError, match=r"MetaTrader 5 header lacks \['high', 'low'\]") as info:
        read_bar_file(path)
    assert str(path) in str(info.value)


# --------------------------------------------------------------------------- generic CSV

BARS = pd.DataFrame(
    {
        "Open": [1.1, 1.2, 1.3],
        "High": [1.25, 1.35, 1.45],
        "Low": [1.05, 1.15, 1.25],
        "Close": [1.2, 1.3, 1.4],
        "Volume": [10, 20, 30],
    },
    index=pd.date_range("2023-01-03 10:00", periods=3, freq="min"),
)
BARS_TIMES = [utc(2023, 1, 3, 10, 0), utc(2023, 1, 3, 10, 1), utc(2023, 1, 3, 10, 2)]
BARS_PRICES = [(1.1, 1.25, 1.05, 1.2), (1.2, 1.35, 1.15, 1.3), (1.3, 1.45, 1.25, 1.4)]


@pytest.mark.parametrize("index_name", [None, "Datetime", "time", "Gmt time"])
def test_pandas_to_csv_with_index_column(tmp_path, index_name):
    path = tmp_path / "bars.csv"
    BARS.rename_axis(index_name).to_csv(path)
    first_line = path.read_text().splitlines()[0]
    assert first_line.startswith(f"{index_name or ''},Open")
    parsed = read_bar_file(path)
    # "Gmt time" over ISO dates is a re-saved Dukascopy export, not Dukascopy's own layout.
    assert parsed.format == "csv"
    assert_clean(parsed)
    assert column(parsed, "line") == [2, 3, 4]
    assert column(parsed, "time") == BARS_TIMES
    assert prices(parsed) == BARS_PRICES
    assert column(parsed, "volume") == [10.0, 20.0, 30.0]


def test_pandas_to_csv_with_aware_index(tmp_path):
    path = tmp_path / "bars.csv"
    BARS.tz_localize("Europe/Berlin").to_csv(path)
    assert "+01:00" in path.read_text()
    parsed = read_bar_file(path, timezone="-05:00")  # the offsets in the file win
    assert column(parsed, "time") == [utc(2023, 1, 3, 9, m) for m in range(3)]


def test_csv_without_index_and_blank_lines(tmp_path):
    path = write(
        tmp_path,
        "bars.csv",
        "\n"
        "timestamp,open,high,low,close\n"
        "2023-01-03 10:00:00,1.1,1.25,1.05,1.2\n"
        "\n"
        "\n"
        "2023-01-03 10:01:00,1.2,1.35,1.15,1.3\n"
        "2023-01-03 10:02:00,1.3,1.45,1.25,1.4\n",
    )
    parsed = read_bar_file(path)
    assert parsed.format == "csv"
    assert parsed.timezone == "UTC"
    assert column(parsed, "line") == [3, 6, 7]
    assert column(parsed, "time") == BARS_TIMES
    assert prices(parsed) == BARS_PRICES
    assert column(parsed, "volume") == [None, None, None]
    assert column(parsed, "spread") == [None, None, None]
    assert parsed.notes == ()
    assert_lines_point_at_raw(path, parsed)


def test_csv_with_separate_date_and_time_columns(tmp_path):
    path = write(
        tmp_path,
        "bars.csv",
        "Date,Time,Open,High,Low,Close,Volume\n"
        "2023.01.03,10:00,1.1,1.25,1.05,1.2,10\n"
        "2023.01.03,10:01,1.2,1.35,1.15,1.3,20\n"
        "2023.01.03,10:02,1.3,1.45,1.25,1.4,30\n",
    )
    parsed = read_bar_file(path)
    assert parsed.format == "csv"
    assert column(parsed, "time") == BARS_TIMES
    assert prices(parsed) == BARS_PRICES
    assert column(parsed, "volume") == [10.0, 20.0, 30.0]


@pytest.mark.parametrize(
    ("stamps", "unit"),
    [
        (["1672740000000", "1672740060000", "1672740120000"], "ms"),
        (["1672740000", "1672740060", "1672740120"], "s"),
        (["1672740000000000", "1672740060000000", "1672740120000000"], "us"),
    ],
)
def test_csv_with_epoch_times(tmp_path, stamps, unit):
    rows = [f"{s},{o},{h},{lo},{c}" for s, (o, h, lo, c) in zip(stamps, BARS_PRICES, strict=True)]
    path = write(tmp_path, f"epoch_{unit}.csv", "time,open,high,low,close\n" + "\n".join(rows))
    parsed = read_bar_file(path)
    assert column(parsed, "time") == BARS_TIMES
    assert prices(parsed) == BARS_PRICES


def test_csv_epoch_row_that_is_not_a_number(tmp_path):
    path = write(
        tmp_path,
        "epoch.csv",
        "time,open,high,low,close\n"
        "1672740000000,1.1,1.25,1.05,1.2\n"
        "16727400x0000,1.1,1.25,1.05,1.2\n"
        "1672740120000,1.3,1.45,1.25,1.4\n",
    )
    parsed = read_bar_file(path)
    assert column(parsed, "error") == [None, "time 16727400x0000 is not an epoch number", None]
    assert column(parsed, "time") == [BARS_TIMES[0], None, BARS_TIMES[2]]


@pytest.mark.parametrize(
    "stamps",
    [
        ["1672740000000", "1672740060000", "1672740120000"],
        ["2023-01-03T10:00:00Z", "2023-01-03T12:01:00+02:00", "2023-01-03T10:02:00+00:00"],
    ],
    ids=["epoch", "iso-offset"],
)
def test_one_garbage_line_does_not_make_an_epoch_or_offset_file_unreadable(tmp_path, stamps):
    rows = [f"{s},{o},{h},{lo},{c}" for s, (o, h, lo, c) in zip(stamps, BARS_PRICES, strict=True)]
    rows.insert(1, "### export interrupted; resumed ###")
    path = write(tmp_path, "bars.csv", "time,open,high,low,close\n" + "\n".join(rows) + "\n")
    parsed = read_bar_file(path)
    assert column(parsed, "line") == [2, 3, 4, 5]
    assert column(parsed, "time") == [BARS_TIMES[0], None, BARS_TIMES[1], BARS_TIMES[2]]
    assert column(parsed, "error") == [None, "expected 5 fields separated by ',', found 1", None, None]  # fmt: skip


def test_csv_with_iso_offsets(tmp_path):
    path = write(
        tmp_path,
        "iso.csv",
        "time,open,high,low,close\n"
        "2023-01-03T12:00:00+02:00,1.1,1.25,1.05,1.2\n"
        "2023-01-03T10:01:00Z,1.2,1.35,1.15,1.3\n"
        "2023-01-03T05:02:00.000-05:00,1.3,1.45,1.25,1.4\n",
    )
    parsed = read_bar_file(path)
    assert column(parsed, "time") == BARS_TIMES
    assert column(parsed, "error") == [None, None, None]


def test_semicolon_separated_with_decimal_commas(tmp_path):
    path = write(
        tmp_path,
        "eu.csv",
        "Date;Open;High;Low;Close;Volume\n"
        + "03.01.2023 10:00:00;1,1;1,25;1,05;1,2;10\n"
        + "03.01.2023 10:01:00;1,2;1,35;1,15;1,3;20\n"
        + "03.01.2023 10:02:00;1,3;1,45;1,25;1,4;30\n",
    )
    parsed = read_bar_file(path)
    assert parsed.format == "csv"
    assert column(parsed, "time") == BARS_TIMES
    assert prices(parsed) == BARS_PRICES
    assert column(parsed, "volume") == [10.0, 20.0, 30.0]


@pytest.mark.parametrize(
    "header",
    [
        "time,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<TICKVOL>",
        "Time,Open,High,Low,Close,Volume",
        "DateTime,OPEN,HIGH,LOW,CLOSE,VOL",
        "ts,o,h,l,c,v",
        "Timestamp,Open Bid,High Bid,Low Bid,Close Bid,Tick Volume",
        "datetime_utc,open_price,high_price,low_price,close_price,ticks",
        '"time","open","high","low","close","volume"',
        "time|open|high|low|close|volume",
        "time\topen\thigh\tlow\tclose\tvolume",
    ],
)
def test_csv_header_spellings(tmp_path, header):
    separator = "|" if "|" in header else "\t" if "\t" in header else ","
    rows = [
        separator.join(["2023-01-03 10:00:00", "1.1", "1.25", "1.05", "1.2", "10"]),
        separator.join(["2023-01-03 10:01:00", "1.2", "1.35", "1.15", "1.3", "20"]),
        separator.join(["2023-01-03 10:02:00", "1.3", "1.45", "1.25", "1.4", "30"]),
    ]
    path = write(tmp_path, "bars.csv", header + "\n" + "\n".join(rows) + "\n")
    assert detect_format(path).name == "csv"
    parsed = read_bar_file(path)
    assert column(parsed, "time") == BARS_TIMES
    assert prices(parsed) == BARS_PRICES
    assert column(parsed, "volume") == [10.0, 20.0, 30.0]


def test_csv_column_order_does_not_matter(tmp_path):
    path = write(
        tmp_path,
        "bars.csv",
        "Close,Low,Volume,High,Open,Time\n1.2,1.05,10,1.25,1.1,2023-01-03 10:00:00\n",
    )
    parsed = read_bar_file(path)
    assert prices(parsed) == [BARS_PRICES[0]]
    assert column(parsed, "volume") == [10.0]
    assert column(parsed, "time") == [BARS_TIMES[0]]


def test_csv_all_zero_volume_is_absent(tmp_path):
    path = write(
        tmp_path,
        "bars.csv",
        "time,open,high,low,close,volume\n"
        "2023-01-03 10:00:00,1.1,1.25,1.05,1.2,0\n"
        "2023-01-03 10:01:00,1.2,1.35,1.15,1.3,0\n",
    )
    parsed = read_bar_file(path)
    assert column(parsed, "volume") == [None, None]
    assert parsed.notes == ("volume column is all zero: treated as absent",)


def test_csv_day_first_dates_are_read_when_unambiguous(tmp_path):
    path = write(
        tmp_path,
        "bars.csv",
        "time,open,high,low,close\n13/02/2023 10:00,1.1,1.25,1.05,1.2\n02/03/2023 10:00,1.1,1.25,1.05,1.2\n",
    )
    parsed = read_bar_file(path)
    assert column(parsed, "time") == [utc(2023, 2, 13, 10, 0), utc(2023, 3, 2, 10, 0)]


def test_csv_month_first_dates_are_read_when_unambiguous(tmp_path):
    path = write(
        tmp_path,
        "bars.csv",
        "time,open,high,low,close\n02/13/2023 10:00,1.1,1.25,1.05,1.2\n02/03/2023 10:00,1.1,1.25,1.05,1.2\n",
    )
    parsed = read_bar_file(path)
    assert column(parsed, "time") == [utc(2023, 2, 13, 10, 0), utc(2023, 2, 3, 10, 0)]


def test_csv_malformed_rows(tmp_path):
    path = write(
        tmp_path,
        "bars.csv",
        "time,open,high,low,close,volume\n"
        "2023-01-03 10:00:00,1.1,1.25,1.05,1.2,10\n"
        "2023-01-03 10:01:00,1.2,abc,1.15,1.3,20\n"
        "2023-01-03 10:02:00,1.3,1.45,1.25\n"
        "2023-13-03 10:03:00,1.3,1.45,1.25,1.4,30\n"
        "2023-01-03 10:04:00,1.3,1.45,1.25,1.4,\n",
    )
    parsed = read_bar_file(path)
    assert column(parsed, "line") == [2, 3, 4, 5, 6]
    assert column(parsed, "error") == [
        None,
        "high abc is not a number",
        "expected 6 fields separated by ',', found 4",
        "time 2023-13-03 10:03:00 does not match %Y-%m-%d %H:%M:%S%.f",
        None,
    ]
    assert column(parsed, "volume") == [10.0, 20.0, None, 30.0, None]


# --------------------------------------------------------------------------- Parquet

PARQUET_BARS = pd.DataFrame(
    {
        "open": [1.1, 1.2, 1.3],
        "high": [1.25, 1.35, 1.45],
        "low": [1.05, 1.15, 1.25],
        "close": [1.2, 1.3, 1.4],
        "volume": [10, 20, 30],
    },
    index=pd.date_range("2023-01-03 10:00", periods=3, freq="min"),
)


def test_parquet_naive_datetime_index_written_by_pandas(tmp_path):
    path = tmp_path / "bars.parquet"
    PARQUET_BARS.to_parquet(path)
    assert detect_format(path).name == "parquet"
    parsed = read_bar_file(path)
    assert parsed.format == "parquet"
    assert parsed.timezone == "UTC"
    assert_clean(parsed)
    assert column(parsed, "line") == [1, 2, 3]
    assert column(parsed, "time") == BARS_TIMES
    assert prices(parsed) == BARS_PRICES
    assert column(parsed, "volume") == [10.0, 20.0, 30.0]
    assert column(parsed, "spread") == [None, None, None]
    # A declared clock applies to naive Parquet times too.
    shifted = read_bar_file(path, timezone="+02:00")
    assert column(shifted, "time") == [utc(2023, 1, 3, 8, m) for m in range(3)]


def test_parquet_tz_aware_index_is_converted_to_utc(tmp_path):
    path = tmp_path / "bars.parquet"
    PARQUET_BARS.tz_localize("America/New_York").to_parquet(path)
    parsed = read_bar_file(path, timezone="+09:00")  # stored zone wins over the declared one
    assert column(parsed, "time") == [utc(2023, 1, 3, 15, m) for m in range(3)]


def test_parquet_named_index(tmp_path):
    path = tmp_path / "bars.pq"
    PARQUET_BARS.rename_axis("timestamp").to_parquet(path)
    parsed = read_bar_file(path)
    assert parsed.format == "parquet"
    assert column(parsed, "time") == BARS_TIMES


def test_parquet_time_column_without_volume(tmp_path):
    path = tmp_path / "bars.parquet"
    frame = PARQUET_BARS.drop(columns="volume").rename_axis("time").reset_index()
    frame.to_parquet(path, index=False)
    parsed = read_bar_file(path)
    assert column(parsed, "time") == BARS_TIMES
    assert prices(parsed) == BARS_PRICES
    assert column(parsed, "volume") == [None, None, None]
    assert column(parsed, "line") == [1, 2, 3]
    assert column(parsed, "raw")[0] == "2023-01-03 10:00:00.000000,1.1,1.25,1.05,1.2"


def test_parquet_written_by_polars_with_string_prices(tmp_path):
    path = tmp_path / "bars.parquet"
    pl.DataFrame(
        {
            "time": BARS_TIMES,
            "open": ["1.1", "1.2", "1.3"],
            "high": ["1.25", "oops", "1.45"],
            "low": ["1.05", "1.15", "1.25"],
            "close": ["1.2", "1.3", "1.4"],
        }
    ).write_parquet(path)
    parsed = read_bar_file(path)
    assert column(parsed, "time") == BARS_TIMES
    assert column(parsed, "error") == [None, "high oops is not a number", None]
    assert column(parsed, "close") == [1.2, 1.3, 1.4]


def test_parquet_epoch_and_text_time_columns(tmp_path):
    epoch = tmp_path / "epoch.parquet"
    text = tmp_path / "text.parquet"
    frame = PARQUET_BARS.rename_axis("time").reset_index()
    frame.assign(time=[1672740000000, 1672740060000, 1672740120000]).to_parquet(epoch)
    frame.assign(time=frame["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_parquet(text)
    assert column(read_bar_file(epoch), "time") == BARS_TIMES
    assert column(read_bar_file(text), "time") == BARS_TIMES


# --------------------------------------------------------------------------- file errors


def _binary(tmp_path):
    return write(tmp_path, "bars.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00")


FILE_ERRORS = {
    "empty": (lambda t: write(t, "bars.csv", ""), r"the file is empty"),
    "blank": (lambda t: write(t, "bars.csv", "\n  \n\t\n"), r"the file is empty"),
    "binary": (_binary, r"binary content \(NUL bytes\)"),
    "unrecognised": (
        lambda t: write(t, "bars.csv", "hello world\nthis is not a bar file\n"),
        r"could not recognise the format from the first line 'hello world'",
    ),
    "missing-ohlc": (
        lambda t: write(t, "bars.csv", "time,open,high,close\n2023-01-03 10:00,1,1,1\n"),
        r"no column for \['low'\] among \['time', 'open', 'high', 'close'\]",
    ),
    "missing-time": (
        lambda t: write(t, "bars.csv", "open,high,low,close\n1,1,1,1\n"),
        r"no column for \['time'\]",
    ),
    "header-only": (
        lambda t: write(t, "bars.csv", "time,open,high,low,close\n"),
        r"the file has a header but no data rows",
    ),
    "every-row-unparseable": (
        lambda t: write(
            t,
            "bars.csv",
            "20230102 170000;x;1;1;1;0\n20230102 170100;1;1;1\n",
        ),
        r"no row could be parsed as histdata bars; line 1: open x is not a number",
    ),
    "times-in-no-layout": (
        lambda t: write(t, "bars.csv", "time,open,high,low,close\nyesterday,1,1,1,1\n"),
        r"time values such as 'yesterday' match no known layout",
    ),
    "corrupt-parquet": (
        lambda t: write(t, "bars.parquet", b"PAR1 this is not really parquet"),
        r"unreadable Parquet",
    ),
    "ambiguous-dates": (
        lambda t: write(
            t,
            "bars.csv",
            "time,open,high,low,close\n01/02/2023 10:00,1,1,1,1\n03/04/2023 10:00,1,1,1,1\n",
        ),
        r"dates like 01/02/2023 are ambiguous \(day/month or month/day\)",
    ),
    "not-utf8": (
        lambda t: write(t, "bars.csv", b"time,open,high,low,close\n" + b"\xff\xfe\xfa,1\n"),
        r"not UTF-8 or UTF-16 text",
    ),
    "missing-file": (lambda t: t / "nope.csv", r"no such file"),
}


@pytest.mark.parametrize("case", FILE_ERRORS, ids=list(FILE_ERRORS))
def test_unreadable_files_raise_bar_file_error_naming_file_and_reason(tmp_path, case):
    make, reason = FILE_ERRORS[case]
    path = make(tmp_path)
    with pytest.raises(BarFileError, match=reason) as info:
        read_bar_file(path)
    assert str(path) in str(info.value)
    assert str(info.value).startswith(f"{path}: ")
    assert info.value.path == path


def test_parquet_without_a_time_column_is_a_file_error(tmp_path):
    path = tmp_path / "bars.parquet"
    PARQUET_BARS.reset_index(drop=True).to_parquet(path)
    with pytest.raises(BarFileError, match=r"no column for \['time'\]") as info:
        read_bar_file(path)
    assert str(path) in str(info.value)


def test_detect_format_on_an_empty_file_names_the_file(tmp_path):
    path = write(tmp_path, "bars.csv", "")
    with pytest.raises(BarFileError, match="the file is empty") as info:
        detect_format(path)
    assert str(path) in str(info.value)
