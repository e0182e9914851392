"""The validation policy on real files: one test per quarantine reason, the weekend and
ordering rules, duplicates across files, and the accounting invariant (every row in is
either kept or quarantined), also as a property over randomly corrupted files."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from forex_assets.ingest.bar_files import read_bar_file
from forex_assets.ingest.validation import (
    QUARANTINE_SCHEMA,
    QuarantineReason,
    ValidatedBars,
    ValidationPolicy,
    validate_files,
)
from forex_assets.market.bar_schema import M1_SCHEMA
from forex_assets.market.instruments import instrument_for

HEADER = "time,open,high,low,close,volume"
GOOD = "1.1000,1.1010,1.0990,1.1005,10"  # open, high, low, close, volume of a valid bar


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def write_csv(tmp_path: Path, name: str, *rows: str) -> Path:
    """A generic CSV with UTC times; each row is `time,open,high,low,close,volume`."""
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path


def validate(*paths: Path, policy: ValidationPolicy | None = None) -> ValidatedBars:
    parsed = [read_bar_file(p) for p in paths]
    return validate_files(parsed) if policy is None else validate_files(parsed, policy)


def quarantined(result: ValidatedBars) -> list[tuple[str, int, str]]:
    """(file name, line, reason) of every quarantined row, in line order."""
    rows = result.quarantine.sort("file", "line")
    return [(Path(f).name, line, r) for f, line, r in rows.select("file", "line", "reason").rows()]


def kept_times(result: ValidatedBars) -> list[datetime]:
    return result.bars.get_column("time").to_list()


def assert_accounted(result: ValidatedBars) -> None:
    assert result.bars.height + result.quarantine.height == result.rows_in
    assert result.bars.schema == pl.Schema(M1_SCHEMA)
    assert result.quarantine.schema == pl.Schema(QUARANTINE_SCHEMA)


def detail_of(result: ValidatedBars, line: int) -> str:
    return result.quarantine.filter(pl.col("line") == line).item(0, "detail")


# --------------------------------------------------------------------------- one per reason


def test_clean_file_is_kept_whole(tmp_path):
    path = write_csv(
        tmp_path,
        "clean.csv",
        f"2023-01-03 10:00:00,{GOOD}",
        "2023-01-03 10:01:00,1.1005,1.1020,1.1000,1.1015,12",
    )
    result = validate(path)
    assert_accounted(result)
    assert result.quarantine.height == 0
    assert result.rows_in == 2
    assert result.bars.rows() == [
        (utc(2023, 1, 3, 10, 0), 1.1, 1.101, 1.099, 1.1005, 10.0, None),
        (utc(2023, 1, 3, 10, 1), 1.1005, 1.102, 1.1, 1.1015, 12.0, None),
    ]
    assert result.reason_counts() == {}


def test_unparseable_row_is_quarantined_with_the_reader_error(tmp_path):
    path = write_csv(
        tmp_path,
        "bad.csv",
        f"2023-01-03 10:00:00,{GOOD}",
        "2023-01-03 10:01:00,1.1000,abc,1.0990,1.1005,10",
        "2023-01-03 10:02:00,1.1000",
        f"2023-01-03 10:03:00,{GOOD}",
    )
    result = validate(path)
    assert_accounted(result)
    assert quarantined(result) == [("bad.csv", 3, "unparseable"), ("bad.csv", 4, "unparseable")]
    assert detail_of(result, 3) == "high abc is not a number"
    assert detail_of(result, 4) == "expected 6 fields separated by ',', found 2"
    raw = result.quarantine.sort("line").get_column("raw").to_list()
    assert raw == ["2023-01-03 10:01:00,1.1000,abc,1.0990,1.1005,10", "2023-01-03 10:02:00,1.1000"]
    assert kept_times(result) == [utc(2023, 1, 3, 10, 0), utc(2023, 1, 3, 10, 3)]


@pytest.mark.parametrize(
    ("fields", "missing"),
    [
        ("nan,1.1010,1.0990,1.1005,10", "open"),
        ("1.1000,NaN,1.0990,1.1005,10", "high"),
        ("1.1000,1.1010,,1.1005,10", "low"),
        ("1.1000,1.1010,1.0990,,10", "close"),
        (",,1.0990,1.1005,10", "open,high"),
        ("1.1000,inf,1.0990,1.1005,10", "high"),
        ("1.1000,1.1010,-inf,1.1005,10", "low"),
    ],
)
def test_missing_or_non_finite_price_is_quarantined(tmp_path, fields, missing):
    path = write_csv(
        tmp_path,
        "nan.csv",
        f"2023-01-03 10:00:00,{GOOD}",
        f"2023-01-03 10:01:00,{fields}",
    )
    result = validate(path)
    assert_accounted(result)
    assert quarantined(result) == [("nan.csv", 3, "missing_value")]
    assert detail_of(result, 3) == f"missing or non-finite {missing}"
    assert kept_times(result) == [utc(2023, 1, 3, 10, 0)]


@pytest.mark.parametrize(
    "fields",
    [
        "-1.1000,1.1010,1.0990,1.1005,10",
        "1.1000,1.1010,0,1.1005,10",
        "0,0,0,0,10",
        "1.1000,1.1010,1.0990,-1.1005,10",
    ],
)
def test_non_positive_price_is_quarantined(tmp_path, fields):
    path = write_csv(
        tmp_path, "neg.csv", f"2023-01-03 10:00:00,{GOOD}", f"2023-01-03 10:01:00,{fields}"
    )
    result = validate(path)
    assert_accounted(result)
    assert quarantined(result) == [("neg.csv", 3, "non_positive_price")]
    assert detail_of(result, 3).startswith("open=")
    assert len(result.bars) == 1


def test_high_below_open_or_close_is_quarantined(tmp_path):
    path = write_csv(
        tmp_path,
        "hl.csv",
        f"2023-01-03 10:00:00,{GOOD}",
        "2023-01-03 10:01:00,1.1000,1.0990,1.1010,1.1005,10",  # high and low swapped
        "2023-01-03 10:02:00,1.1000,1.1004,1.0990,1.1005,10",  # high below close only
        "2023-01-03 10:03:00,1.1000,1.1005,1.0990,1.1005,10",  # high == close is fine
    )
    result = validate(path)
    assert_accounted(result)
    assert quarantined(result) == [
        ("hl.csv", 3, "high_below_open_close"),
        ("hl.csv", 4, "high_below_open_close"),
    ]
    assert detail_of(result, 3) == "high=1.099 < max(open=1.1, close=1.1005)"
    assert kept_times(result) == [utc(2023, 1, 3, 10, 0), utc(2023, 1, 3, 10, 3)]


def test_low_above_open_or_close_is_quarantined(tmp_path):
    path = write_csv(
        tmp_path,
        "low.csv",
        f"2023-01-03 10:00:00,{GOOD}",
        "2023-01-03 10:01:00,1.1000,1.1010,1.1001,1.1005,10",  # low above open
        "2023-01-03 10:02:00,1.1000,1.1010,1.1000,1.1005,10",  # low == open is fine
    )
    result = validate(path)
    assert_accounted(result)
    assert quarantined(result) == [("low.csv", 3, "low_above_open_close")]
    assert detail_of(result, 3) == "low=1.1001 > min(open=1.1, close=1.1005)"
    assert len(result.bars) == 2


def test_negative_volume_is_quarantined(tmp_path):
    path = write_csv(
        tmp_path,
        "vol.csv",
        f"2023-01-03 10:00:00,{GOOD}",
        "2023-01-03 10:01:00,1.1000,1.1010,1.0990,1.1005,-3",
        "2023-01-03 10:02:00,1.1000,1.1010,1.0990,1.1005,0",
    )
    result = validate(path)
    assert_accounted(result)
    assert quarantined(result) == [("vol.csv", 3, "negative_volume")]
    assert detail_of(result, 3) == "volume=-3.0"
    assert result.bars.get_column("volume").to_list() == [10.0, 0.0]


def test_negative_spread_is_quarantined(tmp_path):
    path = tmp_path / "EURUSD_M1.csv"
    path.write_text(
        "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>\n"
        "2023.01.03\t12:00:00\t1.10000\t1.10010\t1.09990\t1.10005\t5\t0\t8\n"
        "2023.01.03\t12:01:00\t1.10000\t1.10010\t1.09990\t1.10005\t5\t0\t-2\n"
    )
    result = validate_files([read_bar_file(path, instrument=instrument_for("EURUSD"))])
    assert_accounted(result)
    assert quarantined(result) == [("EURUSD_M1.csv", 3, "negative_spread")]
    assert result.bars.get_column("spread").to_list() == pytest.approx([8e-5])


def test_the_first_failing_rule_names_the_row(tmp_path):
    path = write_csv(
        tmp_path,
        "order.csv",
        f"2023-01-03 10:00:00,{GOOD}",
        "2023-01-03 10:01:00,-1.1,1.0990,1.1010,1.1005,-5",  # negative, swapped, -volume
        "2023-01-07 10:02:00,1.1000,1.0990,1.1010,1.1005,-5",  # weekend, swapped, -volume
        "2023-01-07 10:03:00,1.1000,1.1010,1.0990,1.1005,-5",  # weekend, -volume
    )
    result = validate(path)
    assert_accounted(result)
    assert quarantined(result) == [
        ("order.csv", 3, "non_positive_price"),
        ("order.csv", 4, "high_below_open_close"),
        ("order.csv", 5, "negative_volume"),
    ]


# --------------------------------------------------------------------------- weekend closure

# (UTC time, New York wall clock, kept?)
WEEKEND_BOUNDARIES = [
    ("2023-01-06 21:59:00", "Fri 16:59 EST", True),
    ("2023-01-06 22:00:00", "Fri 17:00 EST", False),
    ("2023-01-08 21:59:00", "Sun 16:59 EST", False),
    ("2023-01-08 22:00:00", "Sun 17:00 EST", True),
    ("2023-07-07 20:59:00", "Fri 16:59 EDT", True),
    ("2023-07-07 21:00:00", "Fri 17:00 EDT", False),
    ("2023-07-09 20:59:00", "Sun 16:59 EDT", False),
    ("2023-07-09 21:00:00", "Sun 17:00 EDT", True),
    # The Sunday the US leaves DST (5 Nov 2023): the reopen is 17:00 EST = 22:00 UTC.
    ("2023-11-05 21:59:00", "Sun 16:59 EST", False),
    ("2023-11-05 22:00:00", "Sun 17:00 EST", True),
    # The Friday before the US enters DST (10 Mar 2023) is still EST.
    ("2023-03-10 21:59:00", "Fri 16:59 EST", True),
    ("2023-03-10 22:00:00", "Fri 17:00 EST", False),
    ("2023-01-07 12:00:00", "Sat 07:00 EST", False),
]


@pytest.mark.parametrize(
    ("stamp", "kept"),
    [(s, k) for s, _, k in WEEKEND_BOUNDARIES],
    ids=[f"{ny}-{'kept' if k else 'rejected'}" for _, ny, k in WEEKEND_BOUNDARIES],
)
def test_weekend_closure_boundary_is_new_york_17_00_with_dst(tmp_path, stamp, kept):
    path = write_csv(tmp_path, "w.csv", f"{stamp},{GOOD}")
    result = validate(path)
    assert_accounted(result)
    if kept:
        assert result.bars.height == 1
        assert result.quarantine.height == 0
    else:
        assert result.bars.height == 0
        assert quarantined(result) == [("w.csv", 2, "weekend_closure")]
        detail = detail_of(result, 2)
        assert detail.startswith(f"{stamp[:16]} UTC is inside the Friday 17:00 - Sunday 17:00")
        assert "check the file's source timezone" in detail


def test_weekend_rows_are_kept_when_the_policy_allows_them(tmp_path):
    path = write_csv(
        tmp_path,
        "w.csv",
        f"2023-01-06 21:59:00,{GOOD}",
        f"2023-01-07 12:00:00,{GOOD}",
        f"2023-01-08 21:59:00,{GOOD}",
    )
    result = validate(path, policy=ValidationPolicy(reject_weekend_closure=False))
    assert_accounted(result)
    assert result.quarantine.height == 0
    assert len(result.bars) == 3
    assert not any("weekend" in n for n in result.notes)
    assert validate(path).reason_counts() == {"weekend_closure": 2}


def test_a_file_mostly_in_the_weekend_gets_a_timezone_note(tmp_path):
    # MT4 rows declared as UTC+12 shift a Monday-morning file into the weekend.
    path = tmp_path / "EURUSD1.csv"
    path.write_text("".join(f"2023.01.09,0{h}:00,1.1,1.101,1.099,1.1005,5\n" for h in range(1, 6)))
    result = validate_files([read_bar_file(path, "mt4", timezone="+12:00")])
    assert_accounted(result)
    assert result.reason_counts() == {"weekend_closure": 5}
    assert (
        f"{path}: 5 of 5 rows fall in the weekend closure: the source timezone '+12:00' is "
        "probably wrong for this file"
    ) in result.notes
    # With its real clock the same file is fine and has no such note.
    good = validate_files([read_bar_file(path)])
    assert good.quarantine.height == 0
    assert not any("weekend closure" in n for n in good.notes)


def test_a_few_weekend_rows_do_not_trigger_the_timezone_note(tmp_path):
    rows = [f"2023-01-03 10:{m:02d}:00,{GOOD}" for m in range(9)] + [f"2023-01-07 12:00:00,{GOOD}"]
    result = validate(write_csv(tmp_path, "w.csv", *rows))
    assert result.reason_counts() == {"weekend_closure": 1}
    assert not any("probably wrong" in n for n in result.notes)


# --------------------------------------------------------------------------- ordering


def test_a_stray_early_row_is_quarantined_alone(tmp_path):
    path = write_csv(
        tmp_path,
        "order.csv",
        f"2023-01-03 10:00:00,{GOOD}",
        f"2023-01-03 10:01:00,{GOOD}",
        f"2023-01-03 10:02:00,{GOOD}",
        f"2023-01-03 09:30:00,{GOOD}",
        f"2023-01-03 10:03:00,{GOOD}",
        f"2023-01-03 10:04:00,{GOOD}",
    )
    result = validate(path)
    assert_accounted(result)
    assert quarantined(result) == [("order.csv", 5, "non_monotonic")]
    assert detail_of(result, 5) == (
        "time 2023-01-03 09:30:00 UTC is out of order with the surrounding rows"
    )
    assert kept_times(result) == [utc(2023, 1, 3, 10, m) for m in range(5)]


def test_a_stray_late_row_does_not_take_the_later_rows_with_it(tmp_path):
    path = write_csv(
        tmp_path,
        "order.csv",
        f"2023-01-03 10:00:00,{GOOD}",
        f"2023-01-03 10:01:00,{GOOD}",
        f"2023-01-03 15:00:00,{GOOD}",
        f"2023-01-03 10:02:00,{GOOD}",
        f"2023-01-03 10:03:00,{GOOD}",
        f"2023-01-03 10:04:00,{GOOD}",
    )
    result = validate(path)
    assert_accounted(result)
    assert quarantined(result) == [("order.csv", 4, "non_monotonic")]
    assert kept_times(result) == [utc(2023, 1, 3, 10, m) for m in range(5)]


def test_a_newest_first_file_is_reversed_and_reported_not_quarantined(tmp_path):
    path = write_csv(
        tmp_path,
        "desc.csv",
        "2023-01-03 10:02:00,1.3,1.45,1.25,1.4,30",
        "2023-01-03 10:01:00,1.2,1.35,1.15,1.3,20",
        "2023-01-03 10:00:00,1.1,1.25,1.05,1.2,10",
    )
    result = validate(path)
    assert_accounted(result)
    assert result.quarantine.height == 0
    assert kept_times(result) == [utc(2023, 1, 3, 10, m) for m in range(3)]
    assert result.bars.get_column("close").to_list() == [1.2, 1.3, 1.4]
    assert f"{path}: rows are newest-first; read in reverse order" in result.notes


def test_order_is_judged_per_file_not_across_files(tmp_path):
    later = write_csv(
        tmp_path, "b.csv", f"2023-01-04 10:00:00,{GOOD}", f"2023-01-04 10:01:00,{GOOD}"
    )
    earlier = write_csv(tmp_path, "a.csv", f"2023-01-03 10:00:00,{GOOD}", f"2023-01-03 10:01:00,{GOOD}")  # fmt: skip
    result = validate(later, earlier)
    assert_accounted(result)
    assert result.quarantine.height == 0
    assert kept_times(result) == [
        utc(2023, 1, 3, 10, 0),
        utc(2023, 1, 3, 10, 1),
        utc(2023, 1, 4, 10, 0),
        utc(2023, 1, 4, 10, 1),
    ]


# --------------------------------------------------------------------------- duplicates


def test_duplicate_timestamps_within_a_file(tmp_path):
    path = write_csv(
        tmp_path,
        "dup.csv",
        f"2023-01-03 10:00:00,{GOOD}",
        f"2023-01-03 10:00:00,{GOOD}",
        "2023-01-03 10:00:00,1.1000,1.1010,1.0990,1.1007,10",
        f"2023-01-03 10:01:00,{GOOD}",
    )
    result = validate(path)
    assert_accounted(result)
    assert quarantined(result) == [
        ("dup.csv", 3, "duplicate_timestamp"),
        ("dup.csv", 4, "duplicate_timestamp"),
    ]
    assert detail_of(result, 3) == (
        f"identical bar, time 2023-01-03 10:00:00 UTC already at {path}:2"
    )
    assert detail_of(result, 4) == (
        f"conflicting bar, time 2023-01-03 10:00:00 UTC already at {path}:2"
    )
    assert kept_times(result) == [utc(2023, 1, 3, 10, 0), utc(2023, 1, 3, 10, 1)]
    assert result.bars.item(0, "close") == 1.1005


def test_duplicate_timestamps_across_files_keep_the_first_file(tmp_path):
    first = write_csv(
        tmp_path,
        "z_first.csv",
        f"2023-01-03 10:00:00,{GOOD}",
        "2023-01-03 10:01:00,1.2,1.25,1.15,1.2,5",
    )
    second = write_csv(
        tmp_path,
        "a_second.csv",
        f"2023-01-03 10:00:00,{GOOD}",
        "2023-01-03 10:01:00,1.3,1.35,1.25,1.3,5",
        f"2023-01-03 10:02:00,{GOOD}",
    )
    result = validate(first, second)
    assert_accounted(result)
    assert quarantined(result) == [
        ("a_second.csv", 2, "duplicate_timestamp"),
        ("a_second.csv", 3, "duplicate_timestamp"),
    ]
    details = dict(result.quarantine.select("line", "detail").rows())
    assert details[2] == f"identical bar, time 2023-01-03 10:00:00 UTC already at {first}:2"
    assert details[3] == f"conflicting bar, time 2023-01-03 10:01:00 UTC already at {first}:3"
    assert result.bars.get_column("close").to_list() == [1.1005, 1.2, 1.1005]
    # The keeper follows the order the files are given in, not their names.
    swapped = validate(second, first)
    assert quarantined(swapped) == [
        ("z_first.csv", 2, "duplicate_timestamp"),
        ("z_first.csv", 3, "duplicate_timestamp"),
    ]
    assert swapped.bars.get_column("close").to_list() == [1.1005, 1.3, 1.1005]


def test_a_rejected_row_does_not_become_the_keeper_of_a_duplicate(tmp_path):
    path = write_csv(
        tmp_path,
        "dup.csv",
        "2023-01-03 10:00:00,1.1000,1.0990,1.1010,1.1005,10",  # broken, then a good copy
        f"2023-01-03 10:00:00,{GOOD}",
    )
    result = validate(path)
    assert quarantined(result) == [("dup.csv", 2, "high_below_open_close")]
    assert result.bars.height == 1


def test_a_newest_first_file_keeps_its_earliest_line_for_a_duplicate_time(tmp_path):
    path = write_csv(
        tmp_path,
        "desc.csv",
        f"2023-01-03 10:02:00,{GOOD}",
        "2023-01-03 10:01:00,1.1000,1.1010,1.0990,1.1001,10",
        "2023-01-03 10:01:00,1.1000,1.1010,1.0990,1.1002,10",
        f"2023-01-03 10:00:00,{GOOD}",
    )
    result = validate(path)
    assert_accounted(result)
    assert quarantined(result) == [("desc.csv", 4, "duplicate_timestamp")]
    assert detail_of(result, 4).endswith(f"already at {path}:3")
    assert result.bars.get_column("close").to_list() == [1.1005, 1.1001, 1.1005]


# --------------------------------------------------------------------------- accounting


def test_every_row_is_kept_or_quarantined_exactly_once(tmp_path):
    a = write_csv(
        tmp_path,
        "a.csv",
        f"2023-01-03 10:00:00,{GOOD}",
        "2023-01-03 10:01:00,1.1,abc,1.0,1.05,1",  # unparseable
        "2023-01-03 10:02:00,nan,1.2,1.0,1.05,1",  # missing_value
        "2023-01-03 10:03:00,-1.1,1.2,1.0,1.05,1",  # non_positive_price
        "2023-01-03 10:04:00,1.1,1.0,1.2,1.05,1",  # high_below_open_close
        "2023-01-03 10:05:00,1.1,1.2,1.15,1.12,1",  # low_above_open_close
        "2023-01-03 10:06:00,1.1,1.2,1.0,1.05,-1",  # negative_volume
        f"2023-01-07 10:07:00,{GOOD}",  # weekend_closure
        f"2023-01-03 10:08:00,{GOOD}",
        f"2023-01-03 10:08:00,{GOOD}",  # duplicate_timestamp (identical)
        f"2023-01-03 09:00:00,{GOOD}",  # non_monotonic
        f"2023-01-03 10:09:00,{GOOD}",
    )
    b = write_csv(
        tmp_path,
        "b.csv",
        f"2023-01-03 10:09:00,{GOOD}",  # duplicate_timestamp across files
        f"2023-01-03 10:10:00,{GOOD}",
    )
    result = validate(a, b)
    assert_accounted(result)
    assert result.rows_in == 14
    assert result.bars.height == 4
    assert result.quarantine.height == 10
    assert result.reason_counts() == {
        "unparseable": 1,
        "missing_value": 1,
        "non_positive_price": 1,
        "high_below_open_close": 1,
        "low_above_open_close": 1,
        "negative_volume": 1,
        "weekend_closure": 1,
        "non_monotonic": 1,
        "duplicate_timestamp": 2,
    }
    assert quarantined(result) == [
        ("a.csv", 3, "unparseable"),
        ("a.csv", 4, "missing_value"),
        ("a.csv", 5, "non_positive_price"),
        ("a.csv", 6, "high_below_open_close"),
        ("a.csv", 7, "low_above_open_close"),
        ("a.csv", 8, "negative_volume"),
        ("a.csv", 9, "weekend_closure"),
        ("a.csv", 11, "duplicate_timestamp"),
        ("a.csv", 12, "non_monotonic"),
        ("b.csv", 2, "duplicate_timestamp"),
    ]
    assert kept_times(result) == [
        utc(2023, 1, 3, 10, 0),
        utc(2023, 1, 3, 10, 8),
        utc(2023, 1, 3, 10, 9),
        utc(2023, 1, 3, 10, 10),
    ]
    # Every quarantined row carries the raw text of its own line.
    for file, line, raw in result.quarantine.select("file", "line", "raw").rows():
        assert Path(file).read_text().split("\n")[line - 1] == raw


def test_no_files_validate_to_nothing():
    result = validate_files([])
    assert result.rows_in == 0
    assert result.bars.schema == pl.Schema(M1_SCHEMA)
    assert result.quarantine.schema == pl.Schema(QUARANTINE_SCHEMA)
    assert result.bars.height == result.quarantine.height == 0


def test_every_reason_has_a_distinct_value():
    values = [r.value for r in QuarantineReason]
    assert len(values) == len(set(values)) == 10


# --------------------------------------------------------------------------- property

START = utc(2023, 1, 3)  # a Tuesday: every generated bar is inside trading hours


@dataclass(frozen=True)
class Layout:
    """How one text format writes a UTC bar, and the header (if any) above the rows."""

    name: str
    header: str | None
    separator: str
    shift: timedelta  # file clock minus UTC (January, so NY+7 is +2 h)
    stamp: str  # strftime pattern, or "epoch-ms" / "iso-offset"

    def row(self, time: datetime, fields: list[str]) -> str:
        local = time + self.shift
        if self.stamp == "epoch-ms":
            stamp = str(int(time.timestamp() * 1000))
        elif self.stamp == "iso-offset":
            stamp = local.strftime("%Y-%m-%dT%H:%M:%S") + "+03:00"
        else:
            stamp = local.strftime(self.stamp)
        return self.separator.join([stamp, *fields])


LAYOUTS = [
    Layout("csv", HEADER, ",", timedelta(0), "%Y-%m-%d %H:%M:%S"),
    Layout("csv-epoch", HEADER, ",", timedelta(0), "epoch-ms"),
    Layout("csv-iso", HEADER, ",", timedelta(hours=3), "iso-offset"),
    Layout("histdata", None, ";", timedelta(hours=-5), "%Y%m%d %H%M%S"),
    Layout("mt4", None, ",", timedelta(hours=2), "%Y.%m.%d,%H:%M"),
]

CONTENT_CORRUPTIONS = {
    "nan": "missing_value",
    "negative": "non_positive_price",
    "swap": "high_below_open_close",
    "negative_volume": "negative_volume",
    "garbage": "unparseable",
}

# Letters and separators, plus characters that str.splitlines() treats as line breaks.
GARBAGE = st.text(
    alphabet=st.sampled_from(
        [*list("abcdefxyz ;,.:-_!?#\t"), "\x0b", "\x0c", "\x1c", "\x85", "\u2028"]
    ),
    min_size=1,
    max_size=25,
).filter(lambda s: any(ch.isalpha() for ch in s))


@dataclass(frozen=True)
class Entry:
    """One line of the generated file."""

    text: str
    time: datetime | None = None  # UTC time of a data row
    values: tuple[float, ...] | None = None  # open, high, low, close, volume
    original: bool = False  # an untouched row of the clean series, in its place
    valid: bool = False  # passes every row rule
    expected_reason: str | None = None  # the rule a corrupted row must fail

    @property
    def is_data(self) -> bool:
        return self.text.strip() != ""


@st.composite
def corrupted_files(draw):
    layout = draw(st.sampled_from(LAYOUTS))
    # At least 4 rows: with the limits below, garbage stays a minority of the rows (a file
    # that is mostly garbage is not a bar file, and the reader may rightly refuse it).
    n = draw(st.integers(min_value=4, max_value=40))
    gaps = draw(st.lists(st.integers(1, 20), min_size=n, max_size=n))
    times = list(itertools.accumulate((timedelta(minutes=g) for g in gaps), initial=START))[1:]
    entries: list[Entry] = []
    for time in times:
        open_, close = draw(st.integers(100_000, 120_000)), draw(st.integers(100_000, 120_000))
        high = max(open_, close) + draw(st.integers(1, 50))
        low = min(open_, close) - draw(st.integers(1, 50))
        volume = draw(st.integers(1, 500))
        values = (open_ / 1e5, high / 1e5, low / 1e5, close / 1e5, float(volume))
        fields = [f"{p:.5f}" for p in values[:4]] + [str(volume)]
        entries.append(Entry(layout.row(time, fields), time, values, original=True, valid=True))

    # Content corruptions; the first row stays clean so the format is still recognisable.
    targets = draw(st.lists(st.integers(1, n - 1), unique=True, max_size=n // 3))
    for index in targets:
        kind = draw(st.sampled_from(sorted(CONTENT_CORRUPTIONS)))
        entry = entries[index]
        fields = [f"{p:.5f}" for p in entry.values[:4]] + [str(int(entry.values[4]))]
        if kind == "nan":
            fields[draw(st.integers(0, 3))] = draw(st.sampled_from(["nan", "NaN", ""]))
        elif kind == "negative":
            fields[draw(st.integers(0, 3))] = draw(st.sampled_from(["0", "-" + fields[0]]))
        elif kind == "swap":
            fields[1], fields[2] = fields[2], fields[1]
        elif kind == "negative_volume":
            fields[4] = "-" + fields[4]
        text = draw(GARBAGE) if kind == "garbage" else layout.row(entry.time, fields)
        entries[index] = replace(
            entry, text=text, original=False, valid=False, expected_reason=CONTENT_CORRUPTIONS[kind]
        )

    # Structural corruptions: duplicated lines, moved lines, blank lines (never above row 0).
    operations = draw(
        st.lists(st.sampled_from(["duplicate", "move", "blank"]), max_size=max(1, n // 4))
    )
    for operation in operations:
        if operation == "blank":
            position = draw(st.integers(0, len(entries)))
            entries.insert(position, Entry(draw(st.sampled_from(["", "   ", "\t"]))))
            continue
        data = [i for i, e in enumerate(entries) if e.is_data]
        source = draw(st.sampled_from(data if operation == "duplicate" else data[1:] or [None]))
        if source is None:
            continue
        entry = entries[source]
        if operation == "duplicate":
            adjacent = draw(st.booleans())
            position = source + 1 if adjacent else draw(st.integers(data[0] + 1, len(entries)))
            entries.insert(position, replace(entry, original=False))
        else:
            entries.pop(source)
            position = draw(st.integers(data[0] + 1, len(entries)))
            entries.insert(position, replace(entry, original=False))
    leading_blanks = draw(st.integers(0, 2))
    return layout, leading_blanks, entries


def misplaced_extras_are_unambiguous(entries: list[Entry]) -> bool:
    """Whether the untouched rows are, beyond doubt, the ones in the right order.

    A valid extra row (a copy or a moved row) that sits out of order among the untouched
    rows conflicts with some of them. If each conflicts with more untouched rows than there
    are such misplaced rows, dropping untouched rows can never buy a longer ordered run,
    so a correct validator must keep all of them. (Moving a row by one place is the same
    file as moving its neighbour the other way; those cases are not decidable.)
    """
    data = [e for e in entries if e.is_data]
    originals = [(i, e.time) for i, e in enumerate(data) if e.original]
    conflicts = []
    for i, entry in enumerate(data):
        if entry.original or not entry.valid:
            continue
        conflicts.append(
            sum(
                1
                for j, time in originals
                if (j < i and time > entry.time) or (j > i and time < entry.time)
            )
        )
    misplaced = [c for c in conflicts if c > 0]
    return all(c > len(misplaced) for c in misplaced)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=corrupted_files())
def test_property_validation_accounts_for_every_row_and_loses_nothing_valid(tmp_path, case):
    layout, leading_blanks, entries = case
    assume(misplaced_extras_are_unambiguous(entries))
    lines = [""] * leading_blanks + ([layout.header] if layout.header else [])
    first_data_line = len(lines) + 1
    lines += [e.text for e in entries]
    directory = tmp_path / f"case{len(list(tmp_path.iterdir()))}"
    directory.mkdir()
    path = directory / "EURUSD.csv"
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))

    result = validate_files([read_bar_file(path)])
    data_rows = sum(e.is_data for e in entries)
    line_of = {first_data_line + k: e for k, e in enumerate(entries)}

    # (a) every data row is either kept or quarantined.
    assert result.rows_in == data_rows
    assert result.bars.height + result.quarantine.height == data_rows

    # (b) every quarantine row names the file and a line holding exactly its raw text.
    file_lines = path.read_bytes().decode("utf-8").split("\n")
    quarantine_lines = result.quarantine.get_column("line").to_list()
    assert len(set(quarantine_lines)) == len(quarantine_lines)
    for file, line, reason, raw in result.quarantine.select("file", "line", "reason", "raw").rows():
        assert file == str(path)
        assert file_lines[line - 1] == raw
        entry = line_of[line]
        assert entry.is_data
        if entry.expected_reason is not None:
            assert reason == entry.expected_reason, (line, raw)
        else:
            assert reason in {"non_monotonic", "duplicate_timestamp"}, (line, raw, reason)

    # (c) kept bars are strictly increasing and OHLC-consistent.
    bars = result.bars
    times = bars.get_column("time").to_list()
    assert all(a < b for a, b in itertools.pairwise(times))
    for _, o, h, lo, c, v, _ in bars.rows():
        assert all(math.isfinite(p) and p > 0 for p in (o, h, lo, c))
        assert h >= max(o, c) and lo <= min(o, c) and v >= 0

    # (d) nothing valid is lost: every untouched row is kept, or quarantined only as an
    # identical copy of an earlier line, whose bar is then kept instead.
    kept = {t: values for t, *values in bars.select("time", "open", "high", "low", "close", "volume").rows()}  # fmt: skip
    reasons = {line: (r, d) for line, r, d in result.quarantine.select("line", "reason", "detail").rows()}  # fmt: skip
    for line, entry in line_of.items():
        if not entry.original:
            continue
        assert kept.get(entry.time) == list(entry.values), (line, entry.text)
        if line in reasons:
            reason, detail = reasons[line]
            assert reason == "duplicate_timestamp" and detail.startswith("identical bar,")
            keeper = int(detail.rsplit(":", 1)[1])
            assert keeper < line and line_of[keeper].text == entry.text
