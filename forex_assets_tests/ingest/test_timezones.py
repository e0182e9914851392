"""Source timezone specs: parsing, conversion to UTC, and their effect on real files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from forex_assets.ingest.bar_files import read_bar_file
from forex_assets.ingest.bar_format import BarFileError
from forex_assets.ingest.timezones import NEW_YORK_CLOSE_SERVER, SourceTimezone, parse_timezone
from forex_assets.market.fx_calendar import FxCalendar, in_weekend_closure


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def to_utc(spec: str, *naive: datetime) -> list[datetime | None]:
    """Convert naive wall-clock datetimes with the parsed spec, as the readers do."""
    tz = parse_timezone(spec)
    frame = pl.DataFrame({"t": list(naive)}, schema={"t": pl.Datetime("us")})
    return frame.select(tz.to_utc(pl.col("t")).alias("t")).get_column("t").to_list()


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize("spec", ["UTC", "utc", " UTC ", "GMT", "Z", "Etc/UTC", "UTC+0", "+00:00"])
def test_utc_aliases_parse_to_utc(spec):
    assert parse_timezone(spec) == SourceTimezone("UTC", offset_minutes=0)


@pytest.mark.parametrize(
    ("spec", "canonical", "minutes"),
    [
        ("+02:00", "+02:00", 120),
        ("+0200", "+02:00", 120),
        ("+2", "+02:00", 120),
        ("-05:00", "-05:00", -300),
        ("-0500", "-05:00", -300),
        ("UTC+2", "+02:00", 120),
        ("utc+3", "+03:00", 180),
        ("GMT-5", "-05:00", -300),
        ("+05:30", "+05:30", 330),
        ("-03:30", "-03:30", -210),
        ("+14:00", "+14:00", 840),
        ("-14:00", "-14:00", -840),
    ],
)
def test_fixed_offsets_parse_to_canonical_spec_and_minutes(spec, canonical, minutes):
    parsed = parse_timezone(spec)
    assert parsed.spec == canonical
    assert parsed.offset_minutes == minutes
    assert parsed.zone is None


@pytest.mark.parametrize("spec", ["NY+7", "ny+7", "NY + 7", "NewYork+7", "NY_CLOSE"])
def test_new_york_close_server_clock_aliases(spec):
    parsed = parse_timezone(spec)
    assert parsed.spec == NEW_YORK_CLOSE_SERVER == "NY+7"
    assert parsed.zone is None


@pytest.mark.parametrize("zone", ["Europe/London", "America/New_York", "Asia/Tokyo", "EET"])
def test_iana_zones_parse_as_zones(zone):
    assert parse_timezone(zone) == SourceTimezone(zone, zone=zone)


@pytest.mark.parametrize("spec", ["+15:00", "-15", "+14:30", "-14:01", "+02:75"])
def test_offsets_outside_the_real_range_are_rejected(spec):
    with pytest.raises(ValueError, match=r"within -14:00\.\.\+14:00"):
        parse_timezone(spec)


@pytest.mark.parametrize("spec", ["Mars/Olympus", "", "europe/london", "EST5EDT+1", "NY+8", "2"])
def test_unknown_specs_explain_what_is_accepted(spec):
    with pytest.raises(ValueError, match="is not understood") as info:
        parse_timezone(spec)
    message = str(info.value)
    assert repr(spec) in message
    for accepted in ("'UTC'", "'+02:00'", "'Europe/London'", "'NY+7'"):
        assert accepted in message


# --------------------------------------------------------------------------- conversion


def test_fixed_offsets_subtract_the_offset():
    naive = datetime(2023, 1, 2, 0, 0)
    assert to_utc("+02:00", naive) == [utc(2023, 1, 1, 22, 0)]
    assert to_utc("-05:00", naive) == [utc(2023, 1, 2, 5, 0)]
    assert to_utc("+05:30", naive) == [utc(2023, 1, 1, 18, 30)]
    assert to_utc("UTC", naive) == [utc(2023, 1, 2, 0, 0)]


def test_fixed_offsets_ignore_daylight_saving():
    """HistData's EST is a fixed UTC-5 all year: July 17:00 is 22:00 UTC, not 21:00."""
    assert to_utc("-05:00", datetime(2023, 7, 3, 17, 0)) == [utc(2023, 7, 3, 22, 0)]
    assert to_utc("-05:00", datetime(2023, 1, 3, 17, 0)) == [utc(2023, 1, 3, 22, 0)]


