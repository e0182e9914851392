"""Finding a symbol's files in a data directory and loading them into validated bars."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from forex_assets.ingest.bar_files import AUTO
from forex_assets.ingest.bar_format import BarFileError
from forex_assets.ingest.sources import (
    FileOverride,
    FileSpec,
    discover_symbol_files,
    load_symbol_bars,
    symbols_in_data_dir,
)
from forex_assets.ingest.validation import ValidationPolicy
from forex_assets.market.instruments import instrument_for

HISTDATA_ROW = "20230103 050000;1.07015;1.07021;1.07010;1.07018;0\n"
MT4_ROW = "2023.01.03,12:00,1.07015,1.07021,1.07010,1.07018,15\n"
CSV_TEXT = "time,open,high,low,close\n2023-01-03 10:00:00,1.1,1.2,1.0,1.15\n"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def touch(data_dir: Path, relative: str, content: str | bytes = CSV_TEXT) -> Path:
    path = data_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def relative_paths(data_dir: Path, specs: list[FileSpec]) -> list[str]:
    return [spec.path.relative_to(data_dir).as_posix() for spec in specs]


# --------------------------------------------------------------------------- discovery


def test_files_in_a_symbol_folder_belong_to_that_symbol(tmp_path):
    touch(tmp_path, "EURUSD/2023.csv")
    touch(tmp_path, "EURUSD/2022/jan.txt")
    touch(tmp_path, "EURUSD/2022/feb.parquet", b"PAR1")
    touch(tmp_path, "EURUSD/GBPUSD_backup.csv")  # the folder says what it is
    touch(tmp_path, "EURUSD/readme.md")
    touch(tmp_path, "GBPUSD/2023.csv")
    specs = discover_symbol_files(tmp_path, "EURUSD")
    assert relative_paths(tmp_path, specs) == [
        "EURUSD/2022/feb.parquet",
        "EURUSD/2022/jan.txt",
        "EURUSD/2023.csv",
        "EURUSD/GBPUSD_backup.csv",
    ]
    assert all(s.format is AUTO and s.timezone is None for s in specs)
    assert relative_paths(tmp_path, discover_symbol_files(tmp_path, "GBPUSD")) == [
        "GBPUSD/2023.csv"
    ]


def test_lower_case_symbol_folders_count(tmp_path):
    touch(tmp_path, "vendor/eurusd/m1.csv")
    assert relative_paths(tmp_path, discover_symbol_files(tmp_path, "EURUSD")) == [
        "vendor/eurusd/m1.csv"
    ]


def test_vendor_file_names_name_the_symbol(tmp_path):
    wanted = [
        "DAT_ASCII_EURUSD_M1_2023.csv",
        "EURUSD1.csv",
        "EURUSD_Candlestick_1_M_BID_01.01.2023-31.12.2023.csv",
        "downloads/eurusd-m1-2022.TXT",
        "mt5/EURUSD_M1_202301020000_202312292359.csv",
        "parquet/EURUSD.parquet",
    ]
    others = [
        "DAT_ASCII_GBPUSD_M1_2023.csv",
        "USDJPY1.csv",
        "EURGBP_Candlestick_1_M_BID_01.01.2023-31.12.2023.csv",
        "EURUSDX.csv",  # seven letters: not the pair
        "notes.csv",
        "EURUSD1.xlsx",
        "EURUSD1.csv.zip",
    ]
    for name in wanted + others:
        touch(tmp_path, name)
    assert relative_paths(tmp_path, discover_symbol_files(tmp_path, "EURUSD")) == sorted(wanted)


def test_hidden_and_temporary_files_are_ignored(tmp_path):
    touch(tmp_path, "EURUSD1.csv")
    ignored = [
        ".EURUSD1.csv",  # hidden
        "~$EURUSD1.csv",  # Excel's lock file while the CSV is open
        ".~lock.EURUSD1.csv#",  # LibreOffice's lock file
        "EURUSD1.csv.tmp",
        "EURUSD1.csv.part",
        "EURUSD1.csv~",
        ".ipynb_checkpoints/EURUSD1-checkpoint.csv",  # stale copy in a hidden folder
        ".cache/EURUSD/2023.csv",
        "EURUSD/.trash/2023.csv",
    ]
    for name in ignored:
        touch(tmp_path, name, b"\x00\x01 not bars")
    assert relative_paths(tmp_path, discover_symbol_files(tmp_path, "EURUSD")) == ["EURUSD1.csv"]
    assert symbols_in_data_dir(tmp_path) == ["EURUSD"]


def test_a_data_dir_inside_a_hidden_folder_still_works(tmp_path):
    data_dir = tmp_path / ".local" / "fx"
    touch(data_dir, "EURUSD1.csv")
    assert relative_paths(data_dir, discover_symbol_files(data_dir, "EURUSD")) == ["EURUSD1.csv"]


def test_missing_data_dir_has_no_files(tmp_path):
    assert discover_symbol_files(tmp_path / "nope", "EURUSD") == []
    assert symbols_in_data_dir(tmp_path / "nope") == []


def test_overrides_declare_format_and_timezone_by_relative_glob(tmp_path):
    touch(tmp_path, "broker_a/EURUSD1.csv", MT4_ROW)
    touch(tmp_path, "broker_b/EURUSD1.csv", MT4_ROW)
    touch(tmp_path, "DAT_ASCII_EURUSD_M1_2023.csv", HISTDATA_ROW)
    overrides = [
        FileOverride("broker_b/*", "mt4", "+02:00"),
        FileOverride("*.csv", timezone="UTC"),  # a later, broader rule does not win
        FileOverride("DAT_ASCII_*", "histdata"),
    ]
    specs = discover_symbol_files(tmp_path, "EURUSD", overrides)
    by_name = {s.path.relative_to(tmp_path).as_posix(): s for s in specs}
    assert by_name == {
        "DAT_ASCII_EURUSD_M1_2023.csv": FileSpec(
            tmp_path / "DAT_ASCII_EURUSD_M1_2023.csv", AUTO, "UTC"
        ),
        "broker_a/EURUSD1.csv": FileSpec(tmp_path / "broker_a/EURUSD1.csv", AUTO, "UTC"),
        "broker_b/EURUSD1.csv": FileSpec(tmp_path / "broker_b/EURUSD1.csv", "mt4", "+02:00"),
    }


def test_overrides_do_not_apply_to_other_paths(tmp_path):
    touch(tmp_path, "EURUSD1.csv", MT4_ROW)
    specs = discover_symbol_files(tmp_path, "EURUSD", [FileOverride("GBPUSD*", "csv")])
    assert specs == [FileSpec(tmp_path / "EURUSD1.csv")]


def test_symbols_in_data_dir(tmp_path):
    touch(tmp_path, "EURUSD/2023.csv")
    touch(tmp_path, "DAT_ASCII_USDJPY_M1_2023.csv")
    touch(tmp_path, "XAUUSD1.csv")
    touch(tmp_path, "gbpusd_ticks.parquet", b"PAR1")
    touch(tmp_path, "EURGBP_vs_EURUSD.csv")  # both pairs named
    touch(tmp_path, "ABCDEF.csv")  # not currencies
    touch(tmp_path, "readme.txt")
    touch(tmp_path, ".AUDUSD.csv")
    assert symbols_in_data_dir(tmp_path) == ["EURGBP", "EURUSD", "GBPUSD", "USDJPY", "XAUUSD"]


# --------------------------------------------------------------------------- loading


def test_load_symbol_bars_reads_validates_and_summarises_each_file(tmp_path):
    histdata = touch(
        tmp_path,
        "DAT_ASCII_EURUSD_M1_2023.csv",
        "20230103 050000;1.07015;1.07021;1.07010;1.07018;0\n"
        "20230103 050100;1.07018;1.07030;1.07015;1.07025;0\n"
        "20230103 050200;1.07025;1.07020;1.07015;1.07022;0\n",  # high below open
    )
    mt5 = touch(
        tmp_path,
        "EURUSD/EURUSD_M1.csv",
        "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>\n"
        # 12:01 server time (+02:00 declared) = 10:01 UTC, the same bar as the HistData row.
        "2023.01.03\t12:01:00\t1.07018\t1.07030\t1.07015\t1.07025\t56\t0\t12\n"
        "2023.01.03\t12:03:00\t1.07022\t1.07040\t1.07020\t1.07035\t41\t0\t9\n",
    )
    touch(tmp_path, "DAT_ASCII_GBPUSD_M1_2023.csv", HISTDATA_ROW)
    specs = discover_symbol_files(tmp_path, "EURUSD", [FileOverride("EURUSD/*", "mt5", "+02:00")])
    assert [s.path for s in specs] == [histdata, mt5]
    progress: list[tuple[int, int, Path]] = []
    validated, summary = load_symbol_bars(
        specs,
        instrument_for("EURUSD"),
        progress=lambda i, n, spec: progress.append((i, n, spec.path)),
    )
    assert progress == [(0, 2, histdata), (1, 2, mt5)]
    assert summary == [
        {
            "file": str(histdata),
            "format": "histdata",
            "timezone": "-05:00",
            "rows": 3,
            "quarantined": 1,
        },
        {"file": str(mt5), "format": "mt5", "timezone": "+02:00", "rows": 2, "quarantined": 1},
    ]
    assert validated.rows_in == 5
    assert validated.bars.height + validated.quarantine.height == 5
    assert validated.reason_counts() == {"high_below_open_close": 1, "duplicate_timestamp": 1}
    duplicate = validated.quarantine.filter(reason="duplicate_timestamp").row(0, named=True)
    assert duplicate["file"] == str(mt5)
    assert duplicate["line"] == 2
    assert duplicate["detail"] == (
        f"identical bar, time 2023-01-03 10:01:00 UTC already at {histdata}:2"
    )
    assert validated.bars.get_column("time").to_list() == [
        utc(2023, 1, 3, 10, 0),
        utc(2023, 1, 3, 10, 1),
        utc(2023, 1, 3, 10, 3),
    ]
    # Spread comes from the MT5 file (points x 0.00001), volume is absent in HistData.
    assert validated.bars.get_column("spread").to_list() == pytest.approx([None, None, 9e-5])
    assert validated.bars.get_column("volume").to_list() == [None, None, 41.0]
    assert any("volume column is all zero" in n and str(histdata) in n for n in validated.notes)


def test_load_symbol_bars_passes_the_policy(tmp_path):
    path = touch(
        tmp_path, "EURUSD.csv", "time,open,high,low,close\n2023-01-07 10:00:00,1.1,1.2,1.0,1.15\n"
    )
    specs = discover_symbol_files(tmp_path, "EURUSD")
    rejected, summary = load_symbol_bars(specs, instrument_for("EURUSD"))
    assert rejected.bars.height == 0
    assert summary[0]["quarantined"] == 1
    kept, summary = load_symbol_bars(
        specs, instrument_for("EURUSD"), ValidationPolicy(reject_weekend_closure=False)
    )
    assert kept.bars.height == 1
    assert summary == [
        {"file": str(path), "format": "csv", "timezone": "UTC", "rows": 1, "quarantined": 0}
    ]


def test_load_symbol_bars_with_an_unreadable_file_names_it(tmp_path):
    touch(tmp_path, "EURUSD/good.csv")
    bad = touch(tmp_path, "EURUSD/bad.csv", "this is not a bar file\n")
    specs = discover_symbol_files(tmp_path, "EURUSD")
    with pytest.raises(BarFileError, match="could not recognise the format") as info:
        load_symbol_bars(specs, instrument_for("EURUSD"))
    assert str(bad) in str(info.value)


def test_load_symbol_bars_with_no_files(tmp_path):
    validated, summary = load_symbol_bars([], instrument_for("EURUSD"))
    assert summary == []
    assert validated.rows_in == 0
    assert validated.bars.height == 0