def test_new_york_close_clock_is_new_york_plus_seven_hours():
    assert to_utc(
        "NY+7",
        datetime(2023, 1, 2, 0, 0),  # winter: GMT+2
        datetime(2023, 7, 3, 0, 0),  # summer: GMT+3
        datetime(2023, 1, 2, 13, 45),
    ) == [utc(2023, 1, 1, 22, 0), utc(2023, 7, 2, 21, 0), utc(2023, 1, 2, 11, 45)]


def test_new_york_close_clock_follows_us_not_european_dst():
    """Between the US switch (12 March 2023) and the EU one (26 March) the server is GMT+3.

    A European zone (EET) would still say GMT+2 then; this is why NY+7 is its own spec.
    """
    friday_before_us_switch = datetime(2023, 3, 10, 0, 0)
    monday_after_us_switch = datetime(2023, 3, 13, 0, 0)
    monday_before_eu_switch = datetime(2023, 3, 20, 0, 0)
    monday_after_eu_switch = datetime(2023, 3, 27, 0, 0)
    assert to_utc(
        "NY+7",
        friday_before_us_switch,
        monday_after_us_switch,
        monday_before_eu_switch,
        monday_after_eu_switch,
    ) == [utc(2023, 3, 9, 22, 0), utc(2023, 3, 12, 21, 0), utc(2023, 3, 19, 21, 0), utc(2023, 3, 26, 21, 0)]  # fmt: skip
    assert to_utc("EET", monday_before_eu_switch) == [utc(2023, 3, 19, 22, 0)]
    # Autumn: US back to standard time on 5 November, the EU already on 29 October.
    assert to_utc("NY+7", datetime(2023, 10, 30, 0, 0), datetime(2023, 11, 6, 0, 0)) == [
        utc(2023, 10, 29, 21, 0),
        utc(2023, 11, 5, 22, 0),
    ]


def test_new_york_close_clock_round_trips_every_trading_quarter_hour_of_2023():
    """NY+7 -> UTC inverts the calendar's UTC -> session clock wherever the market is open."""
    start, end = utc(2023, 1, 1), utc(2024, 1, 1)
    times = pl.datetime_range(start, end, timedelta(minutes=15), time_unit="us", eager=True)
    frame = pl.DataFrame({"utc": times}).filter(~in_weekend_closure(pl.col("utc")))
    session = FxCalendar().to_session_clock(pl.col("utc"))
    back = frame.select(parse_timezone("NY+7").to_utc(session).alias("back"))
    assert frame.height > 24_000
    assert back.get_column("back").to_list() == frame.get_column("utc").to_list()


def test_iana_zone_conversion_handles_dst_gaps_and_overlaps():
    assert to_utc(
        "Europe/London",
        datetime(2023, 1, 2, 12, 0),  # GMT
        datetime(2023, 7, 3, 12, 0),  # BST
        datetime(2023, 3, 26, 1, 30),  # clocks jump 01:00 -> 02:00: does not exist
        datetime(2023, 10, 29, 1, 30),  # happens twice: the earlier (BST) one is taken
    ) == [utc(2023, 1, 2, 12, 0), utc(2023, 7, 3, 11, 0), None, utc(2023, 10, 29, 0, 30)]


# --------------------------------------------------------------------------- in real files

CSV_HEADER = "time,open,high,low,close\n"


def test_declared_timezone_applies_to_naive_csv_times(tmp_path):
    path = tmp_path / "bars.csv"
    path.write_text(CSV_HEADER + "2023-01-03 12:00:00,1.1,1.2,1.0,1.15\n")
    assert read_bar_file(path).rows.get_column("time").to_list() == [utc(2023, 1, 3, 12, 0)]
    parsed = read_bar_file(path, timezone="+02:00")
    assert parsed.timezone == "+02:00"
    assert parsed.rows.get_column("time").to_list() == [utc(2023, 1, 3, 10, 0)]
    parsed = read_bar_file(path, timezone="America/New_York")
    assert parsed.timezone == "America/New_York"
    assert parsed.rows.get_column("time").to_list() == [utc(2023, 1, 3, 17, 0)]


def test_declared_timezone_does_not_shift_times_that_carry_their_own_offset(tmp_path):
    path = tmp_path / "aware.csv"
    path.write_text(CSV_HEADER + "2023-01-03T12:00:00+02:00,1.1,1.2,1.0,1.15\n")
    parsed = read_bar_file(path, timezone="-05:00")
    assert parsed.rows.get_column("time").to_list() == [utc(2023, 1, 3, 10, 0)]


def test_local_time_that_does_not_exist_is_a_row_error_naming_the_zone(tmp_path):
    path = tmp_path / "london.csv"
    path.write_text(
        CSV_HEADER
        + "2023-03-26 00:59:00,1.1,1.2,1.0,1.15\n"
        + "2023-03-26 01:30:00,1.1,1.2,1.0,1.15\n"
        + "2023-03-26 02:00:00,1.1,1.2,1.0,1.15\n"
    )
    rows = read_bar_file(path, timezone="Europe/London").rows
    assert rows.get_column("line").to_list() == [2, 3, 4]
    assert rows.get_column("time").to_list() == [utc(2023, 3, 26, 0, 59), None, utc(2023, 3, 26, 1, 0)]  # fmt: skip
    assert rows.get_column("error").to_list() == [
        None,
        "local time 2023-03-26 01:30:00 does not exist in Europe/London",
        None,
    ]


def test_default_timezone_per_format(tmp_path):
    histdata = tmp_path / "DAT_ASCII_EURUSD_M1_2023.csv"
    histdata.write_text("20230703 170000;1.07015;1.07021;1.07010;1.07018;0\n")
    mt4 = tmp_path / "EURUSD1.csv"
    mt4.write_text("2023.07.03,00:00,1.07015,1.07021,1.07010,1.07018,15\n")
    duka = tmp_path / "EURUSD_Candlestick_1_M_BID.csv"
    duka.write_text(
        "Gmt time,Open,High,Low,Close,Volume\n03.07.2023 00:00:00.000,1.1,1.2,1.0,1.1,5\n"
    )
    assert read_bar_file(histdata).timezone == "-05:00"
    assert read_bar_file(mt4).timezone == "NY+7"
    assert read_bar_file(duka).timezone == "UTC"
    assert read_bar_file(histdata).rows.item(0, "time") == utc(2023, 7, 3, 22, 0)
    assert read_bar_file(mt4).rows.item(0, "time") == utc(2023, 7, 2, 21, 0)
    assert read_bar_file(duka).rows.item(0, "time") == utc(2023, 7, 3, 0, 0)


@pytest.mark.parametrize("spec", ["Mars/Olympus", "+15:00"])
def test_unknown_timezone_for_a_file_is_a_bar_file_error_naming_the_file(tmp_path, spec):
    path = tmp_path / "bars.csv"
    path.write_text(CSV_HEADER + "2023-01-03 12:00:00,1.1,1.2,1.0,1.15\n")
    with pytest.raises(BarFileError, match=r"timezone=") as info:
        read_bar_file(path, timezone=spec)
    assert str(path) in str(info.value)
    assert info.value.path == path
    assert repr(spec) in info.value.reason
